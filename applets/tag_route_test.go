package applets_test

import (
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
)

func TestTagRoute(t *testing.T) {
	set := loadFlows(t, "tag_route.toml", "tag_route-tagged.toml", "tag_route-lead.toml")
	saturday := time.Date(2026, 12, 19, 15, 0, 0, 0, time.UTC) // 10:00 in New York
	cases := []struct {
		name, flow string
		script     scripted.Script
		want       string // outcome of the tag_route step
	}{
		{"tag", "tag_route-tagged", scripted.Script{}, "vip"},
		{"var", "tag_route-lead", scripted.Script{}, "google"},
		{"area-code", "tag_route", scripted.Script{From: "+12125551234"}, "nyc"},
		{"area-code-national-format", "tag_route", scripted.Script{From: "6465551234"}, "nyc"},
		{"country-code", "tag_route", scripted.Script{From: "+442079460000"}, "uk"},
		{"country-code-00-prefix", "tag_route", scripted.Script{From: "00442079460000"}, "uk"},
		{"caller-prefix", "tag_route", scripted.Script{From: "+15559871234"}, "partner"},
		{"called", "tag_route", scripted.Script{To: "+15550002000"}, "sales-line"},
		{"time", "tag_route", scripted.Script{Start: saturday}, "weekend"},
		{"first-match-wins", "tag_route", scripted.Script{From: "+12125551234", Start: saturday}, "nyc"},
		{"no-match", "tag_route", scripted.Script{}, "no_match"},
		{"anonymous-caller", "tag_route", scripted.Script{From: "anonymous"}, "no_match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim, trace := simulate(t, set, c.flow, c.script, nil)
			var got string
			for _, s := range sim.Record.Steps {
				if s.Applet == "tag_route" {
					got = s.Outcome
				}
			}
			if got != c.want {
				t.Errorf("outcome %q, want %q\n%s", got, c.want, trace)
			}
			golden(t, goldenFile("tag_route", c.name), trace)
		})
	}
}

// Every condition of a rule must hold; each list accepts any of its values.
func TestTagRouteConditionsCombine(t *testing.T) {
	set := setFromSource(t, `name = "t"
status = "draft"
[[steps]]
id = "mark"
applet = "set"
tags = ["vip"]
vars = { plan = "gold" }
[[steps]]
id = "route"
applet = "tag_route"
rules = [
  { name = "vip-uk", tags = ["vip"], country_code = ["44"] },
  { name = "vip-and-new", tags = ["vip", "new"] },
  { name = "gold-ny-weekday", var = { plan = "gold" }, area_code = ["917", "212"], time = { days = ["mon-fri"], from = "09:00", to = "17:00", timezone = "America/New_York" } },
]
on = { vip-uk = "end", vip-and-new = "end", gold-ny-weekday = "end", no_match = "end" }
[[steps]]
id = "end"
applet = "hangup"
`)
	friday10 := time.Date(2026, 12, 18, 15, 0, 0, 0, time.UTC)
	friday18 := time.Date(2026, 12, 18, 23, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		from string
		at   time.Time
		want string
	}{
		{"all-hold", "+12125551234", friday10, "gold-ny-weekday"},
		{"wrong-time", "+12125551234", friday18, "no_match"},
		{"wrong-area", "+13125551234", friday10, "no_match"},
		{"tag-and-country", "+442079460000", friday10, "vip-uk"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim, trace := simulate(t, set, "t", scripted.Script{From: c.from, Start: c.at}, nil)
			if got := sim.Record.Steps[1].Outcome; got != c.want {
				t.Errorf("outcome %q, want %q\n%s", got, c.want, trace)
			}
		})
	}
}

func TestSplitNumber(t *testing.T) {
	cases := []struct {
		in            string
		country, area string
	}{
		{"+12125551234", "1", "212"},
		{"12125551234", "1", "212"},
		{"2125551234", "1", "212"},
		{"(212) 555-1234", "1", "212"},
		{"+1 646 555 1234", "1", "646"},
		{"01144207946000", "44", ""},
		{"+442079460000", "44", ""},
		{"00442079460000", "44", ""},
		{"+33142685300", "33", ""},
		{"+353014067100", "353", ""},
		{"+35312345678", "353", ""},
		{"+8613800138000", "86", ""},
		{"+919876543210", "91", ""},
		{"+74951234567", "7", ""},
		{"+27211234567", "27", ""},
		{"+971501234567", "971", ""},
		{"+85221234567", "852", ""},
		{"+1264497123", "1", ""}, // too short for a NANP number: no area
		{"+2", "", ""},
		{"+999123456", "", ""}, // 999 is not assigned
		{"anonymous", "", ""},
		{"", "", ""},
		{"1234", "", ""},
		{"0207946000", "", ""}, // national format of another country
	}
	for _, c := range cases {
		got := applets.SplitNumber(c.in)
		if got.Country != c.country || got.Area != c.area {
			t.Errorf("%q: country %q area %q, want %q %q", c.in, got.Country, got.Area, c.country, c.area)
		}
	}
}

func tagFlow(params string) string {
	return "name = \"t\"\nstatus = \"draft\"\n[[steps]]\nid = \"t\"\napplet = \"tag_route\"\n" + params + "\n[[steps]]\nid = \"end\"\napplet = \"hangup\"\n"
}

func TestTagRouteChecks(t *testing.T) {
	cases := []struct {
		name   string
		params string
		sev    flows.Severity
		parts  []string
	}{
		{"valid", `rules = [{ name = "a", tags = ["x"] }, { name = "b", caller = ["+1555*", "+15551234567"] }]`, "", nil},
		{"no-rules", `rules = []`, flows.Error, []string{"needs `rules`"}},
		{"rule-without-name", `rules = [{ tags = ["x"] }]`, flows.Error, []string{"a rule needs a `name`"}},
		{"reserved-name", `rules = [{ name = "no_match", tags = ["x"] }]`, flows.Error, []string{"taken by the applet's own outcome"}},
		{"bad-area-code", `rules = [{ name = "a", area_code = ["21"] }]`, flows.Error, []string{`area code "21"`}},
		{"bad-country-code", `rules = [{ name = "a", country_code = ["4444"] }]`, flows.Error, []string{`country code "4444"`}},
		{"unassigned-country-code", `rules = [{ name = "a", country_code = ["999"] }]`, flows.Warning, []string{"no country calling code"}},
		{"bad-caller", `rules = [{ name = "a", caller = ["+1*555"] }]`, flows.Error, []string{`number "+1*555"`}},
		{"bad-called", `rules = [{ name = "a", called = ["sales"] }]`, flows.Error, []string{`number "sales"`}},
		{"bad-var-name", `rules = [{ name = "a", var = { "x y" = "1" } }]`, flows.Error, []string{`variable name "x y"`}},
		{"time-without-zone", `rules = [{ name = "a", time = { days = ["sat"] } }]`, flows.Error, []string{"timezone must name a zone"}},
		{"bad-time", `rules = [{ name = "a", time = { from = "9", to = "17:00", timezone = "UTC" } }]`, flows.Error, []string{`bad time "9"`}},
		{"no-condition", `rules = [{ name = "a" }, { name = "b", tags = ["x"] }]`, flows.Warning, []string{`rule "a" has no condition`}},
		{"unknown-condition", `rules = [{ name = "a", area = ["212"] }]`, flows.Error, []string{`unknown key "area"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probs := lintSource(t, tagFlow(c.params), nil)
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
