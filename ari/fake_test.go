package ari

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/ari/aritest"
)

// fakeHarness runs an App against aritest's fake Asterisk.
type fakeHarness struct {
	t    *testing.T
	srv  *aritest.Server
	app  *App
	done chan struct{}
}

// startFake starts a fake Asterisk and an App on it. At the end of the
// test the app stops first, then the fake, then goroutines must be back
// to where they were.
func startFake(t *testing.T, fo aritest.Options, h Handler, mod func(*Options), tune ...func(*guards)) *fakeHarness {
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
	end := time.Now().Add(5 * time.Second)
	for !fh.app.Health().Connected {
		if time.Now().After(end) {
			fh.t.Fatalf("not connected: %+v", fh.app.Health())
		}
		time.Sleep(2 * time.Millisecond)
	}
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

func tctx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
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

func TestFakeMenu(t *testing.T) {
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		res.add(in.Number, in.FlowName, c.Caller(), c.Called())
		if err := c.Answer(ctx); err != nil {
			res.add(err)
			return
		}
		d, err := c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:hello-world"}})
		res.add(d, err)
		g, err := c.Gather(ctx, applets.GatherSpec{Prompt: []applets.Media{"sound:skipped"}, MaxDigits: 2, FirstTimeout: time.Second})
		res.add(g, err)
		g, err = c.Gather(ctx, applets.GatherSpec{Prompt: []applets.Media{"sound:menu"}, FirstTimeout: 2 * time.Second})
		res.add(g, err)
		g, err = c.Gather(ctx, applets.GatherSpec{MaxDigits: 5, Terminator: "#", FirstTimeout: 2 * time.Second, InterTimeout: time.Second})
		res.add(g, err)
		d, err = c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"digits:42", "sound:vm-goodbye"}, BargeIn: "any"})
		res.add(d, err)
		g, err = c.Gather(ctx, applets.GatherSpec{FirstTimeout: 100 * time.Millisecond})
		res.add(g, errors.Is(err, applets.ErrTimeout))
		res.add(c.Hangup(ctx, "normal"))
	})
	fh := startFake(t, aritest.Options{TimeScale: 1, MediaDurations: map[string]time.Duration{
		"sound:hello-world": 300 * time.Millisecond, "sound:menu": 5 * time.Second}}, h, nil)
	caller := fh.call(aritest.CallSpec{Exten: "+15551230001", From: "5551239999", Args: []string{"inbound", "flow=support"}})
	ctx := tctx(t, 10*time.Second)
	if err := caller.WaitPlayback(ctx, "sound:hello-world"); err != nil {
		t.Fatal(err)
	}
	caller.Press("42") // typed ahead during the greeting
	if err := caller.WaitPlayback(ctx, "sound:menu"); err != nil {
		t.Fatal(err)
	}
	caller.Press("1") // barge-in
	time.Sleep(50 * time.Millisecond)
	caller.Press("42#")
	select {
	case <-caller.Done():
	case <-ctx.Done():
		t.Fatal("call not over")
	}
	res.wait(t, 5*time.Second)
	expect(t, res.get(), "+15551230001", "support", "5551239999", "+15551230001",
		"", nil, "42", nil, "1", nil, "42", nil, "", nil, "", true, nil)
	heard := strings.Join(caller.Heard(), " ")
	if strings.Contains(heard, "skipped") || !strings.Contains(heard, "sound:menu") {
		t.Errorf("heard %s", heard)
	}
	if n := len(fh.requests(func(r aritest.Request) bool {
		return r.Method == "DELETE" && strings.HasPrefix(r.Path, "/ari/playbacks/")
	})); n != 1 {
		t.Errorf("%d playbacks stopped, want 1 (the barged menu)", n)
	}
}

func TestFakeCallerHangsUpMidPlayback(t *testing.T) {
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		_, err := c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:demo-congrats"}})
		cancelled := false
		select {
		case <-ctx.Done():
			cancelled = true
		case <-time.After(2 * time.Second):
		}
		res.add(errors.Is(err, applets.ErrHangup), cancelled)
		_, err = c.Gather(ctx, applets.GatherSpec{})
		res.add(errors.Is(err, applets.ErrHangup))
	})
	fh := startFake(t, aritest.Options{TimeScale: 1, MediaDurations: map[string]time.Duration{"sound:demo-congrats": 30 * time.Second}}, h, nil)
	caller := fh.call(aritest.CallSpec{Exten: "100"})
	if err := caller.WaitPlayback(tctx(t, 5*time.Second), "sound:demo-congrats"); err != nil {
		t.Fatal(err)
	}
	caller.Hangup()
	res.wait(t, 5*time.Second)
	expect(t, res.get(), true, true, true)
}

