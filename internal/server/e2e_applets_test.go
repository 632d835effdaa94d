package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/speech"
	"github.com/callflow/callflow/store"
	"github.com/callflow/callflow/webhooks"
)

// writeFlows writes flow files into a new directory.
func writeFlowDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func hangupWhenDone(t *testing.T, c *aritest.Caller) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("call never ended")
	}
}

func answerQuick() aritest.AgentBehavior {
	return aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 100 * time.Millisecond, HangupAfter: 200 * time.Millisecond}
}

const rrFlow = `
name = "RR"
numbers = ["+914430000001"]
[[steps]]
id = "sales"
applet = "round_robin"
to = ["PJSIP/alice", "PJSIP/bob", "PJSIP/carol"]
ring_timeout = "2s"
`

// Round robin takes turns across calls and keeps its place across a
// restart: the position lives in SQLite.
func TestRoundRobinSurvivesRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "cf.db")
	dir := writeFlowDir(t, map[string]string{"rr.toml": rrFlow})
	winners := func(calls int) []string {
		st, err := store.Open(context.Background(), db, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		h := startWith(t, harnessOptions{flowsDir: dir, services: func(*harness) applets.Services { return applets.Services{Counters: st} }})
		defer h.stop()
		for _, ep := range []string{"PJSIP/alice", "PJSIP/bob", "PJSIP/carol"} {
			h.ast.SetAgent(ep, answerQuick())
		}
		var out []string
		for range calls {
			c := h.call(aritest.CallSpec{Exten: "+914430000001"})
			hangupWhenDone(t, c)
			rec := h.record(c.ID())
			if len(rec.Dials) != 1 {
				t.Fatalf("dials %+v", rec.Dials)
			}
			out = append(out, rec.Dials[0].Target)
		}
		return out
	}
	first := winners(2)
	second := winners(2)
	got := strings.Join(append(first, second...), " ")
	if got != "PJSIP/alice PJSIP/bob PJSIP/carol PJSIP/alice" {
		t.Errorf("turns %s", got)
	}
}

// Ring in order: the first agent rings out, the second answers.
func TestRingInOrderHunts(t *testing.T) {
	dir := writeFlowDir(t, map[string]string{"hunt.toml": `
name = "Hunt"
numbers = ["+914430000002"]
[[steps]]
id = "hunt"
applet = "ring_in_order"
to = [{ target = "PJSIP/alice", ring_timeout = "1s" }, { target = "PJSIP/bob", ring_timeout = "3s" }]
`})
	h := startWith(t, harnessOptions{flowsDir: dir})
	h.ast.SetAgent("PJSIP/alice", aritest.AgentBehavior{Mode: aritest.AgentNoAnswer})
	h.ast.SetAgent("PJSIP/bob", answerQuick())
	c := h.call(aritest.CallSpec{Exten: "+914430000002"})
	hangupWhenDone(t, c)
	rec := h.record(c.ID())
	if stepPath(rec) != "hunt:answered" || rec.Dials[len(rec.Dials)-1].Target != "PJSIP/bob" {
		t.Errorf("%s %+v", stepPath(rec), rec.Dials)
	}
}

// passthru against a real local HTTP server that answers, one that is
// slow and one that is down; bid against three local buyers.
func TestHTTPAppletsAgainstLocalServers(t *testing.T) {
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"outcome": "vip", "tags": ["gold"], "vars": {"account": "42"}}`)
	}))
	defer good.Close()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	buyer := func(bid float64, delay time.Duration, dest string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"bid": bid, "destination": dest})
		}))
	}
	late := buyer(50, 3*time.Second, "PJSIP/late")
	low := buyer(5, 0, "PJSIP/low")
	win := buyer(20, 0, "PJSIP/winner")
	defer late.Close()
	defer low.Close()
	defer win.Close()

	passthru := func(name, number, url string) string {
		return fmt.Sprintf(`
name = %q
numbers = [%q]
[[steps]]
id = "lookup"
applet = "passthru"
url = %q
timeout = "500ms"
outcomes = ["vip"]
on = { vip = "vip", success = "bye", failed = "bye" }
[[steps]]
id = "vip"
applet = "hangup"
[[steps]]
id = "bye"
applet = "hangup"
`, name, number, url+"/lookup")
	}
	dir := writeFlowDir(t, map[string]string{
		"good.toml": passthru("Good", "+914430000011", good.URL),
		"slow.toml": passthru("Slow", "+914430000012", slow.URL),
		"down.toml": passthru("Down", "+914430000013", downURL),
		"bid.toml": fmt.Sprintf(`
