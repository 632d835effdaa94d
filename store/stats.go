package store

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// quarter is the bucket calls are counted in before they are put into
// days: every time zone's offset is a multiple of 15 minutes, so days
// in any Location come out exact.
const quarter = int64(15 * time.Minute)

// Stats returns per-flow figures for calls started in [From, To): calls,
// qualified, abandoned, voicemails left (not deleted), text messages sent,
// and calls per day in Location. Flows are sorted by name.
func (s *Store) Stats(ctx context.Context, f StatsFilter) ([]Stats, error) {
	loc := f.Location
	if loc == nil {
		loc = time.UTC
	}
	build := func(timeCol, wsCol, flowCol string) (*where, bool) {
		w := &where{}
		sc, args, ok := scopeClause(wsCol, f.Scope)
		if !ok {
			return nil, false
		}
		if sc != "" {
			w.add(sc, args...)
		}
		if f.Flow != "" {
			w.add(flowCol+" = ?", f.Flow)
		}
		if !f.From.IsZero() {
			w.add(timeCol+" >= ?", f.From.UnixNano())
		}
		if !f.To.IsZero() {
			w.add(timeCol+" < ?", f.To.UnixNano())
		}
		return w, true
	}
	byFlow := map[string]*Stats{}
	get := func(flow string) *Stats {
		st := byFlow[flow]
		if st == nil {
			st = &Stats{Flow: flow, PerDay: []DayCount{}}
			byFlow[flow] = st
		}
		return st
	}

	tx, err := s.r.BeginTx(ctx, nil) // one snapshot for every figure
	if err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}
	defer tx.Rollback()

	w, ok := build("started", "workspace", "flow")
	if !ok {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT flow, started / ? AS q, COUNT(*), SUM(qualified), SUM(abandoned)
FROM calls`+w.String()+` GROUP BY flow, q`, append([]any{quarter}, w.args...)...)
	if err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}
	perDay := map[string]map[string]int{}
	for rows.Next() {
		var (
			flow                   string
			q                      int64
			calls, qual, abandoned int
		)
		if err := rows.Scan(&flow, &q, &calls, &qual, &abandoned); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: stats: %w", err)
		}
		st := get(flow)
		st.Calls += calls
		st.Qualified += qual
		st.Abandoned += abandoned
		day := time.Unix(0, q*quarter).In(loc).Format(time.DateOnly)
		if perDay[flow] == nil {
			perDay[flow] = map[string]int{}
		}
		perDay[flow][day] += calls
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}

	count := func(query string, args []any, add func(*Stats, int)) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				flow string
				n    int
			)
			if err := rows.Scan(&flow, &n); err != nil {
				return err
			}
			add(get(flow), n)
		}
		return rows.Err()
	}
	w, _ = build("created", "workspace", "flow")
	w.add("deleted = 0")
	if err := count(`SELECT flow, COUNT(*) FROM voicemails`+w.String()+` GROUP BY flow`, w.args,
		func(st *Stats, n int) { st.Voicemails += n }); err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}
	w, _ = build("c.started", "c.workspace", "c.flow")
	w.add("e.kind = ?", EventSMS)
	if err := count(`SELECT c.flow, COUNT(*) FROM call_events e JOIN calls c ON c.id = e.call_id`+w.String()+` GROUP BY c.flow`, w.args,
		func(st *Stats, n int) { st.Texts += n }); err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}

	// Days without calls show as zero when the range is bounded.
	var days []string
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Sub(f.From) <= 400*24*time.Hour {
		from := f.From.In(loc)
		d := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, loc)
		for ; d.Before(f.To); d = d.AddDate(0, 0, 1) {
			days = append(days, d.Format(time.DateOnly))
		}
	}
	out := make([]Stats, 0, len(byFlow))
	for flow, st := range byFlow {
		counts := perDay[flow]
		for _, d := range days {
			if _, ok := counts[d]; !ok {
				if counts == nil {
					counts = map[string]int{}
				}
				counts[d] = 0
			}
		}
		for d, n := range counts {
			st.PerDay = append(st.PerDay, DayCount{Day: d, Calls: n})
		}
		sort.Slice(st.PerDay, func(i, j int) bool { return st.PerDay[i].Day < st.PerDay[j].Day })
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Flow < out[j].Flow })
	return out, nil
}
