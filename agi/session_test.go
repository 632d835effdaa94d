package agi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callflow/callflow/agi/agitest"
	"github.com/callflow/callflow/applets/call"
)

func TestParseRequest(t *testing.T) {
	base := func(kv ...string) map[string]string {
		env := map[string]string{
			"agi_network": "yes", "agi_request": "agi://127.0.0.1:4573/", "agi_channel": "PJSIP/trunk-00000001",
			"agi_uniqueid": "1795237640.96", "agi_callerid": "5550007000", "agi_calleridname": "unknown",
			"agi_dnid": "unknown", "agi_extension": "7000", "agi_context": "from-pstn", "agi_language": "en",
		}
		for i := 0; i < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	tests := []struct {
		name           string
		env            map[string]string
		flow, number   string
		args           []string
		wantErr        bool
		callerIDName   string
		callerIDNumber string
	}{
		{name: "number from extension", env: base(), number: "7000", callerIDNumber: "5550007000"},
		{name: "number from dnid", env: base("agi_dnid", "+914430001234"), number: "+914430001234", callerIDNumber: "5550007000"},
		{name: "flow by name", env: base("agi_request", "agi://127.0.0.1:4573/flow/support"), flow: "support", number: "7000", callerIDNumber: "5550007000"},
		{name: "flow name escaped", env: base("agi_request", "agi://host/flow/Acme%20Support%2Fsales?x=1"), flow: "Acme Support/sales", number: "7000", callerIDNumber: "5550007000"},
		{name: "arguments", env: base("agi_arg_1", "a b", "agi_arg_2", "", "agi_arg_4", "skipped"), number: "7000", args: []string{"a b", ""}, callerIDNumber: "5550007000"},
		{name: "unknown caller", env: base("agi_callerid", "unknown", "agi_calleridname", "Bob"), number: "7000", callerIDName: "Bob"},
		{name: "script without request", env: base("agi_request", "", "agi_network_script", "flow/sales"), flow: "sales", number: "7000", callerIDNumber: "5550007000"},
		{name: "unknown route", env: base("agi_request", "agi://127.0.0.1:4573/test"), wantErr: true},
		{name: "empty flow name", env: base("agi_request", "agi://127.0.0.1:4573/flow/"), wantErr: true},
		{name: "no number", env: base("agi_extension", ""), wantErr: true},
		{name: "bad escape", env: base("agi_request", "agi://h/flow/%zz"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRequest(tt.env)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if r.FlowName != tt.flow || r.Number != tt.number || !reflect.DeepEqual(r.Args, tt.args) ||
				r.CallerIDName != tt.callerIDName || r.CallerID != tt.callerIDNumber {
				t.Errorf("got flow %q number %q args %q caller %q %q", r.FlowName, r.Number, r.Args, r.CallerID, r.CallerIDName)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	tests := []struct {
		name         string
		script       agitest.Script
		flow, number string
	}{
		{"by extension", agitest.Script{Request: "agi://127.0.0.1:4573/"}, "", "7000"},
		{"by dnid", agitest.Script{Request: "agi://127.0.0.1:4573/", Env: map[string]string{"agi_dnid": "+914430001234"}}, "", "+914430001234"},
		{"by flow name", agitest.Script{Request: "agi://127.0.0.1:4573/flow/support"}, "support", "7000"},
		{"by escaped flow name", agitest.Script{Request: "agi://127.0.0.1:4573/flow/Acme%20Support", Args: []string{"x"}}, "Acme Support", "7000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _ := runCall(t, Options{}, tt.script, func(ctx context.Context, c *Call) (any, error) {
				return [3]string{c.ID(), c.Caller(), c.Called()}, nil
			})
			if o.req.FlowName != tt.flow || o.req.Number != tt.number {
				t.Errorf("flow %q number %q", o.req.FlowName, o.req.Number)
			}
			if o.value != [3]string{"1795237640.96", "5550007000", tt.number} {
				t.Errorf("call identity %v", o.value)
			}
			if o.req.Channel != "Local/7000@from-pstn-0000002f;2" || o.req.Version != "20.20.1" || o.req.Env["agi_network"] != "yes" {
				t.Errorf("environment %+v", o.req)
			}
			if tt.script.Args != nil && !reflect.DeepEqual(o.req.Args, tt.script.Args) {
				t.Errorf("args %q", o.req.Args)
			}
		})
	}
}

func TestUnknownRouteIsRefused(t *testing.T) {
	called := make(chan struct{}, 1)
	_, addr := startServer(t, handlerFunc(func(context.Context, *Call, Request) { called <- struct{}{} }), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sess, err := agitest.Dial(ctx, addr, agitest.Script{Request: "agi://127.0.0.1:4573/test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-called:
		t.Fatal("handler ran for an unknown route")
	default:
	}
}

// smallCall is a call touching every kind of command.
func smallCall(ctx context.Context, c *Call) (any, error) {
	if err := c.Answer(ctx); err != nil {
		return "answer", err
	}
	if _, err := c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:welcome"}}); err != nil {
		return "play", err
	}
	if _, err := c.Gather(ctx, call.GatherSpec{Prompt: []call.Media{"sound:menu"}, MaxDigits: 2, Terminator: "#"}); err != nil {
		return "gather", err
	}
	if err := c.SetVar(ctx, "CHOICE", "1"); err != nil {
		return "setvar", err
	}
	if _, err := c.Record(ctx, call.RecordSpec{Name: "vm", MaxDuration: time.Minute, FinishKey: "#"}); err != nil {
		return "record", err
	}
	if _, err := c.Dial(ctx, call.DialSpec{Targets: []string{"PJSIP/101"}, RingTimeout: 20 * time.Second}); err != nil {
		return "dial", err
	}
	return "hangup", c.Hangup(ctx, "")
}

func smallScript() agitest.Script {
	return agitest.Script{
		Keys:   []string{"", "1", "#"},
		Agents: []agitest.Agent{{Status: "ANSWER", Talk: 5 * time.Second}},
	}
}

func TestHangupAtEveryCommand(t *testing.T) {
	before := runtime.NumGoroutine()
	var all []string
	t.Run("no hang-up", func(t *testing.T) {
		o, sess := runCall(t, Options{RecordingsDir: "/rec"}, smallScript(), smallCall)
		if o.err != nil {
			t.Fatalf("the call without hang-up failed at %v: %v", o.value, o.err)
		}
		all = sess.Commands()
	})
	if len(all) != 9 {
		t.Fatalf("expected 9 commands, got %q", all)
	}
	waitGoroutines(t, before)
	for i := 1; i <= len(all); i++ {
		t.Run(fmt.Sprintf("%d_%s", i, strings.Fields(all[i-1])[0]), func(t *testing.T) {
			script := smallScript()
			script.HangupAt = i
			o, sess := runCall(t, Options{RecordingsDir: "/rec"}, script, smallCall)
			step := o.value.(string)
			if step == "hangup" {
				// Hanging up a caller who is gone is no error.
				if o.err != nil {
					t.Errorf("hangup: %v", o.err)
				}
			} else if !errors.Is(o.err, call.ErrHangup) {
				t.Errorf("%s returned %v, want ErrHangup", step, o.err)
			}
			if !errors.Is(o.ctxErr, call.ErrHangup) {
				t.Errorf("handler context cause %v, want ErrHangup", o.ctxErr)
			}
			cmds := sess.Commands()
			if len(cmds) < i {
				t.Fatalf("only %d commands", len(cmds))
			}
			// After the hang-up only what a dead channel allows follows:
			// the dial's result and the probe of a failed prompt.
			for _, c := range cmds[i:] {
				if c != "CHANNEL STATUS" && !strings.HasPrefix(c, "GET FULL VARIABLE") {
					t.Errorf("command %q sent after the hang-up at %d", c, i)
				}
			}
		})
		waitGoroutines(t, before)
	}
}

func TestEarlyHangupIsNotLost(t *testing.T) {
	// The HANGUP arrives before the handler sends anything.
	hungUp := make(chan struct{})
	o, sess := runCallWith(t, agitest.Script{}, func(sess *agitest.Session) {
		if err := sess.HangUp(); err != nil {
			t.Error(err)
		}
		close(hungUp)
	}, func(ctx context.Context, c *Call) (any, error) {
		<-hungUp
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			return nil, errors.New("context not cancelled by HANGUP")
		}
		return nil, c.Answer(ctx)
	})
	if !errors.Is(o.err, call.ErrHangup) || !errors.Is(o.ctxErr, call.ErrHangup) {
		t.Errorf("answer %v, context %v", o.err, o.ctxErr)
	}
	if cmds := sess.Commands(); len(cmds) != 0 {
		t.Errorf("commands sent to a dead channel: %q", cmds)
	}
}

func TestHangupWhileHandlerIsBusy(t *testing.T) {
	answered := make(chan struct{})
	o, _ := runCallWith(t, agitest.Script{}, func(sess *agitest.Session) {
		<-answered
		waitFor(t, "ANSWER reply", func() bool { return len(sess.Commands()) == 1 })
		if err := sess.HangUp(); err != nil {
			t.Error(err)
		}
	}, func(ctx context.Context, c *Call) (any, error) {
		if err := c.Answer(ctx); err != nil {
			return nil, err
		}
		close(answered)
		// A webhook look-up, say: it must end with the caller.
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(5 * time.Second):
			return nil, errors.New("not cancelled")
		}
	})
	if !errors.Is(o.err, call.ErrHangup) {
		t.Errorf("got %v", o.err)
	}
}

func TestConnectionDropIsAHangup(t *testing.T) {
	o, _ := runCallWith(t, agitest.Script{SilentAt: 2}, func(sess *agitest.Session) {
		waitFor(t, "second command", func() bool { return len(sess.Commands()) == 2 })
		sess.Close()
	}, func(ctx context.Context, c *Call) (any, error) {
		if err := c.Answer(ctx); err != nil {
			return nil, err
		}
		return c.Var(ctx, "X")
	})
	if !errors.Is(o.err, call.ErrHangup) || !errors.Is(o.ctxErr, call.ErrHangup) {
		t.Errorf("got %v, context %v", o.err, o.ctxErr)
	}
}

// runCallWith is runCall with a peer-side action running alongside.
func runCallWith(t *testing.T, script agitest.Script, peer func(*agitest.Session), fn func(ctx context.Context, c *Call) (any, error)) (outcome, *agitest.Session) {
	t.Helper()
	got := make(chan outcome, 1)
	_, addr := startServer(t, handlerFunc(func(ctx context.Context, c *Call, req Request) {
		v, err := fn(ctx, c)
		var cause error
		if ctx.Err() != nil {
			cause = context.Cause(ctx)
		}
		got <- outcome{req: req, value: v, err: err, ctxErr: cause}
	}), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := agitest.Dial(ctx, addr, script)
	if err != nil {
		t.Fatal(err)
	}
	peer(sess)
	var o outcome
	select {
	case o = <-got:
	case <-ctx.Done():
		t.Fatalf("handler did not finish; commands %q", sess.Commands())
	}
	if err := sess.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	return o, sess
}

func TestMalformedLines(t *testing.T) {
	tests := []struct {
		name  string
		reply string
	}{
		{"not AGI", ""}, // MalformedAt
		{"200 without result", "200 ok\n"},
		{"bare code", "200\n"},
		{"lower-case hangup", "hangup\n"},
		{"binary", "\x00\xff\xfe\n"},
		{"line too long", strings.Repeat("7", 70<<10) + "\n"},
		{"endless usage", "520-Invalid command syntax.  Proper usage follows:\n" + strings.Repeat("usage\n", 300)},
		{"two replies for one command", "200 result=1 (x)\n200 result=1 (y)\n"},
	}
	for _, tt := range tests {
		before := runtime.NumGoroutine()
		t.Run(tt.name, func(t *testing.T) {
			script := agitest.Script{MalformedAt: 2}
			if tt.reply != "" {
				script = agitest.Script{Replies: map[int]string{2: tt.reply}}
			}
			o, _ := runCall(t, Options{}, script, func(ctx context.Context, c *Call) (any, error) {
				if err := c.Answer(ctx); err != nil {
					return nil, err
				}
				if _, err := c.Var(ctx, "X"); err != nil {
					return nil, err
				}
				// A stray second reply ends the session while idle.
				select {
				case <-ctx.Done():
					return nil, context.Cause(ctx)
				case <-time.After(5 * time.Second):
					return nil, nil
				}
			})
			if !errors.Is(o.err, ErrProtocol) || !errors.Is(o.ctxErr, ErrProtocol) {
				t.Errorf("got %v, context %v; want ErrProtocol", o.err, o.ctxErr)
			}
		})
		waitGoroutines(t, before)
	}
}

func TestMalformedEnvironment(t *testing.T) {
	called := make(chan struct{}, 1)
	_, addr := startServer(t, handlerFunc(func(context.Context, *Call, Request) { called <- struct{}{} }), Options{})
	for _, env := range []string{
		"agi_network: yes\nnonsense\n\n",
		"\n",
		"agi_network: yes\n" + strings.Repeat("x", 70<<10) + "\n\n",
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(env)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := bufio.NewReader(conn).ReadByte(); err == nil {
			t.Errorf("server wrote to a peer with environment %q", clip(env))
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("server kept the connection open for %q", clip(env))
		}
		conn.Close()
	}
	select {
	case <-called:
		t.Fatal("handler ran on a bad environment")
	default:
	}
}

func TestPeerStopsAnswering(t *testing.T) {
	o, sess := runCall(t, Options{CommandTimeout: 100 * time.Millisecond}, agitest.Script{SilentAt: 2},
		func(ctx context.Context, c *Call) (any, error) {
			if err := c.Answer(ctx); err != nil {
				return nil, err
			}
			if _, err := c.Var(ctx, "X"); err != nil {
				return nil, err
			}
			return nil, c.Answer(ctx)
		})
	if !errors.Is(o.err, ErrPeerTimeout) || !errors.Is(o.ctxErr, ErrPeerTimeout) {
		t.Errorf("got %v, context %v; want ErrPeerTimeout", o.err, o.ctxErr)
	}
	if !strings.Contains(o.err.Error(), "GET VARIABLE X") {
		t.Errorf("error does not name the command: %v", o.err)
	}
	if n := len(sess.Commands()); n != 2 {
		t.Errorf("%d commands sent", n)
	}
}

func TestSilentPeerDuringPlayback(t *testing.T) {
	o, _ := runCall(t, Options{CommandTimeout: 50 * time.Millisecond, MaxPlayback: 50 * time.Millisecond}, agitest.Script{SilentAt: 1},
		func(ctx context.Context, c *Call) (any, error) {
			return c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:long"}})
		})
	if !errors.Is(o.err, ErrPeerTimeout) {
		t.Errorf("got %v", o.err)
	}
}

func TestContextEndsMidCommand(t *testing.T) {
	o, _ := runCall(t, Options{}, agitest.Script{SilentAt: 1}, func(ctx context.Context, c *Call) (any, error) {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		return nil, c.Answer(ctx)
	})
	if !errors.Is(o.err, context.DeadlineExceeded) || !errors.Is(o.ctxErr, ErrClosed) {
		t.Errorf("got %v, session context %v", o.err, o.ctxErr)
	}
}

func TestHandlerPanicEndsOnlyItsCall(t *testing.T) {
	var calls atomic.Int32
	_, addr := startServer(t, handlerFunc(func(ctx context.Context, c *Call, req Request) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		_ = c.Answer(ctx)
	}), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		sess, err := agitest.Dial(ctx, addr, agitest.Script{})
		if err != nil {
			t.Fatal(err)
		}
		if err := sess.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if i == 1 && len(sess.Commands()) != 1 {
			t.Errorf("second call: %q", sess.Commands())
		}
	}
}

func TestShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 2)
	causes := make(chan error, 2)
	srv := NewServer(Options{Handler: handlerFunc(func(ctx context.Context, c *Call, req Request) {
		started <- struct{}{}
		<-ctx.Done() // a long conversation
		causes <- context.Cause(ctx)
	})})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), ln) }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	long, err := agitest.Dial(ctx, ln.Addr().String(), agitest.Script{Request: "agi://x/flow/long"})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	sctx, scancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer scancel()
	if err := srv.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	if err := long.Wait(ctx); err != nil {
		t.Errorf("long call not closed: %v", err)
	}
	if cause := <-causes; !errors.Is(cause, ErrClosed) {
		t.Errorf("handler context cause %v", cause)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("still accepting after shutdown")
	}
	waitGoroutines(t, before)
}

func TestShutdownWaitsForCalls(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	finished := make(chan struct{})
	srv := NewServer(Options{Handler: handlerFunc(func(ctx context.Context, c *Call, req Request) {
		<-release
		_ = c.Answer(ctx)
		close(finished)
	})})
	go srv.Serve(context.Background(), ln)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := agitest.Dial(ctx, ln.Addr().String(), agitest.Script{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "session registered", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.sessions) == 1
	})
	go func() {
		time.Sleep(20 * time.Millisecond)
		close(release)
	}()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case <-finished:
	default:
		t.Fatal("shutdown returned before the call ended")
	}
	if got := sess.Commands(); len(got) != 1 {
		t.Errorf("commands %q", got)
	}
}

func TestListenAndServe(t *testing.T) {
	h := handlerFunc(func(context.Context, *Call, Request) {})
	srv := NewServer(Options{Handler: h, Listen: "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx) }()
	waitFor(t, "listener", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.listeners) == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("after cancel: %v", err)
	}
	if err := NewServer(Options{Handler: h, Listen: "127.0.0.1:-1"}).ListenAndServe(context.Background()); err == nil {
		t.Error("bad address accepted")
	}
}
