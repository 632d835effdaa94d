package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/internal/tomlpos"
	"github.com/callflow/callflow/queues"
	"github.com/rs/zerolog"
)

// SimOptions describe a dry run.
type SimOptions struct {
	Script  scripted.Script
	Country string
	Log     zerolog.Logger
	// Services replace the simulator's own (in-memory) ones when set;
	// without an HTTP client they get the simulator's.
	Services *applets.Services
	// HTTP are the canned answers to the HTTP requests of passthru and bid
	// steps. A request without one is not sent: the step fails as if the
	// server were down.
	HTTP []SimAnswer
	// LiveHTTP sends the requests without a canned answer for real.
	LiveHTTP http.RoundTripper
	// RRPosition is where every round robin starts (1: its first
	// destination; 0: the first too).
	RRPosition int
	// SMS are the defaults of sms steps ([sms] of the configuration).
	SMS applets.SMSDefaults
	// Outbox keeps the emails (and, through Sink, the webhooks) the call
	// would send; nil: a new one.
	Outbox *Outbox
	// Sink receives the finished call, as the server's sinks do (the
	// webhook sender, writing to Outbox).
	Sink TraceSink
}

// Simulation is what a dry run produced.
type Simulation struct {
	Record *CallRecord
	Call   *scripted.Call
	Mail   []applets.Email
	Stored []applets.Voicemail
	Outbox *Outbox
}

// ErrNotSent is how the simulator answers an HTTP request it has no
// canned answer for: nothing leaves the machine unless asked.
var ErrNotSent = errors.New("not sent: simulated; no canned answer")

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
	out := opts.Outbox
	if out == nil {
		out = &Outbox{}
	}
	sim := &Simulation{Call: call, Outbox: out}
	web := &simTransport{answers: opts.HTTP, live: opts.LiveHTTP, clock: call}
	svc := opts.Services
	if svc == nil {
		svc = &applets.Services{
			Voicemail: voicemailFunc(func(vm applets.Voicemail) { sim.Stored = append(sim.Stored, vm) }),
			Mail:      out,
			Counters:  &MemCounters{Start: max(opts.RRPosition-1, 0)},
			Speech:    fakeSpeech{},
			HTTP:      web.client(),
			SMS:       opts.SMS,
			Agents:    simAgents{clock: call.Now, freeAt: call.Now().Add(script.AgentsFreeAfter)},
		}
	}
	if svc.Queues == nil {
		// The simulated caller waits alone, on the simulated clock.
		svc.Queues = queues.New(queues.Options{Now: call.Now})
	}
	if svc.HTTP == nil {
		// Never the applets' own client: a simulation sends nothing.
		svc.HTTP = web.client()
	}
	svc.Clock = call.Now
	r := &Runner{Services: svc, Log: opts.Log, Clock: call.Now, Sink: opts.Sink}
	sim.Record = r.Run(ctx, call, set, flow, CallInfo{Transport: "simulate"})
	web.annotate(sim.Record)
	sim.Mail = out.Mail()
	return sim, nil
}

type voicemailFunc func(applets.Voicemail)

func (f voicemailFunc) SaveVoicemail(ctx context.Context, vm applets.Voicemail) error {
	f(vm)
	return nil
}

// fakeSpeech names the text instead of synthesising it.
type fakeSpeech struct{}

func (fakeSpeech) Speak(ctx context.Context, text string) (applets.Media, error) {
	return applets.Media(fmt.Sprintf("tts:%q", text)), nil
}

// simAgents stand for a team or an agent by its name: the simulator has
// no directory, and --agents scripts whoever answers. A queue finds the
// team's one agent busy until freeAt (--agents after=20s,...).
type simAgents struct {
	clock  func() time.Time
	freeAt time.Time
}

// FreeAt is when the agents come free, for a queue waiting on the
// simulated clock.
func (a simAgents) FreeAt() time.Time { return a.freeAt }

// Members is the team as one agent, free from freeAt on.
func (a simAgents) Members(ctx context.Context, team string) ([]applets.AgentInfo, error) {
	state := "available"
	if a.clock != nil && a.clock().Before(a.freeAt) {
		state = "busy"
	}
	return []applets.AgentInfo{{Name: "team:" + team, State: state, Endpoints: []string{"team:" + team}}}, nil
}

func (simAgents) Resolve(ctx context.Context, target string) ([]applets.AgentLeg, error) {
	return []applets.AgentLeg{{Agent: target, Dial: target}}, nil
}

func (simAgents) Claim(agents []string) (applets.Claim, []string) { return simClaim{}, agents }

func (simAgents) SetByCaller(ctx context.Context, caller, action, reason string) (string, string, error) {
	switch action {
	case "logout", "toggle":
		return "caller " + caller, "logged_out", nil
	case "pause":
		return "caller " + caller, "paused", nil
	}
	return "caller " + caller, "available", nil
}

