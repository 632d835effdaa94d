package ari

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/callflow/callflow/applets/call"
	"github.com/callflow/callflow/ari/aritest"
)

// inbounds collects the calls a handler was given.
type inbounds struct {
	mu  sync.Mutex
	ins map[string]inbound
	n   atomic.Int32
}

func (ib *inbounds) handler(then func(ctx context.Context, c *Call)) call.Handler {
	return handlerFunc(func(ctx context.Context, c *Call, _ call.Inbound) {
		ib.mu.Lock()
		if ib.ins == nil {
			ib.ins = map[string]inbound{}
		}
		ib.ins[c.ID()] = c.in
		ib.mu.Unlock()
		ib.n.Add(1)
		if then != nil {
			then(ctx, c)
		}
	})
}

func (ib *inbounds) get(id string) (inbound, bool) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	in, ok := ib.ins[id]
	return in, ok
}

func TestInboundCallStartsItsFlow(t *testing.T) {
	cases := []struct {
		name   string
		state  string
		args   []string
		number string
		flow   string
	}{
		{name: "number and flow from the Stasis arguments", state: "Ring", args: []string{"inbound", "number=+15550001", "flow=support"},
			number: "+15550001", flow: "support"},
		{name: "the dialled extension when no argument names the number", state: "Up", args: []string{"inbound"}, number: "5551230001"},
		{name: "no arguments at all", state: "Ring", number: "5551230001"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ib inbounds
			answered := make(chan bool, 1)
			s := newScripted(t, ib.handler(func(ctx context.Context, c *Call) { answered <- !c.Answered().IsZero() }))
			s.answer = s.basics
			id := s.inbound(tc.state, tc.args...)
			wasUp := <-answered
			waitIdle(t, s.app)
			in, _ := ib.get(id)
			want := inbound{Args: tc.args, Exten: "5551230001", Context: "from-pstn", Number: tc.number, FlowName: tc.flow,
				CallerNumber: "5551239999", CallerName: "Alice Caller", ChannelName: "PJSIP/" + id}
			if !reflect.DeepEqual(in, want) {
				t.Errorf("got %+v\nwant %+v", in, want)
			}
			if wasUp != (tc.state == "Up") {
				t.Errorf("answered %v for a channel in state %s", wasUp, tc.state)
			}
		})
	}
}

// The legs a dial makes enter the application too: they never start a
// flow, and a leg whose dial is over (or an earlier run's) is hung up.
func TestOwnLegsNeverStartAFlow(t *testing.T) {
	var ib inbounds
	dialled := make(chan error, 1)
	s := newScripted(t, ib.handler(func(ctx context.Context, c *Call) {
		_, err := c.Dial(ctx, call.DialSpec{Targets: []string{"PJSIP/a"}})
		dialled <- err
	}))
	s.answer = s.pbx(map[string]agent{"PJSIP/a": {onDial: answers, onBridged: agentHangsUp}})
	s.inbound("Up", "inbound")
	if err := <-dialled; err != nil {
		t.Fatal(err)
	}
	s.stasisStart(fakeChan{id: "stray-leg", state: "Down", args: []string{"dialed", "gone-call"}})
	s.waitFor("DELETE /channels/stray-leg")
	waitIdle(t, s.app)
	if n := ib.n.Load(); n != 1 {
		t.Fatalf("%d flows started, want 1", n)
	}
}

func TestCallEnd(t *testing.T) {
	cases := []struct {
		name    string
		handler func(ctx context.Context, c *Call)
		deletes int // hang-ups of the caller sent
	}{
		{name: "a caller the handler left in Stasis is hung up", handler: func(ctx context.Context, c *Call) {}, deletes: 1},
		{name: "a caller the handler hung up is not hung up again", handler: func(ctx context.Context, c *Call) { _ = c.Hangup(ctx, "") }, deletes: 1},
		{name: "a caller who hung up is not hung up again", handler: func(ctx context.Context, c *Call) {
			_, _ = c.Gather(ctx, call.GatherSpec{Prompt: []call.Media{"sound:bye"}, FirstTimeout: time.Minute})
		}},
		{name: "a handler that panics still ends the call", handler: func(ctx context.Context, c *Call) { panic("flow bug") }, deletes: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newScripted(t, handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) { tc.handler(ctx, c) }))
			s.answer = func(r restReq) reply {
				rep := s.basics(r)
				if r.is("POST /channels/*/play/*") {
					s.async(func() { s.hangup(r.seg(1), 16, false) })
				}
				return rep
			}
			id := s.inbound("Up", "inbound")
			waitIdle(t, s.app)
			if n := len(s.sent("DELETE /channels/" + id)); n != tc.deletes {
				t.Errorf("%d hang-ups sent, want %d", n, tc.deletes)
			}
		})
	}
}

