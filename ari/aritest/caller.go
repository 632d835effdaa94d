package aritest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CallSpec describes an inbound call.
type CallSpec struct {
	App      string   // Stasis application, default "callflow"
	Exten    string   // dialled number, dialplan.exten, e.g. "+15551230001"
	Context  string   // dialplan context, default "from-pstn"
	From     string   // caller id number
	FromName string   // caller id name
	Args     []string // Stasis arguments, e.g. {"flow=support"}
	// Talk is how long the caller speaks when recorded before going silent
	// (default 3s; negative: the caller never speaks).
	Talk time.Duration
}

// Caller is a handle on an inbound call's channel.
type Caller struct {
	s       *Server
	ch      *channel
	id      string
	name    string
	done    chan struct{}
	changed chan struct{}

	answered    bool
	heard       []string
	playStarted map[string]int
	playWaited  map[string]int
	recs        []string
	recWaited   int
}

// errCallEnded is returned by waits when the call went away first.
var errCallEnded = errors.New("aritest: the call ended")

// PlaceCall places an inbound call that enters Stasis(app, args...). It
// fails with ErrNoApplication when no websocket is open for the application.
func (s *Server) PlaceCall(ctx context.Context, spec CallSpec) (*Caller, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if spec.App == "" {
		spec.App = "callflow"
	}
	if spec.Context == "" {
		spec.Context = "from-pstn"
	}
	if spec.Exten == "" {
		spec.Exten = "s"
	}
	if spec.Talk == 0 {
		spec.Talk = 3 * time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if !s.appActiveLocked(spec.App) {
		return nil, ErrNoApplication
	}
	c := s.newChannelLocked(kindInbound, "")
	c.snap.Name = fmt.Sprintf("Local/%s@%s-%08x;2", spec.Exten, spec.Context, s.nextNameSeqLocked())
	c.snap.State = "Ring"
	c.snap.Caller = callerID{Name: spec.FromName, Number: spec.From}
	c.snap.Connected = c.snap.Caller
	appData := spec.App
	if len(spec.Args) > 0 {
		appData += "," + strings.Join(spec.Args, ",")
	}
	c.snap.Dialplan = dialplanCEP{Context: spec.Context, Exten: spec.Exten, Priority: 2, AppName: "Stasis", AppData: appData}
	c.talk = spec.Talk
	cl := &Caller{
		s:           s,
		ch:          c,
		id:          c.id(),
		name:        c.snap.Name,
		done:        make(chan struct{}),
		changed:     make(chan struct{}),
		playStarted: map[string]int{},
		playWaited:  map[string]int{},
	}
	c.caller = cl
	s.logf("inbound call %s from %q <%s> to %s", c.id(), spec.FromName, spec.From, spec.Exten)
	s.enterStasisLocked(c, spec.App, append([]string{}, spec.Args...))
	return cl, nil
}

// ID is the channel id of the call.
func (c *Caller) ID() string { return c.id }

// Name is the channel name of the call.
func (c *Caller) Name() string { return c.name }

// Done is closed when the channel is gone, whichever side hung up.
func (c *Caller) Done() <-chan struct{} { return c.done }

// HangupCause is the hangup cause once the call is gone (16 normal clearing,
// 17 busy...); 0 while the call is up or when it vanished in a Restart.
func (c *Caller) HangupCause() int {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.ch.cause
}

// Answered reports whether the channel has been answered.
func (c *Caller) Answered() bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.answered
}

// Heard returns the media started on this channel, in order.
func (c *Caller) Heard() []string {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return append([]string(nil), c.heard...)
}

// Continued returns the dialplan location ("context,exten,priority") the
// call went to after leaving Stasis with /continue, and whether it did.
func (c *Caller) Continued() (string, bool) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.ch.continued, c.ch.continued != ""
}

