package store

import (
	"context"
	"fmt"
	"time"
)

// QueueDay is one node's figures of one day for one queue.
type QueueDay struct {
	Queue, Day, Node                             string
	Answered, Abandoned, TimedOut, Left, InLevel int
	WaitSum                                      time.Duration // of the answered
	LongestAnswered                              time.Duration
}

// QueueDaysSave writes node's figures (each replaces what that node last
// wrote for its queue and day).
func (s *Store) QueueDaysSave(ctx context.Context, days []QueueDay) error {
	for _, d := range days {
		if _, err := s.w.ExecContext(ctx, `INSERT INTO queue_days (queue, day, node, answered, abandoned, timed_out, left_queue, in_level, wait_sum_ms, longest_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (queue, day, node) DO UPDATE SET answered = excluded.answered, abandoned = excluded.abandoned, timed_out = excluded.timed_out,
left_queue = excluded.left_queue, in_level = excluded.in_level, wait_sum_ms = excluded.wait_sum_ms, longest_ms = excluded.longest_ms`,
			d.Queue, d.Day, d.Node, d.Answered, d.Abandoned, d.TimedOut, d.Left, d.InLevel, d.WaitSum.Milliseconds(), d.LongestAnswered.Milliseconds()); err != nil {
			return fmt.Errorf("store: queue figures of %s: %w", d.Queue, err)
		}
	}
	return nil
}

// QueueDays returns every node's figures of day.
func (s *Store) QueueDays(ctx context.Context, day string) ([]QueueDay, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT queue, day, node, answered, abandoned, timed_out, left_queue, in_level, wait_sum_ms, longest_ms
FROM queue_days WHERE day = ? ORDER BY queue, node`, day)
	if err != nil {
		return nil, fmt.Errorf("store: queue figures: %w", err)
	}
	defer rows.Close()
	var out []QueueDay
	for rows.Next() {
		var d QueueDay
		var waitMS, longestMS int64
		if err := rows.Scan(&d.Queue, &d.Day, &d.Node, &d.Answered, &d.Abandoned, &d.TimedOut, &d.Left, &d.InLevel, &waitMS, &longestMS); err != nil {
			return nil, fmt.Errorf("store: queue figures: %w", err)
		}
		d.WaitSum, d.LongestAnswered = time.Duration(waitMS)*time.Millisecond, time.Duration(longestMS)*time.Millisecond
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: queue figures: %w", err)
	}
	return out, nil
}
