package scripted

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/callflow/callflow/applets"
)

// Input is what the caller does at one prompt: keys, or nothing.
type Input struct {
	Keys    string
	Timeout bool
}

// ParseInputs reads "1,timeout,42#": keys or the word timeout.
func ParseInputs(s string) ([]Input, error) {
	var out []Input
	for _, f := range splitList(s) {
		if f == "timeout" || f == "silence" {
			out = append(out, Input{Timeout: true})
			continue
		}
		if !applets.ValidKeys(f) {
			return nil, fmt.Errorf("input %q: keys 0-9 * # or \"timeout\"", f)
		}
		out = append(out, Input{Keys: f})
	}
	return out, nil
}

// ParseAgents reads "no_answer,answered,busy,failed".
func ParseAgents(s string) ([]applets.DialStatus, error) {
	out, after, err := ParseAgentScript(s)
	if err == nil && after > 0 {
		err = fmt.Errorf("agents %q: after= is for a queue's agents (simulate --agents)", s)
	}
	return out, err
}

// ParseAgentScript reads ParseAgents' list, which may start with
// "after=20s": no agent is free until that long into the call (a queue's
// caller waits, hearing what it would hear), then each dial gets the next
// outcome.
func ParseAgentScript(s string) ([]applets.DialStatus, time.Duration, error) {
	var out []applets.DialStatus
	var after time.Duration
	for i, f := range splitList(s) {
		if v, ok := strings.CutPrefix(f, "after="); ok {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || i > 0 {
				return nil, 0, fmt.Errorf("agent outcome %q: after=DURATION (such as after=20s) comes first", f)
			}
			after = d
			continue
		}
		st := applets.DialStatus(strings.ReplaceAll(f, "-", "_"))
		switch st {
		case applets.Answered, applets.NoAnswer, applets.Busy, applets.Failed:
			out = append(out, st)
		default:
			return nil, 0, fmt.Errorf("agent outcome %q: answered, no_answer, busy, failed (after=20s first)", f)
		}
	}
	if after > 0 && len(out) == 0 {
		out = []applets.DialStatus{applets.Answered} // free, then answering
	}
	return out, after, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Script is what the caller and the agents will do.
type Script struct {
	ID     string // call id (default "sim-1")
	From   string
	To     string
	Inputs []Input
	// Agents: what each successive dial gets (default no_answer).
	Agents []applets.DialStatus
	// AgentsFreeAfter: a queue finds no free agent until this long after
	// Start (simulate --agents after=20s,...).
	AgentsFreeAfter time.Duration
	// Messages: length of each successive recording (default 10s; 0 is empty).
	Messages []time.Duration
	// TalkTime of answered dials (default 2m).
	TalkTime time.Duration
	// HangupAt makes the caller hang up during the Nth call action
	// (1-based; 0: never), for tests of every moment.
	HangupAt int
	// Start is the virtual clock's start (default now). Actions advance it.
	Start time.Time
	// Vars are channel variables the call starts with.
	Vars map[string]string
}

// Call is a scripted applets.Call. It is safe for concurrent use.
type Call struct {
	mu       sync.Mutex
	s        Script
	now      time.Time
	actions  int
	gone     bool
	inputs   int
	agents   int
	messages int
	recs     int
	vars     map[string]string
	sent     []applets.Message
	log      []string
}

// New returns a call following s.
func New(s Script) *Call {
	if s.ID == "" {
		s.ID = "sim-1"
	}
	if s.TalkTime == 0 {
		s.TalkTime = 2 * time.Minute
	}
	if s.Start.IsZero() {
		s.Start = time.Now()
	}
	vars := map[string]string{}
	for k, v := range s.Vars {
		vars[k] = v
	}
	return &Call{s: s, now: s.Start, vars: vars}
}

// Now is the virtual clock.
func (c *Call) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AdvanceTo moves the virtual clock forward to t (never back): time the
// call spent waiting on something other than the caller, such as an HTTP
// answer in the simulator.
func (c *Call) AdvanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

// Log lists every action in order ("play sound:x", "dial PJSIP/1 -> busy").
func (c *Call) Log() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

// Sent lists the text messages sent.
func (c *Call) Sent() []applets.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]applets.Message(nil), c.sent...)
}

// HungUp reports whether the call is over.
func (c *Call) HungUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone
}

// step counts an action; it reports whether the caller hangs up now.
func (c *Call) step(ctx context.Context, what string) error {
	c.actions++
	c.log = append(c.log, what)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, applets.ErrHangup)
	}
	if c.gone {
		return fmt.Errorf("%s: %w", what, applets.ErrHangup)
	}
	if c.s.HangupAt > 0 && c.actions >= c.s.HangupAt {
		c.gone = true
		return fmt.Errorf("%s: %w", what, applets.ErrHangup)
	}
	return nil
}

func (c *Call) ID() string     { return c.s.ID }
func (c *Call) Caller() string { return c.s.From }
func (c *Call) Called() string { return c.s.To }

func (c *Call) Answer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.step(ctx, "answer")
}

func (c *Call) Hangup(ctx context.Context, cause string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, "hangup "+cause)
	c.gone = true
	return nil
}

// mediaTime is how long the simulator pretends each media item lasts.
const mediaTime = 3 * time.Second

