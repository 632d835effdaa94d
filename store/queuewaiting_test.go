package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// Two nodes share one waiting list: callers are in order of priority,
// then of arrival whichever node took them; a node's callers it stops
// renewing (it died) drop out; on PostgreSQL every change is announced.
func TestQueueWaitingListIsSharedInArrivalOrder(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	a := openAt(t, path, testOptions())
	b := openAnother(t, path, testOptions())
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes := b.QueueChanges(cctx)
	if onPostgres() {
		// LISTEN is in place once a first change comes through.
		deadline := time.Now().Add(10 * time.Second)
		for done := false; !done; {
			a.QueuesChanged(ctx)
			select {
			case <-changes:
				done = true
			case <-time.After(50 * time.Millisecond):
				if time.Now().After(deadline) {
					t.Fatal("no notification")
				}
			}
		}
	}
	join := func(s *Store, node, call string, prio int) int64 {
		t.Helper()
		id, err := s.QueueJoin(ctx, QueueEntry{Queue: "support", Call: call, Node: node, Number: "+1555" + call, Priority: prio, Joined: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	first := join(a, "node-a", "c1", 0)
	if onPostgres() {
		select {
		case <-changes:
		case <-time.After(10 * time.Second):
			t.Error("a join on node-a not announced to node-b")
		}
	}
	second := join(b, "node-b", "c2", 0)
	join(a, "node-a", "c3", 0)
	join(b, "node-b", "vip", 5)
	join(a, "node-a", "other", 0)
	_, _ = b.QueueJoin(ctx, QueueEntry{Queue: "sales", Call: "s1", Node: "node-b", Joined: time.Now()})
	order := func(s *Store) string {
		t.Helper()
		list, err := s.QueueList(ctx, time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, e := range list {
			if e.Queue == "support" {
				out += fmt.Sprintf("%s@%s ", e.Call, e.Node)
			}
		}
		return out
	}
	if got := order(b); got != "vip@node-b c1@node-a c2@node-b c3@node-a other@node-a " {
		t.Errorf("order: %s", got)
	}
	if err := a.QueueLeave(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := b.QueueMarkCallback(ctx, second, CallbackPlace{Workspace: "acme", Flow: "Support", Step: "wait", Called: "+15550001000"}); err != nil {
		t.Fatal(err)
	}
	if got := order(a); got != "vip@node-b c2@node-b c3@node-a other@node-a " {
		t.Errorf("after c1 left: %s", got)
	}
	list, _ := a.QueueList(ctx, time.Now().Add(-time.Minute))
	for _, e := range list {
		if e.Call == "c2" && !e.Callback {
			t.Error("c2 not marked for a callback")
		}
	}
	// node-a renews its callers; node-b's, not renewed, are swept.
	time.Sleep(20 * time.Millisecond)
	cut := time.Now()
	var mine []int64
	for _, e := range list {
		if e.Node == "node-a" {
			mine = append(mine, e.ID)
		}
	}
	// node-b stopped renewing: c2's callback is adopted by node-a, the
	// rest of node-b's places are swept.
	adopted, err := a.QueueAdoptCallbacks(ctx, "node-a", cut)
	if err != nil || len(adopted) != 1 || adopted[0].Call != "c2" || adopted[0].Node != "node-a" ||
		adopted[0].Place != (CallbackPlace{Workspace: "acme", Flow: "Support", Step: "wait", Called: "+15550001000"}) {
		t.Fatalf("adopted: %+v, %v", adopted, err)
	}
	if err := a.QueueRenew(ctx, mine, cut); err != nil {
		t.Fatal(err)
	}
	if got := order(a); got != "c2@node-a c3@node-a other@node-a " {
		t.Errorf("after node-b stopped renewing: %s", got)
	}
}

// A callback a stopping node lets go keeps its place and its request, and
// the next node to look adopts it at once; a node's kept callbacks are its
// own, oldest first, until one leaves.
func TestACallbackLetGoIsAdoptedAtOnceAndKeptOnesAreTheNodes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kept.db")
	a := openAt(t, path, testOptions())
	b := openAnother(t, path, testOptions())
	place := CallbackPlace{Workspace: "default", Flow: "Sales", Step: "wait", Called: "+914430001234"}
	joined := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	keep := func(node, call string) int64 {
		t.Helper()
		id, err := a.QueueJoin(ctx, QueueEntry{Queue: "sales", Call: call, Node: node, Number: "+1555" + call, Callback: true, Joined: joined, Place: place})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	first, _, other := keep("node-a", "c1"), keep("node-a", "c2"), keep("node-b", "c3")
	stale := time.Now().Add(-30 * time.Second)
	if got, err := b.QueueAdoptCallbacks(ctx, "node-b", stale); err != nil || len(got) != 0 {
		t.Fatalf("adopted while renewed: %v, %v", got, err)
	}
	kept, err := a.QueueKeptCallbacks(ctx, "node-a")
	if err != nil || len(kept) != 2 || kept[0].ID != first || kept[0].Place != place || !kept[0].Joined.Equal(joined) || kept[1].Call != "c2" {
		t.Fatalf("node-a's kept callbacks: %+v, %v", kept, err)
	}
	if err := a.QueueRelease(ctx, first); err != nil {
		t.Fatal(err)
	}
	got, err := b.QueueAdoptCallbacks(ctx, "node-b", stale)
	if err != nil || len(got) != 1 || got[0].ID != first || got[0].Call != "c1" || got[0].Place != place || got[0].Number != "+1555c1" {
		t.Fatalf("adopted after the release: %+v, %v", got, err)
	}
	if err := a.QueueLeave(ctx, other); err != nil {
		t.Fatal(err)
	}
	kept, err = b.QueueKeptCallbacks(ctx, "node-b")
	if err != nil || len(kept) != 1 || kept[0].ID != first {
		t.Errorf("node-b's kept callbacks after adopting c1 and c3 leaving: %+v, %v", kept, err)
	}
}
