// Package flowhead rewrites the top-level keys that say which flow a flow
// file is (id, name, status, workspace, numbers) in place, keeping the rest
// of the file as written: exports, copies and imports of database flows.
package flowhead
