package applets

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// TagRoute branches on what is known about the call: its tags and
// variables (set, passthru, zip_route), the caller's country and area code,
// the numbers, the time. Rules are tried in order and the first whose
// conditions all hold names the outcome; within one condition any listed
// value will do, except `tags` and `var`, which need every entry. No rule:
// no_match.
//
//	applet = "tag_route"
//	rules = [
//	  { name = "vip", tags = ["vip"] },
//	  { name = "nyc", area_code = ["212", "646"] },        # NANP numbers only
//	  { name = "uk", country_code = ["44"] },
//	  { name = "partner", caller = ["+15551234567", "+1555987*"] },  # trailing * is a prefix
//	  { name = "sales-line", called = ["+15550001000"] },
//	  { name = "google", var = { lead_source = "google" } },
//	  { name = "weekend", time = { days = ["sat", "sun"], timezone = "America/New_York" } },
//	]
//	on = { vip = "vip-line", nyc = "nyc-team", no_match = "main-menu" }
var TagRouteDef = Definition{
	Name:     "tag_route",
	Group:    "route",
	Summary:  "Branch on tags, variables, caller's country/area code, numbers or time.",
	Outcomes: []string{"<rule>", "no_match"},
	Params:   TagRouteParams{},
	New:      newTagRoute,
}

// TagRouteParams are tag_route's parameters.
type TagRouteParams struct {
	Rules []TagRule `toml:"rules" doc:"rules tried in order; the first that matches names the outcome"`
}

// TagRule is one rule: every condition written must hold.
type TagRule struct {
	Name        string            `toml:"name"`
	Tags        []string          `toml:"tags"`
	AreaCode    []string          `toml:"area_code"`
	CountryCode []string          `toml:"country_code"`
	Caller      []string          `toml:"caller"`
	Called      []string          `toml:"called"`
	Var         map[string]string `toml:"var"`
	Time        *TimeCondition    `toml:"time"`
}

// TimeCondition is a weekly window in a time zone.
type TimeCondition struct {
	Timezone string `toml:"timezone"`
	ScheduleHours
}

type tagRoute struct {
	p        TagRouteParams
	rules    []tagRule
	outcomes []string
	byNumber bool // some rule looks at the country or area code
}

type tagRule struct {
	TagRule
	loc    *time.Location
	window window
}

func newTagRoute(p Params) (Applet, error) {
	t := &tagRoute{}
	var errs problems
	errs.add(p.Decode(&t.p))
	if len(t.p.Rules) == 0 {
		errs.add(p.Errorf("rules", "tag_route needs `rules`"))
	}
	for i, r := range t.p.Rules {
		key := fmt.Sprintf("rules[%d]", i)
		errs.add(checkOutcomeName(p, key, r.Name, "rule", "no_match"))
		rule := tagRule{TagRule: r}
		for j, a := range r.AreaCode {
			if len(a) != 3 || !allDigits(a) {
				errs.add(p.Errorf(fmt.Sprintf("%s.area_code[%d]", key, j), "area code %q: three digits (NANP area codes only)", a))
			}
		}
		for j, c := range r.CountryCode {
			c = strings.TrimPrefix(c, "+")
			k := fmt.Sprintf("%s.country_code[%d]", key, j)
			if len(c) < 1 || len(c) > 3 || !allDigits(c) {
				errs.add(p.Errorf(k, "country code %q: one to three digits, such as \"44\"", r.CountryCode[j]))
			} else if !callingCodes[c] {
				p.Warnf(k, "%q is no country calling code in service: the rule never matches it", r.CountryCode[j])
			}
			rule.CountryCode[j] = c
		}
		for j, n := range r.Caller {
			if err := checkNumberPattern(n); err != nil {
				errs.add(p.Errorf(fmt.Sprintf("%s.caller[%d]", key, j), "%v", err))
			}
		}
		for j, n := range r.Called {
			if err := checkNumberPattern(n); err != nil {
				errs.add(p.Errorf(fmt.Sprintf("%s.called[%d]", key, j), "%v", err))
			}
		}
		for _, k := range sortedKeys(r.Var) {
			if !varNameRe.MatchString(k) {
				errs.add(p.Errorf(key+".var."+k, "variable name %q: letters, digits, '_' and '.'", k))
			}
		}
		if tc := r.Time; tc != nil {
			loc, err := loadZone(tc.Timezone)
			if err != nil {
				errs.add(p.Errorf(key+".time.timezone", "%v", err))
				loc = time.UTC
			}
			w, err := parseWindow(p, key+".time", tc.ScheduleHours)
			errs.add(err)
			rule.loc, rule.window = loc, w
		}
		if len(r.Tags)+len(r.AreaCode)+len(r.CountryCode)+len(r.Caller)+len(r.Called)+len(r.Var) == 0 && r.Time == nil {
			p.Warnf(key, "rule %q has no condition: it matches every call and the rules after it never run", r.Name)
		}
		t.byNumber = t.byNumber || len(r.AreaCode)+len(r.CountryCode) > 0
		t.rules = append(t.rules, rule)
		t.outcomes = appendNew(t.outcomes, r.Name)
	}
	t.outcomes = append(t.outcomes, "no_match")
	return t, errs.err()
}

