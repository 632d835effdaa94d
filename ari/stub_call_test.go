package ari

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/callflow/callflow/applets"
)

// harness runs an App against a stub until stop.
type harness struct {
	t    *testing.T
	s    *stub
	app  *App
	done chan struct{}
	stop func()
}

func startStub(t *testing.T, s *stub, h Handler, mod func(*Options), tune ...func(*guards)) *harness {
	t.Helper()
	opts := Options{
		URL: s.url(), App: "callflow", Username: "callflow", Password: "secret",
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
	hs := &harness{t: t, s: s, app: app, done: make(chan struct{})}
	go func() {
		if err := app.Run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
		close(hs.done)
	}()
	s.waitConnected(t)
	s.waitReq(t, "GET", "/channels", 2*time.Second) // the first reconcile
	var once sync.Once
	hs.stop = func() {
		once.Do(func() {
			sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
			defer c()
			if err := app.Shutdown(sctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			cancel()
			select {
			case <-hs.done:
			case <-time.After(5 * time.Second):
				t.Error("Run did not return")
			}
		})
	}
	t.Cleanup(hs.stop)
	return hs
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

func (r *result) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(d):
		t.Fatalf("handler did not finish; so far %v", r.get())
	}
}

// setup makes a stub; at the end of the test the app stops first, then
// the stub, then goroutines must be back to where they were.
func setup(t *testing.T) *stub {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	s := newStub(t)
	t.Cleanup(s.close)
	return s
}

func isPlayOf(media string) func(stubReq) bool {
	return func(r stubReq) bool {
		return r.Method == "POST" && strings.Contains(r.Path, "/play") && strings.Contains(r.Query.Get("media"), media)
	}
}

func isReq(method, prefix string) func(stubReq) bool {
	return func(r stubReq) bool { return r.Method == method && strings.HasPrefix(r.Path, prefix) }
}

func TestStubPlayGatherTypeaheadBargeIn(t *testing.T) {
	s := setup(t)
	s.mediaDur["sound:greeting"] = 300 * time.Millisecond
	s.mediaDur["sound:menu"] = 2 * time.Second
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		res.add(in.Number, in.FlowName, in.CallerNumber)
		if err := c.Answer(ctx); err != nil {
			res.add("answer", err)
			return
		}
		d, err := c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"greeting"}})
		res.add("play", d, err)
		g, err := c.Gather(ctx, applets.GatherSpec{Prompt: []applets.Media{"sound:skipped"}, MaxDigits: 2, FirstTimeout: time.Second, InterTimeout: time.Second})
		res.add("g1", g, err)
		g, err = c.Gather(ctx, applets.GatherSpec{Prompt: []applets.Media{"sound:menu"}, MaxDigits: 4, Terminator: "#", FirstTimeout: 2 * time.Second, InterTimeout: 2 * time.Second})
		res.add("g2", g, err)
		g, err = c.Gather(ctx, applets.GatherSpec{FirstTimeout: 100 * time.Millisecond})
		res.add("g3", g, errors.Is(err, applets.ErrTimeout))
		res.add("hangup", c.Hangup(ctx, "normal"))
	})
	hs := startStub(t, s, h, nil)
	id := s.placeCall("inbound", "number=+15550001", "flow=support")
	s.waitPlay(t, "sound:greeting")
	s.press(id, "42")
	s.waitPlay(t, "sound:menu")
	s.press(id, "7")
	s.waitFor(t, "stop menu", 2*time.Second, isReq("DELETE", "/playbacks/"))
	s.press(id, "#")
	res.wait(t, 5*time.Second)
	got := res.get()
	want := []any{"+15550001", "support", "5551239999", "play", "", nil, "g1", "42", nil, "g2", "7", nil, "g3", "", true, "hangup", nil}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("item %d: got %v want %v (all %v)", i, got[i], want[i], got)
		}
	}
	if s.has(isPlayOf("sound:skipped")) {
		t.Error("prompt played although keys were typed ahead")
	}
	waitIdle(t, hs.app)
}

