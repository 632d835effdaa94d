package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// QueuesChannel is the PostgreSQL notification channel on which a change
// to a shared waiting list (a caller joining or leaving, an agent coming
// free) is announced to every node.
const QueuesChannel = "callflow_queues"

// QueueEntry is one caller in a shared waiting list.
type QueueEntry struct {
	ID       int64 // the place in line: lower came first
	Queue    string
	Call     string
	Node     string
	Number   string
	Priority int
	Callback bool
	Joined   time.Time
	// A callback's request: where it was made and the number called.
	Place CallbackPlace
}

// CallbackPlace is where a caller asked for a callback: the queue step of
// a flow, and the number they had called (shown when called back).
type CallbackPlace struct {
	Workspace, Flow, Step, Called string
}

// QueueJoin puts e in its queue's shared list and returns its id.
func (s *Store) QueueJoin(ctx context.Context, e QueueEntry) (int64, error) {
	var id int64
	now := s.now().UnixNano()
	err := s.w.QueryRowContext(ctx, `INSERT INTO queue_waiting (queue, call_id, node, number, priority, callback, joined, seen, workspace, flow, step, called)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, e.Queue, e.Call, e.Node, e.Number, e.Priority, b2i(e.Callback), e.Joined.UnixNano(), now,
		e.Place.Workspace, e.Place.Flow, e.Place.Step, e.Place.Called).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store: queue join: %w", err)
	}
	s.queuesChanged(ctx)
	return id, nil
}

// QueueLeave takes entry id out of its list.
func (s *Store) QueueLeave(ctx context.Context, id int64) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM queue_waiting WHERE id = ?`, id); err != nil {
		return fmt.Errorf("store: queue leave: %w", err)
	}
	s.queuesChanged(ctx)
	return nil
}

// QueueMarkCallback marks an entry as a callback's (the caller hung up
// keeping their place), with where it was asked for.
func (s *Store) QueueMarkCallback(ctx context.Context, id int64, p CallbackPlace) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE queue_waiting SET callback = 1, workspace = ?, flow = ?, step = ?, called = ? WHERE id = ?`,
		p.Workspace, p.Flow, p.Step, p.Called, id); err != nil {
		return fmt.Errorf("store: queue mark: %w", err)
	}
	return nil
}

// QueueRelease gives up this node's hold on callback id while keeping
// its place (the node is stopping): any node's next QueueAdoptCallbacks
// takes it, this one's too once it is back.
func (s *Store) QueueRelease(ctx context.Context, id int64) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE queue_waiting SET seen = 0 WHERE id = ? AND callback = 1`, id); err != nil {
		return fmt.Errorf("store: queue release: %w", err)
	}
	s.queuesChanged(ctx)
	return nil
}

// QueueKeptCallbacks returns the callbacks node keeps in the database
// (one node's queues: SQLite), oldest first, to call back after a
// restart.
func (s *Store) QueueKeptCallbacks(ctx context.Context, node string) ([]QueueEntry, error) {
	rows, err := s.w.QueryContext(ctx, `SELECT id, queue, call_id, node, number, priority, joined, workspace, flow, step, called
FROM queue_waiting WHERE callback = 1 AND node = ? ORDER BY id`, node)
	if err != nil {
		return nil, fmt.Errorf("store: kept callbacks: %w", err)
	}
	return scanCallbacks(rows, "kept callbacks")
}

// QueueAdoptCallbacks takes for node the callbacks whose node stopped
// renewing them before staleBefore (it died): they keep their place, now
// node's, and are returned for node to call back.
func (s *Store) QueueAdoptCallbacks(ctx context.Context, node string, staleBefore time.Time) ([]QueueEntry, error) {
	rows, err := s.w.QueryContext(ctx, `UPDATE queue_waiting SET node = ?, seen = ? WHERE callback = 1 AND seen < ?
RETURNING id, queue, call_id, node, number, priority, joined, workspace, flow, step, called`, node, s.now().UnixNano(), staleBefore.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: adopt callbacks: %w", err)
	}
	return scanCallbacks(rows, "adopt callbacks")
}

