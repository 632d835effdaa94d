// Package fresh keeps a value read from somewhere slow, such as the
// database the nodes share, for a short while: many readers, one read at
// a time, and a read again at once after the value is known to be stale.
package fresh
