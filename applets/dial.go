package applets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DialParams are shared by the applets that ring people.
type DialParams struct {
	RingTimeout Duration `toml:"ring_timeout" doc:"how long agents ring"`
	// CallerID shown to the agent: "" keeps the caller's number.
	CallerID string `toml:"caller_id" doc:"caller ID shown to the agent (default: the caller's number)"`
	// Music the caller hears while agents ring: "ringing" or a MOH class.
	Music string `toml:"music" doc:"what the caller hears while agents ring: ringing or a music-on-hold class"`
}

// dialOutcomes are the outcomes of every applet that rings people.
var dialOutcomes = []string{"answered", "no_answer", "busy", "failed"}

// validate checks the destinations and the ring time. targets is nil when
// key was not written, or written as something that is no list (decoding
// said so already).
func (d DialParams) validate(p Params, targets []string, key string) error {
	var errs problems
	if len(targets) == 0 && (targets != nil || !p.Has(key)) {
		errs.add(p.Errorf(key, "`%s` is empty: name at least one destination", key))
	}
	for _, t := range targets {
		if err := validTarget(t); err != nil {
			errs.add(p.Errorf(key, "%v", err))
		}
	}
	if d.RingTimeout != 0 && (d.RingTimeout.D() < time.Second || d.RingTimeout.D() > 10*time.Minute) {
		errs.add(p.Errorf("ring_timeout", "ring_timeout must be between 1s and 10m"))
	}
	return errs.err()
}

// validTarget accepts Asterisk dial strings (TECH/resource), and
// "team:NAME" / "agent:NAME" resolved when the call is placed. A bare
// number would need a trunk, which the admin must name.
func validTarget(t string) error {
	if kind, name, ok := strings.Cut(t, ":"); ok && (kind == "team" || kind == "agent") {
		if name == "" || strings.ContainsAny(name, ":/&,| \n\r") {
			return errors.New("destination " + quote(t) + " must name one " + kind + ", such as \"" + kind + ":support\"")
		}
		return nil
	}
	tech, res, ok := strings.Cut(t, "/")
	if !ok || tech == "" || res == "" {
		return errors.New("destination " + quote(t) + " is not a dial string such as \"PJSIP/101\" or \"PJSIP/+15551234567@trunk\"")
	}
	if strings.ContainsAny(t, "&,|\n\r ") {
		return errors.New("destination " + quote(t) + " must not contain '&', ',', '|' or spaces")
	}
	return nil
}

func quote(s string) string { return "\"" + s + "\"" }

// Destinations is a list of dial strings, written as a TOML list.
type Destinations []string

func (d *Destinations) UnmarshalTOMLValue(v any) error {
	switch x := v.(type) {
	case string:
		return listForm(x)
	case []any:
		out := make(Destinations, 0, len(x))
		for i, item := range x {
			s, ok := item.(string)
			if !ok {
				return fmt.Errorf("item %d: want a dial string such as \"PJSIP/101\"", i+1)
			}
			out = append(out, s)
		}
		*d = out
		return nil
	}
	return errString(`want a list such as ["PJSIP/101", "PJSIP/102"]`)
}

// listForm is the error for destinations written as one string ("PJSIP/a,
// PJSIP/b", as Asterisk's Dial takes them with '&'): it spells out the
// list they should be.
func listForm(s string) error {
	var items []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '&' }) {
		if f = strings.TrimSpace(f); f != "" {
			items = append(items, strconv.Quote(f))
		}
	}
	if len(items) == 0 {
		items = []string{`"PJSIP/101"`, `"PJSIP/102"`}
	}
	return fmt.Errorf("want a list, one destination per item: to = [%s]", strings.Join(items, ", "))
}

// isAgentTarget reports a "team:" or "agent:" destination.
func isAgentTarget(t string) bool {
	return strings.HasPrefix(t, "team:") || strings.HasPrefix(t, "agent:")
}

