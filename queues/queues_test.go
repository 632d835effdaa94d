package queues

import (
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// Callers are served by priority, then arrival; a caller leaving moves
// those behind up; the day's figures count how each left.
func TestQueueOrderAndFigures(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	s := New(Options{Now: clk.now, ServiceLevel: 20 * time.Second})
	a := s.Join("q", applets.QueueCaller{ID: "a", Number: "+1"})
	b := s.Join("q", applets.QueueCaller{ID: "b", Number: "+2"})
	vip := s.Join("q", applets.QueueCaller{ID: "vip", Number: "+3", Priority: 5})
	if a.Position() != 2 || b.Position() != 3 || vip.Position() != 1 {
		t.Fatalf("positions a=%d b=%d vip=%d", a.Position(), b.Position(), vip.Position())
	}
	clk.t = clk.t.Add(10 * time.Second)
	vip.Done("answered", "alice")
	if a.Position() != 1 || b.Position() != 2 {
		t.Errorf("after the first left: a=%d b=%d", a.Position(), b.Position())
	}
	select {
	case <-a.Changed():
	default:
		t.Error("the new head was not woken")
	}
	clk.t = clk.t.Add(30 * time.Second)
	a.Done("answered", "bob") // 40 s: outside the service level
	b.Done("hangup", "")
	b.Done("hangup", "") // once only
	st := s.Snapshot()
	if len(st) != 1 || st[0].Answered != 2 || st[0].Abandoned != 1 || st[0].ServiceLevel != 0.5 || st[0].AverageS != 25 || len(st[0].Waiting) != 0 {
		t.Errorf("figures %+v", st)
	}
	if s.AverageWait("q") != 25*time.Second {
		t.Errorf("average wait %s", s.AverageWait("q"))
	}
	// A new day starts its figures again.
	clk.t = clk.t.Add(24 * time.Hour)
	if st := s.Snapshot(); st[0].Answered != 0 {
		t.Errorf("yesterday's figures today: %+v", st)
	}
}

// Poke wakes the head of each queue (as many as agents are free, three at
// least), not every caller.
func TestPokeWakesTheHeadOnly(t *testing.T) {
	s := New(Options{})
	var ts []applets.QueueTicket
	for range 10 {
		ts = append(ts, s.Join("q", applets.QueueCaller{}))
	}
	s.Poke(1)
	woken := 0
	for i, tk := range ts {
		select {
		case <-tk.Changed():
			woken++
			if i >= headWake {
				t.Errorf("caller %d woken", i+1)
			}
		default:
		}
	}
	if woken != headWake {
		t.Errorf("%d woken, want %d", woken, headWake)
	}
	s.Poke(6)
	for i, tk := range ts[:6] {
		select {
		case <-tk.Changed():
		default:
			t.Errorf("caller %d not woken with 6 agents free", i+1)
		}
	}
}
