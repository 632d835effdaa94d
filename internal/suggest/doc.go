// Package suggest finds the known name a misspelt one was most likely meant
// to be, for the "did you mean" hints of configuration and flow errors.
package suggest