func (c *Call) Play(ctx context.Context, spec applets.PlaySpec) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.step(ctx, "play "+join(spec.Media)); err != nil {
		return "", err
	}
	c.now = c.now.Add(time.Duration(len(spec.Media)) * mediaTime)
	return "", nil
}

func (c *Call) Gather(ctx context.Context, spec applets.GatherSpec) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.step(ctx, "gather "+join(spec.Prompt)); err != nil {
		return "", err
	}
	c.now = c.now.Add(time.Duration(len(spec.Prompt)) * mediaTime)
	if c.inputs >= len(c.s.Inputs) || c.s.Inputs[c.inputs].Timeout {
		c.inputs++
		c.now = c.now.Add(spec.FirstTimeout)
		return "", fmt.Errorf("gather: %w", applets.ErrTimeout)
	}
	keys := c.s.Inputs[c.inputs].Keys
	c.inputs++
	max := spec.MaxDigits
	if max <= 0 {
		max = 1
	}
	var got strings.Builder
	for _, k := range keys {
		if spec.Terminator != "" && string(k) == spec.Terminator {
			break
		}
		got.WriteRune(k)
		if got.Len() >= max {
			break
		}
	}
	c.now = c.now.Add(time.Duration(len(keys)) * 300 * time.Millisecond)
	if got.Len() < max && !strings.Contains(keys, spec.Terminator+"") {
		c.now = c.now.Add(spec.InterTimeout)
	}
	return got.String(), nil
}

// Hold waits on the virtual clock: the script's next input ends it when
// it holds one of spec.Keys (the caller pressed it while waiting); else
// the whole Timeout passes and the input stays for later.
func (c *Call) Hold(ctx context.Context, spec applets.HoldSpec) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	music := spec.Music
	if music == "" {
		music = "default"
	}
	if err := c.step(ctx, "hold "+music); err != nil {
		return "", err
	}
	if c.inputs < len(c.s.Inputs) && !c.s.Inputs[c.inputs].Timeout && spec.Keys != "" {
		for _, k := range c.s.Inputs[c.inputs].Keys {
			if strings.ContainsRune(spec.Keys, k) {
				c.inputs++
				c.now = c.now.Add(time.Second)
				return string(k), nil
			}
		}
	}
	c.now = c.now.Add(spec.Timeout)
	return "", fmt.Errorf("hold: %w", applets.ErrTimeout)
}

func (c *Call) Record(ctx context.Context, spec applets.RecordSpec) (applets.Recording, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	length := 10 * time.Second
	if c.messages < len(c.s.Messages) {
		length = c.s.Messages[c.messages]
	}
	c.messages++
	c.recs++
	rec := applets.Recording{Format: "wav"}
	if length > 0 {
		if spec.MaxDuration > 0 && length > spec.MaxDuration {
			length = spec.MaxDuration
		}
		rec.Name = spec.Name
		if rec.Name == "" {
			rec.Name = fmt.Sprintf("rec-%s-%d", c.s.ID, c.recs)
		}
		rec.Duration = length
	}
	if err := c.step(ctx, "record "+spec.Name); err != nil {
		return rec, err // a caller who hangs up mid-message leaves it
	}
	c.now = c.now.Add(length)
	return rec, nil
}

func (c *Call) Dial(ctx context.Context, spec applets.DialSpec) (applets.DialResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := applets.NoAnswer
	if c.agents < len(c.s.Agents) {
		st = c.s.Agents[c.agents]
	}
	c.agents++
	if err := c.step(ctx, fmt.Sprintf("dial %s -> %s", strings.Join(spec.Targets, "&"), st)); err != nil {
		return applets.DialResult{}, err
	}
	switch st {
	case applets.Answered:
		c.now = c.now.Add(5 * time.Second)
		res := applets.DialResult{Status: st, Answered: c.now, TalkTime: c.s.TalkTime}
		if len(spec.Targets) > 0 {
			res.Target = spec.Targets[0]
		}
		if spec.Record {
			res.Recording = fmt.Sprintf("call-%s-%d", c.s.ID, c.agents)
		}
		if spec.OnAnswer != nil {
			// As a transport does, before the conversation (and without
			// the lock: the callback may read the clock).
			c.mu.Unlock()
			spec.OnAnswer(res.Target)
			c.mu.Lock()
		}
		c.now = c.now.Add(c.s.TalkTime)
		return res, nil
	case applets.NoAnswer:
		c.now = c.now.Add(spec.RingTimeout)
	default:
		c.now = c.now.Add(time.Second)
	}
	return applets.DialResult{Status: st}, nil
}

func (c *Call) Var(ctx context.Context, name string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.vars[name], nil
}

func (c *Call) SetVar(ctx context.Context, name, value string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.step(ctx, "set "+name); err != nil {
		return err
	}
	c.vars[name] = value
	return nil
}

func (c *Call) Send(ctx context.Context, m applets.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.step(ctx, "send "+m.To); err != nil {
		return err
	}
	c.sent = append(c.sent, m)
	return nil
}

func join(m []applets.Media) string {
	s := make([]string, len(m))
	for i, x := range m {
		s[i] = string(x)
	}
	return strings.Join(s, ",")
}