func waitIdle(t *testing.T, a *App) {
	t.Helper()
	end := time.Now().Add(3 * time.Second)
	for a.Health().ActiveCalls != 0 {
		if time.Now().After(end) {
			t.Fatalf("calls still active: %+v", a.Health())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStubPlayFailures(t *testing.T) {
	s := setup(t)
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		_, err := c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:missing-file"}})
		res.add(errors.Is(err, ErrPlaybackFailed))
		// An unknown scheme is never sent: Asterisk would never finish it.
		_, err = c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"badscheme:foo"}})
		res.add(err)
		// Never started: the watchdog ends it.
		_, err = c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:ok", "weird:x"}})
		res.add(err)
		start := time.Now()
		_, err = c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:nostart"}})
		res.add(errors.Is(err, ErrPlaybackFailed), time.Since(start) < time.Second)
	})
	startStub(t, s, h, nil, func(g *guards) { g.startWatchdog = 200 * time.Millisecond })
	s.placeCall("inbound")
	res.wait(t, 5*time.Second)
	got := res.get()
	if len(got) != 5 || got[0] != true || got[1] != nil || got[2] != nil || got[3] != true || got[4] != true {
		t.Fatalf("got %v", got)
	}
	if s.has(isPlayOf("badscheme")) {
		t.Error("unknown scheme sent to Asterisk")
	}
}

func TestStubRecord(t *testing.T) {
	s := setup(t)
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		// ended by silence
		r, err := c.Record(ctx, applets.RecordSpec{Name: "vm", MaxDuration: 30 * time.Second, MaxSilence: 2 * time.Second, Beep: true, FinishKey: "#"})
		res.add(r.Name != "" && !strings.Contains(r.Name, "."), r.Duration, r.Format, err)
		// ended by the finish key, which is not typed ahead
		r, err = c.Record(ctx, applets.RecordSpec{Name: "vm", MaxDuration: 30 * time.Second, FinishKey: "#"})
		res.add(r.Duration, err)
		_, err = c.Gather(ctx, applets.GatherSpec{FirstTimeout: 100 * time.Millisecond})
		res.add(errors.Is(err, applets.ErrTimeout))
		// the caller hangs up mid-recording: the recording is kept
		r, err = c.Record(ctx, applets.RecordSpec{Name: "vm3", MaxDuration: 30 * time.Second, FinishKey: "#"})
		res.add(r.Duration, errors.Is(err, applets.ErrHangup))
	})
	startStub(t, s, h, nil)
	id := s.placeCall("inbound")
	s.waitFor(t, "second record", 3*time.Second, func(r stubReq) bool {
		return r.Method == "POST" && strings.HasSuffix(r.Path, "/record") && r.Query.Get("maxSilenceSeconds") == ""
	})
	time.Sleep(50 * time.Millisecond)
	s.press(id, "#")
	s.waitFor(t, "third record", 3*time.Second, func(r stubReq) bool {
		return r.Method == "POST" && strings.HasSuffix(r.Path, "/record") && r.Query.Get("name") == "vm3"
	})
	time.Sleep(50 * time.Millisecond)
	s.hangup(id, 16, false)
	res.wait(t, 5*time.Second)
	got := res.get()
	want := []any{true, 2 * time.Second, "wav", nil, 2 * time.Second, nil, true, 2 * time.Second, true}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("item %d: got %v want %v (all %v)", i, got[i], want[i], got)
		}
	}
	first := s.waitFor(t, "record", time.Second, isReq("POST", "/channels/"+id+"/record"))
	q := first.Query
	if q.Get("format") != "wav" || q.Get("beep") != "true" || q.Get("terminateOn") != "#" || q.Get("maxDurationSeconds") != "30" || q.Get("maxSilenceSeconds") != "2" || q.Get("ifExists") != "overwrite" {
		t.Errorf("record query %v", q)
	}
}