// checkNumberPattern accepts "+15551234567" (exact) or "+1555*" (prefix).
func checkNumberPattern(s string) error {
	d := strings.TrimSuffix(strings.TrimPrefix(digitsOnly(s), "+"), "*")
	if d == "" || !allDigits(d) || strings.Count(s, "*") > 1 || strings.Contains(s, "*") && !strings.HasSuffix(s, "*") {
		return fmt.Errorf("number %q: digits with an optional leading '+', and '*' at the end for a prefix", s)
	}
	return nil
}

// numberMatches compares digit for digit, ignoring '+' and separators;
// a pattern ending in '*' is a prefix.
func numberMatches(number, pattern string) bool {
	n := strings.TrimPrefix(digitsOnly(number), "+")
	pat := strings.TrimPrefix(digitsOnly(pattern), "+")
	if prefix, ok := strings.CutSuffix(pat, "*"); ok {
		return strings.HasPrefix(n, prefix)
	}
	return n == pat
}

func anyNumber(number string, patterns []string) bool {
	for _, p := range patterns {
		if numberMatches(number, p) {
			return true
		}
	}
	return false
}

func (t *tagRoute) Facts() Facts { return Facts{Outcomes: t.outcomes} }

func (t *tagRoute) Run(ctx context.Context, env *Env) (Result, error) {
	caller := env.Call.Caller()
	parts := SplitNumber(caller)
	if t.byNumber {
		env.Note("country_code", orString(parts.Country, "unknown"))
		if parts.Area != "" {
			env.Note("area_code", parts.Area)
		}
	}
	for _, r := range t.rules {
		if r.matches(env, caller, parts) {
			return Result{Outcome: r.Name}, nil
		}
	}
	return Result{Outcome: "no_match"}, nil
}

func (r tagRule) matches(env *Env, caller string, parts PhoneParts) bool {
	for _, tag := range r.Tags {
		if !env.State.Tags[tag] {
			return false
		}
	}
	for k, v := range r.Var {
		if env.State.Vars[k] != v {
			return false
		}
	}
	if len(r.AreaCode) > 0 && (parts.Area == "" || !slices.Contains(r.AreaCode, parts.Area)) {
		return false
	}
	if len(r.CountryCode) > 0 && (parts.Country == "" || !slices.Contains(r.CountryCode, parts.Country)) {
		return false
	}
	if len(r.Caller) > 0 && !anyNumber(caller, r.Caller) {
		return false
	}
	if len(r.Called) > 0 && !anyNumber(env.Call.Called(), r.Called) {
		return false
	}
	if r.Time != nil && !r.window.contains(env.Now().In(r.loc)) {
		return false
	}
	return true
}
