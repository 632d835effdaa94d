package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// QueueStats are one queue's figures for a date range, from the queue
// steps of the calls in it.
type QueueStats struct {
	Queue     string  `json:"queue"`
	Callers   int     `json:"callers"`
	Answered  int     `json:"answered"`
	Abandoned int     `json:"abandoned"` // hung up while waiting
	TimedOut  int     `json:"timed_out"`
	Left      int     `json:"left"` // an exit key, full, no agents
	AvgWaitS  float64 `json:"average_wait_s"`
	MaxWaitS  float64 `json:"longest_wait_s"`
	// InLevel: answered within ServiceLevel of joining.
	InLevel      int     `json:"answered_within_service_level"`
	ServiceLevel float64 `json:"service_level_s"`
}

// QueueStats sums the queue steps of the calls that f selects, queue by
// queue; serviceLevel is the wait within which an answer counts as in time.
func (s *Store) QueueStats(ctx context.Context, f StatsFilter, serviceLevel time.Duration) ([]QueueStats, error) {
	w := &where{}
	sc, args, ok := scopeClause("c.workspace", f.Scope)
	if !ok {
		return []QueueStats{}, nil
	}
	if sc != "" {
		w.add(sc, args...)
	}
	w.add("st.applet = ?", "queue")
	if f.Flow != "" {
		w.add("c.flow = ?", f.Flow)
	}
	if !f.From.IsZero() {
		w.add("c.started >= ?", f.From.UnixNano())
	}
	if !f.To.IsZero() {
		w.add("c.started < ?", f.To.UnixNano())
	}
	rows, err := s.r.QueryContext(ctx, `SELECT st.outcome, st.details FROM call_steps st JOIN calls c ON c.id = st.call_id`+w.String(), w.args...)
	if err != nil {
		return nil, fmt.Errorf("store: queue stats: %w", err)
	}
	defer rows.Close()
	by := map[string]*QueueStats{}
	waits := map[string]float64{}
	for rows.Next() {
		var outcome, details string
		if err := rows.Scan(&outcome, &details); err != nil {
			return nil, fmt.Errorf("store: queue stats: %w", err)
		}
		var d struct {
			Queue  string   `json:"queue"`
			Waited *float64 `json:"waited_s"`
		}
		if json.Unmarshal([]byte(details), &d) != nil || d.Queue == "" {
			continue
		}
		q := by[d.Queue]
		if q == nil {
			q = &QueueStats{Queue: d.Queue, ServiceLevel: serviceLevel.Seconds()}
			by[d.Queue] = q
		}
		q.Callers++
		wait := 0.0
		if d.Waited != nil {
			wait = *d.Waited
		}
		q.MaxWaitS = max(q.MaxWaitS, wait)
		switch outcome {
		case "answered":
			q.Answered++
			waits[d.Queue] += wait
			if wait <= serviceLevel.Seconds() {
				q.InLevel++
			}
		case "hangup":
			q.Abandoned++
		case "timeout":
			q.TimedOut++
		default:
			q.Left++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: queue stats: %w", err)
	}
	out := make([]QueueStats, 0, len(by))
	for name, q := range by {
		if q.Answered > 0 {
			q.AvgWaitS = waits[name] / float64(q.Answered)
		}
		out = append(out, *q)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Queue < out[j].Queue })
	return out, nil
}
