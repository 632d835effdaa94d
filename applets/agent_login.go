package applets

import (
	"context"
	"errors"
	"fmt"
)

// AgentLogin lets an agent log in, log out or pause by phone, behind a
// number such as *45: the agent is the one whose endpoint the call comes
// from (PJSIP/1001 calling as 1001, or a mobile endpoint's number).
//
//	applet = "agent_login"
//	action = "toggle"   # login | logout | pause | toggle (in when out or paused, out when in)
//	reason = "lunch"    # with pause
//	say = true          # tell the agent the new state (default true)
var AgentLoginDef = Definition{
	Name:     "agent_login",
	Summary:  "Log the calling agent in or out, or pause them.",
	Group:    "connect",
	Outcomes: []string{"available", "paused", "logged_out", "not_agent"},
	Params:   AgentLoginParams{},
	New:      newAgentLogin,
}

// AgentLoginParams are agent_login's parameters.
type AgentLoginParams struct {
	Action string `toml:"action" doc:"what the call does to the calling agent" enum:"toggle,login,logout,pause"`
	Reason string `toml:"reason" doc:"the reason of a pause"`
	Say    *bool  `toml:"say" doc:"tell the agent the new state (default true)"`
}

var agentActions = map[string]bool{"login": true, "logout": true, "pause": true, "toggle": true}

type agentLogin struct{ p AgentLoginParams }

func newAgentLogin(p Params) (Applet, error) {
	var a agentLogin
	var errs problems
	errs.add(p.Decode(&a.p))
	if a.p.Action == "" {
		a.p.Action = "toggle"
	}
	if !agentActions[a.p.Action] {
		errs.add(p.Errorf("action", "action %q: use login, logout, pause or toggle", a.p.Action))
	}
	if a.p.Reason != "" && a.p.Action != "pause" {
		errs.add(p.Errorf("reason", "a reason goes with action = \"pause\" only"))
	}
	return &a, errs.err()
}

// Facts: the agent has heard the new state; hanging up after it is the
// end the step is for.
func (a *agentLogin) Facts() Facts { return Facts{Terminal: AgentLoginDef.Outcomes} }

// spoken is what the agent hears for each new state.
var agentStateSaid = map[string]string{
	"available":  "You are logged in.",
	"paused":     "You are paused.",
	"logged_out": "You are logged out.",
	"not_agent":  "This phone belongs to no agent.",
}

func (a *agentLogin) Run(ctx context.Context, env *Env) (Result, error) {
	if env.Services == nil || env.Services.Agents == nil {
		return Result{}, errors.New("agent_login needs the agents directory (callflow serve with a database)")
	}
	agent, state, err := env.Services.Agents.SetByCaller(ctx, env.Call.Caller(), a.p.Action, a.p.Reason)
	switch {
	case errors.Is(err, ErrNotAgent):
		state = "not_agent"
	case err != nil:
		return Result{}, fmt.Errorf("agent_login: %w", err)
	default:
		env.Note("agent", agent)
	}
	if a.p.Say == nil || *a.p.Say {
		if err := env.Answer(ctx); err != nil {
			return Result{}, err
		}
		media, err := env.Media(ctx, nil, agentStateSaid[state])
		if err != nil {
			env.Log.Warn().Err(err).Msg("agent_login: new state not spoken")
		} else if _, err := env.Call.Play(ctx, PlaySpec{Media: media}); err != nil {
			return Result{}, err
		}
	}
	return Result{Outcome: state}, nil
}
