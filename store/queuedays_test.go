package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// Each node's figures of the day are one row per queue, replaced as they
// change, and read back by day.
func TestQueueDaysKeepEachNodesFiguresOfTheDay(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "days.db"), testOptions())
	a := QueueDay{Queue: "sales", Day: "2026-12-04", Node: "a", Answered: 2, Abandoned: 1, InLevel: 1, WaitSum: 40 * time.Second, LongestAnswered: 30 * time.Second}
	b := QueueDay{Queue: "sales", Day: "2026-12-04", Node: "b", TimedOut: 1, Left: 2}
	old := QueueDay{Queue: "sales", Day: "2026-12-03", Node: "a", Answered: 9}
	if err := s.QueueDaysSave(ctx, []QueueDay{a, b, old}); err != nil {
		t.Fatal(err)
	}
	a.Answered, a.WaitSum = 3, 75*time.Second
	if err := s.QueueDaysSave(ctx, []QueueDay{a}); err != nil {
		t.Fatal(err)
	}
	got, err := s.QueueDays(ctx, "2026-12-04")
	if err != nil || len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("the day's figures: %+v, %v; want %+v and %+v", got, err, a, b)
	}
}
