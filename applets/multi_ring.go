package applets

import (
	"context"
	"errors"
)

// MultiRing rings every destination at once; the first to answer is
// bridged with the caller and the others stop ringing.
//
//	applet = "multi_ring"
//	to = ["PJSIP/tech1", "PJSIP/tech2"]
//	ring_timeout = "20s"
var MultiRingDef = Definition{
	Name:     "multi_ring",
	Group:    "connect",
	Summary:  "Ring several destinations at once; first to answer wins.",
	Outcomes: dialOutcomes,
	Params:   MultiRingParams{},
	New:      newMultiRing,
}

// MultiRingParams are multi_ring's parameters.
type MultiRingParams struct {
	To Destinations `toml:"to" doc:"dial strings rung together, one a line"`
	DialParams
}

type multiRing struct{ p MultiRingParams }

func newMultiRing(p Params) (Applet, error) {
	var m multiRing
	decodeErr := p.Decode(&m.p)
	return &m, errors.Join(decodeErr, m.p.validate(p, m.p.To, "to"))
}

func (m *multiRing) Facts() Facts {
	return Facts{Terminal: []string{"answered"}}
}

func (m *multiRing) Run(ctx context.Context, env *Env) (Result, error) {
	return dial(ctx, env, m.p.DialParams, m.p.To)
}
