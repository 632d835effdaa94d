//go:build !unix

package store

import "os"

// lockFile cannot lock here; a single process per database is assumed.
func lockFile(*os.File) (bool, error) { return true, nil }