func TestFakePlayFailures(t *testing.T) {
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		_, err := c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:no-such-file"}})
		res.add(errors.Is(err, ErrPlaybackFailed))
		_, err = c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"badscheme:foo", "hello-world"}})
		res.add(err)
		// A broken prompt does not cost the caller the menu.
		g, err := c.Gather(ctx, applets.GatherSpec{Prompt: []applets.Media{"sound:no-such-file"}, FirstTimeout: time.Second})
		res.add(g, err)
	})
	fh := startFake(t, aritest.Options{MissingMedia: []string{"sound:no-such-file"}}, h, nil, func(g *guards) { g.startWatchdog = 300 * time.Millisecond })
	caller := fh.call(aritest.CallSpec{Exten: "100"})
	// once the gather's broken prompt was tried
	end := time.Now().Add(5 * time.Second)
	for len(fh.requests(func(r aritest.Request) bool { return strings.Contains(r.Query, "no-such-file") })) < 2 {
		if time.Now().After(end) {
			t.Fatal("prompt not tried")
		}
		time.Sleep(time.Millisecond)
	}
	caller.Press("3")
	res.wait(t, 5*time.Second)
	expect(t, res.get(), true, nil, "3", nil)
	for _, r := range fh.srv.Requests() {
		if strings.Contains(r.Query, "badscheme") {
			t.Errorf("sent %s %s?%s", r.Method, r.Path, r.Query)
		}
	}
}

func TestFakeRecord(t *testing.T) {
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		r, err := c.Record(ctx, applets.RecordSpec{Name: "vm", MaxDuration: 30 * time.Second, MaxSilence: 2 * time.Second, Beep: true, FinishKey: "#"})
		res.add(r.Format, r.Duration > 0, err)
		res.add(r.Name)
		r, err = c.Record(ctx, applets.RecordSpec{Name: "vm", MaxDuration: 30 * time.Second, FinishKey: "#"})
		res.add(r.Duration > 0, err)
		// the # ended the recording and is not typed ahead
		_, err = c.Gather(ctx, applets.GatherSpec{FirstTimeout: 50 * time.Millisecond})
		res.add(errors.Is(err, applets.ErrTimeout))
		r, err = c.Record(ctx, applets.RecordSpec{Name: "vm", MaxDuration: 60 * time.Second, FinishKey: "#"})
		res.add(r.Duration > 0, errors.Is(err, applets.ErrHangup))
		res.add(r.Name)
	})
	fh := startFake(t, aritest.Options{TimeScale: 0.1}, h, nil)
	caller := fh.call(aritest.CallSpec{Exten: "200", Talk: 3 * time.Second})
	ctx := tctx(t, 10*time.Second)
	for i := 0; i < 3; i++ {
		if _, err := caller.WaitRecording(ctx); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 1:
			time.Sleep(150 * time.Millisecond) // 1.5 s simulated
			caller.Press("#")
		case 2:
			time.Sleep(200 * time.Millisecond)
			caller.Hangup()
		}
	}
	res.wait(t, 10*time.Second)
	got := res.get()
	expect(t, got[:3], "wav", true, nil)
	expect(t, got[4:8], true, nil, true, true)
	if got[8] != true {
		t.Fatalf("hang-up mid-record: %v", got)
	}
	stored := strings.Join(fh.srv.StoredRecordings(), " ")
	for _, n := range []any{got[3], got[9]} {
		if !strings.Contains(stored, n.(string)) {
			t.Errorf("%v not stored (%s)", n, stored)
		}
	}
}

type dialCase struct {
	name    string
	agents  map[string]aritest.AgentBehavior
	spec    applets.DialSpec
	want    applets.DialStatus
	target  string
	opts    aritest.Options
	noAns   bool // do not answer the caller before dialling
	agentBy bool // the agent ends the conversation
}

