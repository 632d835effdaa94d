package flows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/callflow/callflow/applets"
)

// tracedCall notes in plain words what each step did to the call, for the
// step trace of live calls and the simulator's output alike.
type tracedCall struct {
	applets.Call
	actions []string
	hungUp  bool // we hung up
}

func (t *tracedCall) note(format string, args ...any) {
	t.actions = append(t.actions, fmt.Sprintf(format, args...))
}

func (t *tracedCall) take() []string {
	a := t.actions
	t.actions = nil
	return a
}

func mediaList(m []applets.Media) string {
	s := make([]string, len(m))
	for i, x := range m {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

func suffixErr(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, applets.ErrHangup):
		return " (caller hung up)"
	case errors.Is(err, applets.ErrTimeout):
		return " (timeout)"
	default:
		return " (error: " + err.Error() + ")"
	}
}

func (t *tracedCall) Answer(ctx context.Context) error {
	err := t.Call.Answer(ctx)
	t.note("answered%s", suffixErr(err))
	return err
}

func (t *tracedCall) Hangup(ctx context.Context, cause string) error {
	err := t.Call.Hangup(ctx, cause)
	t.hungUp = true
	t.note("hung up (%s)", cause)
	return err
}

func (t *tracedCall) Play(ctx context.Context, spec applets.PlaySpec) (string, error) {
	d, err := t.Call.Play(ctx, spec)
	if d != "" {
		t.note("played %s; caller pressed %s%s", mediaList(spec.Media), d, suffixErr(err))
	} else {
		t.note("played %s%s", mediaList(spec.Media), suffixErr(err))
	}
	return d, err
}

func (t *tracedCall) Gather(ctx context.Context, spec applets.GatherSpec) (string, error) {
	d, err := t.Call.Gather(ctx, spec)
	switch {
	case d != "":
		t.note("prompted %s; caller pressed %s", mediaList(spec.Prompt), d)
	case errors.Is(err, applets.ErrTimeout):
		t.note("prompted %s; no key in %s", mediaList(spec.Prompt), spec.FirstTimeout)
	default:
		t.note("prompted %s%s", mediaList(spec.Prompt), suffixErr(err))
	}
	return d, err
}

func (t *tracedCall) Record(ctx context.Context, spec applets.RecordSpec) (applets.Recording, error) {
	r, err := t.Call.Record(ctx, spec)
	if r.Empty() {
		t.note("recorded nothing%s", suffixErr(err))
	} else {
		t.note("recorded %s (%s)%s", r.Name, r.Duration.Round(100*time.Millisecond), suffixErr(err))
	}
	return r, err
}

func (t *tracedCall) Dial(ctx context.Context, spec applets.DialSpec) (applets.DialResult, error) {
	r, err := t.Call.Dial(ctx, spec)
	who := strings.Join(spec.Targets, ", ")
	switch r.Status {
	case applets.Answered:
		t.note("dialled %s: answered by %s, talked %s%s", who, r.Target, r.TalkTime.Round(time.Second), suffixErr(err))
	case "":
		t.note("dialled %s%s", who, suffixErr(err))
	default:
		t.note("dialled %s: %s%s", who, strings.ReplaceAll(string(r.Status), "_", " "), suffixErr(err))
	}
	return r, err
}

func (t *tracedCall) SetVar(ctx context.Context, name, value string) error {
	err := t.Call.SetVar(ctx, name, value)
	t.note("set %s=%s%s", name, value, suffixErr(err))
	return err
}

func (t *tracedCall) Send(ctx context.Context, m applets.Message) error {
	err := t.Call.Send(ctx, m)
	t.note("sent a text to %s%s", m.To, suffixErr(err))
	return err
}
