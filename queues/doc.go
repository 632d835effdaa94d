// Package queues keeps the callers waiting in each queue on this node, in
// order of priority then arrival, wakes them when their turn may have come,
// and keeps what staff see: who waits how long, answered and abandoned today.
package queues
