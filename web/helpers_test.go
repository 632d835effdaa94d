package web

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/presence"
	"github.com/callflow/callflow/queues"
	"github.com/callflow/callflow/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if left := leftGoroutines(); left != "" {
			fmt.Fprintf(os.Stderr, "goroutines left behind:\n%s\n", left)
			code = 1
		}
	}
	os.Exit(code)
}

// leftGoroutines waits for goroutines of this package's tests (servers,
// stores, browsers) to end and returns the stacks of those that do not.
func leftGoroutines() string {
	marks := []string{"callflow/web.", "callflow/store.", "chromedp", "net/http.(*conn).serve", "httptest"}
	var left []string
	for i := 0; i < 300; i++ {
		left = left[:0]
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "leftGoroutines") || strings.Contains(g, "testing.(*M)") {
				continue
			}
			for _, m := range marks {
				if strings.Contains(g, m) {
					left = append(left, g)
					break
				}
			}
		}
		if len(left) == 0 {
			return ""
		}
		time.Sleep(10 * time.Millisecond)
	}
	return strings.Join(left, "\n\n")
}

// base is the fixture's "now": a Tuesday afternoon.
var base = time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a server over a real store with users, flows, voicemails and
// calls.
type fixture struct {
	t       testing.TB
	st      *store.Store
	srv     *Server
	ts      *httptest.Server
	clk     *clock
	dir     string
	reg     *applets.Registry
	set     atomic.Pointer[flows.Set]
	reloads atomic.Int32
	queues  *queues.Set

	mu         sync.Mutex
	audio      map[string][]byte // recording -> WAV
	audioErr   map[string]error  // recording -> why it cannot be opened
	audioPaths []string          // the Path each open was given
	audioCalls int
	ranges     []string // Range headers of audio requests

	vm map[string]int64 // fixture voicemails by label
}

const (
	acmeNumber  = "+914430001234"
	otherNumber = "+15550001111"
	// callRecording is call-2's whole-call recording.
	callRecording = "call-call-2-1"
)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, clk: &clock{t: base}, dir: t.TempDir(), reg: applets.Builtin(),
		audio: map[string][]byte{}, audioErr: map[string]error{}, vm: map[string]int64{}}
	st, err := store.Open(context.Background(), filepath.Join(f.dir, "callflow.db"), store.Options{
		BcryptCost: 4, Now: f.clk.Now, Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	f.st = st
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("store.Close: %v", err)
		}
	})
	f.writeFlows()
	f.seedUsers()
	f.seedDBFlows()
	f.rebuild()
	f.seedVoicemails()
	f.seedCalls()

	f.queues = queues.New(queues.Options{Now: f.clk.Now})
	srv, err := New(Options{
		Store:    st,
		Queues:   f.queues,
		Presence: presence.New(presence.Options{Directory: st, Now: f.clk.Now}),
		Flows:    func() *flows.Set { return f.set.Load() },
		Reload:   func() { f.reloads.Add(1); f.rebuild() },
		Audio:    f.openAudio,
		Health:   func() map[string]any { return map[string]any{"ok": true, "ari": "connected"} },
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "callflow_calls_in_progress 0\n")
		}),
		SessionKey:   []byte("0123456789abcdef0123456789abcdef"),
		Log:          zerolog.Nop(),
		Now:          f.clk.Now,
		Location:     time.UTC,
		PollInterval: 150 * time.Millisecond,
		AudioDirs:    []string{filepath.Join(f.dir, "recordings")},
		ClientIP: func(r *http.Request) string {
			if ip := r.Header.Get("X-Test-IP"); ip != "" {
				return ip
			}
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			return host
		},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.srv = srv
	f.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/audio") {
			f.mu.Lock()
			f.ranges = append(f.ranges, r.Header.Get("Range"))
			f.mu.Unlock()
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(f.ts.Close)
	return f
}

func (f *fixture) openAudio(ctx context.Context, vm store.Voicemail) (io.ReadSeekCloser, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audioCalls++
	f.audioPaths = append(f.audioPaths, vm.Path)
	if err := f.audioErr[vm.Recording]; err != nil {
		return nil, time.Time{}, err
	}
	b, ok := f.audio[vm.Recording]
	if !ok {
		return nil, time.Time{}, os.ErrNotExist
	}
	return nopCloser{bytes.NewReader(b)}, base, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// wav makes an 8 kHz 16-bit mono WAV of a 440 Hz tone.
func wav(d time.Duration) []byte {
	n := int(d.Seconds() * 8000)
	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	w(uint32(36 + 2*n))
	b.WriteString("WAVEfmt ")
	w(uint32(16))
	w(uint16(1))
	w(uint16(1))
	w(uint32(8000))
	w(uint32(16000))
	w(uint16(2))
	w(uint16(16))
	b.WriteString("data")
	w(uint32(2 * n))
	for i := 0; i < n; i++ {
		w(int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000)))
	}
	return b.Bytes()
}