// dialHandler dials spec and reports the result.
func dialHandler(res *result, spec applets.DialSpec, answerFirst bool) Handler {
	return HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		if answerFirst {
			_ = c.Answer(ctx)
		}
		r, err := c.Dial(ctx, spec)
		res.add(r, err)
		if err == nil {
			// the caller is still there for the next step
			_, perr := c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:after"}})
			res.add(perr)
		}
	})
}

func dialOutcome(t *testing.T, res *result) (applets.DialResult, error) {
	t.Helper()
	res.wait(t, 10*time.Second)
	got := res.get()
	r, _ := got[0].(applets.DialResult)
	err, _ := got[1].(error)
	return r, err
}

// checkClean asserts that everything a dial made is gone.
func checkClean(t *testing.T, s *stub) {
	t.Helper()
	end := time.Now().Add(2 * time.Second)
	for {
		s.mu.Lock()
		nb := len(s.bridges)
		var legs []string
		for id, c := range s.chans {
			if c.agent != nil {
				legs = append(legs, id)
			}
		}
		v := append([]string(nil), s.violations...)
		s.mu.Unlock()
		if len(v) > 0 {
			t.Fatalf("violations: %v", v)
		}
		if nb == 0 && len(legs) == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("left behind: %d bridges, legs %v", nb, legs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStubDial(t *testing.T) {
	cases := []struct {
		name        string
		agents      map[string]stubAgent
		spec        applets.DialSpec
		stasisFirst bool
		want        applets.DialStatus
		target      string
	}{
		{name: "answered, agent hangs up first", agents: map[string]stubAgent{"PJSIP/a": {mode: "answer", ringFor: 50 * time.Millisecond, hangupAfter: 200 * time.Millisecond}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a"}, RingTimeout: 5 * time.Second}, want: applets.Answered, target: "PJSIP/a"},
		{name: "answered, stasis start before create response", stasisFirst: true, agents: map[string]stubAgent{"PJSIP/a": {mode: "answer", ringFor: 50 * time.Millisecond, hangupAfter: 100 * time.Millisecond}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a"}, RingTimeout: 5 * time.Second, Music: "default", Record: true}, want: applets.Answered, target: "PJSIP/a"},
		{name: "no answer", agents: map[string]stubAgent{"PJSIP/a": {mode: "noanswer"}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a"}, RingTimeout: time.Second}, want: applets.NoAnswer},
		{name: "busy", agents: map[string]stubAgent{"PJSIP/a": {mode: "busy"}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a"}, RingTimeout: 5 * time.Second}, want: applets.Busy},
		{name: "congestion", agents: map[string]stubAgent{"PJSIP/a": {mode: "congestion"}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a"}, RingTimeout: 5 * time.Second}, want: applets.Failed},
		{name: "unknown endpoint", spec: applets.DialSpec{Targets: []string{"Bogus/1"}, RingTimeout: 5 * time.Second}, want: applets.Failed},
		{name: "busy and congested", agents: map[string]stubAgent{"PJSIP/a": {mode: "busy"}, "PJSIP/b": {mode: "congestion"}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a", "PJSIP/b"}, RingTimeout: 5 * time.Second}, want: applets.Failed},
		{name: "all busy", agents: map[string]stubAgent{"PJSIP/a": {mode: "busy"}, "PJSIP/b": {mode: "busy"}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a", "PJSIP/b"}, RingTimeout: 5 * time.Second}, want: applets.Busy},
		{name: "first wins", agents: map[string]stubAgent{
			"PJSIP/a": {mode: "noanswer"}, "PJSIP/b": {mode: "answer", ringFor: 100 * time.Millisecond, hangupAfter: 100 * time.Millisecond},
			"PJSIP/c": {mode: "answer", ringFor: 400 * time.Millisecond, hangupAfter: 100 * time.Millisecond}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a", "PJSIP/b", "PJSIP/c", "Bogus/x"}, RingTimeout: 5 * time.Second}, want: applets.Answered, target: "PJSIP/b"},
		{name: "whisper accepted", agents: map[string]stubAgent{"PJSIP/a": {mode: "answer", ringFor: 50 * time.Millisecond, keys: "1", keysAfter: 100 * time.Millisecond, hangupAfter: 300 * time.Millisecond}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a"}, RingTimeout: 5 * time.Second, Whisper: []applets.Media{"sound:call-for-acme"}, Accept: "1"}, want: applets.Answered, target: "PJSIP/a"},
		{name: "whisper rejected", agents: map[string]stubAgent{"PJSIP/a": {mode: "answer", ringFor: 50 * time.Millisecond, keys: "9", keysAfter: 100 * time.Millisecond}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a"}, RingTimeout: 5 * time.Second, Whisper: []applets.Media{"sound:call-for-acme"}, Accept: "1"}, want: applets.NoAnswer},
		{name: "rejected by one, accepted by another", agents: map[string]stubAgent{
			"PJSIP/a": {mode: "answer", ringFor: 50 * time.Millisecond, keys: "9", keysAfter: 50 * time.Millisecond},
			"PJSIP/b": {mode: "answer", ringFor: 300 * time.Millisecond, keys: "1", keysAfter: 50 * time.Millisecond, hangupAfter: 300 * time.Millisecond}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a", "PJSIP/b"}, RingTimeout: 5 * time.Second, Whisper: []applets.Media{"sound:call-for-acme"}, Accept: "1"}, want: applets.Answered, target: "PJSIP/b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := setup(t)
			s.stasisFirst = tc.stasisFirst
			for k, v := range tc.agents {
				s.agents[k] = v
			}
			res := newResult()
			startStub(t, s, dialHandler(res, tc.spec, true), nil)
			id := s.placeCall("inbound")
			r, err := dialOutcome(t, res)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			if r.Status != tc.want || r.Target != tc.target {
				t.Fatalf("got %+v, want %s %s", r, tc.want, tc.target)
			}
			if r.Status == applets.Answered && (r.TalkTime <= 0 || r.Answered.IsZero()) {
				t.Errorf("talk time missing: %+v", r)
			}
			if tc.spec.Record && r.Recording == "" {
				t.Error("no conversation recording")
			}
			checkClean(t, s)
			for _, rq := range s.requests() {
				if rq.Path == "/channels/create" {
					if rq.Query.Get("originator") != id || !strings.HasPrefix(rq.Query.Get("appArgs"), "dialed,") || rq.Query.Get("channelId") == "" {
						t.Errorf("create %v", rq.Query)
					}
				}
			}
			if got := res.get(); len(got) < 3 || got[2] != nil {
				t.Errorf("play after dial: %v", got)
			}
		})
	}
}

func TestStubDialCallerHangs(t *testing.T) {
	for _, bridged := range []bool{false, true} {
		name := "while ringing"
		if bridged {
			name = "while bridged"
		}
		t.Run(name, func(t *testing.T) {
			s := setup(t)
			s.agents["PJSIP/a"] = stubAgent{mode: "answer", ringFor: 50 * time.Millisecond}
			s.agents["PJSIP/b"] = stubAgent{mode: "noanswer"}
			targets := []string{"PJSIP/b"}
			if bridged {
				targets = []string{"PJSIP/a", "PJSIP/b"}
			}
			res := newResult()
			startStub(t, s, dialHandler(res, applets.DialSpec{Targets: targets, RingTimeout: 20 * time.Second}, false), nil)
			id := s.placeCall("inbound")
			if bridged {
				s.waitFor(t, "bridged", 3*time.Second, isReq("POST", "/bridges/"+id))
				time.Sleep(20 * time.Millisecond)
			} else {
				s.waitFor(t, "dial", 3*time.Second, func(r stubReq) bool { return strings.HasSuffix(r.Path, "/dial") })
			}
			s.hangup(id, 16, false)
			r, err := dialOutcome(t, res)
			if !errors.Is(err, applets.ErrHangup) {
				t.Fatalf("err %v", err)
			}
			if bridged && (r.Status != applets.Answered || r.TalkTime <= 0) {
				t.Errorf("result %+v", r)
			}
			checkClean(t, s)
			if !bridged && !s.has(isReq("POST", "/channels/"+id+"/ring")) {
				t.Error("caller heard no ringing")
			}
			if bridged && s.has(func(r stubReq) bool { return r.Method == "POST" && strings.HasSuffix(r.Path, "/answer") }) == false {
				t.Error("caller not answered before bridging")
			}
		})
	}
}

func TestStubOwnLegsNeverInbound(t *testing.T) {
	s := setup(t)
	s.stasisFirst = true
	s.agents["PJSIP/a"] = stubAgent{mode: "answer", ringFor: 20 * time.Millisecond, hangupAfter: 50 * time.Millisecond}
	var mu sync.Mutex
	var inbound []string
	res := newResult()
	inner := dialHandler(res, applets.DialSpec{Targets: []string{"PJSIP/a"}, RingTimeout: 5 * time.Second}, true)
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		mu.Lock()
		inbound = append(inbound, c.ID())
		mu.Unlock()
		inner.HandleCall(ctx, c, in)
	})
	hs := startStub(t, s, h, nil)
	s.placeCall("inbound")
	dialOutcome(t, res)
	// A leg of a dial that is over (or an earlier instance's) is hung up.
	s.mu.Lock()
	stray := &stubChan{id: "stray-leg", name: "PJSIP/x;1", state: "Down", args: []string{"dialed", "gone-call"}, inStasis: true, agent: &stubAgent{}, playbacks: map[string]bool{}}
	s.chans[stray.id] = stray
	s.mu.Unlock()
	s.chanEv("StasisStart", stray, map[string]any{"args": stray.args})
	s.waitFor(t, "stray hangup", 2*time.Second, isReq("DELETE", "/channels/stray-leg"))
	waitIdle(t, hs.app)
	mu.Lock()
	defer mu.Unlock()
	if len(inbound) != 1 {
		t.Fatalf("handler saw %v", inbound)
	}
}

func TestStubReconnectKeepsCall(t *testing.T) {
	s := setup(t)
	s.mediaDur["sound:long"] = 400 * time.Millisecond
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		// The websocket drops during this prompt; its end is lost with
		// the gap, so the guard ends it.
		_, err := c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:long"}})
		res.add(err)
		g, err := c.Gather(ctx, applets.GatherSpec{FirstTimeout: 3 * time.Second})
		res.add(g, err)
	})
	hs := startStub(t, s, h, func(o *Options) { o.ReconnectMin, o.ReconnectMax = 600*time.Millisecond, 600*time.Millisecond })
	id := s.placeCall("inbound")
	s.waitPlay(t, "sound:long")
	time.Sleep(50 * time.Millisecond)
	s.dropWebsockets()
	s.waitConnected(t)
	// the reconcile after the reconnect
	end := time.Now().Add(2 * time.Second)
	for s.count("GET", "/channels") < 2 && time.Now().Before(end) {
		time.Sleep(5 * time.Millisecond)
	}
	// The prompt ended in the gap; the resync found it gone.
	s.waitFor(t, "playback check", 3*time.Second, isReq("GET", "/playbacks/"))
	time.Sleep(50 * time.Millisecond)
	s.press(id, "5")
	res.wait(t, 5*time.Second)
	got := res.get()
	if got[0] != nil || got[1] != "5" || got[2] != nil {
		t.Fatalf("got %v", got)
	}
	h2 := hs.app.Health()
	if !h2.Connected || h2.Reconnects != 1 {
		t.Fatalf("health %+v", h2)
	}
}

func TestStubRestartEndsCalls(t *testing.T) {
	s := setup(t)
	res := newResult()
	var n atomic.Int32
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		if n.Add(1) > 1 {
			res.add(c.Answer(ctx))
			return
		}
		_ = c.Answer(ctx)
		_, err := c.Gather(ctx, applets.GatherSpec{FirstTimeout: 30 * time.Second})
		res.add(errors.Is(err, applets.ErrHangup), ctx.Err() != nil)
	})
	hs := startStub(t, s, h, nil)
	s.placeCall("inbound")
	s.waitFor(t, "answer", 2*time.Second, func(r stubReq) bool { return strings.HasSuffix(r.Path, "/answer") })
	s.restart()
	res.wait(t, 5*time.Second)
	if got := res.get(); got[0] != true || got[1] != true {
		t.Fatalf("got %v", got)
	}
	waitIdle(t, hs.app)
	// new calls work after the reconnect
	s.waitConnected(t)
	s.placeCall("inbound")
	res.wait(t, 5*time.Second)
	if got := res.get(); len(got) != 3 || got[2] != nil {
		t.Fatalf("got %v", got)
	}
}

func TestStubReconcilePicksUpMissedCall(t *testing.T) {
	s := setup(t)
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		res.add(c.ID(), in.Number, in.FlowName)
		_ = c.Hangup(ctx, "")
	})
	startStub(t, s, h, nil)
	s.dropWebsockets()
	// A call enters while the websocket is down: its StasisStart is lost.
	s.mu.Lock()
	ch := &stubChan{id: "missed.1", name: "PJSIP/m", state: "Ring", args: []string{"inbound", "flow=sales"}, exten: "5551230009", inStasis: true, playbacks: map[string]bool{}}
	s.chans[ch.id] = ch
	s.mu.Unlock()
	res.wait(t, 5*time.Second)
	if got := res.get(); got[0] != "missed.1" || got[1] != "5551230009" || got[2] != "sales" {
		t.Fatalf("got %v", got)
	}
}

func TestStubApplicationReplaced(t *testing.T) {
	s := setup(t)
	hs := startStub(t, s, HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {}), nil)
	s.replaceApp()
	end := time.Now().Add(3 * time.Second)
	for !hs.app.Health().Replaced {
		if time.Now().After(end) {
			t.Fatal("not reported")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.waitConnected(t) // it keeps trying
	for h := hs.app.Health(); h.Reconnects < 1 || !h.Connected; h = hs.app.Health() {
		if time.Now().After(end) {
			t.Fatalf("health %+v", h)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if h := hs.app.Health(); !h.Replaced || !strings.Contains(h.LastError, "replaced") {
		t.Fatalf("health %+v", h)
	}
}

func TestStubShutdownDrains(t *testing.T) {
	s := setup(t)
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		_, err := c.Gather(ctx, applets.GatherSpec{FirstTimeout: time.Minute})
		res.add(errors.Is(err, applets.ErrHangup))
	})
	hs := startStub(t, s, h, func(o *Options) { o.DrainTimeout = 300 * time.Millisecond })
	id := s.placeCall("inbound")
	s.waitFor(t, "answer", 2*time.Second, func(r stubReq) bool { return strings.HasSuffix(r.Path, "/answer") })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- hs.app.Shutdown(ctx)
	}()
	for !hs.app.draining.Load() {
		time.Sleep(time.Millisecond)
	}
	late := s.placeCall("inbound")
	s.waitFor(t, "continue", 2*time.Second, isReq("POST", "/channels/"+late+"/continue"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	if got := res.get(); got[0] != true {
		t.Fatalf("got %v", got)
	}
	if !s.has(isReq("DELETE", "/channels/"+id)) {
		t.Error("in-flight call not hung up after the drain")
	}
	select {
	case <-hs.done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run still running after Shutdown")
	}
}

func TestStubShutdownWaitsForCalls(t *testing.T) {
	s := setup(t)
	s.mediaDur["sound:bye"] = 200 * time.Millisecond
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		_, err := c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:bye"}})
		res.add(err)
		res.add(c.Hangup(ctx, "normal"))
	})
	hs := startStub(t, s, h, nil)
	s.placeCall("inbound")
	s.waitPlay(t, "sound:bye")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := res.get(); len(got) != 2 || got[0] != nil || got[1] != nil {
		t.Fatalf("got %v", got)
	}
}
