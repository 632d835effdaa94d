package queues

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/store"
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

// keptRows is one node's database of kept callbacks.
type keptRows struct {
	mu   sync.Mutex
	rows map[int64]store.QueueEntry
	seq  int64
}

func (k *keptRows) QueueJoin(_ context.Context, e store.QueueEntry) (int64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.seq++
	e.ID = k.seq
	k.rows[e.ID] = e
	return e.ID, nil
}

func (k *keptRows) QueueLeave(_ context.Context, id int64) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.rows, id)
	return nil
}

func (k *keptRows) QueueKeptCallbacks(context.Context, string) ([]store.QueueEntry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []store.QueueEntry
	for _, e := range k.rows {
		out = append(out, e)
	}
	return out, nil
}

func (k *keptRows) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.rows)
}

// Without a shared list a callback is written to the database when the
// caller asks for it, leaves it when it is done, and stays there when the
// node stops before its turn (Done kept: not counted as a way out).
func TestCallbacksAreKeptInTheDatabaseUntilDone(t *testing.T) {
	db := &keptRows{rows: map[int64]store.QueueEntry{}}
	s := New(Options{Kept: db, Node: "box"})
	place := applets.CallbackPlace{Workspace: "default", Flow: "Sales", Step: "wait", Called: "+914430001234"}
	answered := s.Join("sales", applets.QueueCaller{ID: "c1", Number: "+15550001"})
	stopping := s.Join("sales", applets.QueueCaller{ID: "c2", Number: "+15550002"})
	stays := s.Join("sales", applets.QueueCaller{ID: "c3", Number: "+15550003"})
	for _, tk := range []applets.QueueTicket{answered, stopping} {
		tk.(*ticket).MarkCallback(place)
	}
	if db.count() != 2 {
		t.Fatalf("kept %d callbacks, want 2 (a caller still on the line is not kept)", db.count())
	}
	answered.Done("answered", "alice")
	stopping.Done(applets.QueueKept, "")
	stays.Done("hangup", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Run(ctx, nil) // waits for the database writes
	kept, _ := db.QueueKeptCallbacks(context.Background(), "box")
	if len(kept) != 1 || kept[0].Call != "c2" || kept[0].Place != store.CallbackPlace(place) || kept[0].Node != "box" || !kept[0].Callback {
		t.Errorf("kept after the stop: %+v", kept)
	}
	st := s.Snapshot()[0]
	if st.Answered != 1 || st.Abandoned != 1 || st.Left != 0 || len(st.Waiting) != 0 {
		t.Errorf("figures: answered %d abandoned %d left %d waiting %d", st.Answered, st.Abandoned, st.Left, len(st.Waiting))
	}
}

// daysTable is the database's figures of the day, by queue, day and node.
type daysTable struct {
	mu   sync.Mutex
	rows map[[3]string]store.QueueDay
	down bool
}

func (d *daysTable) QueueDaysSave(_ context.Context, days []store.QueueDay) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return errors.New("database away")
	}
	for _, r := range days {
		d.rows[[3]string{r.Queue, r.Day, r.Node}] = r
	}
	return nil
}

func (d *daysTable) QueueDays(_ context.Context, day string) ([]store.QueueDay, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return nil, errors.New("database away")
	}
	var out []store.QueueDay
	for _, r := range d.rows {
		if r.Day == day {
			out = append(out, r)
		}
	}
	return out, nil
}

// The figures of the day are written as they change, added up over the
// nodes, and taken back by a node after a restart; a node that could not
// read what it wrote before does not overwrite it.
func TestDayFiguresOutliveARestartAndAddUpOverNodes(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	db := &daysTable{rows: map[[3]string]store.QueueDay{}}
	node := func(name string) *Set {
		return New(Options{Days: db, Node: name, Now: c.now, ServiceLevel: 20 * time.Second})
	}
	serve := func(s *Set, id string, wait time.Duration, outcome string) {
		tk := s.Join("sales", applets.QueueCaller{ID: id})
		c.t = c.t.Add(wait)
		tk.Done(outcome, "alice")
	}
	ctx := context.Background()
	a, b := node("a"), node("b")
	serve(a, "a1", 10*time.Second, "answered")
	serve(a, "a2", 30*time.Second, "answered")
	serve(b, "b1", 5*time.Second, "hangup")
	a.syncDays(ctx)
	b.syncDays(ctx)
	a.syncDays(ctx) // now with b's
	figures := func(s *Set) string {
		st := s.Snapshot()[0]
		return fmt.Sprintf("answered %d abandoned %d average %.0fs level %.2f", st.Answered, st.Abandoned, st.AverageS, st.ServiceLevel)
	}
	const both = "answered 2 abandoned 1 average 20s level 0.50"
	if got := figures(a); got != both {
		t.Errorf("node a: %s, want %s", got, both)
	}
	if got := figures(b); got != both {
		t.Errorf("node b: %s, want %s", got, both)
	}
	if got := a.AverageWait("sales"); got != 20*time.Second {
		t.Errorf("average wait for announcements: %v", got)
	}

	// Node a restarts while the database is away: nothing is written
	// until it has read back what it wrote.
	db.mu.Lock()
	db.down = true
	db.mu.Unlock()
	a = node("a")
	a.syncDays(ctx)
	serve(a, "a3", 40*time.Second, "answered")
	a.flushDays()
	db.mu.Lock()
	db.down = false
	db.mu.Unlock()
	a.syncDays(ctx)
	const after = "answered 3 abandoned 1 average 27s level 0.33"
	if got := figures(a); got != after {
		t.Errorf("node a after the restart: %s, want %s", got, after)
	}
	b.syncDays(ctx)
	if got := figures(b); got != after {
		t.Errorf("node b after a's restart: %s, want %s", got, after)
	}

	// The next day starts at zero.
	c.t = c.t.Add(24 * time.Hour)
	a.syncDays(ctx)
	if got := figures(a); got != "answered 0 abandoned 0 average 0s level 1.00" {
		t.Errorf("the next day: %s", got)
	}
}
