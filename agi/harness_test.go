package agi

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/agi/agitest"
	"github.com/callflow/callflow/applets/call"
)

// startServer serves h on a fresh 127.0.0.1 port and stops it when the
// test ends.
func startServer(t testing.TB, h call.Handler, opts Options) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Handler = h
	if opts.CommandTimeout == 0 {
		opts.CommandTimeout = 5 * time.Second
	}
	srv := NewServer(opts)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return srv, ln.Addr().String()
}

// outcome is what a scripted call's handler saw.
type outcome struct {
	req    Request
	value  any
	err    error
	ctxErr error // context.Cause of the handler's ctx when fn returned
}

// runCall runs fn as the handler of one call scripted by script and
// returns what it saw, once the server has closed the session.
func runCall(t *testing.T, opts Options, script agitest.Script, fn func(ctx context.Context, c *Call) (any, error)) (outcome, *agitest.Session) {
	t.Helper()
	_, addr, got := serveCalls(t, opts, fn)
	return callAt(t, addr, script, got)
}

// serveCalls serves fn for every session; each call's outcome is sent on
// the channel returned.
func serveCalls(t *testing.T, opts Options, fn func(ctx context.Context, c *Call) (any, error)) (*Server, string, <-chan outcome) {
	t.Helper()
	got := make(chan outcome, 1)
	srv, addr := startServer(t, handlerFunc(func(ctx context.Context, c *Call, req Request) {
		v, err := fn(ctx, c)
		var cause error
		if ctx.Err() != nil {
			cause = context.Cause(ctx)
		}
		got <- outcome{req: req, value: v, err: err, ctxErr: cause}
	}), opts)
	return srv, addr, got
}

// callAt plays one scripted call against the server at addr and returns
// its outcome once the server has closed the session.
func callAt(t *testing.T, addr string, script agitest.Script, got <-chan outcome) (outcome, *agitest.Session) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := agitest.Dial(ctx, addr, script)
	if err != nil {
		t.Fatal(err)
	}
	var o outcome
	select {
	case o = <-got:
	case <-ctx.Done():
		t.Fatalf("handler did not finish; commands: %q", sess.Commands())
	}
	if err := sess.Wait(ctx); err != nil {
		t.Fatalf("session did not end: %v", err)
	}
	return o, sess
}

// waitGoroutines fails the test if more goroutines than before linger.
func waitGoroutines(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines left behind (before %d):\n%s", n-before, before, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond until it holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func joinLines(l []string) string { return strings.Join(l, "\n") }

// handlerFunc is a call handler for tests that use the AGI call and its
// request.
func handlerFunc(f func(ctx context.Context, c *Call, req Request)) call.Handler {
	return call.HandlerFunc(func(ctx context.Context, cc call.Call, _ call.Inbound) {
		c := cc.(*Call)
		f(ctx, c, c.Request())
	})
}
