package applets

import (
	"context"
	"errors"
	"fmt"
)

// RoundRobin spreads calls evenly over a list: each call starts with the
// destination after the one the previous call started with. The position
// is shared by every call of the step, across restarts (the store keeps
// it), keyed by workspace, flow and step id. With try_next (or try_all) a
// call that is not answered goes on to the next destinations in the
// rotation before the step gives up. Outcomes as ring_in_order.
//
//	applet = "round_robin"
//	to = ["PJSIP/alice", "PJSIP/bob", "PJSIP/carol"]
//	ring_timeout = "20s"
//	try_next = 1          # on no answer, busy or failure ring one more
//	# try_all = true      # or ring every destination before giving up
var RoundRobinDef = Definition{
	Name:     "round_robin",
	Group:    "connect",
	Summary:  "Distribute calls evenly across a list of destinations.",
	Outcomes: dialOutcomes,
	Params:   RoundRobinParams{},
	New:      newRoundRobin,
}

// RoundRobinParams are round_robin's parameters.
type RoundRobinParams struct {
	To      Destinations `toml:"to" doc:"dial strings taken in turn, one a line"`
	TryNext int          `toml:"try_next" doc:"how many more to try after the first"`
	TryAll  bool         `toml:"try_all" doc:"try every destination before giving up"`
	DialParams
}

type roundRobin struct {
	p     RoundRobinParams
	extra int // destinations tried after the first
}

func newRoundRobin(p Params) (Applet, error) {
	r := &roundRobin{}
	var errs problems
	errs.add(p.Decode(&r.p))
	errs.add(r.p.validate(p, r.p.To, "to"))
	switch n := len(r.p.To); {
	case r.p.TryAll && p.Has("try_next"):
		errs.add(p.Errorf("try_next", "`try_next` and `try_all` exclude each other"))
	case r.p.TryNext < 0:
		errs.add(p.Errorf("try_next", "try_next must not be negative"))
	case r.p.TryAll:
		r.extra = max(n-1, 0)
	case n > 0 && r.p.TryNext > n-1:
		p.Warnf("try_next", "try_next = %d but there are only %d other destinations: each is tried once", r.p.TryNext, n-1)
		r.extra = n - 1
	default:
		r.extra = r.p.TryNext
	}
	if len(r.p.To) == 1 {
		p.Warnf("to", "round_robin with one destination always rings it: use forward")
	}
	return r, errs.err()
}

func (r *roundRobin) Facts() Facts {
	return Facts{Terminal: []string{"answered"}}
}

// counterKey names the shared position: calls of the same step share it
// whichever process or flow version serves them.
func (r *roundRobin) counterKey(env *Env) string {
	ws := env.Flow.Workspace
	if ws == "" {
		ws = "default"
	}
	return fmt.Sprintf("round_robin/%s/%s/%s", ws, env.Flow.Name, env.Step)
}

func (r *roundRobin) Run(ctx context.Context, env *Env) (Result, error) {
	n := len(r.p.To)
	if n == 0 {
		return Result{}, errors.New("round_robin: no destinations")
	}
	start := 0
	if env.Services != nil && env.Services.Counters != nil {
		pos, err := env.Services.Counters.Next(ctx, r.counterKey(env), n)
		switch {
		case err != nil && ctx.Err() != nil:
			return Result{}, fmt.Errorf("round_robin: %w", ctx.Err())
		case err != nil:
			// The rotation is a nicety: ring the first rather than nobody.
			env.Log.Warn().Err(err).Msg("round robin position unavailable: starting at the first destination")
			env.Note("counter_error", err.Error())
		default:
			start = ((pos % n) + n) % n
		}
	}
	env.Note("position", start+1)
	targets := make([]HuntTarget, 0, r.extra+1)
	for i := 0; i <= r.extra; i++ {
		targets = append(targets, HuntTarget{Target: r.p.To[(start+i)%n]})
	}
	return hunt(ctx, env, r.p.DialParams, targets)
}
