package queues

import (
	"context"

	"github.com/callflow/callflow/store"
)

// Days is where each node keeps its figures of the day (the store): they
// outlive a restart, and nodes serving the same queues add each other's.
type Days interface {
	QueueDaysSave(ctx context.Context, days []store.QueueDay) error
	QueueDays(ctx context.Context, day string) ([]store.QueueDay, error)
}

// add sums o into d (the longest answered wait is the longer).
func (d *dayStats) add(o dayStats) {
	d.answered += o.answered
	d.abandoned += o.abandoned
	d.timedOut += o.timedOut
	d.left += o.left
	d.inLevel += o.inLevel
	d.waitSum += o.waitSum
	d.longestAnswered = max(d.longestAnswered, o.longestAnswered)
}

func statsOf(d store.QueueDay) dayStats {
	return dayStats{answered: d.Answered, abandoned: d.Abandoned, timedOut: d.TimedOut, left: d.Left, inLevel: d.InLevel,
		waitSum: d.WaitSum, longestAnswered: d.LongestAnswered}
}

// dayLocked is q's figures of the day: this node's and, as last read, the
// other nodes'.
func (s *Set) dayLocked(q *queue) dayStats {
	d := q.stats
	if s.othersDay == q.day {
		d.add(s.others[q.name])
	}
	return d
}

// syncDays writes this node's figures when they changed and reads the
// other nodes'. The first time it also takes back what this node wrote
// today before a restart; until that read succeeds nothing is written,
// so figures kept are never overwritten by a node that lost them.
func (s *Set) syncDays(ctx context.Context) {
	if s.opts.Days == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	defer cancel()
	today := s.opts.Now().Format("2006-01-02")
	rows, err := s.opts.Days.QueueDays(ctx, today)
	if err != nil {
		if ctx.Err() == nil {
			s.opts.Log.Warn().Err(err).Msg("queue: the day's figures not read for now")
		}
		return
	}
	s.mu.Lock()
	others := map[string]dayStats{}
	for _, r := range rows {
		if r.Node != s.opts.Node {
			o := others[r.Queue]
			o.add(statsOf(r))
			others[r.Queue] = o
			s.queueLocked(r.Queue) // shown here too
			continue
		}
		if !s.daysRestored {
			q := s.queueLocked(r.Queue)
			q.stats.add(statsOf(r))
			s.daysDirty = true
		}
	}
	s.others, s.othersDay, s.daysRestored = others, today, true
	save := s.dirtyDaysLocked()
	s.changedLocked()
	s.mu.Unlock()
	s.saveDays(ctx, save)
}

// dirtyDaysLocked returns this node's figures to write, if they changed.
func (s *Set) dirtyDaysLocked() []store.QueueDay {
	if !s.daysDirty || !s.daysRestored {
		return nil
	}
	s.daysDirty = false
	var out []store.QueueDay
	for _, q := range s.queues {
		d := q.stats
		if d == (dayStats{}) {
			continue // nothing this node did there today
		}
		out = append(out, store.QueueDay{Queue: q.name, Day: q.day, Node: s.opts.Node, Answered: d.answered, Abandoned: d.abandoned,
			TimedOut: d.timedOut, Left: d.left, InLevel: d.inLevel, WaitSum: d.waitSum, LongestAnswered: d.longestAnswered})
	}
	return out
}

func (s *Set) saveDays(ctx context.Context, days []store.QueueDay) {
	if len(days) == 0 {
		return
	}
	if err := s.opts.Days.QueueDaysSave(ctx, days); err != nil {
		s.mu.Lock()
		s.daysDirty = true // again next time
		s.mu.Unlock()
		if ctx.Err() == nil {
			s.opts.Log.Warn().Err(err).Msg("queue: the day's figures not written for now")
		}
	}
}

// flushDays writes the figures once more as the node stops.
func (s *Set) flushDays() {
	if s.opts.Days == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	s.mu.Lock()
	save := s.dirtyDaysLocked()
	s.mu.Unlock()
	s.saveDays(ctx, save)
}