type simClaim struct{}

func (simClaim) Answered(string) {}
func (simClaim) Done()           {}

// MemCounters are round-robin positions kept in memory.
type MemCounters struct {
	// Start is the position every key starts at.
	Start int

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
	next, seen := c.m[key]
	if !seen {
		next = c.Start
	}
	pos := next % n
	c.m[key] = pos + 1
	return pos, nil
}

// Outbox keeps what a simulated call would have sent: its emails and, as
// the webhook sender's HTTP transport, its webhooks. Nothing is sent.
type Outbox struct {
	mu       sync.Mutex
	mail     []applets.Email
	webhooks []Webhook
}

// Webhook is a webhook the call would have queued.
type Webhook struct {
	Event string // call.ended, call.abandoned
	URL   string
	Body  []byte
}

// Send keeps an email.
func (o *Outbox) Send(ctx context.Context, m applets.Email) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.mail = append(o.mail, m)
	return nil
}

// RoundTrip keeps a webhook and answers that it was delivered.
func (o *Outbox) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	o.mu.Lock()
	o.webhooks = append(o.webhooks, Webhook{Event: req.Header.Get("X-Callflow-Event"), URL: req.URL.String(), Body: body})
	o.mu.Unlock()
	return cannedResponse(req, http.StatusNoContent, ""), nil
}

// Mail lists the emails in the order they were queued.
func (o *Outbox) Mail() []applets.Email {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]applets.Email(nil), o.mail...)
}

// Webhooks lists the webhooks in the order they were queued.
func (o *Outbox) Webhooks() []Webhook {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Webhook(nil), o.webhooks...)
}

func cannedResponse(req *http.Request, status int, body string) *http.Response {
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
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

// WriteSimulation prints the trace, then everything the call would have
// sent: texts, emails with their text, and the webhooks queued after it.
func WriteSimulation(w io.Writer, sim *Simulation) error {
	if err := WriteTrace(w, sim.Record); err != nil {
		return err
	}
	var lines []string
	for _, m := range sim.Call.Sent() {
		lines = append(lines, fmt.Sprintf("text to %s from %s:", m.To, m.From), indent(m.Body))
	}
	mail := sim.Mail
	if sim.Outbox != nil {
		mail = sim.Outbox.Mail() // the after-call ones too
	}
	for _, m := range mail {
		lines = append(lines, fmt.Sprintf("email to %s: %s", strings.Join(m.To, ", "), m.Subject))
		for _, a := range m.Attachments {
			lines = append(lines, "  attached "+a.Name)
		}
		lines = append(lines, indent(m.Body))
	}
	if sim.Outbox != nil {
		for _, h := range sim.Outbox.Webhooks() {
			lines = append(lines, fmt.Sprintf("webhook %s to %s (%d bytes of JSON, queued after the call)", h.Event, h.URL, len(h.Body)))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	_, err := fmt.Fprintf(w, "\nwould have sent (simulated, nothing left this machine):\n%s\n", strings.Join(lines, "\n"))
	return err
}

func indent(text string) string {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return "    (empty)"
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "    " + l
		}
	}
	return strings.Join(lines, "\n")
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

// TraceSteps are the steps of rec as `simulate --json` prints them (and
// the web API answers them).
func TraceSteps(rec *CallRecord) []StepJSON {
	out := make([]StepJSON, len(rec.Steps))
	for i, s := range rec.Steps {
		out[i] = StepJSON{Seq: s.Seq, Flow: s.Flow, Step: s.Step, Applet: s.Applet, Outcome: s.Outcome, Next: s.Next,
			Actions: s.Actions, Details: s.Details, Error: s.Error, Started: s.Started, Ended: s.Ended}
	}
	return out
}

// WriteTraceJSON prints the steps as a JSON array.
func WriteTraceJSON(w io.Writer, rec *CallRecord) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(TraceSteps(rec))
}

// ScheduleLocation is the time zone of the flow's first schedule step:
// the zone in which a time the admin types for a simulation is meant.
func ScheduleLocation(f *Flow) (*time.Location, bool) {
	// The flow decoded once already: only these two keys are read again.
	doc, err := tomlpos.Parse(f.Raw)
	if err != nil {
		return nil, false
	}
	steps, _ := doc.Root["steps"].([]any)
	for _, raw := range steps {
		st, _ := raw.(map[string]any)
		applet, _ := st["applet"].(string)
		tz, _ := st["timezone"].(string)
		if applet != "schedule" || tz == "" {
			continue
		}
		if loc, err := time.LoadLocation(tz); err == nil {
			return loc, true
		}
	}
	return nil, false
}
