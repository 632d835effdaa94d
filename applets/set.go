package applets

import (
	"context"
	"fmt"
	"regexp"
)

// Set stores variables and tags on the call for later steps (tag_route,
// passthru, the call record), and can count visits to bound a loop.
//
//	applet = "set"
//	vars = { lead_source = "google" }
//	tags = ["vip"]
//	remove_tags = ["new"]
//	channel_vars = { CDR_FLOW = "support" }  # also set on the Asterisk channel
//	counter = "tries"     # with limit: outcome "limit" once visited more than limit times
//	limit = 3
var SetDef = Definition{
	Name:     "set",
	Group:    "route",
	Summary:  "Set variables and tags; count visits to bound a loop.",
	Outcomes: []string{"done", "limit"},
	Params:   SetParams{},
	New:      newSet,
}

// SetParams are set's parameters.
type SetParams struct {
	Vars        map[string]string `toml:"vars" doc:"call variables to set"`
	Tags        []string          `toml:"tags" doc:"tags to add to the call, one a line"`
	RemoveTags  []string          `toml:"remove_tags" doc:"tags to remove, one a line"`
	ChannelVars map[string]string `toml:"channel_vars" doc:"Asterisk channel variables to set"`
	Counter     string            `toml:"counter" doc:"counter to count visits with"`
	Limit       int               `toml:"limit" doc:"visits before the limit outcome"`
}

var varNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]{0,63}$`)

type set struct{ p SetParams }

func newSet(p Params) (Applet, error) {
	var s set
	var errs problems
	errs.add(p.Decode(&s.p))
	for _, k := range sortedKeys(s.p.Vars) {
		if !varNameRe.MatchString(k) {
			errs.add(p.Errorf("vars."+k, "variable name %q: letters, digits, '_' and '.'", k))
		}
	}
	for _, k := range sortedKeys(s.p.ChannelVars) {
		if !varNameRe.MatchString(k) {
			errs.add(p.Errorf("channel_vars."+k, "channel variable name %q: letters, digits, '_' and '.'", k))
		}
	}
	if (s.p.Counter == "") != (s.p.Limit == 0) {
		errs.add(p.Errorf("counter", "`counter` and `limit` go together"))
	} else if s.p.Limit < 0 {
		errs.add(p.Errorf("limit", "limit must be positive"))
	}
	if len(s.p.Vars)+len(s.p.Tags)+len(s.p.RemoveTags)+len(s.p.ChannelVars) == 0 && s.p.Counter == "" {
		errs.add(p.Errorf("", "set needs vars, tags, remove_tags, channel_vars or a counter"))
	}
	return &s, errs.err()
}

func (s *set) Facts() Facts {
	f := Facts{Outcomes: []string{"done"}}
	if s.p.Counter != "" {
		f.Outcomes = append(f.Outcomes, "limit")
		f.Bounded = true
	}
	return f
}

func (s *set) Run(ctx context.Context, env *Env) (Result, error) {
	for k, v := range s.p.Vars {
		env.State.Vars[k] = v
	}
	for _, t := range s.p.Tags {
		env.State.Tags[t] = true
	}
	for _, t := range s.p.RemoveTags {
		delete(env.State.Tags, t)
	}
	for _, k := range sortedKeys(s.p.ChannelVars) {
		if err := env.Call.SetVar(ctx, k, s.p.ChannelVars[k]); err != nil {
			return Result{}, fmt.Errorf("set %s: %w", k, err)
		}
	}
	if s.p.Counter != "" {
		env.State.Counters[s.p.Counter]++
		n := env.State.Counters[s.p.Counter]
		env.Note(s.p.Counter, n)
		if n > s.p.Limit {
			return Result{Outcome: "limit"}, nil
		}
	}
	return Result{Outcome: "done"}, nil
}