func TestFakeDial(t *testing.T) {
	ans := func(ring, hang time.Duration) aritest.AgentBehavior {
		return aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: ring, HangupAfter: hang}
	}
	cases := []dialCase{
		{name: "answered, agent hangs up first", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": ans(2*time.Second, 3*time.Second)},
			spec: applets.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 20 * time.Second}, want: applets.Answered, target: "PJSIP/tech1", agentBy: true},
		{name: "answered, caller not answered before, stasis first, recorded", noAns: true, opts: aritest.Options{CreateStasisDelay: -1},
			agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": ans(time.Second, 2*time.Second)},
			spec:   applets.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 20 * time.Second, Record: true, Music: "default"}, want: applets.Answered, target: "PJSIP/tech1", agentBy: true},
		{name: "answered, stasis late", opts: aritest.Options{CreateStasisDelay: 30 * time.Millisecond},
			agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": ans(time.Second, 2*time.Second)},
			spec:   applets.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 20 * time.Second}, want: applets.Answered, target: "PJSIP/tech1", agentBy: true},
		{name: "no answer", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": {Mode: aritest.AgentNoAnswer}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 6 * time.Second}, want: applets.NoAnswer},
		{name: "busy", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": {Mode: aritest.AgentBusy, HangupAfter: 5 * time.Second}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 15 * time.Second}, want: applets.Busy},
		{name: "congestion", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": {Mode: aritest.AgentCongestion, HangupAfter: 5 * time.Second}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 15 * time.Second}, want: applets.Failed},
		{name: "unknown endpoint", spec: applets.DialSpec{Targets: []string{"PJSIP/nobody"}, RingTimeout: 15 * time.Second}, want: applets.Failed},
		{name: "all busy", agents: map[string]aritest.AgentBehavior{"PJSIP/a": {Mode: aritest.AgentBusy}, "PJSIP/b": {Mode: aritest.AgentBusy, RingFor: time.Second}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a", "PJSIP/b"}, RingTimeout: 15 * time.Second}, want: applets.Busy},
		{name: "busy and no answer", agents: map[string]aritest.AgentBehavior{"PJSIP/a": {Mode: aritest.AgentBusy}, "PJSIP/b": {Mode: aritest.AgentNoAnswer}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a", "PJSIP/b"}, RingTimeout: 5 * time.Second}, want: applets.NoAnswer},
		{name: "first to answer wins", agents: map[string]aritest.AgentBehavior{
			"PJSIP/a": {Mode: aritest.AgentNoAnswer}, "PJSIP/b": ans(2*time.Second, 2*time.Second), "PJSIP/c": ans(6*time.Second, 2*time.Second), "PJSIP/d": {Mode: aritest.AgentBusy}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a", "PJSIP/b", "PJSIP/c", "PJSIP/d", "PJSIP/unknown"}, RingTimeout: 20 * time.Second}, want: applets.Answered, target: "PJSIP/b", agentBy: true},
		{name: "whisper accepted", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": {Mode: aritest.AgentAnswer, RingFor: time.Second, Keys: "1", KeysAfter: 3 * time.Second, HangupAfter: 6 * time.Second}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 20 * time.Second, Whisper: []applets.Media{"sound:call-for-acme"}, Accept: "1"}, want: applets.Answered, target: "PJSIP/tech1", agentBy: true},
		{name: "whisper rejected", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": {Mode: aritest.AgentAnswer, RingFor: time.Second, Keys: "9", KeysAfter: 3 * time.Second}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 20 * time.Second, Whisper: []applets.Media{"sound:call-for-acme"}, Accept: "1"}, want: applets.NoAnswer},
		{name: "whisper rejected by one, accepted by the other", agents: map[string]aritest.AgentBehavior{
			"PJSIP/a": {Mode: aritest.AgentAnswer, RingFor: time.Second, Keys: "9", KeysAfter: 3 * time.Second},
			"PJSIP/b": {Mode: aritest.AgentAnswer, RingFor: 8 * time.Second, Keys: "1", KeysAfter: 3 * time.Second, HangupAfter: 6 * time.Second}},
			spec: applets.DialSpec{Targets: []string{"PJSIP/a", "PJSIP/b"}, RingTimeout: 20 * time.Second, Whisper: []applets.Media{"sound:call-for-acme"}, Accept: "1"}, want: applets.Answered, target: "PJSIP/b", agentBy: true},
		{name: "whisper no key", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": ans(time.Second, 0)},
			spec: applets.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 20 * time.Second, Whisper: []applets.Media{"sound:call-for-acme"}, Accept: "1"}, want: applets.NoAnswer},
		{name: "whisper without accept", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": ans(time.Second, 3*time.Second)},
			spec: applets.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 20 * time.Second, Whisper: []applets.Media{"sound:call-for-acme"}}, want: applets.Answered, target: "PJSIP/tech1", agentBy: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := newResult()
			h := dialHandler(res, tc.spec, !tc.noAns)
			tune := func(g *guards) {
				if tc.name == "whisper no key" {
					g.acceptTimeout = 300 * time.Millisecond
				}
			}
			fh := startFake(t, tc.opts, h, nil, tune)
			for ep, b := range tc.agents {
				fh.srv.SetAgent(ep, b)
			}
			caller := fh.call(aritest.CallSpec{Exten: "300", From: "5551239999"})
			r, err := dialOutcome(t, res)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			if r.Status != tc.want || r.Target != tc.target {
				t.Fatalf("got %+v, want %s %s", r, tc.want, tc.target)
			}
			if r.Status == applets.Answered && (r.TalkTime <= 0 || r.Answered.IsZero()) {
				t.Errorf("no talk time: %+v", r)
			}
			if tc.spec.Record != (r.Recording != "") {
				t.Errorf("recording %q", r.Recording)
			}
			// The caller stays for the next step.
			if got := res.get(); len(got) < 3 || got[2] != nil {
				t.Errorf("play after the dial: %v", got)
			}
			checkFakeClean(t, fh, caller.ID())
			if tc.spec.Whisper != nil && r.Status == applets.Answered {
				if strings.Contains(strings.Join(caller.Heard(), " "), "call-for-acme") {
					t.Error("the caller heard the whisper")
				}
			}
		})
	}
}

// checkFakeClean: legs made with the caller as originator, never dialled
// before their StasisStart, and nothing left behind.
func checkFakeClean(t *testing.T, fh *fakeHarness, callerID string) {
	t.Helper()
	end := time.Now().Add(3 * time.Second)
	for {
		var left []string
		for _, ch := range fh.srv.Channels() {
			if !ch.Inbound {
				left = append(left, ch.ID)
			}
		}
		left = append(left, fh.srv.Bridges()...)
		if len(left) == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("left behind: %v", left)
		}
		time.Sleep(5 * time.Millisecond)
	}
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

func TestFakeDialCallerHangsUp(t *testing.T) {
	for _, bridged := range []bool{false, true} {
		name := "while ringing"
		if bridged {
			name = "while bridged"
		}
		t.Run(name, func(t *testing.T) {
			res := newResult()
			targets := []string{"PJSIP/a", "PJSIP/b"}
			fh := startFake(t, aritest.Options{}, dialHandler(res, applets.DialSpec{Targets: targets, RingTimeout: 30 * time.Second}, true), nil)
			fh.srv.SetAgent("PJSIP/a", aritest.AgentBehavior{Mode: aritest.AgentNoAnswer})
			if bridged {
				fh.srv.SetAgent("PJSIP/b", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: time.Second})
			} else {
				fh.srv.SetAgent("PJSIP/b", aritest.AgentBehavior{Mode: aritest.AgentNoAnswer})
			}
			caller := fh.call(aritest.CallSpec{Exten: "300"})
			ctx := tctx(t, 5*time.Second)
			if bridged {
				if ep, err := caller.WaitBridged(ctx); err != nil || ep != "PJSIP/b" {
					t.Fatalf("bridged with %q: %v", ep, err)
				}
				time.Sleep(50 * time.Millisecond)
			} else {
				for len(fh.requests(func(r aritest.Request) bool { return strings.HasSuffix(r.Path, "/dial") })) < 2 {
					time.Sleep(2 * time.Millisecond)
				}
			}
			caller.Hangup()
			r, err := dialOutcome(t, res)
			if !errors.Is(err, applets.ErrHangup) {
				t.Fatalf("err %v", err)
			}
			if bridged != (r.Status == applets.Answered) {
				t.Errorf("result %+v", r)
			}
			checkFakeClean(t, fh, caller.ID())
		})
	}
}

func TestFakeOwnLegsNeverInbound(t *testing.T) {
	var calls atomic.Int32
	res := newResult()
	inner := dialHandler(res, applets.DialSpec{Targets: []string{"PJSIP/a", "PJSIP/b"}, RingTimeout: 10 * time.Second, CallerID: "+15550009999"}, true)
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		calls.Add(1)
		inner.HandleCall(ctx, c, in)
	})
	fh := startFake(t, aritest.Options{}, h, nil)
	fh.srv.SetAgent("PJSIP/a", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: time.Second, HangupAfter: time.Second})
	fh.srv.SetAgent("PJSIP/b", aritest.AgentBehavior{Mode: aritest.AgentBusy})
	fh.call(aritest.CallSpec{Exten: "300"})
	if r, err := dialOutcome(t, res); err != nil || r.Status != applets.Answered {
		t.Fatalf("%+v %v", r, err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times", n)
	}
	for _, ch := range fh.srv.History() {
		if !ch.Inbound && ch.Vars["CALLERID(num)"] != "+15550009999" {
			t.Errorf("leg %s caller id %v", ch.ID, ch.Vars)
		}
	}
}

func TestFakeVarsAndSend(t *testing.T) {
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		res.add(c.SetVar(ctx, "CF_STATE", "greeting"))
		v, err := c.Var(ctx, "CF_STATE")
		res.add(v, err)
		v, err = c.Var(ctx, "CF_UNSET")
		res.add(v, err)
		res.add(c.Send(ctx, applets.Message{To: "pjsip:+15551234567@trunk", From: "+15550000000", Body: "hi"}))
		res.add(c.Hangup(ctx, "busy"))
		res.add(c.Answer(ctx) != nil)
	})
	fh := startFake(t, aritest.Options{}, h, func(o *Options) { o.EventFilter = false })
	fh.call(aritest.CallSpec{Exten: "400"})
	res.wait(t, 5*time.Second)
	got := res.get()
	expect(t, got[:6], nil, "greeting", nil, "", nil, nil)
	if got[7] != true {
		t.Errorf("answer after hangup: %v", got)
	}
	msgs := fh.srv.Messages()
	if len(msgs) != 1 || msgs[0].To != "pjsip:+15551234567@trunk" || msgs[0].Body != "hi" {
		t.Errorf("messages %+v", msgs)
	}
}

func TestFakeWebsocketDropMidCall(t *testing.T) {
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		g, err := c.Gather(ctx, applets.GatherSpec{MaxDigits: 2, FirstTimeout: 5 * time.Second, InterTimeout: 2 * time.Second})
		res.add(g, err)
		_, err = c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:thanks"}})
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
	res.wait(t, 5*time.Second)
	expect(t, res.get(), "12", nil, nil)
	if h := fh.app.Health(); h.ActiveCalls > 1 || !h.Connected {
		t.Errorf("health %+v", h)
	}
}

// A prompt that ends while the websocket is down: its PlaybackFinished is
// lost, and the resync after the reconnect finds the playback gone.
func TestFakePlaybackEndLostInGap(t *testing.T) {
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		start := time.Now()
		_, err := c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:short"}})
		res.add(err, time.Since(start) < 5*time.Second)
	})
	fh := startFake(t, aritest.Options{TimeScale: 1, MediaDurations: map[string]time.Duration{"sound:short": 100 * time.Millisecond}}, h,
		func(o *Options) { o.ReconnectMin, o.ReconnectMax = 500*time.Millisecond, 500*time.Millisecond })
	caller := fh.call(aritest.CallSpec{Exten: "500"})
	if err := caller.WaitPlayback(tctx(t, 5*time.Second), "sound:short"); err != nil {
		t.Fatal(err)
	}
	fh.srv.DropWebsockets()
	res.wait(t, 5*time.Second)
	expect(t, res.get(), nil, true)
}