func TestReconcile(t *testing.T) {
	t.Run("a call whose channel vanished while disconnected ends", func(t *testing.T) {
		got := make(chan error, 1)
		var cause error
		s := newScripted(t, handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
			_, err := c.Gather(ctx, call.GatherSpec{FirstTimeout: time.Minute})
			cause = context.Cause(ctx)
			got <- err
		}))
		s.answer = func(r restReq) reply {
			if rep, ok := s.listing(r); ok {
				return rep
			}
			return s.basics(r)
		}
		id := s.inbound("Up", "inbound")
		s.mu.Lock()
		s.chans[id].gone = true // Asterisk restarted: no event says so
		s.mu.Unlock()
		s.reconnected()
		if err := <-got; !errors.Is(err, call.ErrHangup) {
			t.Fatalf("gather: %v", err)
		}
		waitIdle(t, s.app)
		if !errors.Is(cause, errVanished) {
			t.Errorf("cause %v", cause)
		}
		if n := len(s.sent("DELETE /channels/*")); n != 0 {
			t.Errorf("%d hang-ups of a channel that is gone", n)
		}
	})
	t.Run("a call whose channel is still there goes on", func(t *testing.T) {
		got := make(chan string, 1)
		s := newScripted(t, handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
			g, _ := c.Gather(ctx, call.GatherSpec{FirstTimeout: time.Minute})
			got <- g
		}))
		s.answer = func(r restReq) reply {
			if rep, ok := s.listing(r); ok {
				return rep
			}
			return s.basics(r)
		}
		id := s.inbound("Up", "inbound")
		s.reconnected()
		s.press(id, "5")
		if g := <-got; g != "5" {
			t.Fatalf("gather %q", g)
		}
	})
	t.Run("a call that began after the connection opened is left to its events", func(t *testing.T) {
		got := make(chan string, 1)
		s := newScripted(t, handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
			g, _ := c.Gather(ctx, call.GatherSpec{FirstTimeout: time.Minute})
			got <- g
		}))
		s.answer = func(r restReq) reply {
			if rep, ok := s.listing(r); ok {
				return rep
			}
			return s.basics(r)
		}
		before := s.app.liveRoutes() // the connection opens: no call yet
		id := s.inbound("Up", "inbound")
		s.mu.Lock()
		s.chans[id].gone = true // a listing answered before its events were read
		s.mu.Unlock()
		s.app.reconcile(context.Background(), false, before)
		s.press(id, "5")
		if g := <-got; g != "5" {
			t.Fatalf("gather %q: the reconcile ended a call it did not know of", g)
		}
	})
	t.Run("a listing that fails ends nothing", func(t *testing.T) {
		got := make(chan string, 1)
		s := newScripted(t, handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
			g, _ := c.Gather(ctx, call.GatherSpec{FirstTimeout: time.Minute})
			got <- g
		}))
		s.answer = func(r restReq) reply {
			if r.is("GET /channels") {
				return refused(500, "Internal Server Error")
			}
			return s.basics(r)
		}
		id := s.inbound("Up", "inbound")
		s.reconnected()
		s.press(id, "7")
		if g := <-got; g != "7" {
			t.Fatalf("gather %q", g)
		}
		if n := len(s.sent("GET /bridges")); n != 0 {
			t.Errorf("orphans looked for without the channel listing")
		}
	})
}

func TestApplicationReplacedIsReported(t *testing.T) {
	s := newScripted(t, nil)
	if !s.app.dispatch([]byte(`{"type":"ApplicationReplaced","timestamp":"2026-11-21T05:06:50.001+0000","application":"callflow","asterisk_id":"02:fc:00:00:00:01"}`)) {
		t.Fatal("the reader goes on reading a connection that lost the application")
	}
	if !s.app.Health().Replaced {
		t.Fatalf("health %+v", s.app.Health())
	}
}

