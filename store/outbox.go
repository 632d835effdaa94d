package store

import (
	"context"
	"fmt"
	"time"
)

// Kinds of delivery in the outbox: each sender claims its own.
const (
	OutboxWebhook = "webhook"
	OutboxEmail   = "email"
)

// OutboxItem is a delivery waiting for its next attempt.
type OutboxItem struct {
	ID       int64
	Kind     string // OutboxWebhook ("" too) or OutboxEmail
	Target   string // the URL; for an email, its recipients
	Event    string
	Body     []byte
	Attempts int       // made so far
	Due      time.Time // the next attempt, not before
	Error    string    // the last attempt's
}

// OutboxAdd keeps a delivery for a later attempt.
func (s *Store) OutboxAdd(ctx context.Context, it OutboxItem) (int64, error) {
	var id int64
	kind := it.Kind
	if kind == "" {
		kind = OutboxWebhook
	}
	err := s.w.QueryRowContext(ctx, `INSERT INTO outbox (kind, target, event, body, attempts, due, last_error, created)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		kind, it.Target, it.Event, string(it.Body), it.Attempts, it.Due.UnixNano(), it.Error, s.now().UnixNano()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store: outbox add: %w", err)
	}
	return id, nil
}

// OutboxClaim leases up to max deliveries of kind that are due to node
// until now+lease, oldest first. A delivery is claimed by one node at a time
// (PostgreSQL: rows another node is claiming are skipped, not waited
// for); one whose node died is claimed again once its lease is over.
func (s *Store) OutboxClaim(ctx context.Context, kind, node string, now time.Time, lease time.Duration, max int) ([]OutboxItem, error) {
	lock := ""
	if s.pg {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	rows, err := s.w.QueryContext(ctx, `UPDATE outbox SET lease = ?, node = ?
WHERE id IN (SELECT id FROM outbox WHERE kind = ? AND due <= ? AND lease <= ? ORDER BY due LIMIT ?`+lock+`)
RETURNING id, kind, target, event, body, attempts, due, last_error`,
		now.Add(lease).UnixNano(), node, kind, now.UnixNano(), now.UnixNano(), max)
	if err != nil {
		return nil, fmt.Errorf("store: outbox claim: %w", err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		var it OutboxItem
		var body string
		var due int64
		if err := rows.Scan(&it.ID, &it.Kind, &it.Target, &it.Event, &body, &it.Attempts, &due, &it.Error); err != nil {
			return nil, fmt.Errorf("store: outbox claim: %w", err)
		}
		it.Body, it.Due = []byte(body), time.Unix(0, due).UTC()
		out = append(out, it)
	}
	return out, rows.Err()
}

// OutboxDone removes a delivery made or given up.
func (s *Store) OutboxDone(ctx context.Context, id int64) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, id); err != nil {
		return fmt.Errorf("store: outbox done: %w", err)
	}
	return nil
}

// OutboxRetry puts a delivery back for its next attempt at due.
func (s *Store) OutboxRetry(ctx context.Context, id int64, attempts int, due time.Time, lastErr string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE outbox SET attempts = ?, due = ?, lease = 0, last_error = ? WHERE id = ?`,
		attempts, due.UnixNano(), lastErr, id); err != nil {
		return fmt.Errorf("store: outbox retry: %w", err)
	}
	return nil
}

// OutboxLen counts the deliveries waiting.
func (s *Store) OutboxLen(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: outbox: %w", err)
	}
	return n, nil
}
