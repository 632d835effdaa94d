// Package flows is the flow language: TOML flow files decoded with
// positions, the linter, the live registry that maps numbers to flows and
// swaps atomically on reload, and the runner that walks a flow for one call.
package flows
