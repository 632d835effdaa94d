package fresh

import (
	"sync"
	"time"
)

// Value is a value kept at most For after it was read. The zero Value
// reads at every Get. Safe for concurrent use.
type Value[T any] struct {
	For time.Duration

	mu  sync.Mutex // held while reading: one read at a time
	val T
	at  time.Time
	ok  bool
}

// Get returns the value, read again with read when it is older than For
// or stale. A read that fails is kept as the zero value for For too, so
// that a database away is not asked again by every caller; its error is
// returned to the caller that read.
func (v *Value[T]) Get(read func() (T, error)) (T, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := time.Now()
	if v.ok && now.Sub(v.at) < v.For {
		return v.val, nil
	}
	val, err := read()
	if err != nil {
		var zero T
		val = zero
	}
	v.val, v.at, v.ok = val, now, true
	return val, err
}

// Stale makes the next Get read again.
func (v *Value[T]) Stale() {
	v.mu.Lock()
	v.ok = false
	v.mu.Unlock()
}
