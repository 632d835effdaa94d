package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Next returns the position of key modulo n and advances it, atomically:
// one UPSERT ... RETURNING, so goroutines and processes sharing the file
// each get their own position and a rotation is shared evenly. Positions
// survive restarts.
func (s *Store) Next(ctx context.Context, key string, n int) (int, error) {
	if n <= 0 {
		return 0, fmt.Errorf("%w: counter %q: n = %d", ErrInvalid, key, n)
	}
	st, err := s.nextStmt()
	if err != nil {
		return 0, fmt.Errorf("store: counter %q: %w", key, err)
	}
	var pos int64
	err = s.retrySync(ctx, func() error {
		return st.QueryRowContext(ctx, key, s.now().UnixNano()).Scan(&pos)
	})
	if err != nil {
		return 0, fmt.Errorf("store: counter %q: %w", key, err)
	}
	return int(pos % int64(n)), nil
}

// nextStmt prepares Next's statement once (parsing it per call would
// cost about as much as running it).
func (s *Store) nextStmt() (*sql.Stmt, error) {
	s.nextMu.Lock()
	defer s.nextMu.Unlock()
	if s.next == nil {
		st, err := s.w.Prepare(`INSERT INTO counters (key, position, updated) VALUES (?, 1, ?)
ON CONFLICT(key) DO UPDATE SET position = counters.position + 1, updated = excluded.updated
RETURNING position - 1`)
		if err != nil {
			return nil, err
		}
		s.next = st
	}
	return s.next, nil
}

// Counter returns how many times key was advanced.
func (s *Store) Counter(ctx context.Context, key string) (int64, error) {
	var pos int64
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE((SELECT position FROM counters WHERE key = ?), 0)`, key).Scan(&pos)
	if err != nil {
		return 0, fmt.Errorf("store: counter %q: %w", key, err)
	}
	return pos, nil
}

// retrySync retries fn while the database stays locked past busy_timeout
// (another process holding a long write), until ctx ends.
func (s *Store) retrySync(ctx context.Context, fn func() error) error {
	delay := s.opts.RetryMin
	for {
		err := fn()
		if err == nil || !transient(err) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		delay = min(delay*2, s.opts.RetryMax)
	}
}
