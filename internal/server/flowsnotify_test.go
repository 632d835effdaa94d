package server

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/store"
)

// A change another process makes to the database's flows (callflow flows
// import, publish, …) reaches a running server without a restart.
func TestDatabaseFlowChangesReachARunningServer(t *testing.T) {
	h := startHarness(t, aritest.Options{})
	ctx := context.Background()
	other, err := store.Open(ctx, h.cfg.Database, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	const number = "+914430007777"
	served := func() bool {
		f, ok := h.srv.registry.Current().ByNumber(number)
		return ok && f.Name == "Night Line"
	}
	if served() {
		t.Fatal("served before it was imported")
	}
	changed := time.Now()
	src := "name = \"Night Line\"\n[[steps]]\napplet = \"hangup\"\n"
	if _, _, err := other.ImportFlow(ctx, store.FlowImport{Name: "Night Line", Source: src, Status: store.FlowPublished,
		Numbers: []string{number}, SetNumbers: true, Author: "cli"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the imported flow to serve its number", served)
	t.Logf("imported flow served after %s", time.Since(changed).Round(time.Millisecond))

	changed = time.Now()
	if _, err := other.UnpublishFlow(ctx, "Night Line", "cli"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the unpublished flow to stop serving", func() bool { return !served() })
	t.Logf("unpublished flow gone after %s", time.Since(changed).Round(time.Millisecond))
}

// The poll reloads only when the count moved, and the web's own reload
// (after its writes) is not repeated by the next poll.
func TestDatabaseFlowsWatchReloadsOnlyOnChange(t *testing.T) {
	var count atomic.Int64 // read by the poller while the test moves it
	loads := 0
	w := &databaseFlowsWatch{
		changed:  func(context.Context) (int64, error) { return count.Load(), nil },
		load:     func() { loads++ },
		interval: time.Millisecond,
	}
	w.reload() // at start
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	polls := make(chan struct{})
	w.changed = func(context.Context) (int64, error) {
		select {
		case polls <- struct{}{}:
		case <-ctx.Done():
		}
		return count.Load(), nil
	}
	go func() {
		w.Run(ctx)
		close(done)
	}()
	poll := func() { <-polls }
	poll()
	poll() // two polls after the start: nothing changed
	w.mu.Lock()
	if loads != 1 {
		t.Errorf("%d loads without a change", loads)
	}
	count.Add(1) // another process changed a flow
	w.mu.Unlock()
	poll() // sees the change, reloads (reading the count once more)
	poll()
	poll()
	w.mu.Lock()
	if loads != 2 {
		t.Errorf("%d loads after one change, want 2", loads)
	}
	w.mu.Unlock()
	cancel()
	<-done
}