func TestEventFilterAsksForTheEventsRead(t *testing.T) {
	s := newScripted(t, nil)
	s.answer = func(r restReq) reply { return answered(200, `{"name":"callflow"}`) }
	if err := s.app.setEventFilter(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := s.waitFor("PUT /applications/callflow/eventFilter")
	var body struct {
		Allowed    []struct{ Type string } `json:"allowed"`
		Disallowed []struct{ Type string } `json:"disallowed"`
	}
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range body.Allowed {
		got = append(got, a.Type)
	}
	want := filterTypes()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || body.Disallowed == nil || len(body.Disallowed) != 0 {
		t.Errorf("body %s", r.Body)
	}
}

func TestShutdown(t *testing.T) {
	t.Run("calls past the drain time are hung up; new ones go back to the dialplan", func(t *testing.T) {
		var ib inbounds
		ended := make(chan error, 1)
		s := newScripted(t, ib.handler(func(ctx context.Context, c *Call) {
			_, err := c.Gather(ctx, call.GatherSpec{FirstTimeout: time.Minute})
			ended <- err
		}))
		s.answer = s.basics
		busy := s.inbound("Up", "inbound")
		waitUntil(t, "the call runs", func() bool { return ib.n.Load() == 1 })
		done := make(chan error, 1)
		go func() { done <- s.app.Shutdown(context.Background()) }()
		waitUntil(t, "draining", func() bool { return s.app.Health().Draining })
		late := s.inbound("Ring", "inbound")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := <-ended; !errors.Is(err, call.ErrHangup) {
			t.Errorf("gather of a call hung up at shutdown: %v", err)
		}
		s.waitFor("POST /channels/" + late + "/continue")
		if len(s.sent("DELETE /channels/"+busy)) != 1 || ib.n.Load() != 1 {
			t.Errorf("sent %v, %d flows", s.requests(), ib.n.Load())
		}
	})
	t.Run("calls that end within the drain time are left to end", func(t *testing.T) {
		release := make(chan struct{})
		var ib inbounds
		s := newScripted(t, ib.handler(func(ctx context.Context, c *Call) {
			<-release
			_ = c.Hangup(ctx, "normal")
		}))
		s.app.opts.DrainTimeout = time.Minute
		s.answer = s.basics
		id := s.inbound("Up", "inbound")
		waitUntil(t, "the call runs", func() bool { return ib.n.Load() == 1 })
		done := make(chan error, 1)
		go func() { done <- s.app.Shutdown(context.Background()) }()
		waitUntil(t, "draining", func() bool { return s.app.Health().Draining })
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if rs := s.sent("DELETE /channels/" + id); len(rs) != 1 || rs[0].Query.Get("reason") != "normal" {
			t.Errorf("hang-ups %v", rs)
		}
	})
}

// ---- end to end, against aritest's fake Asterisk ----

func TestWebsocketDropMidCallEndToEnd(t *testing.T) {
	res := newResult()
	h := handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		g, err := c.Gather(ctx, call.GatherSpec{MaxDigits: 2, FirstTimeout: 5 * time.Second, InterTimeout: 2 * time.Second})
		res.add(g, err)
		_, err = c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:thanks"}})
		res.add(err)
	})
	fh := startFake(t, aritest.Options{}, h, nil)
	caller := fh.call(aritest.CallSpec{Exten: "500"})
	if err := caller.WaitState(tctx(t, 5*time.Second), "Up"); err != nil {
		t.Fatal(err)
	}
	dropped := time.Now()
	fh.srv.DropWebsockets()
	time.Sleep(5 * time.Millisecond)
	fh.waitConnected()
	// The reconcile finds the channel: the call goes on.
	end := time.Now().Add(3 * time.Second)
	for fh.app.Health().Reconnects < 1 || len(fh.requests(func(r aritest.Request) bool {
		return r.Method == "GET" && r.Path == "/ari/channels" && r.Time.After(dropped)
	})) < 1 {
		if time.Now().After(end) {
			t.Fatal("no reconcile")
		}
		time.Sleep(2 * time.Millisecond)
	}
	caller.Press("12")
	res.wait(t)
	expect(t, res.get(), "12", nil, nil)
	if h := fh.app.Health(); h.ActiveCalls > 1 || !h.Connected || h.Reconnects != 1 {
		t.Errorf("health %+v", h)
	}
}

