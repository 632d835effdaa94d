package applets

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// HuntTarget is one destination of a hunt, rung on its own: a dial string,
// or a table giving it a ring time of its own:
//
//	"PJSIP/101"
//	{ target = "PJSIP/101", ring_timeout = "15s" }
type HuntTarget struct {
	Target      string
	RingTimeout Duration // 0: the step's ring_timeout
	// err is why the destination could not be read; validateHunt
	// reports it where it was written.
	err error
}

// HuntList is a list of hunt destinations, written as a TOML list.
type HuntList []HuntTarget

func (l *HuntList) UnmarshalTOMLValue(v any) error {
	var items []any
	switch x := v.(type) {
	case string:
		return listForm(x)
	case []any:
		items = x
	case []map[string]any:
		for _, m := range x {
			items = append(items, m)
		}
	default:
		return errString(`want a list such as ["PJSIP/101", { target = "PJSIP/102", ring_timeout = "15s" }]`)
	}
	out := make(HuntList, len(items))
	for i, item := range items {
		out[i].err = out[i].UnmarshalTOMLValue(item)
	}
	*l = out
	return nil
}

func (h *HuntTarget) UnmarshalTOMLValue(v any) error {
	switch x := v.(type) {
	case string:
		h.Target = x
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch k {
			case "target":
				s, ok := x[k].(string)
				if !ok {
					return errString("target: want a dial string")
				}
				h.Target = s
			case "ring_timeout":
				if err := h.RingTimeout.UnmarshalTOMLValue(x[k]); err != nil {
					return fmt.Errorf("ring_timeout: %w", err)
				}
			default:
				return fmt.Errorf("unknown key %q (a destination has `target` and `ring_timeout`)", k)
			}
		}
	default:
		return errString(`want a dial string or { target = "PJSIP/101", ring_timeout = "15s" }`)
	}
	if h.Target == "" {
		// Rejected here so that a zero Target later always means "already reported".
		return errString("empty destination")
	}
	return nil
}

func validRingTimeout(d Duration) bool {
	return d == 0 || d.D() >= time.Second && d.D() <= 10*time.Minute
}

// validateHunt checks a hunt's destinations and ring times.
func validateHunt(p Params, d DialParams, to HuntList) error {
	var errs problems
	if len(to) == 0 && (to != nil || !p.Has("to")) {
		errs.add(p.Errorf("to", "`to` is empty: name at least one destination"))
	}
	for i, t := range to {
		key := fmt.Sprintf("to[%d]", i)
		if t.err != nil {
			errs.add(p.Errorf(key, "%s: %v", key, t.err))
			continue
		}
		if t.Target != "" {
			if err := validTarget(t.Target); err != nil {
				errs.add(p.Errorf(key, "%v", err))
			}
		}
		if !validRingTimeout(t.RingTimeout) {
			errs.add(p.Errorf(key, "ring_timeout must be between 1s and 10m"))
		}
	}
	if !validRingTimeout(d.RingTimeout) {
		errs.add(p.Errorf("ring_timeout", "ring_timeout must be between 1s and 10m"))
	}
	return errs.err()
}

// ringTime is how long a target rings.
func (h HuntTarget) ringTime(d DialParams) time.Duration {
	if h.RingTimeout != 0 {
		return h.RingTimeout.D()
	}
	return orDefault(d.RingTimeout, 30*time.Second)
}

// hunt rings targets one after another until one answers. The misses add
// up to one outcome: busy when every attempt was busy, no_answer when any
// rang out, failed otherwise (unreachable, congested, mixed busy/failed).
func hunt(ctx context.Context, env *Env, d DialParams, targets []HuntTarget) (Result, error) {
	busy, noAnswer := 0, 0
	for _, t := range targets {
		dp := d
		dp.RingTimeout = Duration(t.ringTime(d))
		res, err := dial(ctx, env, dp, []string{t.Target})
		if err != nil || res.Outcome == string(Answered) {
			return res, err
		}
		switch DialStatus(res.Outcome) {
		case Busy:
			busy++
		case NoAnswer:
			noAnswer++
		}
	}
	env.Note("attempts", len(targets))
	switch {
	case len(targets) > 0 && busy == len(targets):
		return Result{Outcome: string(Busy)}, nil
	case noAnswer > 0:
		return Result{Outcome: string(NoAnswer)}, nil
	default:
		return Result{Outcome: string(Failed)}, nil
	}
}
