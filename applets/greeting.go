package applets

import (
	"context"
	"fmt"
)

// Greeting plays recorded audio or spoken text to the caller, answering the
// call first. Outcome: done.
//
//	applet = "greeting"
//	play = ["sound:custom/welcome"]   # media URIs or sound file names, in order
//	say = "Welcome to Acme"           # or text to speech (instead of, or after, play)
//	barge_in = false                  # let a key stop the greeting (kept for the next menu)
var GreetingDef = Definition{
	Name:     "greeting",
	Group:    "say & play",
	Summary:  "Play recorded audio or text to speech.",
	Outcomes: []string{"done"},
	Params:   GreetingParams{},
	New:      newGreeting,
}

// GreetingParams are the greeting's parameters.
type GreetingParams struct {
	Play    MediaList `toml:"play" doc:"sounds to play, one a line"`
	Say     string    `toml:"say" doc:"text to speak"`
	BargeIn bool      `toml:"barge_in" doc:"a key press cuts the greeting short"`
}

type greeting struct{ p GreetingParams }

func newGreeting(p Params) (Applet, error) {
	var g greeting
	var errs problems
	errs.add(p.Decode(&g.p))
	if len(g.p.Play) == 0 && g.p.Say == "" && !p.Has("play") {
		errs.add(p.Errorf("", "greeting needs `play` or `say`"))
	}
	return &g, errs.err()
}

func (g *greeting) Facts() Facts {
	return Facts{Media: g.p.Play}
}

func (g *greeting) Run(ctx context.Context, env *Env) (Result, error) {
	if err := env.Answer(ctx); err != nil {
		return Result{}, err
	}
	media, err := env.Media(ctx, g.p.Play, g.p.Say)
	if err != nil {
		return Result{}, fmt.Errorf("greeting: %w", err)
	}
	spec := PlaySpec{Media: media}
	if g.p.BargeIn {
		spec.BargeIn = AnyKey
	}
	if _, err := env.Call.Play(ctx, spec); err != nil {
		return Result{}, err
	}
	return Result{Outcome: "done"}, nil
}
