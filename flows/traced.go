package flows

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/call"
)

// tracedCall notes in plain words what each step did to the call, for the
// step trace of live calls and the simulator's output alike: what it did
// to the caller, the mail it queued (through services), and the variables
// and tags it changed.
type tracedCall struct {
	applets.Call
	hungUp bool // we hung up

	mu      sync.Mutex // an applet may work from more than one goroutine
	actions []string
	state   *applets.State
	vars    map[string]string // the state's variables and tags when the step began
	tags    map[string]bool
}

func (t *tracedCall) note(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.actions = append(t.actions, fmt.Sprintf(format, args...))
}

type stepKey struct{}

// stepContext marks ctx as the context of step seq of the call, so that
// what the step starts (an HTTP request in the simulator) can say which
// visit of the step it belongs to.
func stepContext(ctx context.Context, seq int) context.Context {
	return context.WithValue(ctx, stepKey{}, seq)
}

func stepOf(ctx context.Context) (int, bool) {
	seq, ok := ctx.Value(stepKey{}).(int)
	return seq, ok
}

// begin starts tracing a step, remembering the variables and tags the
// call has so that take can say what the step changed.
func (t *tracedCall) begin(state *applets.State) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.state = state
	// Most steps of most calls start with no variables or tags: nothing
	// to copy, nothing allocated.
	t.vars, t.tags = nil, nil
	if len(state.Vars) > 0 {
		t.vars = maps.Clone(state.Vars)
	}
	if len(state.Tags) > 0 {
		t.tags = maps.Clone(state.Tags)
	}
}

// take returns and clears what the current step did; details are what
// the step noted itself, not repeated.
func (t *tracedCall) take(details map[string]any) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := append(t.actions, t.stateChanges(details)...)
	t.actions = nil
	return a
}

// stateChanges lists the variables and tags the step set or removed, in
// order, so that a set, passthru or zip_route step shows what it left.
func (t *tracedCall) stateChanges(details map[string]any) []string {
	if t.state == nil {
		return nil
	}
	var out []string
	for _, k := range sortedKeys(t.state.Vars) {
		v := t.state.Vars[k]
		if noted, ok := details[k]; ok && fmt.Sprint(noted) == v {
			continue // the step said so already (zip_route's zip)
		}
		if old, ok := t.vars[k]; !ok || old != v {
			out = append(out, fmt.Sprintf("set var %s=%s", k, v))
		}
	}
	for _, k := range sortedKeys(t.vars) {
		if _, ok := t.state.Vars[k]; !ok {
			out = append(out, "removed var "+k)
		}
	}
	for _, tag := range t.state.TagList() {
		if !t.tags[tag] {
			out = append(out, "added tag "+tag)
		}
	}
	var gone []string
	for tag := range t.tags {
		if !t.state.Tags[tag] {
			gone = append(gone, tag)
		}
	}
	sort.Strings(gone)
	for _, tag := range gone {
		out = append(out, "removed tag "+tag)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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

// CanInterrupt is the transport's (see call.Interrupter).
func (t *tracedCall) CanInterrupt() bool {
	i, ok := t.Call.(call.Interrupter)
	return ok && i.CanInterrupt()
}

// Hold notes only a key that ended the wait: a queue holds a caller many
// times over and says itself how long they waited.
func (t *tracedCall) Hold(ctx context.Context, spec applets.HoldSpec) (string, error) {
	k, err := t.Call.Hold(ctx, spec)
	if k != "" {
		t.note("caller pressed %s while on hold", k)
	}
	return k, err
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
	if len(spec.Whisper) > 0 {
		who += " with whisper " + mediaList(spec.Whisper)
		if spec.Accept != "" {
			who += " (the agent presses " + spec.Accept + " to take the call)"
		}
	}
	if spec.Record {
		who += ", recording the call"
	}
	switch r.Status {
	case applets.Answered:
		rec := ""
		if r.Recording != "" {
			rec = "; call recorded as " + r.Recording
		}
		t.note("dialled %s: answered by %s, talked %s%s%s", who, r.Target, r.TalkTime.Round(time.Second), rec, suffixErr(err))
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
	t.note("sent a text to %s from %s: %q%s", m.To, m.From, m.Body, suffixErr(err))
	return err
}

// services returns the call's view of svc: the same services, with the
// mail it queues noted in the step trace.
func (t *tracedCall) services(svc *applets.Services) *applets.Services {
	if svc == nil {
		return nil
	}
	c := *svc
	if svc.Mail != nil {
		c.Mail = tracedMailer{Mailer: svc.Mail, call: t}
	}
	return &c
}

// tracedMailer notes each email a step queues.
type tracedMailer struct {
	applets.Mailer
	call *tracedCall
}

func (m tracedMailer) Send(ctx context.Context, e applets.Email) error {
	err := m.Mailer.Send(ctx, e)
	to := strings.Join(e.To, ", ")
	if err != nil {
		m.call.note("email to %s not queued: %v", to, err)
	} else {
		m.call.note("queued an email to %s: %q", to, e.Subject)
	}
	return err
}
