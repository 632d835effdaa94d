package ari

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/callflow/callflow/applets/call"
)

var _ call.Originator = (*App)(nil)

// errDraining: a shutting-down application places no new calls.
var errDraining = errors.New("ari: shutting down: no new calls")

// Originate rings targets with no caller channel (a queue's callback).
// Each target is a channel of the application from its creation
// (/channels/create, then /channels/{id}/dial, as a dial's legs are; the
// Stasis argument marks it so that a restarted process hangs it up rather
// than take it for a caller). The first to answer becomes a Call of its
// own, with its own events, counted among the application's calls until
// release.
func (a *App) Originate(ctx context.Context, spec call.OriginateSpec) (call.Call, call.DialResult, func(), error) {
	var res call.DialResult
	if len(spec.Targets) == 0 {
		res.Status = call.Failed
		return nil, res, nil, nil
	}
	ring := spec.RingTimeout
	if ring <= 0 {
		ring = defaultRing
	}
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	type outcome struct {
		c      *Call
		target string
		status call.DialStatus
	}
	results := make(chan outcome, len(spec.Targets))
	started := 0
	for _, t := range spec.Targets {
		// Unique per process by the count, across restarts by the time.
		id := a.opts.App + "-cb-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatInt(a.originated.Add(1), 10)
		a.mu.Lock()
		if a.draining.Load() {
			a.mu.Unlock()
			break
		}
		c := newCall(a, id, "Down", inbound{Number: spec.Number, CallerNumber: t, FlowName: "callback"})
		// Routed before the request: its StasisStart may beat the response.
		a.routes[id] = route{call: c, id: id}
		a.calls[id] = c
		a.mu.Unlock()
		started++
		go func() {
			st := a.ringOut(octx, c, t, ring, spec.CallerID)
			results <- outcome{c: c, target: t, status: st}
		}()
	}
	if started == 0 {
		return nil, res, nil, errDraining
	}
	var winner *outcome
	worst := call.Failed
	for range started {
		o := <-results
		if o.status == call.Answered && winner == nil {
			winner = &o
			cancel() // the others stop ringing
			continue
		}
		if o.status == call.Answered {
			// Answered too late: another phone took it.
			a.hangupChannel(o.c)
		}
		a.endCall(o.c)
		worst = worseDial(worst, o.status)
	}
	if winner == nil {
		if ctx.Err() != nil {
			return nil, res, nil, ctx.Err()
		}
		res.Status = worst
		return nil, res, nil, nil
	}
	c := winner.c
	res = call.DialResult{Status: call.Answered, Target: winner.target, Answered: c.Answered()}
	var once atomic.Bool
	release := func() {
		if once.CompareAndSwap(false, true) {
			a.endCall(c)
		}
	}
	return c, res, release, nil
}

// worseDial keeps the status that says most of why nobody answered: a
// phone that rang and was not picked up says more than one that failed.
func worseDial(a, b call.DialStatus) call.DialStatus {
	rank := map[call.DialStatus]int{call.Failed: 0, call.Busy: 1, call.NoAnswer: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func (a *App) hangupChannel(c *Call) {
	if err := a.rest.do(context.Background(), http.MethodDelete, "/channels/"+esc(c.id), nil, nil, nil); err != nil && !IsNotFound(err) {
		c.log.Warn().Err(err).Msg("originate: hangup failed")
	}
	c.hungUp = true
}

// ringOut creates and rings one channel; it returns how that went, and
// leaves the channel up only when answered.
func (a *App) ringOut(ctx context.Context, c *Call, target string, ring time.Duration, callerID string) call.DialStatus {
	p := params{}
	// With no originator to take codecs from, formats keeps the channel at
	// 8 kHz: without it Asterisk makes it signed linear at 192 kHz and
	// resamples every prompt (NOTES: costly surprises). The caller's leg,
	// dialled from this channel, takes its codecs from it.
	p.add("endpoint", target).add("app", a.opts.App).add("appArgs", dialedMarker+",callback").add("channelId", c.id).
		add("formats", "ulaw,alaw")
	var body any
	if callerID != "" {
		body = map[string]any{"variables": map[string]string{"CALLERID(num)": callerID}}
	}
	if err := c.do(ctx, http.MethodPost, "/channels/create", &p, body, nil); err != nil {
		c.log.Warn().Str("target", target).Err(err).Msg("originate: channel not created")
		if statusOf(err) == 0 {
			a.hangupChannel(c) // a timeout may have left one behind
		}
		return call.Failed
	}
	deadline := time.Now().Add(a.guards.stasisWait)
	dialling := false
	var cause int32
	for {
		ev, err := c.next(ctx, deadline, false, "originate")
		if err != nil {
			// Our own bound, or nobody wants it any more.
			a.hangupChannel(c)
			if dialling {
				return call.NoAnswer
			}
			return call.Failed
		}
		if ev.id != c.id {
			continue
		}
		switch ev.kind {
		case evStasisStart:
			if dialling {
				continue
			}
			q := params{}
			q.addInt("timeout", ceilSec(ring))
			if err := c.do(ctx, http.MethodPost, c.chanPath("/dial"), &q, nil, nil); err != nil {
				c.log.Warn().Str("target", target).Err(err).Msg("originate: not dialled")
				a.hangupChannel(c)
				return call.Failed
			}
			dialling = true
			deadline = time.Now().Add(ring + a.guards.ringMargin)
		case evDial:
			switch ev.state {
			case "ANSWER":
				c.setUp()
				return call.Answered
			case "BUSY":
				a.hangupChannel(c)
				return call.Busy
			case "CONGESTION", "CHANUNAVAIL", "DONTCALL", "TORTURE", "INVALIDARGS":
				a.hangupChannel(c)
				return call.Failed
			case "NOANSWER":
				a.hangupChannel(c)
				return call.NoAnswer
			}
		case evStateChange:
			if ev.state == "Up" {
				c.setUp()
				return call.Answered
			}
		case evHangupRequest:
			if ev.cause != 0 {
				cause = ev.cause
			}
		case evStasisEnd, evDestroyed, evVanished:
			if ev.kind == evDestroyed && ev.cause != 0 && cause == 0 {
				cause = ev.cause
			}
			if !dialling {
				return call.Failed
			}
			return causeStatus(cause)
		}
	}
}

// causeStatus names how a rung channel that ended on its own went (Asterisk
// sends no NOANSWER on a ring timeout: the channel is hung up, cause 19).
func causeStatus(cause int32) call.DialStatus {
	switch cause {
	case 17, 21: // user busy, call rejected
		return call.Busy
	case 1, 2, 3, 20, 22, 27, 28, 34, 38, 41, 42, 44, 58, 65, 66, 88, 111, 127:
		return call.Failed
	}
	return call.NoAnswer
}