const otherFlowTOML = `name = "Other Line"
numbers = ["+15550001111"]
workspace = "other"

[[steps]]
id = "hello"
applet = "greeting"
play = ["sound:hello"]

[[steps]]
id = "front-vm"
applet = "voicemail"
mailbox = "front"
next = "bye"

[[steps]]
id = "bye"
applet = "hangup"
`

// Lonely Flow is published without numbers, has an unreachable step and
// a dead end.
const lonelyFlowTOML = `name = "Lonely Flow"
workspace = "acme"

[[steps]]
id = "ask"
applet = "menu"
prompt = ["sound:press-1"]
keys = { 1 = "desk" }
on = { timeout = "ask", invalid = "ask", max_retries = "desk" }

[[steps]]
id = "desk"
applet = "voicemail"
mailbox = "desk"
on = { empty = "bye" }

[[steps]]
id = "bye"
applet = "hangup"

[[steps]]
id = "orphan"
applet = "greeting"
play = ["sound:nobody-comes-here"]
`

func dbFlowTOML(name string) string {
	return `name = "` + name + `"
workspace = "acme"

[[steps]]
id = "night"
applet = "greeting"
play = ["sound:closed"]

[[steps]]
id = "night-vm"
applet = "voicemail"
mailbox = "night"
next = "bye"

[[steps]]
id = "bye"
applet = "hangup"
`
}

func (f *fixture) writeFlows() {
	f.t.Helper()
	src, err := filepath.Glob("../testdata/flows/*.toml")
	if err != nil || len(src) == 0 {
		f.t.Fatalf("no seed flows: %v", err)
	}
	dir := filepath.Join(f.dir, "flows")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	for _, p := range src {
		b, err := os.ReadFile(p)
		if err != nil {
			f.t.Fatal(err)
		}
		f.writeFile(filepath.Join(dir, filepath.Base(p)), string(b))
	}
	f.writeFile(filepath.Join(dir, "other.toml"), otherFlowTOML)
	f.writeFile(filepath.Join(dir, "lonely.toml"), lonelyFlowTOML)
	f.writeFile(filepath.Join(dir, "broken.toml"), "name = \"Broken\n[[steps]\n")
}

