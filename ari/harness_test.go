package ari

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/callflow/callflow/applets/call"
	"github.com/callflow/callflow/ari/aritest"
)

// fakeHarness runs an App against aritest's fake Asterisk, over real HTTP
// and websocket: the end-to-end tests.
type fakeHarness struct {
	t    *testing.T
	srv  *aritest.Server
	app  *App
	done chan struct{}
}

// startFake starts a fake Asterisk and an App on it. At the end of the
// test the app stops first, then the fake, then goroutines must be back
// to where they were.
func startFake(t *testing.T, fo aritest.Options, h call.Handler, mod func(*Options), tune ...func(*guards)) *fakeHarness {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
	if fo.TimeScale == 0 {
		fo.TimeScale = 0.05
	}
	srv := aritest.NewServer(fo)
	t.Cleanup(srv.Close)
	opts := Options{
		URL: srv.URL(), App: "callflow", Username: "callflow", Password: "secret",
		RequestTimeout: 2 * time.Second, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond,
		DrainTimeout: 2 * time.Second, EventFilter: true,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
	}
	if mod != nil {
		mod(&opts)
	}
	app := New(opts, h)
	for _, f := range tune {
		f(&app.guards)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fh := &fakeHarness{t: t, srv: srv, app: app, done: make(chan struct{})}
	go func() {
		if err := app.Run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
		close(fh.done)
	}()
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		if err := app.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		cancel()
		select {
		case <-fh.done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return")
		}
	})
	fh.waitConnected()
	return fh
}

func (fh *fakeHarness) waitConnected() {
	fh.t.Helper()
	waitUntil(fh.t, "connected", func() bool { return fh.app.Health().Connected })
}

// call places an inbound call, retrying while the application's websocket
// is not (yet, or again) open.
func (fh *fakeHarness) call(spec aritest.CallSpec) *aritest.Caller {
	fh.t.Helper()
	end := time.Now().Add(5 * time.Second)
	for {
		c, err := fh.srv.PlaceCall(context.Background(), spec)
		if err == nil {
			return c
		}
		if !errors.Is(err, aritest.ErrNoApplication) || time.Now().After(end) {
			fh.t.Fatalf("place call: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (fh *fakeHarness) requests(pred func(aritest.Request) bool) []aritest.Request {
	var out []aritest.Request
	for _, r := range fh.srv.Requests() {
		if pred(r) {
			out = append(out, r)
		}
	}
	return out
}

// checkFakeClean: legs made with the caller as originator, never dialled
// before their StasisStart, and nothing left behind.
func checkFakeClean(t *testing.T, fh *fakeHarness, callerID string) {
	t.Helper()
	waitUntil(t, "legs and bridges gone", func() bool {
		for _, ch := range fh.srv.Channels() {
			if !ch.Inbound {
				return false
			}
		}
		return len(fh.srv.Bridges()) == 0
	})
	for _, ch := range fh.srv.History() {
		if ch.Inbound {
			continue
		}
		if ch.Originator != callerID || ch.SampleRate != 8000 {
			t.Errorf("leg %s: originator %q, rate %d", ch.ID, ch.Originator, ch.SampleRate)
		}
	}
	for _, r := range fh.srv.Requests() {
		if strings.HasSuffix(r.Path, "/dial") && r.Status != http.StatusNoContent {
			t.Errorf("%s %s?%s: %d", r.Method, r.Path, r.Query, r.Status)
		}
	}
}

func tctx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitUntil polls cond; the bound only keeps a broken test from hanging.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func waitIdle(t *testing.T, a *App) {
	t.Helper()
	waitUntil(t, "no active call", func() bool { return a.Health().ActiveCalls == 0 })
}

// result collects what a test handler saw.
type result struct {
	mu   sync.Mutex
	vals []any
	done chan struct{}
}

func newResult() *result { return &result{done: make(chan struct{}, 16)} }

func (r *result) add(v ...any) {
	r.mu.Lock()
	r.vals = append(r.vals, v...)
	r.mu.Unlock()
}

func (r *result) get() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]any(nil), r.vals...)
}

func (r *result) finish() { r.done <- struct{}{} }

// wait waits for one handler to finish; the bound only keeps a broken
// test from hanging.
func (r *result) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("handler did not finish; so far %v", r.get())
	}
}

func expect(t *testing.T, got []any, want ...any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("item %d: got %v want %v (all %v)", i, got[i], want[i], got)
		}
	}
}

// dialHandler dials spec and reports the result, then plays a prompt:
// a caller whose dial ended without a hang-up stays for the next step.
func dialHandler(res *result, spec call.DialSpec, answerFirst bool) call.Handler {
	return handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
		defer res.finish()
		if answerFirst {
			_ = c.Answer(ctx)
		}
		r, err := c.Dial(ctx, spec)
		res.add(r, err)
		if err == nil {
			_, perr := c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:after"}})
			res.add(perr)
		}
	})
}

func dialOutcome(t *testing.T, res *result) (call.DialResult, error) {
	t.Helper()
	res.wait(t)
	got := res.get()
	r, _ := got[0].(call.DialResult)
	err, _ := got[1].(error)
	return r, err
}

// handlerFunc is a call handler for tests that use the ARI call itself.
func handlerFunc(f func(ctx context.Context, c *Call, in call.Inbound)) call.Handler {
	return call.HandlerFunc(func(ctx context.Context, c call.Call, in call.Inbound) { f(ctx, c.(*Call), in) })
}