// Press sends DTMF now: one ChannelDtmfReceived per key, a few ms apart,
// each reported on key release with duration_ms 100.
func (c *Caller) Press(digits string) { c.PressFor(digits, 100*time.Millisecond) }

// PressFor is Press with the given key duration reported in duration_ms.
func (c *Caller) PressFor(digits string, keyDuration time.Duration) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.pressLocked(c.ch, digits, int(keyDuration/time.Millisecond))
}

// Hangup hangs the call up from the caller's side.
func (c *Caller) Hangup() {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.hangupLocked(c.ch, hangup{reqCause: 16, cause: 16})
}

// WaitPlayback waits until the media URI starts playing to this caller.
// Each call consumes one start, so waiting twice waits for a second start.
func (c *Caller) WaitPlayback(ctx context.Context, media string) error {
	return c.wait(ctx, func() (bool, error) {
		if c.playStarted[media] > c.playWaited[media] {
			c.playWaited[media]++
			return true, nil
		}
		if c.ch.gone {
			return false, fmt.Errorf("%w before %s played (heard %v)", errCallEnded, media, c.heard)
		}
		return false, nil
	})
}

// WaitState waits until the channel is in the state ("Up", "Ring"...).
func (c *Caller) WaitState(ctx context.Context, state string) error {
	return c.wait(ctx, func() (bool, error) {
		if c.ch.snap.State == state && !c.ch.gone {
			return true, nil
		}
		if c.ch.gone {
			return false, fmt.Errorf("%w before state %s", errCallEnded, state)
		}
		return false, nil
	})
}

// WaitBridged waits until the call shares a bridge with another channel
// and returns that channel's endpoint (its name if it has none).
func (c *Caller) WaitBridged(ctx context.Context) (string, error) {
	var ep string
	err := c.wait(ctx, func() (bool, error) {
		if b := c.ch.bridge; b != nil {
			for _, o := range b.members {
				if o != c.ch {
					ep = o.endpoint
					if ep == "" {
						ep = o.snap.Name
					}
					return true, nil
				}
			}
		}
		if c.ch.gone {
			return false, fmt.Errorf("%w before being bridged", errCallEnded)
		}
		return false, nil
	})
	return ep, err
}

// WaitRecording waits for the next recording started on this channel and
// returns its name.
func (c *Caller) WaitRecording(ctx context.Context) (string, error) {
	var name string
	err := c.wait(ctx, func() (bool, error) {
		if len(c.recs) > c.recWaited {
			name = c.recs[c.recWaited]
			c.recWaited++
			return true, nil
		}
		if c.ch.gone {
			return false, fmt.Errorf("%w before a recording started", errCallEnded)
		}
		return false, nil
	})
	return name, err
}

func (c *Caller) wait(ctx context.Context, cond func() (bool, error)) error {
	for {
		c.s.mu.Lock()
		ok, err := cond()
		changed := c.changed
		c.s.mu.Unlock()
		if ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

func (c *Caller) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Caller) goneLocked() {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	c.notifyLocked()
}

// pressLocked sends the digits as ChannelDtmfReceived events, one key
// after the other, a few milliseconds apart.
func (s *Server) pressLocked(c *channel, digits string, durMS int) {
	if digits == "" || c.gone {
		return
	}
	s.dtmfLocked(c, string(digits[0]), durMS)
	if len(digits) > 1 {
		rest := digits[1:]
		c.afterLocked(3*time.Millisecond, func() { s.pressLocked(c, rest, durMS) })
	}
}

func (s *Server) dtmfLocked(c *channel, digit string, durMS int) {
	if c.gone || c.hangingUp {
		return
	}
	s.chanEventLocked(c, "ChannelDtmfReceived", nil, []kv{{"digit", digit}, {"duration_ms", durMS}, {"channel", c.snap}})
	if r := c.rec; r != nil && r.state == "recording" && r.terminates(digit) {
		s.finishRecordingLocked(r, endDTMF)
	}
}