name = "Bid"
numbers = ["+914430000014"]
[[steps]]
id = "auction"
applet = "bid"
floor = 10.0
deadline = "1s"
ring_timeout = "2s"
buyers = [
  { name = "late", ping = %q, destination = "PJSIP/late" },
  { name = "low", ping = %q, destination = "PJSIP/low" },
  { name = "win", ping = %q, destination = "PJSIP/winner" },
]
on = { no_bid = "bye" }
[[steps]]
id = "bye"
applet = "hangup"
`, late.URL, low.URL, win.URL),
	})
	h := startWith(t, harnessOptions{flowsDir: dir, services: func(*harness) applets.Services {
		return applets.Services{HTTP: &http.Client{}}
	}})
	h.ast.SetAgent("PJSIP/winner", answerQuick())
	for _, c := range []struct{ number, want string }{
		{"+914430000011", "lookup:vip vip:hangup"},
		{"+914430000012", "lookup:failed bye:hangup"},
		{"+914430000013", "lookup:failed bye:hangup"},
		{"+914430000014", "auction:answered"},
	} {
		call := h.call(aritest.CallSpec{Exten: c.number})
		hangupWhenDone(t, call)
		rec := h.record(call.ID())
		if got := stepPath(rec); got != c.want {
			t.Errorf("%s: %s, want %s", c.number, got, c.want)
		}
		if c.number == "+914430000011" && (rec.Vars["account"] != "42" || strings.Join(rec.Tags, ",") != "gold") {
			t.Errorf("passthru answer not kept: vars %v tags %v", rec.Vars, rec.Tags)
		}
		if c.number == "+914430000014" {
			d := rec.Steps[0].Details
			if fmt.Sprint(d["winner"]) == "" || !strings.Contains(fmt.Sprint(d), "win") || rec.Dials[0].Target != "PJSIP/winner" {
				t.Errorf("auction trace %v, dials %+v", d, rec.Dials)
			}
		}
	}
	h.stop() // before the slow server's handler is released
}

// An SMS goes out through ARI's endpoints/sendMessage.
func TestSMSThroughSendMessage(t *testing.T) {
	dir := writeFlowDir(t, map[string]string{"sms.toml": `
name = "SMS"
numbers = ["+914430000021"]
[[steps]]
id = "text"
applet = "sms"
to = ["caller"]
endpoint = "trunk"
body = "Thanks for calling {{.Flow}}"
[[steps]]
id = "bye"
applet = "hangup"
`})
	h := startWith(t, harnessOptions{flowsDir: dir})
	c := h.call(aritest.CallSpec{Exten: "+914430000021", From: "+15557654321"})
	hangupWhenDone(t, c)
	if got := stepPath(h.record(c.ID())); got != "text:sent bye:hangup" {
		t.Errorf("path %s", got)
	}
	msgs := h.ast.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].To, "+15557654321") || msgs[0].Body != "Thanks for calling SMS" {
		t.Errorf("messages %+v", msgs)
	}
}

// smtpBackend keeps what a real SMTP server received.
type smtpBackend struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (b *smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{b: b}, nil }

type smtpSession struct{ b *smtpBackend }

func (s *smtpSession) AuthPlain(string, string) error       { return nil }
func (s *smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *smtpSession) Reset()                               {}
func (s *smtpSession) Logout() error                        { return nil }
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, b)
	s.b.mu.Unlock()
	return err
}

// The after-hours voicemail reaches a real SMTP server with the WAV that
// Asterisk stored attached; the post-call webhook arrives after a retry.
func TestEmailWithVoicemailAndPostCallWebhook(t *testing.T) {
	backend := &smtpBackend{}
	srv := smtp.NewServer(backend)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	var hits atomic.Int32
	var got atomic.Value
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got.Store(b)
	}))
	defer hook.Close()

	src, _ := os.ReadFile(filepath.Join(repoTestdata, "flows", "after-hours.toml"))
	flow := strings.Replace(string(src), "[[steps]]", "[settings]\npost_call_webhook = \""+hook.URL+"\"\n\n[[steps]]", 1)
	dir := writeFlowDir(t, map[string]string{"after-hours.toml": flow})
	// The server's own mailer and webhook sender, configured as an admin
	// would: mail to the local SMTP server, the flow's post-call webhook.
	port := ln.Addr().(*net.TCPAddr).Port
	h := startWith(t, harnessOptions{flowsDir: dir,
		services: func(h *harness) applets.Services { return applets.Services{Voicemail: h.vms} },
		tweak: []func(*config.Config){func(cfg *config.Config) {
			cfg.SMTP.Host, cfg.SMTP.Port, cfg.SMTP.TLS, cfg.SMTP.From = "127.0.0.1", port, "none", "callflow@acme.example"
		}}})
	c := h.call(aritest.CallSpec{Exten: "+914430009999", Talk: 2 * time.Second})
	hangupWhenDone(t, c)
	h.record(c.ID())
	waitUntil(t, "the voicemail email", func() bool {
		backend.mu.Lock()
		defer backend.mu.Unlock()
		return len(backend.msgs) > 0
	})
	// The first delivery fails (503): the sender tries again.
	waitUntil(t, "the post-call webhook", func() bool { return got.Load() != nil })
	backend.mu.Lock()
	msgs := backend.msgs
	backend.mu.Unlock()
	if len(msgs) != 1 {
		t.Fatalf("%d emails received", len(msgs))
	}
	vm := h.vms.all()[0]
	wav := attachment(t, msgs[0])
	stored, err := os.ReadFile(filepath.Join(h.ast.RecordingsDir(), vm.Recording.Name+".wav"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wav, stored) || !bytes.HasPrefix(wav, []byte("RIFF")) {
		t.Errorf("attachment (%d bytes) is not the stored recording (%d bytes)", len(wav), len(stored))
	}
	var summary webhooks.Summary
	b, _ := got.Load().([]byte)
	if err := json.Unmarshal(b, &summary); err != nil || summary.CallID != c.ID() || len(summary.Voicemails) != 1 || hits.Load() != 2 {
		t.Errorf("webhook after %d tries: %s (%v)", hits.Load(), b, err)
	}
}

func attachment(t *testing.T, raw []byte) []byte {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no WAV attachment: %v", err)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "audio/wav") {
			data, _ := io.ReadAll(p)
			if p.Header.Get("Content-Transfer-Encoding") == "base64" {
				return decodeBase64(t, data)
			}
			return data
		}
	}
}

func decodeBase64(t *testing.T, b []byte) []byte {
	t.Helper()
	clean := strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == ' ' {
			return -1
		}
		return r
	}, string(b))
	out, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Whisper with "press 1 to accept", whole-call recording, and text to
// speech through the real engine.
func TestWhisperRecordingAndSpeech(t *testing.T) {
	dir := writeFlowDir(t, map[string]string{"w.toml": `
