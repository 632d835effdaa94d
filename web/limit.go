package web

import (
	"strings"
	"sync"
	"time"
)

// Login slow-down: after `free` failures for a key, each further failure
// doubles the wait before the next attempt, from limitBase up to
// limitMax. Attempts during the wait are refused at once (429 with
// Retry-After): nothing sleeps, nothing queues. The keys are a user name
// at one client address (userFree), a client address whatever the names
// (ipFree), and a user name from every address together (userAnyFree):
// someone guessing a password from one address slows down that address,
// not the user logging in from another, until the guesses for the name
// from everywhere pass userAnyFree.
const (
	userFree    = 5
	ipFree      = 20
	userAnyFree = 100
	limitBase   = time.Second
	limitMax    = 15 * time.Minute
	limitForget = time.Hour // failures are forgotten after this long without one
	// limitEntries bounds the table; beyond it, idle entries are evicted.
	limitEntries = 100000
)

type limitKey struct {
	key  string
	free int
	// hold: one attempt at a time for this key, so that parallel
	// guesses cannot slip past its count. Not for a key shared by every
	// address (a user name), or one address guessing would hold back the
	// user's own logins elsewhere.
	hold bool
}

// loginKeys are the limiter's keys for a login attempt; the first is
// cleared by a success.
func loginKeys(name, ip string) []limitKey {
	n := strings.ToLower(name)
	return []limitKey{
		{key: "user-ip:" + n + "\x00" + ip, free: userFree, hold: true},
		{key: "ip:" + ip, free: ipFree, hold: true},
		{key: "user:" + n, free: userAnyFree},
	}
}

type attempts struct {
	failures int
	last     time.Time // last failure
	until    time.Time // no attempt before
	busy     bool      // an attempt is being verified
}

type limiter struct {
	mu  sync.Mutex
	m   map[string]*attempts
	now func() time.Time
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{m: map[string]*attempts{}, now: now}
}

// begin reserves an attempt for every key, or says how long to wait. One
// attempt per key is verified at a time, so parallel guesses cannot slip
// past the count. done reports the result: ok clears the first key (the
// user), failed counts a failure on every key, neither just releases.
func (l *limiter) begin(keys ...limitKey) (done func(ok, failed bool), wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range keys {
		e := l.m[k.key]
		if e == nil {
			continue
		}
		if !e.busy && now.Sub(e.last) > limitForget && !now.Before(e.until) {
			delete(l.m, k.key)
			continue
		}
		if e.busy && k.hold {
			wait = max(wait, limitBase)
		}
		if now.Before(e.until) {
			wait = max(wait, e.until.Sub(now))
		}
	}
	if wait > 0 {
		return nil, wait
	}
	entries := make([]*attempts, len(keys))
	for i, k := range keys {
		e := l.m[k.key]
		if e == nil {
			l.evict(now)
			e = &attempts{}
			l.m[k.key] = e
		}
		if k.hold {
			e.busy = true
		}
		entries[i] = e
	}
	return func(ok, failed bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		now := l.now()
		for i, k := range keys {
			e := entries[i]
			if k.hold {
				e.busy = false
			}
			switch {
			case failed:
				e.failures++
				e.last = now
				if n := e.failures - k.free; n >= 0 {
					d := limitMax
					if n < 20 {
						d = min(limitBase<<n, limitMax)
					}
					e.until = now.Add(d)
				}
			case ok && i == 0:
				e.failures, e.until = 0, time.Time{}
			}
			if e.failures == 0 && l.m[k.key] == e {
				delete(l.m, k.key)
			}
		}
	}, 0
}

// evict makes room for one entry: forgotten entries first, then any idle one.
func (l *limiter) evict(now time.Time) {
	if len(l.m) < limitEntries {
		return
	}
	for k, e := range l.m {
		if !e.busy && now.Sub(e.last) > limitForget && !now.Before(e.until) {
			delete(l.m, k)
		}
	}
	for k, e := range l.m {
		if len(l.m) < limitEntries {
			return
		}
		if !e.busy {
			delete(l.m, k)
		}
	}
}
