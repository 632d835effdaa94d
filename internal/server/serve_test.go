package server

import (
	"context"
	"fmt"

	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/rs/zerolog"

	"github.com/callflow/callflow/agi/agitest"
	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/store"
)

// harness runs the real `serve` wiring against a fake Asterisk.
type harness struct {
	t       *testing.T
	ast     *aritest.Server
	cfg     *config.Config
	srv     *Server
	cancel  context.CancelFunc
	done    chan error
	mu      sync.Mutex
	records map[string]*flows.CallRecord
	notify  chan struct{}
	mail    *captureMail
	vms     *captureVoicemail
}

// repoTestdata holds the flows, sounds and golden files the whole
// repository shares.
const repoTestdata = "../../testdata"

// captured keeps what a service was handed, safe for concurrent calls.
type captured[T any] struct {
	mu    sync.Mutex
	items []T
}

func (c *captured[T]) add(v T) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items = append(c.items, v)
	return nil
}

func (c *captured[T]) all() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.items...)
}

type captureMail struct{ captured[applets.Email] }

func (m *captureMail) Send(ctx context.Context, e applets.Email) error { return m.add(e) }

type captureVoicemail struct{ captured[applets.Voicemail] }

func (c *captureVoicemail) SaveVoicemail(ctx context.Context, vm applets.Voicemail) error {
	return c.add(vm)
}

// exampleFlows copies the example flows with short timers: the same flows,
// so tests need not wait 20 s for each ring timeout.
func exampleFlows(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"basic-support.toml", "after-hours.toml"} {
		src, err := os.ReadFile(filepath.Join(repoTestdata, "flows", name))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.NewReplacer(`timeout = "5s"`, `timeout = "1s"`, `ring_timeout = "20s"`, `ring_timeout = "2s"`).Replace(string(src))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func startHarness(t *testing.T, opts aritest.Options, tweak ...func(*config.Config)) *harness {
	t.Helper()
	return startWith(t, harnessOptions{ast: opts, tweak: tweak})
}

// harnessOptions vary the harness: other flows, real services, more sinks.
type harnessOptions struct {
	ast      aritest.Options
	flowsDir string                            // default: the example flows
	services func(h *harness) applets.Services // default: capturing mail and voicemail
	sinks    []flows.TraceSink
	tweak    []func(*config.Config)
}

func startWith(t *testing.T, ho harnessOptions) *harness {
	t.Helper()
	base := runtime.NumGoroutine()
	opts := ho.ast
	if opts.DefaultMediaDuration == 0 {
		opts.DefaultMediaDuration = 50 * time.Millisecond
	}
	ast := aritest.NewServer(opts)
	cfg := config.Default()
	cfg.FlowsDir = ho.flowsDir
	if cfg.FlowsDir == "" {
		cfg.FlowsDir = exampleFlows(t)
	}
	cfg.ARI.URL = ast.URL()
	cfg.ARI.Username, cfg.ARI.Password = "callflow", "secret"
	cfg.ARI.ReconnectMin.UnmarshalTOMLValue("50ms")
	cfg.ARI.ReconnectMax.UnmarshalTOMLValue("200ms")
	cfg.Calls.DrainTimeout.UnmarshalTOMLValue("2s")
	cfg.DefaultCountry = "91"
	cfg.Database = filepath.Join(t.TempDir(), "callflow.db")
	cfg.RecordingsDir = ""
	cfg.HTTP.Listen = ""
	for _, f := range ho.tweak {
		f(cfg)
	}
	h := &harness{t: t, ast: ast, cfg: cfg, records: map[string]*flows.CallRecord{}, notify: make(chan struct{}, 1000),
		mail: &captureMail{}, vms: &captureVoicemail{}}
	sink := flows.TraceSinkFunc(func(r *flows.CallRecord) {
		h.mu.Lock()
		h.records[r.ID] = r
		h.mu.Unlock()
		h.notify <- struct{}{}
	})
	log := zerolog.New(io.Discard)
	if testing.Verbose() {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.DebugLevel)
	}
	svc := applets.Services{Mail: h.mail, Voicemail: h.vms}
	if ho.services != nil {
		svc = ho.services(h)
	}
	srv, err := New(cfg, Deps{Log: log, Services: svc, Sinks: append([]flows.TraceSink{sink}, ho.sinks...)})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.srv.Run(ctx) }()
	if h.srv.ARI() != nil {
		h.waitConnected()
	}
	if cfg.AGI.Listen != "" {
		waitUntil(t, "AGI listening", func() bool {
			c, err := net.Dial("tcp", cfg.AGI.Listen)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
	// With several nodes in one test, the goroutines are counted once, after
	// the last node stopped: the first node's cleanup runs last, and a node
	// started later counts the earlier node's goroutines, which may grow.
	_, later := leakChecked.LoadOrStore(t, true)
	t.Cleanup(func() {
		h.stop()
		ast.Close()
		if !later {
			leakChecked.Delete(t)
			waitGoroutines(t, base)
		}
	})
	return h
}

// leakChecked holds the tests whose first node counts the goroutines left.
var leakChecked sync.Map

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Fatal("serve did not stop")
	}
}

