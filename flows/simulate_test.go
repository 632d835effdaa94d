package flows

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/internal/tomlpos"
	"github.com/rs/zerolog"
)

// counting is a web server that counts the requests that reach it: a
// simulation must leave it alone unless told otherwise.
func counting(t *testing.T, body string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// httpFlows are a passthru flow and a ping/post bidding flow whose every
// URL points at base.
func httpFlows(t *testing.T, base string) *Set {
	t.Helper()
	lookup := mustParse(t, "lookup", `
name = "Lookup"
numbers = ["+15550002000"]
[[steps]]
id = "crm"
applet = "passthru"
url = "`+base+`/crm"
timeout = "200ms"
outcomes = ["vip"]
on = { vip = "vip", success = "done", failed = "fallback" }
[[steps]]
id = "vip"
applet = "hangup"
[[steps]]
id = "done"
applet = "hangup"
[[steps]]
id = "fallback"
applet = "hangup"
`)
	auction := mustParse(t, "auction", `
name = "Auction"
numbers = ["+15550003000"]
[[steps]]
id = "sell"
applet = "bid"
buyers = [
  { name = "acme", ping = "`+base+`/acme/ping", post = "`+base+`/acme/post" },
  { name = "zenith", ping = "`+base+`/zenith/ping", destination = "PJSIP/zenith" },
]
deadline = "300ms"
on = { no_bid = "nobody", no_answer = "nobody", busy = "nobody", failed = "nobody" }
[[steps]]
id = "nobody"
applet = "hangup"
`)
	return NewSet(1, []*Flow{lookup, auction}, nil)
}

func simulate(t *testing.T, set *Set, target string, opts SimOptions) *Simulation {
	t.Helper()
	opts.Log = zerolog.Nop()
	if opts.Script.Start.IsZero() {
		opts.Script.Start = time.Date(2026, 12, 18, 15, 0, 0, 0, time.UTC)
	}
	sim, err := Simulate(context.Background(), set, target, opts)
	if err != nil {
		t.Fatal(err)
	}
	return sim
}

func actions(rec *CallRecord) string {
	var lines []string
	for _, s := range rec.Steps {
		lines = append(lines, s.Step+": "+strings.Join(s.Actions, "; "))
	}
	return strings.Join(lines, "\n")
}

func TestSimulateSendsNoHTTPRequestWithoutACannedAnswer(t *testing.T) {
	srv, hits := counting(t, `{"outcome": "vip", "bid": 50}`)
	set := httpFlows(t, srv.URL)
	cases := []struct {
		flow, path string
		notSent    []string
	}{
		{"Lookup", "crm:failed fallback:hangup", []string{"POST " + srv.URL + "/crm"}},
		{"Auction", "sell:no_bid nobody:hangup", []string{"POST " + srv.URL + "/acme/ping", "POST " + srv.URL + "/zenith/ping"}},
	}
	for _, c := range cases {
		t.Run(c.flow, func(t *testing.T) {
			sim := simulate(t, set, c.flow, SimOptions{})
			if got := path(sim.Record); got != c.path {
				t.Errorf("path %s, want %s", got, c.path)
			}
			trace := actions(sim.Record)
			for _, req := range c.notSent {
				if !strings.Contains(trace, req+": not sent: simulated; no canned answer") {
					t.Errorf("the trace does not say %s was not sent:\n%s", req, trace)
				}
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the simulator sent %d requests", n)
	}
}

func TestSimulateAnswersFromCannedAnswers(t *testing.T) {
	srv, hits := counting(t, `{}`)
	set := httpFlows(t, srv.URL)
	cases := []struct {
		name    string
		flow    string
		answers []SimAnswer
		path    string
		want    []string // in the trace
	}{
		{"by step", "Lookup", []SimAnswer{{Step: "crm", Body: `{"outcome": "vip", "vars": {"account": "42"}}`}},
			"crm:vip vip:hangup", []string{"POST " + srv.URL + "/crm: answered 200", "set var account=42"}},
		{"by flow and step", "Lookup", []SimAnswer{{Step: "Other/crm", Status: 500}, {Step: "Lookup/crm", Status: 204}},
			"crm:success done:hangup", []string{"answered 204"}},
		{"by URL pattern", "Lookup", []SimAnswer{{URL: "http://*/crm", Status: 503}},
			"crm:failed fallback:hangup", []string{"answered 503"}},
		{"too slow for the step", "Lookup", []SimAnswer{{Step: "crm", Delay: durationOf(5 * time.Second)}},
			"crm:failed fallback:hangup", []string{"POST " + srv.URL + "/crm: no answer in time"}},
		{"ping and post", "Auction", []SimAnswer{
			{URL: "*/acme/ping", Body: `{"bid": 12.5, "destination": "PJSIP/acme"}`},
			{URL: "*/zenith/ping", Body: `{"bid": 9}`},
			{URL: "*/acme/post", Body: `{"accepted": true}`},
		}, "sell:no_answer nobody:hangup", []string{"acme/post: answered 200", "dialled PJSIP/acme", "set var bid_buyer=acme"}},
		{"a post not answered goes to the next bid", "Auction", []SimAnswer{
			{URL: "*/acme/ping", Body: `{"bid": 12.5, "destination": "PJSIP/acme"}`},
			{URL: "*/zenith/ping", Body: `{"bid": 9}`},
		}, "sell:no_answer nobody:hangup", []string{"acme/post: not sent: simulated; no canned answer", "dialled PJSIP/zenith"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := simulate(t, set, c.flow, SimOptions{HTTP: c.answers})
			if got := path(sim.Record); got != c.path {
				t.Errorf("path %s, want %s", got, c.path)
			}
			trace := actions(sim.Record)
			for _, w := range c.want {
				if !strings.Contains(trace, w) {
					t.Errorf("trace lacks %q:\n%s", w, trace)
				}
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the simulator sent %d requests", n)
	}
}

func durationOf(d time.Duration) tomlpos.Duration { return tomlpos.Duration(d) }

func TestSimulateCannedDelayMovesTheCallsClock(t *testing.T) {
	set := httpFlows(t, "http://crm.invalid")
	sim := simulate(t, set, "Lookup", SimOptions{HTTP: []SimAnswer{{Step: "crm", Delay: durationOf(50 * time.Millisecond)}}})
	st := sim.Record.Steps[0]
	if got := st.Details["latency"]; got != "50ms" {
		t.Errorf("latency %v, want 50ms of the call's clock", got)
	}
}

func TestSimulateSendsForRealOnlyWhenLive(t *testing.T) {
	srv, hits := counting(t, `{"outcome": "vip"}`)
	set := httpFlows(t, srv.URL)
	sim := simulate(t, set, "Lookup", SimOptions{LiveHTTP: http.DefaultTransport})
	if got := path(sim.Record); got != "crm:vip vip:hangup" || hits.Load() != 1 {
		t.Errorf("path %s after %d requests; want the live answer", got, hits.Load())
	}
	if trace := actions(sim.Record); !strings.Contains(trace, "POST "+srv.URL+"/crm: answered 200") {
		t.Errorf("trace:\n%s", trace)
	}
}

func TestSimulateRoundRobinStartsAtTheGivenPosition(t *testing.T) {
	set := NewSet(1, []*Flow{mustParse(t, "rr", `
name = "Sales"
[[steps]]
id = "spread"
applet = "round_robin"
to = ["PJSIP/ann", "PJSIP/bob", "PJSIP/cid"]
`)}, nil)
	for pos, want := range map[int]string{0: "PJSIP/ann", 1: "PJSIP/ann", 2: "PJSIP/bob", 3: "PJSIP/cid", 4: "PJSIP/ann"} {
		sim := simulate(t, set, "Sales", SimOptions{RRPosition: pos})
		if got := sim.Record.Steps[0].Actions[0]; !strings.HasPrefix(got, "dialled "+want+":") {
			t.Errorf("position %d: %s; want %s first", pos, got, want)
		}
	}
}

func TestSimulateTraceShowsEverythingTheCallDid(t *testing.T) {
	set := NewSet(1, []*Flow{mustParse(t, "all", `
name = "Everything"
numbers = ["+15550004000"]
[settings]
record = true
whisper = "sound:custom/whisper"
whisper_accept = "1"
post_call_webhook = "https://crm.example/calls"
[[steps]]
id = "mark"
applet = "set"
vars = { campaign = "spring" }
tags = ["vip"]
[[steps]]
id = "text"
applet = "sms"
to = ["caller"]
body = "Thanks for calling {{.Flow}}"
[[steps]]
id = "mail"
applet = "email"
to = ["boss@acme.example"]
subject = "Call from {{.Caller}}"
body = "Tags: {{range .Tags}}{{.}}{{end}}"
[[steps]]
id = "ring"
applet = "forward"
to = "PJSIP/ann"
`)}, nil)
	sim := simulate(t, set, "Everything", SimOptions{Script: scripted.Script{From: "+15557654321", Agents: []applets.DialStatus{applets.Answered}}})
	trace := actions(sim.Record)
	for _, want := range []string{
		"mark: set var campaign=spring; added tag vip",
		`text: sent a text to pjsip:+15557654321 from +15550004000: "Thanks for calling Everything"`,
		`mail: queued an email to boss@acme.example: "Call from +15557654321"`,
		"ring: dialled PJSIP/ann with whisper sound:custom/whisper (the agent presses 1 to take the call), recording the call: answered by PJSIP/ann, talked 2m0s; call recorded as call-sim-1-1",
	} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace lacks %q:\n%s", want, trace)
		}
	}
	var out bytes.Buffer
	if err := WriteSimulation(&out, sim); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"text to pjsip:+15557654321 from +15550004000:\n    Thanks for calling Everything",
		"email to boss@acme.example: Call from +15557654321\n    Tags: vip",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestParseSimAnswersIsStrict(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"unknown key", "[[answer]]\nstep = \"crm\"\nstauts = 200\n", "answers.toml:3:1: unknown key"},
		{"neither step nor url", "[[answer]]\nstatus = 200\n", "needs a `step` or a `url`"},
		{"bad status", "[[answer]]\nstep = \"crm\"\nstatus = 42\n", "status 42 is not an HTTP status"},
		{"bad method", "[[answer]]\nstep = \"crm\"\nmethod = \"PUT\"\n", "method must be GET or POST"},
		{"wrong type", "[[answer]]\nstep = \"crm\"\nbody = 3\n", "answers.toml:3:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSimAnswers("answers.toml", []byte(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
	got, err := ParseSimAnswers("answers.toml", []byte("[[answer]]\nurl = \"https://crm.example/*\"\nbody = '{}'\ndelay = \"1s\"\n"))
	if err != nil || len(got) != 1 || got[0].status() != 200 || got[0].Delay.D() != time.Second {
		t.Errorf("good file: %+v, %v", got, err)
	}
}

func TestWildcardMatchesAnyRun(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"https://crm.example/x", "https://crm.example/x", true},
		{"https://crm.example/x", "https://crm.example/xy", false},
		{"https://crm.example/*", "https://crm.example/a/b", true},
		{"*/ping", "https://acme.example/rtb/ping", true},
		{"*/ping", "https://acme.example/post", false},
		{"https://*.example/*/ping", "https://acme.example/v1/ping", true},
		{"a*a", "a", false},
	}
	for _, c := range cases {
		if got := wildcard(c.pattern, c.s); got != c.want {
			t.Errorf("wildcard(%q, %q) = %v", c.pattern, c.s, got)
		}
	}
}

func TestScheduleLocationIsTheFirstSchedulesZone(t *testing.T) {
	f := mustParse(t, "hours", `
name = "Hours"
[[steps]]
id = "hi"
applet = "greeting"
play = ["sound:hello"]
[[steps]]
id = "hours"
applet = "schedule"
timezone = "America/New_York"
hours = [{ days = ["mon-fri"], from = "09:00", to = "17:00" }]
on = { open = "hi", closed = "hi" }
`)
	loc, ok := ScheduleLocation(f)
	if !ok || loc.String() != "America/New_York" {
		t.Errorf("got %v, %v", loc, ok)
	}
	if _, ok := ScheduleLocation(mustParse(t, "plain", "name = \"Plain\"\n[[steps]]\napplet = \"hangup\"\n")); ok {
		t.Error("a flow without a schedule has a zone")
	}
}

// The simulator has no directory of agents: a team or an agent is dialled
// by its name and --agents scripts the answer.
func TestSimulateDialsTeamsByName(t *testing.T) {
	set := NewSet(1, []*Flow{mustParse(t, "team", `
name = "Team"
numbers = ["+15550003000"]
[[steps]]
id = "support"
applet = "multi_ring"
to = ["team:support", "agent:alice"]
`)}, nil)
	sim := simulate(t, set, "Team", SimOptions{Script: scripted.Script{Agents: []applets.DialStatus{applets.Answered}}})
	if got := path(sim.Record); got != "support:answered" {
		t.Errorf("path %s", got)
	}
	if a := actions(sim.Record); !strings.Contains(a, "dialled team:support, agent:alice") {
		t.Errorf("actions %s", a)
	}
}
