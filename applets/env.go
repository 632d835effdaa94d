package applets

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/rs/zerolog"
)

// Env is what a step runs with: the call, the flow it is in, the state the
// call has gathered so far, and the services of the process.
type Env struct {
	Call     Call
	Flow     FlowInfo
	Step     string
	State    *State
	Services *Services
	Log      zerolog.Logger

	details map[string]any
}

// FlowInfo is what a step knows of its flow.
type FlowInfo struct {
	Name      string
	Workspace string
	Version   string
	// Settings apply to every dial of the flow.
	Whisper       []Media
	WhisperText   string // spoken by the speech engine when Whisper is empty
	WhisperAccept string
	Record        bool
}

// Note adds a detail to the step's trace ("why did this call go there").
func (e *Env) Note(key string, value any) {
	if e.details == nil {
		e.details = map[string]any{}
	}
	e.details[key] = value
}

// TakeDetails returns and clears the details noted by the current step.
func (e *Env) TakeDetails() map[string]any {
	d := e.details
	e.details = nil
	return d
}

// Now is the call's clock (the simulator sets it).
func (e *Env) Now() time.Time {
	if e.Services != nil && e.Services.Clock != nil {
		return e.Services.Clock()
	}
	return time.Now()
}

// State is what a call has learnt on its way through flows.
type State struct {
	Answered bool
	Vars     map[string]string
	Tags     map[string]bool
	Attempts map[string]int // failed attempts per step (menus)
	Counters map[string]int // bounded loop counters
	// Voicemails recorded during the call, newest last.
	Voicemails []Voicemail
	// Dials made, for the call record (answered, talk time).
	Dials []DialResult
}

// NewState returns an empty state.
func NewState() *State {
	return &State{Vars: map[string]string{}, Tags: map[string]bool{}, Attempts: map[string]int{}, Counters: map[string]int{}}
}

