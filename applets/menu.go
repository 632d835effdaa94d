package applets

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Menu plays a prompt and routes on the keys the caller presses. Keys may
// be several digits ("100" for an extension), ended by the terminator or
// by the inter-digit timeout. Failed attempts (no key, unknown key) are
// counted per call across every visit: while they are <= retries the
// outcome is timeout or invalid, and the menu plays again (after
// timeout_prompt or invalid_prompt) unless `on` sends those outcomes
// elsewhere; the next failure is max_retries, so a silent caller never
// loops forever. As in a FreePBX IVR, `keys` alone is a complete menu.
//
//	applet = "menu"
//	prompt = ["sound:custom/menu"]
//	keys = { 1 = "sales", 2 = "support" }
//	timeout = "5s"                 # wait for the first key after the prompt
//	inter_digit_timeout = "3s"     # wait between keys of a multi-digit entry
//	retries = 2                    # the menu plays at most 3 times
//	terminator = "#"
//	invalid_prompt = ["sound:custom/not-an-option"] # after a wrong key, before the menu again
//	timeout_prompt = ["sound:custom/still-there"]   # after silence, before the menu again
//	on = { max_retries = "goodbye" }
var MenuDef = Definition{
	Name:     "menu",
	Group:    "gather",
	Summary:  "IVR menu: play a prompt, route by the keys pressed.",
	Outcomes: []string{"<key>", "timeout", "invalid", "max_retries"},
	Params:   MenuParams{},
	New:      newMenu,
}

// MenuParams are the menu's parameters.
type MenuParams struct {
	Prompt            MediaList         `toml:"prompt" doc:"sounds played as the menu's prompt, one a line"`
	Say               string            `toml:"say" doc:"text spoken instead of (or after) the prompt"`
	Keys              map[string]string `toml:"keys" doc:"which key (or digits) goes to which step" target:"step"`
	Timeout           Duration          `toml:"timeout" doc:"wait for the first key after the prompt (default 5s)"`
	InterDigitTimeout Duration          `toml:"inter_digit_timeout" doc:"wait between the keys of a multi-digit entry (default 3s)"`
	Retries           *int              `toml:"retries" doc:"failed attempts before max_retries (default 2)"`
	Terminator        *string           `toml:"terminator" doc:"key that ends an entry (default #)"`
	InvalidPrompt     MediaList         `toml:"invalid_prompt" doc:"played after a wrong key"`
	TimeoutPrompt     MediaList         `toml:"timeout_prompt" doc:"played after silence"`
}

type menu struct {
	p          MenuParams
	retries    int
	terminator string
	maxDigits  int
}

func newMenu(p Params) (Applet, error) {
	m := &menu{retries: 2, terminator: "#"}
	var errs problems
	errs.add(p.Decode(&m.p))
	if len(m.p.Prompt) == 0 && m.p.Say == "" {
		errs.add(p.Errorf("", "menu needs a `prompt` (or `say`)"))
	}
	if len(m.p.Keys) == 0 && !p.Has("keys") {
		errs.add(p.Errorf("keys", "menu needs `keys`: which key goes to which step"))
	}
	if m.p.Retries != nil {
		m.retries = *m.p.Retries
		if m.retries < 0 || m.retries > 20 {
			errs.add(p.Errorf("retries", "retries must be between 0 and 20"))
		}
	}
	if m.p.Terminator != nil {
		m.terminator = *m.p.Terminator
		if m.terminator != "" && (len(m.terminator) != 1 || !ValidKeys(m.terminator)) {
			errs.add(p.Errorf("terminator", "terminator must be one key: 0-9, * or #"))
		}
	}
	for _, k := range sortedKeys(m.p.Keys) {
		if !ValidKeys(k) {
			errs.add(p.Errorf("keys."+k, "key %q: keys are made of 0-9, * and #", k))
			continue
		}
		m.maxDigits = max(m.maxDigits, len(k))
	}
	if m.maxDigits > 1 && m.terminator != "" {
		for k := range m.p.Keys {
			if strings.Contains(k, m.terminator) {
				errs.add(p.Errorf("keys."+k, "key %q contains the terminator %q", k, m.terminator))
			}
		}
	}
	if m.maxDigits == 1 {
		// A single key needs no terminator, and "#" may then be a choice.
		m.terminator = ""
	}
	return m, errs.err()
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (m *menu) Facts() Facts {
	outcomes := append(sortedKeys(m.p.Keys), "timeout", "invalid", "max_retries")
	media := append(append(append([]Media(nil), m.p.Prompt...), m.p.InvalidPrompt...), m.p.TimeoutPrompt...)
	return Facts{Outcomes: outcomes, Routes: m.p.Keys, Retry: []string{"timeout", "invalid"}, Input: true, Media: media}
}

func (m *menu) Run(ctx context.Context, env *Env) (Result, error) {
	if err := env.Answer(ctx); err != nil {
		return Result{}, err
	}
	prompt, err := env.Media(ctx, m.p.Prompt, m.p.Say)
	if err != nil {
		return Result{}, fmt.Errorf("menu: %w", err)
	}
	digits, err := env.Call.Gather(ctx, keysSpec(prompt, m.maxDigits, m.p.Timeout, m.p.InterDigitTimeout, m.terminator))
	var failure string
	switch {
	case errors.Is(err, ErrTimeout):
		failure = "timeout"
	case err != nil:
		return Result{}, err
	default:
		if _, ok := m.p.Keys[digits]; ok {
			return Result{Outcome: digits}, nil
		}
		failure = "invalid"
	}
	key := env.Flow.Name + "/" + env.Step
	env.State.Attempts[key]++
	n := env.State.Attempts[key]
	env.Note("attempt", n)
	if n > m.retries {
		return Result{Outcome: "max_retries"}, nil
	}
	sorry := m.p.InvalidPrompt
	if failure == "timeout" {
		sorry = m.p.TimeoutPrompt
	}
	if len(sorry) > 0 {
		// A key pressed during it is kept for the menu that follows.
		if _, err := env.Call.Play(ctx, PlaySpec{Media: sorry, BargeIn: AnyKey}); err != nil {
			return Result{}, err
		}
	}
	return Result{Outcome: failure}, nil
}