// The agent answers while the websocket is down: the ANSWER is lost, and
// the resync finds the leg up and bridges it.
func TestFakeDialAnswerLostInGap(t *testing.T) {
	res := newResult()
	fh := startFake(t, aritest.Options{TimeScale: 1}, dialHandler(res, applets.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 10 * time.Second}, true),
		func(o *Options) { o.ReconnectMin, o.ReconnectMax = 500*time.Millisecond, 500*time.Millisecond })
	fh.srv.SetAgent("PJSIP/tech1", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 150 * time.Millisecond, HangupAfter: time.Second})
	caller := fh.call(aritest.CallSpec{Exten: "300"})
	end := time.Now().Add(5 * time.Second)
	for len(fh.requests(func(r aritest.Request) bool { return strings.HasSuffix(r.Path, "/dial") })) == 0 {
		if time.Now().After(end) {
			t.Fatal("never dialled")
		}
		time.Sleep(time.Millisecond)
	}
	fh.srv.DropWebsockets()
	if ep, err := caller.WaitBridged(tctx(t, 5*time.Second)); err != nil || ep != "PJSIP/tech1" {
		t.Fatalf("bridged with %q: %v", ep, err)
	}
	r, err := dialOutcome(t, res)
	if err != nil || r.Status != applets.Answered {
		t.Fatalf("%+v %v", r, err)
	}
	checkFakeClean(t, fh, caller.ID())
}

