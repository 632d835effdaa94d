package queues

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/store"
)

// fakeShared is one database's waiting list, its notifications fanned out
// to every node's Changes.
type fakeShared struct {
	mu    sync.Mutex
	rows  map[int64]store.QueueEntry
	seq   int64
	down  bool
	nodes []chan struct{}
}

var errDown = errors.New("database away")

func (f *fakeShared) node() chan struct{} {
	ch := make(chan struct{}, 1)
	f.nodes = append(f.nodes, ch)
	return ch
}

func (f *fakeShared) notify() {
	for _, ch := range f.nodes {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (f *fakeShared) QueueJoin(_ context.Context, e store.QueueEntry) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, errDown
	}
	f.seq++
	e.ID = f.seq
	f.rows[e.ID] = e
	f.notify()
	return e.ID, nil
}

func (f *fakeShared) QueueLeave(_ context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errDown
	}
	delete(f.rows, id)
	f.notify()
	return nil
}

func (f *fakeShared) QueueMarkCallback(_ context.Context, id int64, p store.CallbackPlace) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.rows[id]
	e.Callback, e.Place = true, p
	f.rows[id] = e
	return nil
}

func (f *fakeShared) QueueAdoptCallbacks(context.Context, string, time.Time) ([]store.QueueEntry, error) {
	return nil, nil
}

func (f *fakeShared) QueueRelease(_ context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.rows[id]
	e.Node = "" // let go: any node's to adopt
	f.rows[id] = e
	return nil
}

func (f *fakeShared) QueueRenew(context.Context, []int64, time.Time) error { return nil }

func (f *fakeShared) QueueList(context.Context, time.Time) ([]store.QueueEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errDown
	}
	out := make([]store.QueueEntry, 0, len(f.rows))
	for _, e := range f.rows {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Priority != out[j].Priority {
			return out[i].Priority > out[j].Priority
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (f *fakeShared) QueuesChanged(context.Context) {
	f.mu.Lock()
	f.notify()
	f.mu.Unlock()
}

// Two nodes, one list: positions count both nodes' callers in order of
// arrival; a caller leaving on one node wakes the head on the other; an
// agent freed on one node is news for the other; with the database away
// each node goes on with its own callers.
func TestSharedListOrdersCallersOfEveryNode(t *testing.T) {
	defer goleak.VerifyNone(t)
	db := &fakeShared{rows: map[int64]store.QueueEntry{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	node := func(name string) *Set {
		s := New(Options{Shared: db, Node: name, Log: zerolog.Nop()})
		changes := db.node()
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(ctx, changes) }()
		return s
	}
	a, b := node("a"), node("b")
	defer func() { cancel(); wg.Wait() }()

	a1 := a.Join("q", applets.QueueCaller{ID: "a1"})
	b1 := b.Join("q", applets.QueueCaller{ID: "b1"})
	a2 := a.Join("q", applets.QueueCaller{ID: "a2"})
	if a1.Position() != 1 || b1.Position() != 2 || a2.Position() != 3 {
		t.Fatalf("positions a1=%d b1=%d a2=%d", a1.Position(), b1.Position(), a2.Position())
	}
	if a.Waiting("q") != 3 || b.Waiting("q") != 3 {
		t.Errorf("waiting: %d on a, %d on b", a.Waiting("q"), b.Waiting("q"))
	}
	if snap := b.Snapshot(); len(snap) != 1 || len(snap[0].Waiting) != 3 || snap[0].Waiting[0].Node != "a" || snap[0].Waiting[1].Call != "b1" {
		t.Errorf("node b's view: %+v", snap)
	}
	drain(b1.Changed())
	a1.Done("answered", "alice")
	select {
	case <-b1.Changed():
	case <-time.After(10 * time.Second):
		t.Fatal("the caller now first, on the other node, was not woken")
	}
	waitFor(t, func() bool { return b1.Position() == 1 && a2.Position() == 2 })

	drain(b1.Changed())
	a.Poke(1) // an agent of node a's came free
	select {
	case <-b1.Changed():
	case <-time.After(10 * time.Second):
		t.Fatal("an agent freed on node a is not news on node b")
	}

	db.mu.Lock()
	db.down = true
	db.mu.Unlock()
	a.stale()
	a3 := a.Join("q", applets.QueueCaller{ID: "a3"})
	if p := a3.Position(); p != 2 {
		t.Errorf("with the database away, a3 is %d on node a's own list (a2, a3)", p)
	}
	a2.Done("hangup", "")
	a3.Done("hangup", "")
	a.bg.Wait() // a2's leave tried while the database is away
	db.mu.Lock()
	db.down = false
	db.mu.Unlock()
	b1.Done("answered", "bob")
	// a2's row stays, not renewed, until it lapses (the store sweeps it).
	waitFor(t, func() bool { b.stale(); return b.Waiting("q") == 1 })
}

func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("not reached")
		}
	}
}
