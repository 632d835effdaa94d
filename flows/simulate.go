package flows

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/rs/zerolog"
)

// SimOptions describe a dry run.
type SimOptions struct {
	Script  scripted.Script
	Country string
	Log     zerolog.Logger
	// Services replace the simulator's own (in-memory) ones when set.
	Services *applets.Services
}

// Simulation is what a dry run produced.
type Simulation struct {
	Record *CallRecord
	Call   *scripted.Call
	Mail   []applets.Email
	Stored []applets.Voicemail
}

// Simulate runs the flow named target (a flow name or one of its numbers)
// with the real runner and applets against a scripted call.
func Simulate(ctx context.Context, set *Set, target string, opts SimOptions) (*Simulation, error) {
	flow, ok := set.Find(target, opts.Country)
	if !ok {
		return nil, fmt.Errorf("no flow named or numbered %q", target)
	}
	script := opts.Script
	if script.To == "" && len(flow.Numbers) > 0 {
		script.To = flow.Numbers[0]
	}
	if script.From == "" {
		script.From = "+15550000000"
	}
	call := scripted.New(script)
	sim := &Simulation{Call: call}
	svc := opts.Services
	if svc == nil {
		svc = &applets.Services{
			Voicemail: voicemailFunc(func(vm applets.Voicemail) { sim.Stored = append(sim.Stored, vm) }),
			Mail:      mailFunc(func(m applets.Email) { sim.Mail = append(sim.Mail, m) }),
			Counters:  &MemCounters{},
			Speech:    fakeSpeech{},
		}
	}
	svc.Clock = call.Now
	r := &Runner{Services: svc, Log: opts.Log, Clock: call.Now}
	sim.Record = r.Run(ctx, call, set, flow, CallInfo{Transport: "simulate"})
	return sim, nil
}

type voicemailFunc func(applets.Voicemail)

func (f voicemailFunc) SaveVoicemail(ctx context.Context, vm applets.Voicemail) error {
	f(vm)
	return nil
}

type mailFunc func(applets.Email)

func (f mailFunc) Send(ctx context.Context, m applets.Email) error {
	f(m)
	return nil
}

// fakeSpeech names the text instead of synthesising it.
type fakeSpeech struct{}

func (fakeSpeech) Speak(ctx context.Context, text string) (applets.Media, error) {
	return applets.Media(fmt.Sprintf("tts:%q", text)), nil
}

// MemCounters are round-robin positions kept in memory.
type MemCounters struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *MemCounters) Next(ctx context.Context, key string, n int) (int, error) {
	if n <= 0 {
		return 0, fmt.Errorf("counter %q: no positions", key)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	pos := c.m[key] % n
	c.m[key] = pos + 1
	return pos, nil
}

// WriteTrace prints the path a call took, one line per step.
func WriteTrace(w io.Writer, rec *CallRecord) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "#\tstep\tapplet\toutcome\tnext\twhat it did\n")
	for _, s := range rec.Steps {
		step := s.Step
		if s.Flow != rec.Flow {
			step = s.Flow + "/" + s.Step
		}
		next := s.Next
		if next == "" {
			next = "(end)"
		}
		did := strings.Join(s.Actions, "; ")
		if d := detailText(s.Details); d != "" {
			if did != "" {
				did += "; "
			}
			did += d
		}
		if s.Error != "" {
			did += "; error: " + s.Error
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.Seq, step, s.Applet, s.Outcome, next, did)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	steps := "steps"
	if len(rec.Steps) == 1 {
		steps = "step"
	}
	summary := fmt.Sprintf("call %s: %s after %d %s at %s", rec.ID, rec.Outcome, len(rec.Steps), steps, rec.LastStep)
	if rec.TalkTime > 0 {
		summary += fmt.Sprintf("; talk time %s", rec.TalkTime.Round(time.Second))
	}
	if rec.Qualified {
		summary += "; qualified"
	}
	if rec.Abandoned {
		summary += "; abandoned"
	}
	for _, vm := range rec.Voicemails {
		summary += fmt.Sprintf("; voicemail in %s (%s)", vm.Mailbox, vm.Recording.Duration.Round(time.Second))
	}
	if rec.Error != "" {
		summary += "; " + rec.Error
	}
	_, err := fmt.Fprintln(w, summary)
	return err
}

func detailText(d map[string]any) string {
	if len(d) == 0 {
		return ""
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, d[k])
	}
	return strings.Join(parts, " ")
}

// StepJSON is one step as `simulate --json` prints it.
type StepJSON struct {
	Seq     int            `json:"seq"`
	Flow    string         `json:"flow"`
	Step    string         `json:"step"`
	Applet  string         `json:"applet"`
	Outcome string         `json:"outcome"`
	Next    string         `json:"next,omitempty"`
	Actions []string       `json:"actions,omitempty"`
	Details map[string]any `json:"details,omitempty"`
	Error   string         `json:"error,omitempty"`
	Started time.Time      `json:"started"`
	Ended   time.Time      `json:"ended"`
}

// WriteTraceJSON prints the steps as a JSON array.
func WriteTraceJSON(w io.Writer, rec *CallRecord) error {
	out := make([]StepJSON, len(rec.Steps))
	for i, s := range rec.Steps {
		out[i] = StepJSON{Seq: s.Seq, Flow: s.Flow, Step: s.Step, Applet: s.Applet, Outcome: s.Outcome, Next: s.Next,
			Actions: s.Actions, Details: s.Details, Error: s.Error, Started: s.Started, Ended: s.Ended}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