// TagList returns the tags in order.
func (s *State) TagList() []string {
	out := make([]string, 0, len(s.Tags))
	for t := range s.Tags {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Services are shared by all calls. Any of them may be nil: an applet that
// needs a missing service fails its step rather than the call.
type Services struct {
	Voicemail VoicemailSink
	Counters  Counters
	HTTP      *http.Client
	Mail      Mailer
	Speech    Speaker
	Clock     func() time.Time
	// SoundsDir is where greetings live on the Asterisk box, if known.
	SoundsDir string
	// SMS are the defaults of sms steps that name no technology,
	// endpoint or sender (the [sms] section of the configuration).
	SMS SMSDefaults
	// Agents resolves "team:NAME" and "agent:NAME" destinations.
	Agents Agents
	// Queues keeps the callers waiting for agents (queue steps).
	Queues Queues
	// Callbacks, when the node can place calls (ARI), call back the
	// callers of a queue who asked for it; nil: no callback is offered.
	Callbacks Callbacks
}

// Callbacks run the callbacks of callers who left a queue keeping their
// place: when their turn comes the agent is rung, then the caller is called
// back from the agent's phone.
type Callbacks interface {
	// Start runs job once the call that asked for it (job.Call) is over
	// (never ringing the caller while they are still on the line), for as
	// long as the process runs. What Run returns becomes a step of that
	// call's record: one call in the history, with both legs.
	Start(job CallbackJob)
}

// CallbackPlace is where a caller asked for a callback: the queue step of
// a flow, and the number they had called. A node that takes over a dead
// node's callbacks finds the step by it.
type CallbackPlace struct {
	Workspace, Flow, Step, Called string
}

// CallbackResumer is a step that can call back a caller whose request
// another node took (that node is gone): the job for the place t keeps.
type CallbackResumer interface {
	ResumeCallback(env *Env, queue string, t QueueTicket, callID, number, called string, joined time.Time) CallbackJob
}

// CallbackJob is one callback: Run waits for the caller's turn and places
// the calls with o; ctx ends at shutdown.
type CallbackJob struct {
	Call string
	Run  func(ctx context.Context, o Originator) CallbackResult
}

// CallbackResult is how a callback went, for the call's record.
type CallbackResult struct {
	Step, Applet, Flow string
	Outcome            string // answered, no_answer, expired, interrupted
	Started, Ended     time.Time
	Details            map[string]any
	// Dials are the calls placed: each agent rung, each call to the caller.
	Dials []DialResult
}

// Queues keeps the callers waiting in each queue, in order of priority,
// then arrival.
type Queues interface {
	// Join puts a caller in queue; the ticket follows it until Done.
	Join(queue string, c QueueCaller) QueueTicket
	// Waiting is how many callers wait in queue now.
	Waiting(queue string) int
	// AverageWait is the mean wait of the callers answered today (0: none).
	AverageWait(queue string) time.Duration
}

// QueueCaller is who joins a queue.
type QueueCaller struct {
	ID, Number string
	Priority   int // higher goes first
}

// QueueTicket is one caller's place in a queue.
type QueueTicket interface {
	// Position is 1 for the next caller to be served.
	Position() int
	// Changed has a value when the caller should look again: their turn
	// may have come (callers ahead left, an agent became free).
	Changed() <-chan struct{}
	// Done leaves the queue with an outcome (answered: by agent), or with
	// QueueKept lets the place go without leaving.
	Done(outcome, agent string)
}

// QueueKept is the Done of a callback whose node stops before its turn:
// the place stays in the database, and the next node up (another, or
// this one after a restart) calls the caller back.
const QueueKept = "kept"

// AgentStats, when the agents directory has them, say who of a team is
// logged in and order a queue's agents (longest idle, fewest calls).
type AgentStats interface {
	Members(ctx context.Context, team string) ([]AgentInfo, error)
}

// AgentInfo is one agent of a team now.
type AgentInfo struct {
	Name      string
	State     string // available, busy, paused, logged_out, wrap_up
	Endpoints []string
	IdleSince time.Time // end of the last call (or the state's start)
	Calls     int       // calls answered today
}

// Agents knows the agents, their teams and who can take a call now.
type Agents interface {
	// Resolve returns the endpoints of the agents of a "team:NAME" or
	// "agent:NAME" destination who are available now, in team order.
	Resolve(ctx context.Context, target string) ([]AgentLeg, error)
	// Claim marks agents as being rung so no other call rings them at
	// once; it returns the claim and the agents it could take.
	Claim(agents []string) (Claim, []string)
	// SetByCaller changes the presence of the agent calling from caller
	// (a number one of their endpoints ends in): action is login, logout,
	// pause or toggle. It returns the agent and the state now, or
	// ErrNotAgent.
	SetByCaller(ctx context.Context, caller, action, reason string) (agent, state string, err error)
}

// ErrNotAgent is a caller who is no agent.
var ErrNotAgent = errors.New("the caller is no agent")

// AgentLeg is one endpoint of an agent.
type AgentLeg struct {
	Agent string
	Dial  string
}

// Claim is the agents one dial holds until it ends.
type Claim interface {
	// Answered frees the agents who did not answer; the one who did is busy.
	Answered(agent string)
	// Done frees them all; the one who talked starts wrap-up.
	Done()
}

// SMSDefaults are where texts go out when a step does not say.
type SMSDefaults struct {
	Technology string
	Endpoint   string
	From       string
}

// Voicemail is a message left by a caller.
type Voicemail struct {
	CallID    string
	Mailbox   string
	Workspace string
	Caller    string
	Called    string
	Flow      string
	Step      string
	Recording Recording
	Time      time.Time
}

// VoicemailSink stores voicemails (the store, or the simulator's list).
type VoicemailSink interface {
	SaveVoicemail(ctx context.Context, vm Voicemail) error
}

// Counters hands out positions shared by every call (round robin).
type Counters interface {
	// Next returns the current position for key modulo n and advances it.
	Next(ctx context.Context, key string, n int) (int, error)
}

// Mailer sends email without blocking the call (queued, retried).
type Mailer interface {
	Send(ctx context.Context, m Email) error
}

// Email is a message to send.
type Email struct {
	To          []string
	Subject     string
	Body        string
	Attachments []Attachment
}

// Attachment is a file attached to an email.
type Attachment struct {
	Name string
	Path string // local file
	// Recording names a stored recording to fetch when Path is empty.
	Recording string
}

// Speaker turns text into media Asterisk can play.
type Speaker interface {
	Speak(ctx context.Context, text string) (Media, error)
}

// Answer answers the call once; later calls do nothing.
func (e *Env) Answer(ctx context.Context) error {
	if e.State.Answered {
		return nil
	}
	if err := e.Call.Answer(ctx); err != nil {
		return err
	}
	e.State.Answered = true
	return nil
}

// Media returns play followed by say spoken by the speech engine.
func (e *Env) Media(ctx context.Context, play []Media, say string) ([]Media, error) {
	if say == "" {
		return play, nil
	}
	if e.Services == nil || e.Services.Speech == nil {
		return nil, errNoSpeech
	}
	spoken, err := e.Services.Speech.Speak(ctx, say)
	if err != nil {
		return nil, fmt.Errorf("text to speech: %w", err)
	}
	return append(append([]Media(nil), play...), spoken), nil
}

var errNoSpeech = errors.New("no text-to-speech engine configured")