func TestRestartMidCallEndToEnd(t *testing.T) {
	var n atomic.Int32
	res := newResult()
	h := handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
		defer res.finish()
		if n.Add(1) > 1 {
			_ = c.Answer(ctx)
			_, err := c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:hello-world"}})
			res.add(err)
			return
		}
		_ = c.Answer(ctx)
		_, err := c.Gather(ctx, call.GatherSpec{FirstTimeout: time.Minute})
		res.add(errors.Is(err, call.ErrHangup), context.Cause(ctx) != nil)
	})
	fh := startFake(t, aritest.Options{}, h, nil)
	caller := fh.call(aritest.CallSpec{Exten: "500"})
	if err := caller.WaitState(tctx(t, 5*time.Second), "Up"); err != nil {
		t.Fatal(err)
	}
	fh.srv.Restart()
	res.wait(t)
	expect(t, res.get(), true, true)
	waitIdle(t, fh.app)
	fh.waitConnected()
	fh.call(aritest.CallSpec{Exten: "500"})
	res.wait(t)
	expect(t, res.get(), true, true, nil)
}

func TestApplicationReplacedEndToEnd(t *testing.T) {
	fh := startFake(t, aritest.Options{}, handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {}),
		func(o *Options) { o.ReconnectMax = 300 * time.Millisecond })
	// A second instance with the same application name.
	ctx := tctx(t, 5*time.Second)
	other, _, err := websocket.Dial(ctx, fh.srv.WebsocketURL()+"?app=callflow&api_key=callflow:secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	readCtx := other.CloseRead(context.Background())
	end := time.Now().Add(3 * time.Second)
	for !fh.app.Health().Replaced {
		if time.Now().After(end) {
			t.Fatalf("not reported: %+v", fh.app.Health())
		}
		time.Sleep(2 * time.Millisecond)
	}
	other.CloseNow()
	<-readCtx.Done()
	// It keeps trying and gets the name back.
	for h := fh.app.Health(); !h.Connected || h.Reconnects < 1; h = fh.app.Health() {
		if time.Now().After(end) {
			t.Fatalf("did not come back: %+v", h)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if h := fh.app.Health(); !h.Replaced || !strings.Contains(h.LastError, "replaced") {
		t.Errorf("health %+v", h)
	}
}

func TestShutdownEndToEnd(t *testing.T) {
	res := newResult()
	h := handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		if in.Number == "quick" {
			_, err := c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:bye"}})
			res.add("quick", err)
			_ = c.Hangup(ctx, "")
			return
		}
		_, err := c.Gather(ctx, call.GatherSpec{FirstTimeout: time.Minute})
		res.add("slow", errors.Is(err, call.ErrHangup))
	})
	fh := startFake(t, aritest.Options{TimeScale: 1, MediaDurations: map[string]time.Duration{"sound:bye": 300 * time.Millisecond}}, h,
		func(o *Options) { o.DrainTimeout = 600 * time.Millisecond })
	slow := fh.call(aritest.CallSpec{Exten: "slow"})
	quick := fh.call(aritest.CallSpec{Exten: "quick"})
	ctx := tctx(t, 5*time.Second)
	if err := quick.WaitPlayback(ctx, "sound:bye"); err != nil {
		t.Fatal(err)
	}
	if err := slow.WaitState(ctx, "Up"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fh.app.Shutdown(ctx) }()
	for !fh.app.draining.Load() {
		time.Sleep(time.Millisecond)
	}
	late := fh.call(aritest.CallSpec{Exten: "late"})
	for {
		if _, ok := late.Continued(); ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("late call not sent back to the dialplan")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	res.wait(t)
	res.wait(t)
	got := res.get()
	if len(got) != 4 {
		t.Fatalf("got %v", got)
	}
	for i := 0; i < 4; i += 2 {
		if got[i+1] != nil && got[i+1] != true {
			t.Errorf("%v: %v", got[i], got[i+1])
		}
	}
	select {
	case <-slow.Done():
	default:
		t.Error("slow call not hung up after the drain")
	}
	select {
	case <-fh.done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run still running")
	}
}
