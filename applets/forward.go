package applets

import (
	"context"
	"errors"
)

// Forward rings one destination and bridges the caller when it answers.
// An answered call ends when the conversation ends unless `on.answered`
// sends the caller on.
//
//	applet = "forward"
//	to = "PJSIP/101"
//	ring_timeout = "30s"
//	caller_id = ""        # shown to the agent; "" keeps the caller's number
//	music = "ringing"     # or a music-on-hold class the caller hears
var ForwardDef = Definition{
	Name:     "forward",
	Group:    "connect",
	Summary:  "Ring one destination; bridge the caller when it answers.",
	Outcomes: dialOutcomes,
	Params:   ForwardParams{},
	New:      newForward,
}

// ForwardParams are forward's parameters.
type ForwardParams struct {
	To string `toml:"to" doc:"dial string or number to ring"`
	DialParams
}

type forward struct{ p ForwardParams }

func newForward(p Params) (Applet, error) {
	var f forward
	decodeErr := p.Decode(&f.p)
	to := []string{} // written or not, an empty one is reported empty
	if f.p.To != "" {
		to = []string{f.p.To}
	}
	return &f, errors.Join(decodeErr, f.p.validate(p, to, "to"))
}

func (f *forward) Facts() Facts {
	return Facts{Terminal: []string{"answered"}}
}

func (f *forward) Run(ctx context.Context, env *Env) (Result, error) {
	return dial(ctx, env, f.p.DialParams, []string{f.p.To})
}