func (h *harness) waitConnected() {
	h.t.Helper()
	waitUntil(h.t, "ARI connected", func() bool { return h.srv.ARI().Health().Connected })
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines left (started with %d):\n%s", runtime.NumGoroutine(), base, buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// call places a call and returns its handle.
func (h *harness) call(spec aritest.CallSpec) *aritest.Caller {
	h.t.Helper()
	if spec.From == "" {
		spec.From = "+15557654321"
	}
	c, err := h.ast.PlaceCall(context.Background(), spec)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// record waits for the call's record.
func (h *harness) record(id string) *flows.CallRecord {
	h.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		h.mu.Lock()
		r := h.records[id]
		h.mu.Unlock()
		if r != nil {
			return r
		}
		select {
		case <-h.notify:
		case <-deadline:
			h.t.Fatalf("no record for call %s", id)
		}
	}
}

func stepPath(r *flows.CallRecord) string {
	var s []string
	for _, st := range r.Steps {
		s = append(s, st.Step+":"+st.Outcome)
	}
	return strings.Join(s, " ")
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const support = "+914430001234"

// scenario is one caller's way through the example support flow: the key
// pressed at each menu prompt ("" stays silent) and what every dial gets.
type scenario struct {
	name  string
	keys  []string
	dial  string // answered, no_answer, busy (every dial of the call)
	want  string
	vm    string // the mailbox that gets a message
	email bool
}

var supportScenarios = []scenario{
	{"key 1, tech answers", []string{"1"}, "answered", "welcome:done menu:1 tech:answered", "", false},
	{"key 1, nobody answers: voicemail and email", []string{"1"}, "no_answer",
		"welcome:done menu:1 tech:no_answer tech-vm:recorded notify:sent goodbye:hangup", "tech", true},
	{"key 1, all busy", []string{"1"}, "busy",
		"welcome:done menu:1 tech:busy tech-vm:recorded notify:sent goodbye:hangup", "tech", true},
	{"key 2, billing answers", []string{"2"}, "answered", "welcome:done menu:2 billing:answered", "", false},
	{"key 2, billing busy", []string{"2"}, "busy",
		"welcome:done menu:2 billing:busy billing-vm:recorded goodbye:hangup", "billing", false},
	{"key 3, sales no answer", []string{"3"}, "no_answer",
		"welcome:done menu:3 sales:no_answer sales-vm:recorded goodbye:hangup", "sales", false},
	{"timeout then 3", []string{"", "3"}, "answered",
		"welcome:done menu:timeout invalid:done menu:3 sales:answered", "", false},
	{"invalid then 2", []string{"9", "2"}, "answered",
		"welcome:done menu:invalid invalid:done menu:2 billing:answered", "", false},
	{"silent caller", []string{"", "", ""}, "",
		"welcome:done menu:timeout invalid:done menu:timeout invalid:done menu:max_retries goodbye:hangup", "", false},
}

var agentEndpoints = []string{"PJSIP/tech1", "PJSIP/tech2", "PJSIP/billing1", "PJSIP/sales1", "PJSIP/sales2"}

// The same scenarios over ARI (Stasis) and FastAGI.
func TestSupportFlowOverBothTransports(t *testing.T) {
	for _, transport := range []string{"ari", "agi"} {
		for _, sc := range supportScenarios {
			t.Run(transport+"/"+sc.name, func(t *testing.T) {
				var h *harness
				var rec *flows.CallRecord
				if transport == "ari" {
					h, rec = runARIScenario(t, sc)
				} else {
					h, rec = runAGIScenario(t, sc)
				}
				if got := stepPath(rec); got != sc.want {
					t.Errorf("path\n got  %s\n want %s", got, sc.want)
				}
				if rec.Flow != "Basic Support Flow" || rec.Transport != transport {
					t.Errorf("flow %q transport %q", rec.Flow, rec.Transport)
				}
				vms := h.vms.all()
				if sc.vm == "" && len(vms) != 0 {
					t.Errorf("unexpected voicemail %+v", vms)
				}
				if sc.vm != "" && (len(vms) != 1 || vms[0].Mailbox != sc.vm || vms[0].Recording.Duration <= 0) {
					t.Fatalf("voicemails %+v, want one in %s", vms, sc.vm)
				}
				mails := h.mail.all()
				if sc.email != (len(mails) == 1) {
					t.Errorf("emails %+v", mails)
				} else if sc.email && (len(mails[0].Attachments) != 1 || mails[0].Attachments[0].Recording != vms[0].Recording.Name) {
					t.Errorf("email without the voicemail: %+v", mails[0])
				}
			})
		}
	}
}

func runARIScenario(t *testing.T, sc scenario) (*harness, *flows.CallRecord) {
	h := startHarness(t, aritest.Options{})
	for _, ep := range agentEndpoints {
		switch sc.dial {
		case "answered":
			h.ast.SetAgent(ep, aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 300 * time.Millisecond, HangupAfter: 500 * time.Millisecond})
		case "busy":
			h.ast.SetAgent(ep, aritest.AgentBehavior{Mode: aritest.AgentBusy})
		default:
			h.ast.SetAgent(ep, aritest.AgentBehavior{Mode: aritest.AgentNoAnswer})
		}
	}
	caller := h.call(aritest.CallSpec{Exten: support, Talk: 2 * time.Second})
	ctx := ctxT(t)
	for _, k := range sc.keys {
		if err := caller.WaitPlayback(ctx, "sound:custom/acme-menu"); err != nil {
			t.Fatal(err)
		}
		if k != "" {
			caller.Press(k)
		}
	}
	select {
	case <-caller.Done():
	case <-ctx.Done():
		t.Fatal("call never ended")
	}
	rec := h.record(caller.ID())
	if sc.vm != "" {
		if vms := h.vms.all(); len(vms) == 1 && !contains(h.ast.StoredRecordings(), vms[0].Recording.Name) {
			t.Errorf("recording %s not stored in Asterisk (%v)", vms[0].Recording.Name, h.ast.StoredRecordings())
		}
	}
	for _, ch := range h.ast.History() {
		if ch.SampleRate != 8000 {
			t.Errorf("channel %s (%s) created without originator or formats", ch.ID, ch.Endpoint)
		}
	}
	waitUntil(t, "nothing left in Asterisk", func() bool { return len(h.ast.Channels()) == 0 && len(h.ast.Bridges()) == 0 })
	return h, rec
}

// agiKeys turns key-per-menu-visit into the FastAGI peer's key per
// playing or listening command: the greeting, then for each menu visit
// the prompt (a key pressed there ends it) or the prompt and a wait for a
// digit, with the "invalid input" greeting between visits.
func agiKeys(keys []string) []string {
	out := []string{""} // welcome
	for i, k := range keys {
		if i > 0 {
			out = append(out, "") // invalid
		}
		if k != "" {
			out = append(out, k)
		} else {
			out = append(out, "", "")
		}
	}
	return out
}

func runAGIScenario(t *testing.T, sc scenario) (*harness, *flows.CallRecord) {
	h := startHarness(t, aritest.Options{}, func(c *config.Config) {
		c.ARI.Enabled = false
		c.AGI.Listen = freePort(t)
		c.RecordingsDir = t.TempDir()
	})
	var agents []agitest.Agent
	for range 3 {
		switch sc.dial {
		case "answered":
			agents = append(agents, agitest.Agent{Status: "ANSWER", Talk: 40 * time.Second})
		case "busy":
			agents = append(agents, agitest.Agent{Status: "BUSY"})
		default:
			agents = append(agents, agitest.Agent{Status: "NOANSWER"})
		}
	}
	id := fmt.Sprintf("1795237640.%d", time.Now().UnixNano()%100000)
	ses, err := agitest.Dial(ctxT(t), h.cfg.AGI.Listen, agitest.Script{
		Env:       map[string]string{"agi_dnid": support, "agi_extension": support, "agi_uniqueid": id},
		Keys:      agiKeys(sc.keys),
		Agents:    agents,
		RecordFor: 2 * time.Second,
		RecordDir: h.cfg.RecordingsDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ses.Close()
	if err := ses.Wait(ctxT(t)); err != nil {
		t.Logf("session: %v", err)
	}
	return h, h.record(id)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestServeAfterHoursFlow(t *testing.T) {
	h := startHarness(t, aritest.Options{})
	caller := h.call(aritest.CallSpec{Exten: "+914430009999", Talk: 3 * time.Second})
	<-caller.Done()
	rec := h.record(caller.ID())
	if got, want := stepPath(rec), "hours:done leave-message:done voicemail:recorded notify:sent goodbye:hangup"; got != want {
		t.Errorf("path %s, want %s", got, want)
	}
	if vms := h.vms.all(); len(vms) != 1 || vms[0].Mailbox != "after-hours" || vms[0].Caller != "+15557654321" {
		t.Errorf("voicemails %+v", vms)
	}
}

func TestServeNumberWithoutFlowHearsNotInService(t *testing.T) {
	h := startHarness(t, aritest.Options{})
	caller := h.call(aritest.CallSpec{Exten: "+914430000000"})
	<-caller.Done()
	rec := h.record(caller.ID())
	if rec.Outcome != "not_in_service" || !contains(caller.Heard(), "sound:ss-noservice") {
		t.Errorf("outcome %q, heard %v", rec.Outcome, caller.Heard())
	}
}

func TestServeFlowChosenByStasisArgument(t *testing.T) {
	h := startHarness(t, aritest.Options{})
	caller := h.call(aritest.CallSpec{Exten: "s", Args: []string{"flow=After-Hours Flow"}, Talk: time.Second})
	<-caller.Done()
	if rec := h.record(caller.ID()); rec.Flow != "After-Hours Flow" {
		t.Errorf("flow %q", rec.Flow)
	}
	caller = h.call(aritest.CallSpec{Exten: "s", Args: []string{"inbound", "04430009999"}, Talk: time.Second})
	<-caller.Done()
	if rec := h.record(caller.ID()); rec.Flow != "After-Hours Flow" {
		t.Errorf("by positional national number: flow %q", rec.Flow)
	}
}

// The caller hangs up at every kind of moment; each call ends cleanly with
// its record, and nothing is left in Asterisk.
func TestServeCallerHangsUpAnyTime(t *testing.T) {
	cases := []struct {
		name    string
		agents  map[string]aritest.AgentBehavior
		setup   func(ctx context.Context, c *aritest.Caller) error
		last    string
		voice   bool
		abandon bool
	}{
		{"during the greeting", nil, func(ctx context.Context, c *aritest.Caller) error {
			return c.WaitPlayback(ctx, "sound:custom/acme-welcome")
		}, "welcome", false, true},
		{"during the menu", nil, func(ctx context.Context, c *aritest.Caller) error {
			return c.WaitPlayback(ctx, "sound:custom/acme-menu")
		}, "menu", false, true},
		{"while agents ring", map[string]aritest.AgentBehavior{"PJSIP/tech1": {Mode: aritest.AgentNoAnswer}, "PJSIP/tech2": {Mode: aritest.AgentNoAnswer}},
			func(ctx context.Context, c *aritest.Caller) error {
				if err := c.WaitPlayback(ctx, "sound:custom/acme-menu"); err != nil {
					return err
				}
				c.Press("1")
				time.Sleep(300 * time.Millisecond)
				return nil
			}, "tech", false, true},
		{"while bridged", map[string]aritest.AgentBehavior{"PJSIP/tech1": {Mode: aritest.AgentAnswer, RingFor: 100 * time.Millisecond}, "PJSIP/tech2": {Mode: aritest.AgentNoAnswer}},
			func(ctx context.Context, c *aritest.Caller) error {
				if err := c.WaitPlayback(ctx, "sound:custom/acme-menu"); err != nil {
					return err
				}
				c.Press("1")
				_, err := c.WaitBridged(ctx)
				time.Sleep(200 * time.Millisecond)
				return err
			}, "tech", false, false},
		{"while recording", map[string]aritest.AgentBehavior{"PJSIP/billing1": {Mode: aritest.AgentBusy}},
			func(ctx context.Context, c *aritest.Caller) error {
				if err := c.WaitPlayback(ctx, "sound:custom/acme-menu"); err != nil {
					return err
				}
				c.Press("2")
				if _, err := c.WaitRecording(ctx); err != nil {
					return err
				}
				time.Sleep(1500 * time.Millisecond) // say something first
				return nil
			}, "billing-vm", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := startHarness(t, aritest.Options{})
			for ep, b := range c.agents {
				h.ast.SetAgent(ep, b)
			}
			caller := h.call(aritest.CallSpec{Exten: support, Talk: 10 * time.Second})
			if err := c.setup(ctxT(t), caller); err != nil {
				t.Fatal(err)
			}
			caller.Hangup()
			rec := h.record(caller.ID())
			if rec.Outcome != "hangup" || rec.LastStep != c.last || rec.Abandoned != c.abandon {
				t.Errorf("outcome %q last step %q abandoned %v: %s", rec.Outcome, rec.LastStep, rec.Abandoned, stepPath(rec))
			}
			if vms := h.vms.all(); c.voice != (len(vms) == 1) {
				t.Errorf("voicemails %+v", vms)
			}
			waitUntil(t, "nothing left in Asterisk", func() bool { return len(h.ast.Channels()) == 0 && len(h.ast.Bridges()) == 0 })
		})
	}
}

func TestServeSurvivesWebsocketDropAndRestart(t *testing.T) {
	h := startHarness(t, aritest.Options{})
	h.ast.SetAgent("PJSIP/billing1", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 100 * time.Millisecond})

	// A call in the menu when the websocket drops goes on after reconnect.
	caller := h.call(aritest.CallSpec{Exten: support})
	ctx := ctxT(t)
	if err := caller.WaitPlayback(ctx, "sound:custom/acme-menu"); err != nil {
		t.Fatal(err)
	}
	h.ast.DropWebsockets()
	waitUntil(t, "reconnect", func() bool { return h.srv.ARI().Health().Reconnects > 0 && h.srv.ARI().Health().Connected })
	caller.Hangup()
	rec := h.record(caller.ID())
	if rec.Ended.IsZero() {
		t.Fatal("no end")
	}

	// A call in progress when Asterisk restarts is ended and logged.
	caller = h.call(aritest.CallSpec{Exten: support})
	if err := caller.WaitPlayback(ctx, "sound:custom/acme-menu"); err != nil {
		t.Fatal(err)
	}
	h.ast.Restart()
	rec = h.record(caller.ID())
	if rec.Outcome != "hangup" {
		t.Errorf("after restart: outcome %q", rec.Outcome)
	}

	// New calls work once reconnected.
	waitUntil(t, "reconnect after restart", func() bool { return h.srv.ARI().Health().Connected })
	caller = h.call(aritest.CallSpec{Exten: support})
	if err := caller.WaitPlayback(ctx, "sound:custom/acme-menu"); err != nil {
		t.Fatal(err)
	}
	caller.Press("2")
	if _, err := caller.WaitBridged(ctx); err != nil {
		t.Fatal(err)
	}
	caller.Hangup()
	if rec := h.record(caller.ID()); stepPath(rec) != "welcome:done menu:2 billing:answered" {
		t.Errorf("after reconnect: %s", stepPath(rec))
	}
}

func TestServeShutdownDrainsCalls(t *testing.T) {
	h := startHarness(t, aritest.Options{}, func(c *config.Config) { c.Calls.DrainTimeout.UnmarshalTOMLValue("30s") })
	// A call in progress when shutdown starts finishes its flow.
	caller := h.call(aritest.CallSpec{Exten: "+914430009999", Talk: time.Second})
	if err := caller.WaitPlayback(ctxT(t), "sound:custom/acme-hours"); err != nil {
		t.Fatal(err)
	}
	h.cancel() // SIGTERM
	waitUntil(t, "draining", func() bool { return h.srv.ARI().Health().Draining })
	// A new call while draining goes back to the dialplan's fallback.
	late, err := h.ast.PlaceCall(context.Background(), aritest.CallSpec{Exten: support})
	if err != nil {
		late = nil // the app is gone already: Stasis() fails, the fallback runs
	}
	rec := h.record(caller.ID())
	if got := stepPath(rec); got != "hours:done leave-message:done voicemail:recorded notify:sent goodbye:hangup" {
		t.Errorf("draining call: %s", got)
	}
	if late != nil {
		waitUntil(t, "the late call handed back to the dialplan", func() bool {
			_, ok := late.Continued()
			return ok
		})
	}
	h.stop()
}

// Over FastAGI the caller hangs up at every command of the longest path
// in turn: every call ends with its record, and no session is left.
func TestAGIHangupAtEveryCommand(t *testing.T) {
	h := startHarness(t, aritest.Options{}, func(c *config.Config) {
		c.ARI.Enabled = false
		c.AGI.Listen = freePort(t)
		c.RecordingsDir = t.TempDir()
	})
	script := func(id string, hangupAt int) agitest.Script {
		return agitest.Script{
			Env:       map[string]string{"agi_dnid": support, "agi_uniqueid": id},
			Keys:      agiKeys([]string{"1"}),
			Agents:    []agitest.Agent{{Status: "NOANSWER"}},
			RecordFor: 2 * time.Second,
			RecordDir: h.cfg.RecordingsDir,
			HangupAt:  hangupAt,
		}
	}
	full, err := agitest.Dial(ctxT(t), h.cfg.AGI.Listen, script("full.1", 0))
	if err != nil {
		t.Fatal(err)
	}
	full.Wait(ctxT(t))
	full.Close()
	n := len(full.Commands())
	if rec := h.record("full.1"); rec.Outcome != "completed" || n < 8 {
		t.Fatalf("full run: %s after %d commands", rec.Outcome, n)
	}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("cut.%d", i)
		ses, err := agitest.Dial(ctxT(t), h.cfg.AGI.Listen, script(id, i))
		if err != nil {
			t.Fatal(err)
		}
		ses.Wait(ctxT(t))
		ses.Close()
		rec := h.record(id)
		if rec.Ended.IsZero() || len(rec.Steps) == 0 {
			t.Errorf("hang-up at command %d (%s): incomplete record %+v", i, full.Commands()[i-1], rec)
		}
		if i < n-1 && rec.Outcome != "hangup" {
			t.Errorf("hang-up at command %d (%s): outcome %q", i, full.Commands()[i-1], rec.Outcome)
		}
	}
}

// A peer that sends garbage or stops answering ends the call with a
// record, not a stuck session.
func TestAGIBadPeer(t *testing.T) {
	h := startHarness(t, aritest.Options{}, func(c *config.Config) {
		c.ARI.Enabled = false
		c.AGI.Listen = freePort(t)
		c.AGI.CommandTimeout.UnmarshalTOMLValue("300ms")
	})
	for _, sc := range []agitest.Script{
		{Env: map[string]string{"agi_dnid": support, "agi_uniqueid": "bad.1"}, MalformedAt: 2},
		{Env: map[string]string{"agi_dnid": support, "agi_uniqueid": "bad.2"}, SilentAt: 1},
	} {
		ses, err := agitest.Dial(ctxT(t), h.cfg.AGI.Listen, sc)
		if err != nil {
			t.Fatal(err)
		}
		ses.Wait(ctxT(t))
		ses.Close()
		if rec := h.record(sc.Env["agi_uniqueid"]); rec.Ended.IsZero() {
			t.Errorf("%s: no end", sc.Env["agi_uniqueid"])
		}
	}
}

// The whole of `serve` — database, web, metrics — on one call.
func TestServeWiresStoreWebAndMetrics(t *testing.T) {
	base := runtime.NumGoroutine()
	ast := aritest.NewServer(aritest.Options{DefaultMediaDuration: 20 * time.Millisecond})
	defer ast.Close()
	cfg := serveConfig(t, ast)
	cfg.HTTP.Listen = freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, cfg, zerolog.New(io.Discard)) }()

	var caller *aritest.Caller
	waitUntil(t, "serve up", func() bool {
		c, err := ast.PlaceCall(context.Background(), aritest.CallSpec{Exten: "+914430009999", Talk: time.Second})
		caller = c
		return err == nil
	})
	<-caller.Done()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + cfg.HTTP.Listen + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitUntil(t, "the call counted", func() bool {
		_, body := get("/metrics")
		return strings.Contains(body, `callflow_calls_total{flow="After-Hours Flow",outcome="completed",transport="ari"} 1`)
	})
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, `"ok": true`) {
		t.Errorf("healthz %d %s", code, body)
	}
	if code, _ := get("/voicemails"); code != 200 { // the login page after a redirect
		t.Errorf("inbox %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	st, err := store.Open(context.Background(), cfg.Database, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	calls, n, err := st.ListCalls(context.Background(), store.CallFilter{Scope: store.AllWorkspaces()})
	if err != nil || n != 1 || calls[0].Flow != "After-Hours Flow" {
		t.Fatalf("calls in the database: %d %+v %v", n, calls, err)
	}
	call, err := st.GetCall(context.Background(), calls[0].ID, store.AllWorkspaces())
	if err != nil || len(call.Steps) != 5 {
		t.Errorf("steps stored: %+v %v", call.Steps, err)
	}
	vms, _, err := st.ListVoicemails(context.Background(), store.VoicemailFilter{Scope: store.AllWorkspaces()})
	if err != nil || len(vms) != 1 || vms[0].Mailbox != "after-hours" {
		t.Errorf("voicemails in the database: %+v %v", vms, err)
	}
	st.Close()

	// The database is lost (say the write never happened): at the next
	// start the voicemail is found again in Asterisk's stored recordings.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(cfg.Database + suffix)
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- runServe(ctx, cfg, zerolog.New(io.Discard)) }()
	waitUntil(t, "serve up again", func() bool { code, _ := get("/healthz"); return code == 200 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(context.Background(), cfg.Database, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	vms, _, err = st.ListVoicemails(context.Background(), store.VoicemailFilter{Scope: store.AllWorkspaces()})
	if err != nil || len(vms) != 1 || vms[0].Mailbox != "after-hours" || !vms[0].Recovered {
		t.Errorf("voicemail not recovered at start-up: %+v %v", vms, err)
	}
	st.Close()
	ast.Close()
	waitGoroutines(t, base)
}

// The database is locked by another process while calls run: the calls
// are not held up, and every record arrives once the lock is gone.
// runServe builds the server from cfg and runs it until ctx ends, as
// `callflow serve` does.
func runServe(ctx context.Context, cfg *config.Config, log zerolog.Logger) error {
	srv, err := New(cfg, Deps{Log: log})
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// serveConfig runs the whole of serve on the example flows against ast,
// with a database of its own and no web server.
func serveConfig(t *testing.T, ast *aritest.Server) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.FlowsDir = exampleFlows(t)
	cfg.Database = filepath.Join(t.TempDir(), "callflow.db")
	cfg.DefaultCountry = "91"
	cfg.ARI.URL = ast.URL()
	cfg.ARI.Password = "secret"
	cfg.HTTP.Listen = ""
	cfg.RecordingsDir = ""
	return cfg
}
