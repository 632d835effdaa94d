package server

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
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

// feed is a change feed the test writes to, as a database's
// notifications would.
type feed chan struct{}

func (f feed) FlowChanges(context.Context) <-chan struct{} { return f }

// A notification reloads at once, without waiting for the poll; when the
// feed ends, the poll carries on alone.
func TestDatabaseFlowsWatchReloadsOnANotification(t *testing.T) {
	var count atomic.Int64
	loads := make(chan struct{}, 10)
	f := make(feed)
	w := &databaseFlowsWatch{
		changed:  func(context.Context) (int64, error) { return count.Load(), nil },
		load:     func() { loads <- struct{}{} },
		interval: time.Hour, // never, unless the feed ends (then below)
		feed:     f,
	}
	w.reload()
	<-loads
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		w.Run(ctx)
		close(done)
	}()
	count.Add(1)
	f <- struct{}{}
	<-loads         // reloaded on the notification, an hour before the poll
	f <- struct{}{} // nothing changed since: no reload
	count.Add(1)
	f <- struct{}{}
	<-loads
	select {
	case <-loads:
		t.Error("a notification without a change reloaded")
	default:
	}
	close(f) // the feed broke: Run goes on (and polls)
	cancel()
	<-done
}

// Two servers on one database file: a flow published through one node's
// web API serves calls on the other within the poll's half second.
func TestFlowPublishedOnOneNodeServesOnTheOther(t *testing.T) {
	ast := aritest.NewServer(aritest.Options{})
	defer ast.Close()
	db := filepath.Join(t.TempDir(), "shared.db")
	a := startNode(t, ast, Deps{}, func(c *config.Config) { c.Node.Name, c.ARI.App, c.Database = "pbx1", "callflow-1", db })
	b := startNode(t, ast, Deps{}, func(c *config.Config) { c.Node.Name, c.ARI.App, c.Database = "pbx2", "callflow-2", db })
	ctx := context.Background()
	st := a.srv.Store()
	if _, err := st.CreateUser(ctx, store.NewUser{Name: "ops", Password: "correct horse battery", Role: store.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := st.CreateToken(ctx, "ops", "deploy")
	if err != nil {
		t.Fatal(err)
	}
	const number = "+914430007777"
	src := "name = \"Night Line\"\n[[steps]]\napplet = \"hangup\"\n"
	if _, _, err := st.ImportFlow(ctx, store.FlowImport{Name: "Night Line", Source: src, Status: store.FlowDraft,
		Numbers: []string{number}, SetNumbers: true, Author: "cli"}); err != nil {
		t.Fatal(err)
	}
	serves := func(n *node) func() bool {
		return func() bool {
			f, ok := n.srv.registry.Current().ByNumber(number)
			return ok && f.Name == "Night Line"
		}
	}
	post := func(n *node, path string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+n.cfg.HTTP.Listen+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, body)
		}
	}
	var lags []time.Duration
	for range 5 {
		at := time.Now()
		post(a, "/api/flows/Night%20Line/publish")
		if !serves(a)() {
			t.Fatal("not serving on the node that published it")
		}
		waitUntil(t, "the flow serving on the other node", serves(b))
		lags = append(lags, time.Since(at))
		post(a, "/api/flows/Night%20Line/unpublish")
		waitUntil(t, "the flow gone on the other node", func() bool { return !serves(b)() })
	}
	slices.Sort(lags)
	t.Logf("published on one node, serving on the other after %v (sorted, poll every %s)", lags, flowsPoll)
}