func scanCallbacks(rows *sql.Rows, what string) ([]QueueEntry, error) {
	defer rows.Close()
	var out []QueueEntry
	for rows.Next() {
		e := QueueEntry{Callback: true}
		var joined int64
		if err := rows.Scan(&e.ID, &e.Queue, &e.Call, &e.Node, &e.Number, &e.Priority, &joined,
			&e.Place.Workspace, &e.Place.Flow, &e.Place.Step, &e.Place.Called); err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		e.Joined = time.Unix(0, joined)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// QueueRenew says the entries ids are still waiting, and sweeps the rows
// no node renewed since staleBefore (their node died).
func (s *Store) QueueRenew(ctx context.Context, ids []int64, staleBefore time.Time) error {
	now := s.now().UnixNano()
	for from := 0; from < len(ids); from += 500 {
		chunk := ids[from:min(from+500, len(ids))]
		args := make([]any, 0, len(chunk)+1)
		args = append(args, now)
		for _, id := range chunk {
			args = append(args, id)
		}
		q := `UPDATE queue_waiting SET seen = ? WHERE id IN (?` + strings.Repeat(", ?", len(chunk)-1) + `)`
		if _, err := s.w.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("store: queue renew: %w", err)
		}
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM queue_waiting WHERE seen < ?`, staleBefore.UnixNano())
	if err != nil {
		return fmt.Errorf("store: queue sweep: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		s.log.Warn().Int64("callers", n).Msg("store: queue places of a node gone away dropped")
		s.queuesChanged(ctx)
	}
	return nil
}

// QueueList returns the entries of every queue renewed since staleBefore,
// each queue's in order (priority, then arrival).
func (s *Store) QueueList(ctx context.Context, staleBefore time.Time) ([]QueueEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, queue, call_id, node, number, priority, callback, joined FROM queue_waiting
WHERE seen >= ? ORDER BY queue, priority DESC, id`, staleBefore.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: queue list: %w", err)
	}
	defer rows.Close()
	var out []QueueEntry
	for rows.Next() {
		var e QueueEntry
		var cb int
		var joined int64
		if err := rows.Scan(&e.ID, &e.Queue, &e.Call, &e.Node, &e.Number, &e.Priority, &cb, &joined); err != nil {
			return nil, fmt.Errorf("store: queue list: %w", err)
		}
		e.Callback, e.Joined = cb != 0, time.Unix(0, joined)
		out = append(out, e)
	}
	return out, rows.Err()
}

// PresenceChannel is the notification channel on which an agent's chosen
// presence (available, paused, logged out) changing is announced.
const PresenceChannel = "callflow_presence"

// QueuesChanged tells every node that a waiting list or an agent changed
// (PostgreSQL; nothing on SQLite, whose queues are one node's).
func (s *Store) QueuesChanged(ctx context.Context) { s.queuesChanged(ctx) }

func (s *Store) queuesChanged(ctx context.Context) { s.announce(ctx, QueuesChannel) }

// announce notifies channel (PostgreSQL only); a notification lost is the
// listeners' poll or next change to make up for.
func (s *Store) announce(ctx context.Context, channel string) {
	if !s.pg {
		return
	}
	if _, err := s.w.ExecContext(ctx, `SELECT pg_notify('`+channel+`', '')`); err != nil && ctx.Err() == nil {
		s.log.Debug().Err(err).Str("channel", channel).Msg("store: change not announced")
	}
}

// PresenceChanges is a value each time an agent's chosen presence may have
// changed on another node; closed when ctx ends. On SQLite nil.
func (s *Store) PresenceChanges(ctx context.Context) <-chan struct{} {
	return s.changes(ctx, PresenceChannel, "presence changes")
}

// QueueChanges is a value each time another node may have changed a
// waiting list or freed an agent; closed when ctx ends. On SQLite nil.
func (s *Store) QueueChanges(ctx context.Context) <-chan struct{} {
	return s.changes(ctx, QueuesChannel, "queue changes")
}
