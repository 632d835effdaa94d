package applets_test

import (
	"strings"
	"testing"

	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
)

func TestZipRoute(t *testing.T) {
	set := loadFlows(t, "zip_route.toml")
	cases := []struct {
		name, input, outcome, zip string
	}{
		{"exact", "10001", "manhattan", "10001"},
		{"exact-before-prefix", "10002", "manhattan", "10002"},
		{"prefix", "10099", "east", "10099"},
		{"range", "12345", "east", "12345"},
		{"range-upper-end", "14999", "east", "14999"},
		{"file", "94105", "west", "94105"},
		{"file-line-with-comment", "90002", "west", "90002"},
		{"no-match", "55555", "no_match", "55555"},
		{"terminated-short-then-valid", "123#,10001", "manhattan", "10001"},
		{"timeout-then-valid", "timeout,90001", "west", "90001"},
		{"timeout-twice", "timeout,timeout", "timeout", ""},
		{"short-twice", "12#,9#", "no_match", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim, trace := simulate(t, set, "zip_route", scripted.Script{Inputs: keys(c.input)}, nil)
			if got := sim.Record.Steps[0].Outcome; got != c.outcome {
				t.Errorf("outcome %q, want %q\n%s", got, c.outcome, trace)
			}
			if got := sim.Record.Vars["zip"]; got != c.zip {
				t.Errorf("zip variable %q, want %q", got, c.zip)
			}
			golden(t, goldenFile("zip_route", c.name), trace)
		})
	}
}

// The failure count is per call: coming back to the step does not give a
// caller fresh retries.
func TestZipRouteRetriesAcrossVisits(t *testing.T) {
	set := setFromSource(t, `name = "z"
status = "draft"
[[steps]]
id = "zip"
applet = "zip_route"
say = "Please enter your ZIP code"
retries = 1
routes = [{ name = "east", prefix = ["1"] }]
on = { timeout = "again", no_match = "again", east = "done" }
[[steps]]
id = "again"
applet = "menu"
prompt = ["sound:press-1-to-retry"]
keys = { 1 = "zip" }
on = { timeout = "done", invalid = "done", max_retries = "done" }
[[steps]]
id = "done"
applet = "hangup"
`)
	sim, trace := simulate(t, set, "z", scripted.Script{Inputs: keys("timeout,timeout,1,timeout")}, nil)
	if got := stepOutcomes(sim.Record); got != "zip:timeout again:1 zip:timeout again:timeout done:hangup" {
		t.Fatalf("steps %s\n%s", got, trace)
	}
}

func zipFlow(params string) string {
	if !strings.Contains(params, "prompt =") {
		params = "prompt = [\"sound:enter-zip\"]\n" + params
	}
	return "name = \"z\"\nstatus = \"draft\"\n[[steps]]\nid = \"z\"\napplet = \"zip_route\"\n" + params + "\n[[steps]]\nid = \"end\"\napplet = \"hangup\"\n"
}

func TestZipRouteChecks(t *testing.T) {
	cases := []struct {
		name   string
		params string
		files  map[string]string
		sev    flows.Severity
		parts  []string
	}{
		{"valid", `routes = [{ name = "a", exact = ["10001"], prefix = ["2"], range = ["30000-39999"], file = "z/a.txt" }]`, map[string]string{"z/a.txt": "# list\n40001\n40002 # x\n"}, "", nil},
		{"valid-length-3", "length = 3\n" + `routes = [{ name = "a", exact = ["100"] }]`, nil, "", nil},
		{"no-routes", ``, nil, flows.Error, []string{"needs `routes`"}},
		{"no-prompt", `routes = [{ name = "a", exact = ["10001"] }]` + "\nprompt = []", nil, flows.Error, []string{"needs a `prompt`"}},
		{"route-without-name", `routes = [{ exact = ["10001"] }]`, nil, flows.Error, []string{"a route needs a `name`"}},
		{"reserved-name", `routes = [{ name = "timeout", exact = ["10001"] }]`, nil, flows.Error, []string{"taken by the applet's own outcome"}},
		{"route-without-lists", `routes = [{ name = "a" }]`, nil, flows.Error, []string{"needs `exact`, `prefix`, `range` or `file`"}},
		{"exact-wrong-length", `routes = [{ name = "a", exact = ["1000"] }]`, nil, flows.Error, []string{`ZIP code "1000": want 5 digits`}},
		{"exact-not-digits", `routes = [{ name = "a", exact = ["1000A"] }]`, nil, flows.Error, []string{`ZIP code "1000A"`}},
		{"prefix-too-long", `routes = [{ name = "a", prefix = ["123456"] }]`, nil, flows.Error, []string{`prefix "123456"`}},
		{"bad-range", `routes = [{ name = "a", range = ["10000"] }]`, nil, flows.Error, []string{`range "10000"`}},
		{"reversed-range", `routes = [{ name = "a", range = ["20000-10000"] }]`, nil, flows.Error, []string{"ends before it starts"}},
		{"missing-file", `routes = [{ name = "a", file = "nope.txt" }]`, nil, flows.Error, []string{"ZIP list nope.txt", "no such file"}},
		{"bad-file-lines", `routes = [{ name = "a", file = "a.txt" }]`, map[string]string{"a.txt": "10001\n1002\nabcde\n10003\n"}, flows.Error, []string{`line 2: "1002"`, `line 3: "abcde"`}},
		{"bad-length", "length = 1\n" + `routes = [{ name = "a", exact = ["1"] }]`, nil, flows.Error, []string{"length must be between 3 and 10"}},
		{"bad-terminator", "terminator = \"1\"\n" + `routes = [{ name = "a", exact = ["10001"] }]`, nil, flows.Error, []string{"terminator must be"}},
		{"bad-retries", "retries = 99\n" + `routes = [{ name = "a", exact = ["10001"] }]`, nil, flows.Error, []string{"retries must be between 0 and 10"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probs := lintSource(t, zipFlow(c.params), c.files)
			if c.sev == "" {
				if len(probs) > 0 {
					t.Fatalf("want no problem, got %v", probs)
				}
				return
			}
			if !hasProblem(probs, c.sev, c.parts...) {
				t.Fatalf("want a %s with %q, got %v", c.sev, c.parts, probs)
			}
		})
	}
}

// The ZIP a caller entered stays with the call for later steps.
func TestZipRouteKeepsZip(t *testing.T) {
	set := setFromSource(t, `name = "z"
status = "draft"
[[steps]]
id = "zip"
applet = "zip_route"
prompt = ["sound:enter-zip"]
routes = [{ name = "east", prefix = ["1"] }]
[[steps]]
id = "route"
applet = "tag_route"
rules = [{ name = "nyc-zip", var = { zip = "10001" } }]
on = { nyc-zip = "done", no_match = "done" }
[[steps]]
id = "done"
applet = "hangup"
`)
	sim, trace := simulate(t, set, "z", scripted.Script{Inputs: keys("10001")}, nil)
	if got := stepOutcomes(sim.Record); got != "zip:east route:nyc-zip done:hangup" {
		t.Fatalf("steps %s\n%s", got, trace)
	}
	if !strings.Contains(trace, "zip=10001") {
		t.Errorf("trace does not show the ZIP:\n%s", trace)
	}
}