name = "Whisper"
numbers = ["+914430000031"]
[settings]
whisper = "sound:custom/whisper"
whisper_accept = "1"
record = true
[[steps]]
id = "ring"
applet = "forward"
to = "PJSIP/agent"
ring_timeout = "3s"
on = { no_answer = "sorry", busy = "sorry", failed = "sorry" }
[[steps]]
id = "sorry"
applet = "hangup"
`, "s.toml": `
name = "Speech"
numbers = ["+914430000032"]
[[steps]]
id = "hello"
applet = "greeting"
say = "Thank you for calling."
`})
	var engine *speech.Engine
	if _, err := exec.LookPath("espeak-ng"); err == nil {
		if _, err := exec.LookPath("sox"); err == nil {
			engine, _ = speech.New(speech.Options{CacheDir: t.TempDir(), Logger: zerolog.Nop()})
		}
	}
	h := startWith(t, harnessOptions{flowsDir: dir, services: func(*harness) applets.Services {
		svc := applets.Services{}
		if engine != nil {
			svc.Speech = engine
		}
		return svc
	}})
	for _, c := range []struct {
		keys, want string
		recorded   bool
	}{{"1", "ring:answered", true}, {"2", "ring:no_answer sorry:hangup", false}} {
		h.ast.SetAgent("PJSIP/agent", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 100 * time.Millisecond, Keys: c.keys, KeysAfter: 200 * time.Millisecond, HangupAfter: time.Second})
		call := h.call(aritest.CallSpec{Exten: "+914430000031"})
		hangupWhenDone(t, call)
		rec := h.record(call.ID())
		if got := stepPath(rec); got != c.want {
			t.Errorf("agent pressed %s: %s, want %s", c.keys, got, c.want)
		}
		if c.recorded {
			if len(rec.Dials) == 0 || rec.Dials[0].Recording == "" || !contains(h.ast.StoredRecordings(), rec.Dials[0].Recording) {
				t.Errorf("whole-call recording missing: %+v, stored %v", rec.Dials, h.ast.StoredRecordings())
			}
		}
	}
	if engine == nil {
		t.Log("espeak-ng or sox missing: text to speech not checked")
		return
	}
	call := h.call(aritest.CallSpec{Exten: "+914430000032"})
	hangupWhenDone(t, call)
	var spoken string
	for _, m := range call.Heard() {
		if strings.HasPrefix(m, "sound:/") {
			spoken = strings.TrimPrefix(m, "sound:")
		}
	}
	info, err := speech.CheckWAV(spoken + ".wav")
	if err != nil || info.SampleRate != 8000 || info.Channels != 1 || info.Duration <= 0 {
		t.Errorf("spoken prompt %q: %+v %v", spoken, info, err)
	}
}

// A schedule decides by the call's clock: a holiday, and opening hours on
// both sides of a daylight-saving change.
func TestScheduleAtHolidayAndAcrossDST(t *testing.T) {
	dir := writeFlowDir(t, map[string]string{"sched.toml": `