func TestFakeRestartMidCall(t *testing.T) {
	var n atomic.Int32
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		if n.Add(1) > 1 {
			_ = c.Answer(ctx)
			_, err := c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:hello-world"}})
			res.add(err)
			return
		}
		_ = c.Answer(ctx)
		_, err := c.Gather(ctx, applets.GatherSpec{FirstTimeout: time.Minute})
		res.add(errors.Is(err, applets.ErrHangup), context.Cause(ctx) != nil)
	})
	fh := startFake(t, aritest.Options{}, h, nil)
	caller := fh.call(aritest.CallSpec{Exten: "500"})
	if err := caller.WaitState(tctx(t, 5*time.Second), "Up"); err != nil {
		t.Fatal(err)
	}
	fh.srv.Restart()
	res.wait(t, 5*time.Second)
	expect(t, res.get(), true, true)
	waitIdle(t, fh.app)
	fh.waitConnected()
	fh.call(aritest.CallSpec{Exten: "500"})
	res.wait(t, 5*time.Second)
	expect(t, res.get(), true, true, nil)
}

func TestFakeApplicationReplaced(t *testing.T) {
	fh := startFake(t, aritest.Options{}, HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {}),
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
	if h := fh.app.Health(); !h.Replaced {
		t.Errorf("health %+v", h)
	}
}

