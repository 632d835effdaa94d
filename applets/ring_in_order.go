package applets

import (
	"context"
	"errors"
	"time"
)

// RingInOrder rings destinations one after another (a hunt group), each
// for its own ring time; the first to answer is bridged with the caller.
// With rounds the whole list is tried again. When nobody answers, the
// outcome is busy if every attempt was busy, no_answer if any rang out,
// failed otherwise.
//
//	applet = "ring_in_order"
//	to = [
//	  { target = "PJSIP/alice", ring_timeout = "15s" },
//	  "PJSIP/bob",                     # rings for ring_timeout
//	]
//	ring_timeout = "20s"               # for destinations without their own
//	rounds = 2                         # try the whole list twice
//	on = { no_answer = "vm", busy = "vm", failed = "vm" }
var RingInOrderDef = Definition{
	Name:     "ring_in_order",
	Group:    "connect",
	Summary:  "Ring destinations one after another (hunt); first to answer wins.",
	Outcomes: dialOutcomes,
	Params:   RingInOrderParams{},
	New:      newRingInOrder,
}

// RingInOrderParams are ring_in_order's parameters.
type RingInOrderParams struct {
	To     HuntList `toml:"to" doc:"dial strings rung one after another, one a line"`
	Rounds int      `toml:"rounds" doc:"times through the list"`
	DialParams
}

// maxHuntRing is how long a caller may ring through a hunt before check
// warns: most callers hang up long before.
const maxHuntRing = 5 * time.Minute

type ringInOrder struct {
	p      RingInOrderParams
	rounds int
}

func newRingInOrder(p Params) (Applet, error) {
	r := &ringInOrder{rounds: 1}
	var errs problems
	errs.add(p.Decode(&r.p))
	errs.add(validateHunt(p, r.p.DialParams, r.p.To))
	if p.Has("rounds") {
		r.rounds = r.p.Rounds
		if r.rounds < 1 || r.rounds > 10 {
			errs.add(p.Errorf("rounds", "rounds must be between 1 and 10"))
		}
	}
	if len(errs) == 0 {
		var total time.Duration
		for _, t := range r.p.To {
			total += t.ringTime(r.p.DialParams)
		}
		if total *= time.Duration(r.rounds); total > maxHuntRing {
			p.Warnf("to", "the caller may ring for %s before this step gives up; most callers hang up long before", total)
		}
	}
	return r, errs.err()
}

func (r *ringInOrder) Facts() Facts {
	return Facts{Terminal: []string{"answered"}}
}

func (r *ringInOrder) Run(ctx context.Context, env *Env) (Result, error) {
	if len(r.p.To) == 0 {
		return Result{}, errors.New("ring_in_order: no destinations")
	}
	targets := make([]HuntTarget, 0, len(r.p.To)*r.rounds)
	for range r.rounds {
		targets = append(targets, r.p.To...)
	}
	return hunt(ctx, env, r.p.DialParams, targets)
}