func (f *fixture) writeFile(p, s string) {
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// rebuild loads the flow files and the database flows, as serve's reload
// does.
func (f *fixture) rebuild() {
	l := &flows.Loader{Dir: filepath.Join(f.dir, "flows"), Applets: f.reg, Extra: f.dbFlows}
	set, _ := l.Load()
	f.set.Store(set)
}

func (f *fixture) dbFlows() ([]*flows.Flow, flows.Problems) {
	rows, err := f.st.ListFlows(context.Background(), store.AllWorkspaces())
	if err != nil {
		f.t.Errorf("ListFlows: %v", err)
		return nil, nil
	}
	var out []*flows.Flow
	var probs flows.Problems
	for _, row := range rows {
		file := fmt.Sprintf("db:%s@%d", row.Name, row.Revision)
		fl, ps := flows.Parse(file, []byte(row.Source), f.reg, flows.ParseOptions{Source: "db"})
		probs = append(probs, ps...)
		if fl == nil {
			continue
		}
		fl.Name, fl.Status, fl.Workspace, fl.Numbers = row.Name, row.Status, row.Workspace, row.Numbers
		out = append(out, fl)
	}
	return out, probs
}

func (f *fixture) seedUsers() {
	f.t.Helper()
	ctx := context.Background()
	for _, u := range []store.NewUser{
		{Name: "admin", Password: "pw-admin", Role: store.RoleAdmin},
		{Name: "alice", Password: "pw-alice", Role: store.RoleStaff, Workspaces: []string{"acme"}},
		{Name: "bob", Password: "pw-bob", Role: store.RoleStaff, Workspaces: []string{"other"}},
		{Name: "wendy", Password: "pw-wendy", Role: store.RoleWorkspaceAdmin, Workspaces: []string{"acme"}},
	} {
		if _, err := f.st.CreateUser(ctx, u); err != nil {
			f.t.Fatalf("CreateUser %s: %v", u.Name, err)
		}
	}
}

func (f *fixture) seedDBFlows() {
	f.t.Helper()
	ctx := context.Background()
	mustFlow := func(in store.FlowInput) {
		if _, err := f.st.CreateFlow(ctx, in); err != nil {
			f.t.Fatalf("CreateFlow %s: %v", in.Name, err)
		}
	}
	mustFlow(store.FlowInput{Name: "Night Line", Workspace: "acme", Source: dbFlowTOML("Night Line"), Status: store.FlowPublished, Author: "admin"})
	mustFlow(store.FlowInput{Name: "Draft Line", Workspace: "acme", Source: dbFlowTOML("Draft Line"), Author: "admin"})
	mustFlow(store.FlowInput{Name: "Ghost Line", Workspace: "other", Source: "name = \"Ghost Line\"\nthis is not toml\n", Status: store.FlowPublished, Author: "admin"})
	for name, n := range map[string]string{"Night Line": "+15550002222", "Draft Line": "+15550003333", "Ghost Line": "+15550004444"} {
		if _, err := f.st.AssignNumbers(ctx, name, []string{n}, "admin"); err != nil {
			f.t.Fatalf("AssignNumbers %s: %v", name, err)
		}
	}
}

func (f *fixture) addVoicemail(label string, v store.Voicemail, audio time.Duration) int64 {
	f.t.Helper()
	if v.Recording == "" {
		v.Recording = store.VoicemailName(v.Mailbox, v.CallID, v.Created)
	}
	if audio > 0 {
		f.mu.Lock()
		f.audio[v.Recording] = wav(audio)
		f.mu.Unlock()
		if v.Duration == 0 {
			v.Duration = audio
		}
	}
	if err := f.st.SaveVoicemail(v); err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.Flush(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	got, err := f.st.GetVoicemailByRecording(context.Background(), v.Recording, store.AllWorkspaces())
	if err != nil {
		f.t.Fatalf("voicemail %s: %v", label, err)
	}
	f.vm[label] = got.ID
	return got.ID
}

func (f *fixture) seedVoicemails() {
	f.t.Helper()
	ctx := context.Background()
	f.addVoicemail("new1", store.Voicemail{CallID: "call-1", Mailbox: "tech", Workspace: "acme", Caller: "+14155550101", Called: acmeNumber,
		Flow: "Basic Support Flow", Step: "tech-vm", Created: base.Add(-time.Hour)}, 3*time.Second)
	f.addVoicemail("new2", store.Voicemail{CallID: "call-7", Mailbox: "billing", Workspace: "acme", Caller: "+14155550102", Called: acmeNumber,
		Flow: "Basic Support Flow", Step: "billing-vm", Created: base.Add(-26 * time.Hour)}, 2*time.Second)
	heard := f.addVoicemail("heard", store.Voicemail{CallID: "call-6", Mailbox: "after-hours", Workspace: "acme", Caller: "+14155550103", Called: "+914430009999",
		Flow: "After-Hours Flow", Step: "voicemail", Created: base.Add(-72 * time.Hour)}, 2*time.Second)
	deleted := f.addVoicemail("deleted", store.Voicemail{CallID: "call-8", Mailbox: "tech", Workspace: "acme", Caller: "+14155550104", Called: acmeNumber,
		Flow: "Basic Support Flow", Step: "tech-vm", Created: base.Add(-48 * time.Hour)}, 2*time.Second)
	f.addVoicemail("other", store.Voicemail{CallID: "call-4", Mailbox: "front", Workspace: "other", Caller: "+14155550105", Called: otherNumber,
		Flow: "Other Line", Step: "front-vm", Created: base.Add(-2 * time.Hour)}, 2*time.Second)
	if err := f.st.MarkHeard(ctx, heard, store.AllWorkspaces(), "alice", true); err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.DeleteVoicemail(ctx, deleted, store.AllWorkspaces(), "alice"); err != nil {
		f.t.Fatal(err)
	}
}

func step(at time.Time, took time.Duration, id, applet, outcome, next string, actions []string, details map[string]any) store.StepRecord {
	d := map[string]any{}
	for k, v := range details {
		d[k] = v
	}
	if len(actions) > 0 {
		as := make([]any, len(actions))
		for i, a := range actions {
			as[i] = a
		}
		d["actions"] = as
	}
	if next != "" {
		d["next"] = next
	}
	return store.StepRecord{Step: id, Applet: applet, Outcome: outcome, Started: at, Ended: at.Add(took), Details: d}
}

func (f *fixture) seedCalls() {
	f.t.Helper()
	t1 := base.Add(-time.Hour - 2*time.Minute)
	calls := []store.CallRecord{
		{ID: "call-1", Transport: "ari", Flow: "Basic Support Flow", Workspace: "acme", Caller: "+14155550101", Called: acmeNumber,
			Started: t1, Ended: t1.Add(58 * time.Second), Outcome: "completed", LastStep: "goodbye",
			Steps: []store.StepRecord{
				step(t1, 4200*time.Millisecond, "welcome", "greeting", "done", "menu", []string{"answered", "played sound:custom/acme-welcome"}, nil),
				step(t1.Add(4200*time.Millisecond), 3100*time.Millisecond, "menu", "menu", "1", "tech", []string{"prompted sound:custom/acme-menu", "caller pressed 1"}, map[string]any{"attempts": 1}),
				step(t1.Add(7300*time.Millisecond), 20*time.Second, "tech", "multi_ring", "no_answer", "tech-vm", []string{"dialled PJSIP/tech1, PJSIP/tech2: no answer"}, map[string]any{"ring_timeout": "20s"}),
				step(t1.Add(27300*time.Millisecond), 25*time.Second, "tech-vm", "voicemail", "recorded", "notify", []string{"played sound:vm-intro", "recorded 3s"}, map[string]any{"mailbox": "tech"}),
				step(t1.Add(52300*time.Millisecond), 900*time.Millisecond, "notify", "email", "sent", "goodbye", []string{"mailed support@acme.example"}, nil),
				step(t1.Add(53200*time.Millisecond), 4800*time.Millisecond, "goodbye", "hangup", "hangup", "", []string{"played sound:goodbye", "hung up (normal)"}, nil),
			},
			Events: []store.CallEvent{{Kind: store.EventEmail, Step: "notify", At: t1.Add(53 * time.Second), Data: map[string]any{"to": "support@acme.example", "status": "sent"}}},
		},
		{ID: "call-2", Transport: "ari", Flow: "Basic Support Flow", Workspace: "acme", Caller: "+14155550110", Called: acmeNumber,
			Started: base.Add(-48 * time.Hour), Answered: base.Add(-48*time.Hour + 12*time.Second), Ended: base.Add(-48*time.Hour + 107*time.Second),
			Outcome: "completed", TalkTime: 95 * time.Second, Qualified: true, LastStep: "billing", Recording: callRecording,
			Steps: []store.StepRecord{
				step(base.Add(-48*time.Hour), 4*time.Second, "welcome", "greeting", "done", "menu", nil, nil),
				step(base.Add(-48*time.Hour+4*time.Second), 3*time.Second, "menu", "menu", "2", "billing", nil, nil),
				step(base.Add(-48*time.Hour+7*time.Second), 100*time.Second, "billing", "forward", "answered", "", []string{"dialled PJSIP/billing1: answered"}, nil),
			}},
		{ID: "call-3", Transport: "agi", Flow: "Basic Support Flow", Workspace: "acme", Caller: "+14155550111", Called: acmeNumber,
			Started: base.Add(-120 * time.Hour), Ended: base.Add(-120*time.Hour + 6*time.Second), Outcome: "hangup", Abandoned: true, LastStep: "menu",
			Steps: []store.StepRecord{
				step(base.Add(-120*time.Hour), 4*time.Second, "welcome", "greeting", "done", "menu", nil, nil),
				step(base.Add(-120*time.Hour+4*time.Second), 2*time.Second, "menu", "menu", "hangup", "", nil, nil),
			},
			Events: []store.CallEvent{{Kind: store.EventSMS, At: base.Add(-120*time.Hour + 6*time.Second), Data: map[string]any{"to": "+14155550111", "body": "Sorry we missed you"}}},
		},
		{ID: "call-4", Transport: "ari", Flow: "Other Line", Workspace: "other", Caller: "+14155550105", Called: otherNumber,
			Started: base.Add(-3 * time.Hour), Ended: base.Add(-3*time.Hour + 30*time.Second), Outcome: "completed"},
		{ID: "call-5", Transport: "ari", Caller: "+14155550199", Called: "+15550009999",
			Started: base.Add(-4 * time.Hour), Ended: base.Add(-4*time.Hour + 3*time.Second), Outcome: "not_in_service"},
		{ID: "call-6", Transport: "ari", Flow: "After-Hours Flow", Workspace: "acme", Caller: "+14155550103", Called: "+914430009999",
			Started: base.Add(-72 * time.Hour), Ended: base.Add(-72*time.Hour + 40*time.Second), Outcome: "completed"},
	}
	for _, c := range calls {
		if err := f.st.RecordCall(c); err != nil {
			f.t.Fatal(err)
		}
	}
	// call-2 was recorded whole, as a forward with record = true is.
	if err := f.st.SaveRecording(store.Recording{CallID: "call-2", Name: callRecording, Duration: 4 * time.Second, Created: base.Add(-48*time.Hour + 12*time.Second)}); err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.audio[callRecording] = wav(4 * time.Second)
	f.mu.Unlock()
	if err := f.st.Flush(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

// client is a browser-like HTTP client: a cookie jar, no redirects
// followed.
type client struct {
	f    *fixture
	hc   *http.Client
	csrf string
}

func (f *fixture) anon() *client {
	jar, _ := cookiejar.New(nil)
	return &client{f: f, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var (
	csrfFieldRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	csrfMetaRe  = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)
)

// login logs in as name (password "pw-"+name) and keeps the CSRF token.
func (f *fixture) login(name string) *client {
	f.t.Helper()
	c := f.anon()
	resp, body := c.postLogin(name, "pw-"+name, nil)
	if resp.StatusCode != http.StatusSeeOther {
		f.t.Fatalf("login %s: %d\n%s", name, resp.StatusCode, body)
	}
	resp, body = c.get("/voicemails")
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("inbox after login: %d", resp.StatusCode)
	}
	m := csrfMetaRe.FindStringSubmatch(body)
	if m == nil {
		f.t.Fatal("no csrf-token meta on the inbox")
	}
	c.csrf = m[1]
	return c
}

func (c *client) postLogin(name, password string, hdr http.Header) (*http.Response, string) {
	c.f.t.Helper()
	_, body := c.get("/login")
	m := csrfFieldRe.FindStringSubmatch(body)
	if m == nil {
		c.f.t.Fatalf("no csrf field on the login page:\n%s", body)
	}
	return c.do("POST", "/login", url.Values{"name": {name}, "password": {password}, "csrf": {m[1]}}, hdr)
}

func (c *client) get(path string) (*http.Response, string) {
	c.f.t.Helper()
	return c.do("GET", path, nil, nil)
}

// post sends a form with the session's CSRF token.
func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.f.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if c.csrf != "" && form.Get("csrf") == "" {
		form.Set("csrf", c.csrf)
	}
	return c.do("POST", path, form, nil)
}

func (c *client) do(method, path string, form url.Values, hdr http.Header) (*http.Response, string) {
	c.f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.f.ts.URL+path, body)
	if err != nil {
		c.f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return c.send(req)
}

func (c *client) send(req *http.Request) (*http.Response, string) {
	c.f.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.f.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.f.t.Fatal(err)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		// Pages are checked as a reader sees them (html/template writes
		// "+" as "&#43;").
		return resp, html.UnescapeString(string(b))
	}
	return resp, string(b)
}

// raw fetches a page without unescaping it.
func (c *client) raw(path string) string {
	c.f.t.Helper()
	resp, err := c.hc.Get(c.f.ts.URL + path)
	if err != nil {
		c.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// api calls the JSON API with a session (CSRF header on changes) or, with
// token set, a bearer token.
func (c *client) api(method, path, token string, body any) (*http.Response, map[string]any) {
	c.f.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.f.ts.URL+path, rd)
	if err != nil {
		c.f.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	} else if method != "GET" && c.csrf != "" {
		req.Header.Set(csrfHeader, c.csrf)
	}
	resp, text := c.send(req)
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal([]byte(text), &out); err != nil {
			c.f.t.Fatalf("%s %s: bad JSON: %v\n%s", method, path, err, text)
		}
	}
	return resp, out
}

func id(n int64) string { return strconv.FormatInt(n, 10) }

func wantStatus(t testing.TB, what string, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d", what, resp.StatusCode, want)
	}
}

func items(t testing.TB, m map[string]any) []map[string]any {
	t.Helper()
	raw, ok := m["items"].([]any)
	if !ok {
		t.Fatalf("no items in %v", m)
	}
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i] = x.(map[string]any)
	}
	return out
}