// resolveTargets turns team and agent destinations into the dial strings
// of the agents available now and claims those agents for this dial; the
// claim is nil when no destination named one.
func resolveTargets(ctx context.Context, env *Env, targets []string) ([]string, map[string]string, Claim, error) {
	var named bool
	for _, t := range targets {
		named = named || isAgentTarget(t)
	}
	if !named {
		return targets, nil, nil, nil
	}
	if env.Services == nil || env.Services.Agents == nil {
		return nil, nil, nil, errors.New("team and agent destinations need the agents directory (callflow serve with a database)")
	}
	var legs []AgentLeg
	for _, t := range targets {
		if !isAgentTarget(t) {
			legs = append(legs, AgentLeg{Dial: t})
			continue
		}
		ls, err := env.Services.Agents.Resolve(ctx, t)
		if err != nil {
			return nil, nil, nil, err
		}
		legs = append(legs, ls...)
	}
	claim, _, dials, agentOf := claimLegs(env, legs)
	return dials, agentOf, claim, nil
}

// claimLegs claims the agents of legs so no other call rings them at
// once. It returns the claim, the agents it got, the dial strings to ring
// (each once: legs of agents taken by another call since left out, legs
// of no agent kept) and whose each dial string is ("" for no agent).
func claimLegs(env *Env, legs []AgentLeg) (Claim, []string, []string, map[string]string) {
	var names []string
	for _, l := range legs {
		if l.Agent != "" && !slices.Contains(names, l.Agent) {
			names = append(names, l.Agent)
		}
	}
	claim, got := env.Services.Agents.Claim(names)
	var dials []string
	agentOf := map[string]string{}
	for _, l := range legs {
		if l.Agent != "" && !slices.Contains(got, l.Agent) {
			continue // busy with another call since it was resolved
		}
		if _, dup := agentOf[l.Dial]; dup {
			continue
		}
		agentOf[l.Dial] = l.Agent
		dials = append(dials, l.Dial)
	}
	return claim, got, dials, agentOf
}

// dial rings targets at once and turns the result into an outcome.
func dial(ctx context.Context, env *Env, d DialParams, targets []string) (Result, error) {
	targets, agentOf, claim, err := resolveTargets(ctx, env, targets)
	if err != nil {
		return Result{}, err
	}
	if claim != nil {
		defer claim.Done()
		if len(targets) == 0 {
			env.Note("agents", "none available")
			return Result{Outcome: string(Busy)}, nil
		}
	}
	spec := DialSpec{
		Targets:     targets,
		RingTimeout: orDefault(d.RingTimeout, 30*time.Second),
		CallerID:    d.CallerID,
		Music:       d.Music,
		Whisper:     env.Flow.Whisper,
		Accept:      env.Flow.WhisperAccept,
		Record:      env.Flow.Record,
	}
	if len(spec.Whisper) == 0 && env.Flow.WhisperText != "" {
		if m, err := env.Media(ctx, nil, env.Flow.WhisperText); err == nil {
			spec.Whisper = m
		} else {
			env.Log.Warn().Err(err).Msg("whisper not spoken")
		}
	}
	if claim != nil {
		spec.OnAnswer = func(target string) { claim.Answered(agentOf[target]) }
	}
	res, err := env.Call.Dial(ctx, spec)
	if claim != nil && res.Status == Answered {
		claim.Answered(agentOf[res.Target]) // a transport that could not tell earlier
	}
	if res.Status != "" {
		env.State.Dials = append(env.State.Dials, res)
	}
	if res.Status == Answered {
		env.State.Answered = true // the transport answered the caller to bridge
		env.Note("agent", res.Target)
		env.Note("talk_time", res.TalkTime.Round(time.Second).String())
		// The conversation happened: a hang-up now ends the call normally.
		return Result{Outcome: string(Answered)}, err
	}
	if err != nil {
		return Result{}, err
	}
	return Result{Outcome: string(res.Status)}, nil
}