name = "Hours"
numbers = ["+914430000041"]
[[steps]]
id = "hours"
applet = "schedule"
timezone = "America/New_York"
hours = [{ days = ["mon-fri"], from = "09:00", to = "17:00" }]
holidays = [{ name = "christmas", dates = ["12-25"] }]
on = { open = "open", closed = "closed", christmas = "closed" }
[[steps]]
id = "open"
applet = "hangup"
[[steps]]
id = "closed"
applet = "hangup"
`})
	var now atomic.Value
	h := startWith(t, harnessOptions{flowsDir: dir, services: func(*harness) applets.Services {
		return applets.Services{Clock: func() time.Time { return now.Load().(time.Time) }}
	}})
	ny, _ := time.LoadLocation("America/New_York")
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 12, 25, 10, 0, 0, 0, ny), "hours:christmas closed:hangup"},
		{time.Date(2026, 10, 30, 9, 30, 0, 0, ny), "hours:open open:hangup"},    // EDT
		{time.Date(2026, 11, 2, 9, 30, 0, 0, ny), "hours:open open:hangup"},     // EST, the Monday after the change
		{time.Date(2026, 11, 2, 8, 30, 0, 0, ny), "hours:closed closed:hangup"}, // 13:30 UTC: open in EDT terms, not in EST
	} {
		now.Store(c.at)
		call := h.call(aritest.CallSpec{Exten: "+914430000041"})
		hangupWhenDone(t, call)
		if got := stepPath(h.record(call.ID())); got != c.want {
			t.Errorf("%s: %s, want %s", c.at, got, c.want)
		}
	}
}

// ZIP and tag routing through a live call.
func TestZipAndTagRouting(t *testing.T) {
	dir := writeFlowDir(t, map[string]string{"z.toml": `
name = "Zip"
numbers = ["+914430000051"]
[[steps]]
id = "zip"
applet = "zip_route"
prompt = ["sound:custom/enter-zip"]
routes = [{ name = "east", prefix = ["100"] }]
on = { east = "tag", no_match = "bye", timeout = "bye" }
[[steps]]
id = "tag"
applet = "set"
tags = ["vip"]
[[steps]]
id = "route"
applet = "tag_route"
rules = [{ name = "nanp", country_code = ["1"] }, { name = "vip", tags = ["vip"] }]
on = { nanp = "bye", vip = "bye", no_match = "bye" }
[[steps]]
id = "bye"
applet = "hangup"
`})
	h := startWith(t, harnessOptions{flowsDir: dir})
	call := h.call(aritest.CallSpec{Exten: "+914430000051", From: "+442079460018"})
	if err := call.WaitPlayback(ctxT(t), "sound:custom/enter-zip"); err != nil {
		t.Fatal(err)
	}
	call.Press("10001")
	hangupWhenDone(t, call)
	rec := h.record(call.ID())
	if got := stepPath(rec); got != "zip:east tag:done route:vip bye:hangup" || rec.Vars["zip"] != "10001" {
		t.Errorf("%s vars %v", got, rec.Vars)
	}
}

// An sms step that names no endpoint uses the configured [sms] defaults.
func TestSMSUsesConfiguredDefaults(t *testing.T) {
	dir := writeFlowDir(t, map[string]string{"sms.toml": `
name = "SMS"
numbers = ["+914430000022"]
[[steps]]
id = "text"
applet = "sms"
to = ["+15551112222"]
body = "hello"
[[steps]]
id = "bye"
applet = "hangup"
`})
	h := startWith(t, harnessOptions{flowsDir: dir, services: func(*harness) applets.Services {
		return applets.Services{SMS: applets.SMSDefaults{Technology: "PJSIP", Endpoint: "carrier", From: "+15550009999"}}
	}})
	c := h.call(aritest.CallSpec{Exten: "+914430000022"})
	hangupWhenDone(t, c)
	msgs := h.ast.Messages()
	if len(msgs) != 1 || msgs[0].To != "pjsip:+15551112222@carrier" || !strings.Contains(msgs[0].From, "15550009999") {
		t.Errorf("messages %+v", msgs)
	}
}
