// Package config loads callflow.toml: built-in defaults, then the file, then
// CALLFLOW_* environment variables, then validation. Every other package
// reads its settings from the *Config this produces and never from the file.
package config