func TestFakeShutdown(t *testing.T) {
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		if in.Number == "quick" {
			_, err := c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:bye"}})
			res.add("quick", err)
			_ = c.Hangup(ctx, "")
			return
		}
		_, err := c.Gather(ctx, applets.GatherSpec{FirstTimeout: time.Minute})
		res.add("slow", errors.Is(err, applets.ErrHangup))
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
	res.wait(t, time.Second)
	res.wait(t, time.Second)
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

// The reader never waits for a call: a handler that does not consume its
// events for a while loses none of them, and other calls go on meanwhile.
func TestFakeSlowHandlerLosesNothing(t *testing.T) {
	res := newResult()
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		if in.Number != "slow" {
			_, err := c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:hello-world"}})
			res.add("other", err)
			return
		}
		<-release // busy elsewhere (an HTTP look-up, say)
		g, err := c.Gather(ctx, applets.GatherSpec{MaxDigits: 100, FirstTimeout: time.Second, InterTimeout: 200 * time.Millisecond})
		res.add(g, err)
	})
	fh := startFake(t, aritest.Options{}, h, nil)
	caller := fh.call(aritest.CallSpec{Exten: "slow"})
	if err := caller.WaitState(tctx(t, 5*time.Second), "Up"); err != nil {
		t.Fatal(err)
	}
	keys := strings.Repeat("1234567890", 6)
	caller.Press(keys)
	fh.call(aritest.CallSpec{Exten: "other"})
	res.wait(t, 5*time.Second)
	expect(t, res.get(), "other", nil)
	close(release)
	res.wait(t, 5*time.Second)
	expect(t, res.get()[2:], keys, nil)
}

// A key pressed anywhere around a prompt's end reaches the next Gather.
func TestFakeKeysAroundPrompts(t *testing.T) {
	res := newResult()
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		_, err := c.Play(ctx, applets.PlaySpec{Media: []applets.Media{"sound:hello-world"}})
		g, err2 := c.Gather(ctx, applets.GatherSpec{Prompt: []applets.Media{"sound:no-such-file"}, FirstTimeout: 2 * time.Second})
		res.add(g, err, err2)
	})
	fh := startFake(t, aritest.Options{MissingMedia: []string{"sound:no-such-file"}}, h, nil)
	for i := 0; i < 60; i++ {
		caller := fh.call(aritest.CallSpec{Exten: "100"})
		if err := caller.WaitPlayback(tctx(t, 5*time.Second), "sound:hello-world"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i%20) * time.Millisecond)
		caller.Press("3")
		res.wait(t, 5*time.Second)
		got := res.get()
		if got[3*i] != "3" {
			t.Fatalf("call %d: %v", i, got[3*i:])
		}
	}
}
