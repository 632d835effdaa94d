package applets

import (
	"context"
	"fmt"
)

// Hangup ends the call, optionally after a last message.
//
//	applet = "hangup"
//	play = ["sound:goodbye"]   # optional
//	cause = "normal"           # normal | busy | congestion | no_answer
var HangupDef = Definition{
	Name:    "hangup",
	Group:   "transfer & end",
	Summary: "End the call.",
	Params:  HangupParams{},
	New:     newHangup,
}

// HangupParams are hangup's parameters.
type HangupParams struct {
	Play  MediaList `toml:"play" doc:"sounds to play before hanging up"`
	Say   string    `toml:"say" doc:"text to speak before hanging up"`
	Cause string    `toml:"cause" doc:"hangup cause" enum:"normal,busy,congestion,no_answer"`
}

var hangupCauses = map[string]bool{"": true, "normal": true, "busy": true, "congestion": true, "no_answer": true}

type hangup struct{ p HangupParams }

func newHangup(p Params) (Applet, error) {
	var h hangup
	var errs problems
	errs.add(p.Decode(&h.p))
	if !hangupCauses[h.p.Cause] {
		errs.add(p.Errorf("cause", "cause %q: use normal, busy, congestion or no_answer", h.p.Cause))
	}
	return &h, errs.err()
}

func (h *hangup) Facts() Facts { return Facts{Ends: true, Media: h.p.Play} }

func (h *hangup) Run(ctx context.Context, env *Env) (Result, error) {
	if len(h.p.Play) > 0 || h.p.Say != "" {
		if err := env.Answer(ctx); err != nil {
			return Result{}, err
		}
		media, err := env.Media(ctx, h.p.Play, h.p.Say)
		if err != nil {
			return Result{}, fmt.Errorf("hangup: %w", err)
		}
		if _, err := env.Call.Play(ctx, PlaySpec{Media: media}); err != nil {
			return Result{}, err
		}
	}
	cause := h.p.Cause
	if cause == "" {
		cause = "normal"
	}
	return Result{Outcome: "hangup", End: true}, env.Call.Hangup(ctx, cause)
}
