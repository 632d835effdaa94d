package call

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors every transport returns, wrapped with %w.
var (
	// ErrHangup means the caller is gone. It is an outcome, not a failure.
	ErrHangup = errors.New("caller hung up")
	// ErrTimeout means nothing came in time (no key, no answer).
	ErrTimeout = errors.New("timeout")
)

// Media is an Asterisk media URI: "sound:hello-world", "recording:vm-1",
// "digits:42", "number:7", "tone:ring". A bare name is a sound.
type Media string

// Call is what an applet may do with a call, whatever carries it (ARI or
// AGI). Every blocking method returns when its context ends or the caller
// hangs up (wrapping ErrHangup).
type Call interface {
	// ID is the transport's id for the caller's channel.
	ID() string
	// Caller is the caller's number as Asterisk gave it.
	Caller() string
	// Called is the number the caller dialled.
	Called() string

	Answer(ctx context.Context) error
	Hangup(ctx context.Context, cause string) error

	// Play plays media in order. With BargeIn set, a key in it stops the
	// playback and is returned. Every key pressed (the barge-in key too)
	// stays buffered for the next Gather, so a caller who knows the menu
	// can answer it during the greeting.
	Play(ctx context.Context, spec PlaySpec) (digit string, err error)
	// Gather plays a prompt and collects keys, beginning with keys pressed
	// earlier and not yet consumed. No key at all is ErrTimeout.
	Gather(ctx context.Context, spec GatherSpec) (digits string, err error)
	// Record records the caller. On hang-up it returns what was recorded
	// (if anything) together with ErrHangup.
	Record(ctx context.Context, spec RecordSpec) (Recording, error)
	// Dial rings targets at once; the first to answer is bridged with the
	// caller and Dial returns when that conversation ends.
	Dial(ctx context.Context, spec DialSpec) (DialResult, error)

	// Hold plays music on hold until the caller presses one of
	// spec.Keys (returned), spec.Timeout passes (ErrTimeout) or ctx ends;
	// the music stops before it returns. Other keys are dropped.
	Hold(ctx context.Context, spec HoldSpec) (key string, err error)

	// Var reads a channel variable; SetVar sets one (for the dialplan).
	Var(ctx context.Context, name string) (string, error)
	SetVar(ctx context.Context, name, value string) error
	// Send sends a text message (SMS).
	Send(ctx context.Context, msg Message) error
}

// Interrupter is a Call whose operations stop as soon as their context
// ends (ARI stops a playback). Over FastAGI a command, once sent, runs to
// its end and ending its context ends the session: callers that would cut
// an operation short for their own reasons (a queue cutting an
// announcement when an agent comes free) only do so with an Interrupter.
type Interrupter interface {
	CanInterrupt() bool
}

// HoldSpec says how a caller waits.
type HoldSpec struct {
	Music   string        // music-on-hold class; "" is Asterisk's default
	Keys    string        // keys that end the wait ("" none)
	Timeout time.Duration // 0: until a key or ctx
}

// PlaySpec says what to play.
type PlaySpec struct {
	Media []Media
	// BargeIn lists the keys that interrupt; "" means none, "any" every key.
	BargeIn string
}

// AnyKey lets every key barge in.
const AnyKey = "0123456789*#ABCD"

// GatherSpec says how to collect keys.
type GatherSpec struct {
	Prompt       []Media
	MaxDigits    int           // stop after this many (0: 1)
	FirstTimeout time.Duration // wait for the first key after the prompt
	InterTimeout time.Duration // wait between keys
	Terminator   string        // key that ends entry, not returned ("" for none)
}

// WithDefaults fills what the spec leaves zero as every transport gathers:
// one key, 5 s for the first key, 3 s between keys.
func (s GatherSpec) WithDefaults() GatherSpec {
	if s.MaxDigits <= 0 {
		s.MaxDigits = 1
	}
	if s.FirstTimeout <= 0 {
		s.FirstTimeout = 5 * time.Second
	}
	if s.InterTimeout <= 0 {
		s.InterTimeout = 3 * time.Second
	}
	return s
}

// RecordSpec says how to record.
type RecordSpec struct {
	// Name of the stored recording, unique (the transport uses it as is,
	// and makes one up when it is empty).
	Name        string
	MaxDuration time.Duration
	MaxSilence  time.Duration
	Beep        bool
	FinishKey   string // key that ends the recording
}

// Recording is a stored recording.
type Recording struct {
	Name     string        // the stored recording's name (ARI) or file (AGI)
	Format   string        // "wav"
	Duration time.Duration // audio kept
	Path     string        // local file when the transport knows it
}

// Empty reports whether nothing was recorded.
func (r Recording) Empty() bool { return r.Name == "" || r.Duration <= 0 }

// DialSpec says whom to ring and how.
type DialSpec struct {
	Targets     []string // Asterisk dial strings: "PJSIP/101", "PJSIP/+15551234@trunk"
	RingTimeout time.Duration
	CallerID    string  // presented to the agents; "" keeps the caller's
	Whisper     []Media // heard by the agent alone after answering
	// Accept, when set, is the key the agent must press after the whisper
	// to take the call; anything else (or nothing) rejects it.
	Accept string
	Record bool   // record the conversation
	Music  string // "ringing" (default) or a music-on-hold class
	// OnAnswer, when set, is told the target that answered as soon as it
	// is bridged (before the conversation), so presence can free the
	// agents who did not answer.
	OnAnswer func(target string)
}

// DialStatus is how a dial ended.
type DialStatus string

const (
	Answered DialStatus = "answered"
	NoAnswer DialStatus = "no_answer"
	Busy     DialStatus = "busy"
	Failed   DialStatus = "failed"
)

// DialResult tells who answered and for how long they talked.
type DialResult struct {
	Status    DialStatus
	Target    string // the answering target
	Answered  time.Time
	TalkTime  time.Duration
	Recording string // conversation recording, when DialSpec.Record
}

// Message is a text message.
type Message struct {
	To   string
	From string
	Body string
}

// Originator places calls of its own, with no caller on the line: a
// queue's callback rings the agent first, then calls the caller back from
// the agent's channel (the returned Call's Dial). ARI can; FastAGI cannot.
type Originator interface {
	// Originate rings spec.Targets at once. The first to answer is
	// returned as a Call (the others are hung up) with its DialResult;
	// none answering is a DialResult with no Call. release hangs the
	// answered channel up if it is still there and forgets it; call it
	// once, when done with the Call.
	Originate(ctx context.Context, spec OriginateSpec) (c Call, res DialResult, release func(), err error)
}

// OriginateSpec says whom an Originator rings.
type OriginateSpec struct {
	Targets     []string // Asterisk dial strings
	RingTimeout time.Duration
	CallerID    string // the number the called phone shows
	// Number is what the call is about (the number the caller once
	// dialled): the returned Call's Called.
	Number string
}
