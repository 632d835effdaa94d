package ari

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/callflow/callflow/applets/call"
)

const defaultRing = 30 * time.Second

type legState uint8

const (
	legCreated   legState = iota // waiting for its StasisStart
	legDialling                  // /dial sent, ringing
	legWhisper                   // answered, hearing the whisper
	legAccepting                 // answered, must press the accept key
	legWon                       // bridged with the caller
	legDone                      // out of the race
)

type leg struct {
	id, target string
	st         legState
	status     call.DialStatus
	cause      int32
	gone       bool // Asterisk no longer has it
	hungUp     bool // we hung it up
	deadline   time.Time
	pb         string // whisper playback
	pbStarted  bool
}

type dialer struct {
	c        *Call
	ctx      context.Context
	spec     call.DialSpec
	accept   string
	legs     []*leg
	bridge   string
	made     bool // bridge created
	ringing  bool
	moh      bool
	ringSecs int
	ringBy   time.Time
	winner   *leg
}

// Dial rings the targets at once from a mixing bridge. The first leg to
// answer (and, with spec.Accept, to press the accept key) is bridged with
// the caller and Dial returns when that conversation ends. If the caller
// hangs up after an answer, the result is filled in and the error wraps
// call.ErrHangup.
func (c *Call) Dial(ctx context.Context, spec call.DialSpec) (call.DialResult, error) {
	var res call.DialResult
	c.drain()
	if c.ctx.Err() != nil {
		return res, hangupErr("dial")
	}
	if len(spec.Targets) == 0 {
		res.Status = call.Failed
		return res, nil
	}
	ring := spec.RingTimeout
	if ring <= 0 {
		ring = defaultRing
	}
	d := &dialer{c: c, ctx: ctx, spec: spec, accept: spec.Accept, ringSecs: ceilSec(ring)}
	defer d.cleanup()

	d.bridge = c.newID("b")
	c.own(d.bridge)
	// The legs first: from the caller's key to the agents' phones ringing
	// is the wait a caller notices, and the bridge and the ringback are
	// made while the legs enter Stasis. If the bridge then fails, cleanup
	// hangs the legs up.
	for _, t := range spec.Targets {
		d.createLeg(t)
	}
	p := params{}
	p.add("type", "mixing").add("bridgeId", d.bridge).add("name", d.bridge)
	if err := c.do(ctx, http.MethodPost, "/bridges", &p, nil, nil); err != nil {
		if c.ctx.Err() != nil {
			return res, hangupErr("dial")
		}
		if ctx.Err() != nil {
			return res, c.stopErr(ctx, "dial")
		}
		c.log.Warn().Err(err).Msg("dial: bridge not created")
		res.Status = call.Failed
		return res, nil
	}
	d.made = true
	if err := d.startRingback(); err != nil {
		return res, err
	}
	d.ringBy = time.Now().Add(ring + d.c.app.guards.ringMargin)

	for d.winner == nil && !d.allDone() {
		ev, err := c.next(ctx, d.nextDeadline(), true, "dial")
		if errors.Is(err, errDeadline) {
			d.expire(time.Now())
			continue
		}
		if err != nil {
			return res, err
		}
		d.handle(ev)
	}
	if c.ctx.Err() != nil {
		return res, hangupErr("dial")
	}
	if ctx.Err() != nil {
		return res, c.stopErr(ctx, "dial")
	}
	if d.winner == nil {
		res.Status = d.outcome()
		c.log.Info().Str("status", string(res.Status)).Strs("targets", spec.Targets).Msg("dial not answered")
		return res, nil
	}
	return d.talk()
}

func (d *dialer) rest(ctx context.Context, method, path string, p *params, body any) error {
	return d.c.do(ctx, method, path, p, body, nil)
}

func (d *dialer) startRingback() error {
	c := d.c
	var err error
	switch m := d.spec.Music; m {
	case "", "ringing":
		err = d.rest(d.ctx, http.MethodPost, c.chanPath("/ring"), nil, nil)
		d.ringing = err == nil
	default:
		p := params{}
		p.add("mohClass", m)
		err = d.rest(d.ctx, http.MethodPost, c.chanPath("/moh"), &p, nil)
		d.moh = err == nil
	}
	if err != nil {
		if c.ctx.Err() != nil || channelNotFound(err) {
			return hangupErr("dial")
		}
		if d.ctx.Err() != nil {
			return c.stopErr(d.ctx, "dial")
		}
		// Ringback is a courtesy: dial anyway.
		c.log.Warn().Err(err).Msg("dial: ringback failed")
	}
	return nil
}

func (d *dialer) stopRingback() {
	c := d.c
	ctx := bg(d.ctx)
	if d.ringing {
		d.ringing = false
		if err := d.rest(ctx, http.MethodDelete, c.chanPath("/ring"), nil, nil); err != nil && !IsNotFound(err) {
			c.log.Warn().Err(err).Msg("dial: stop ringing failed")
		}
	}
	if d.moh {
		d.moh = false
		if err := d.rest(ctx, http.MethodDelete, c.chanPath("/moh"), nil, nil); err != nil && !IsNotFound(err) {
			c.log.Warn().Err(err).Msg("dial: stop music failed")
		}
	}
}

func (d *dialer) createLeg(target string) {
	c := d.c
	l := &leg{id: c.newID("l"), target: target}
	d.legs = append(d.legs, l)
	// Routed before the request: its StasisStart may beat the response.
	c.own(l.id)
	p := params{}
	// originator makes the leg use the caller's codecs; without it
	// Asterisk makes a 192 kHz signed-linear channel and resamples.
	p.add("endpoint", target).add("app", c.app.opts.App).
		add("appArgs", dialedMarker+","+c.id).add("channelId", l.id).add("originator", c.id)
	var body any
	if d.spec.CallerID != "" {
		body = map[string]any{"variables": map[string]string{"CALLERID(num)": d.spec.CallerID}}
	}
	if err := d.rest(d.ctx, http.MethodPost, "/channels/create", &p, body); err != nil {
		c.log.Warn().Str("target", target).Err(err).Msg("dial: leg not created")
		l.st, l.status = legDone, call.Failed
		// An answer from Asterisk means there is no channel; a timeout
		// may have left one behind.
		l.gone = statusOf(err) != 0
		return
	}
	l.st = legCreated
	l.deadline = time.Now().Add(d.c.app.guards.stasisWait)
}

func (d *dialer) find(id string) *leg {
	for _, l := range d.legs {
		if l.id == id {
			return l
		}
	}
	return nil
}

func (d *dialer) allDone() bool {
	for _, l := range d.legs {
		if l.st != legDone {
			return false
		}
	}
	return true
}

func (d *dialer) nextDeadline() time.Time {
	var dl time.Time
	ringing := false
	for _, l := range d.legs {
		if l.st == legCreated || l.st == legDialling {
			ringing = true
		}
		if l.st != legDone && !l.deadline.IsZero() && (dl.IsZero() || l.deadline.Before(dl)) {
			dl = l.deadline
		}
	}
	if ringing && (dl.IsZero() || d.ringBy.Before(dl)) {
		dl = d.ringBy
	}
	return dl
}

func (d *dialer) handle(ev event) {
	c := d.c
	l := d.find(ev.id)
	if l == nil {
		if ev.kind == evResync {
			d.resync()
			return
		}
		c.common(ev)
		return
	}
	switch ev.kind {
	case evStasisStart:
		switch l.st {
		case legCreated:
			d.dialLeg(l)
		case legDone:
			// We gave up on it before it arrived.
			d.hangupLeg(l)
		}
	case evDial:
		if l.st != legDialling {
			return
		}
		switch ev.state {
		case "ANSWER":
			d.answered(l)
		case "BUSY":
			d.finish(l, call.Busy, true)
		case "CONGESTION", "CHANUNAVAIL", "DONTCALL", "TORTURE", "INVALIDARGS":
			d.finish(l, call.Failed, true)
		case "NOANSWER":
			d.finish(l, call.NoAnswer, true)
		}
	case evHangupRequest:
		if ev.cause != 0 {
			l.cause = ev.cause
		}
	case evStasisEnd, evDestroyed, evVanished:
		if ev.kind == evDestroyed && ev.cause != 0 && l.cause == 0 {
			l.cause = ev.cause
		}
		l.gone = true
		if l.st != legDone {
			d.finish(l, d.classify(l), false)
		}
	case evDTMF:
		if d.accept != "" && (l.st == legWhisper || l.st == legAccepting) {
			if ev.state != "" && strings.Contains(d.accept, ev.state) {
				d.stopWhisper(l)
				d.win(l)
			} else {
				d.reject(l, "wrong key")
			}
		}
	case evPlaybackStarted:
		if ev.ref == l.pb && l.st == legWhisper {
			l.pbStarted = true
			l.deadline = time.Now().Add(d.c.app.guards.maxPlayback)
		}
	case evPlaybackFinished:
		if ev.ref == l.pb && l.st == legWhisper {
			l.pb = ""
			d.whisperDone(l)
		}
	}
}

// resync checks the legs after a reconnect: their Dial and playback
// events of the gap may be lost. A leg still waiting for its StasisStart
// is left to its own deadline.
func (d *dialer) resync() {
	for _, l := range d.legs {
		switch l.st {
		case legDialling:
			var ch struct {
				State string `json:"state"`
			}
			err := d.c.do(d.ctx, http.MethodGet, "/channels/"+esc(l.id), nil, nil, &ch)
			switch {
			case IsNotFound(err):
				l.gone = true
				d.finish(l, call.NoAnswer, false)
			case err == nil && ch.State == "Up":
				d.answered(l)
			}
		case legWhisper:
			if l.pb != "" && d.c.playbackGone(d.ctx, l.pb) {
				l.pb = ""
				d.whisperDone(l)
			}
		}
	}
}

// classify names how a leg that ended on its own went. Asterisk sends no
// NOANSWER on a ring timeout: the leg is just hung up (cause 32, then 19).
func (d *dialer) classify(l *leg) call.DialStatus {
	switch l.st {
	case legCreated:
		return call.Failed
	case legWhisper, legAccepting:
		return call.NoAnswer
	}
	return causeStatus(l.cause)
}

func (d *dialer) dialLeg(l *leg) {
	c := d.c
	p := params{}
	p.add("caller", c.id).addInt("timeout", d.ringSecs)
	if err := d.rest(d.ctx, http.MethodPost, "/channels/"+esc(l.id)+"/dial", &p, nil); err != nil {
		c.log.Warn().Str("target", l.target).Err(err).Msg("dial: leg not dialled")
		d.finish(l, call.Failed, true)
		return
	}
	l.st = legDialling
	l.deadline = time.Time{}
}

func (d *dialer) finish(l *leg, st call.DialStatus, hangup bool) {
	l.st, l.status, l.deadline = legDone, st, time.Time{}
	if hangup {
		d.hangupLeg(l)
	}
}

func (d *dialer) hangupLeg(l *leg) {
	if l.gone || l.hungUp {
		return
	}
	l.hungUp = true
	if err := d.rest(bg(d.ctx), http.MethodDelete, "/channels/"+esc(l.id), nil, nil); err != nil && !IsNotFound(err) {
		d.c.log.Warn().Str("target", l.target).Err(err).Msg("dial: leg hangup failed")
	}
}

func (d *dialer) answered(l *leg) {
	c := d.c
	if d.accept == "" {
		// First to answer wins; with an accept key the others ring on
		// until someone takes the call.
		d.dropOthers(l)
	}
	if list := c.mediaList(d.spec.Whisper); list != "" {
		l.pb = c.newID("w")
		p := params{}
		p.add("media", list)
		err := d.rest(d.ctx, http.MethodPost, "/channels/"+esc(l.id)+"/play/"+esc(l.pb), &p, nil)
		if err == nil {
			l.st = legWhisper
			l.pbStarted = false
			l.deadline = time.Now().Add(d.c.app.guards.startWatchdog)
			return
		}
		c.log.Warn().Str("target", l.target).Err(err).Msg("dial: whisper failed")
		l.pb = ""
	}
	d.whisperDone(l)
}

func (d *dialer) whisperDone(l *leg) {
	if d.accept != "" {
		l.st = legAccepting
		l.deadline = time.Now().Add(d.c.app.guards.acceptTimeout)
		return
	}
	d.win(l)
}

func (d *dialer) stopWhisper(l *leg) {
	if l.pb == "" {
		return
	}
	if err := d.rest(bg(d.ctx), http.MethodDelete, "/playbacks/"+esc(l.pb), nil, nil); err != nil && !IsNotFound(err) {
		d.c.log.Warn().Err(err).Msg("dial: stop whisper failed")
	}
	l.pb = ""
}

func (d *dialer) reject(l *leg, why string) {
	d.c.log.Info().Str("target", l.target).Str("why", why).Msg("dial: agent did not accept")
	d.stopWhisper(l)
	d.finish(l, call.NoAnswer, true)
}

func (d *dialer) win(l *leg) {
	l.st, l.deadline = legWon, time.Time{}
	d.winner = l
	d.dropOthers(l)
}

func (d *dialer) dropOthers(w *leg) {
	for _, l := range d.legs {
		if l != w && l.st != legDone {
			d.stopWhisper(l)
			d.finish(l, call.NoAnswer, true)
		}
	}
}

func (d *dialer) expire(now time.Time) {
	for _, l := range d.legs {
		if l.st == legDone || l.deadline.IsZero() || now.Before(l.deadline) {
			continue
		}
		switch l.st {
		case legCreated:
			d.c.log.Warn().Str("target", l.target).Msg("dial: leg never reached Stasis")
			d.finish(l, call.Failed, true)
		case legWhisper:
			d.c.log.Warn().Str("target", l.target).Bool("started", l.pbStarted).Msg("dial: whisper did not finish")
			d.stopWhisper(l)
			d.whisperDone(l)
		case legAccepting:
			d.reject(l, "no key")
		}
	}
	if !now.Before(d.ringBy) {
		for _, l := range d.legs {
			switch l.st {
			case legCreated:
				d.finish(l, call.Failed, true)
			case legDialling:
				d.finish(l, call.NoAnswer, true)
			}
		}
	}
}

// outcome: busy if every leg was busy, else no_answer if any rang out,
// else failed.
func (d *dialer) outcome() call.DialStatus {
	busy, noAnswer := 0, 0
	for _, l := range d.legs {
		switch l.status {
		case call.Busy:
			busy++
		case call.NoAnswer:
			noAnswer++
		}
	}
	switch {
	case busy == len(d.legs):
		return call.Busy
	case noAnswer > 0:
		return call.NoAnswer
	}
	return call.Failed
}

// talk bridges the caller with the winner and waits for either to leave.
func (d *dialer) talk() (call.DialResult, error) {
	c, w := d.c, d.winner
	res := call.DialResult{Status: call.Answered, Target: w.target}
	d.stopRingback()
	if !c.up {
		if err := d.rest(d.ctx, http.MethodPost, c.chanPath("/answer"), nil, nil); err != nil {
			return res, c.restErr("dial", err)
		}
		c.setUp()
	}
	p := params{}
	p.add("channel", c.id+","+w.id)
	if err := d.rest(d.ctx, http.MethodPost, "/bridges/"+esc(d.bridge)+"/addChannel", &p, nil); err != nil {
		if c.ctx.Err() != nil {
			return res, hangupErr("dial")
		}
		c.log.Warn().Err(err).Msg("dial: bridging failed")
		res.Status = call.Failed
		return res, nil
	}
	res.Answered = time.Now()
	c.log.Info().Str("target", w.target).Msg("dial answered: bridged")
	if d.spec.OnAnswer != nil {
		d.spec.OnAnswer(w.target)
	}
	if d.spec.Record {
		c.seq++
		name := "call-" + safeName(c.id) + "-" + strconv.Itoa(c.seq)
		rp := params{}
		rp.add("name", name).add("format", "wav").add("ifExists", "overwrite")
		if err := d.rest(d.ctx, http.MethodPost, "/bridges/"+esc(d.bridge)+"/record", &rp, nil); err != nil {
			c.log.Warn().Err(err).Msg("dial: recording the conversation failed")
		} else {
			res.Recording = name
		}
	}
	for {
		ev, err := c.next(d.ctx, time.Time{}, true, "dial")
		if err != nil {
			res.TalkTime = time.Since(res.Answered)
			return res, err
		}
		l := d.find(ev.id)
		switch {
		case l == w && (ev.kind == evStasisEnd || ev.kind == evDestroyed || ev.kind == evVanished):
			w.gone = true
			res.TalkTime = time.Since(res.Answered)
			c.log.Info().Dur("talk", res.TalkTime).Msg("dial: agent hung up")
			return res, nil
		case l != nil:
			if ev.kind == evStasisEnd || ev.kind == evDestroyed {
				l.gone = true
			}
		case ev.id == c.id && ev.kind == evDTMF:
			// Keys pressed while talking were for the agent.
		default:
			c.common(ev)
		}
	}
}

// cleanup releases everything the dial made, whatever path it took.
func (d *dialer) cleanup() {
	c := d.c
	ctx := bg(d.ctx)
	for _, l := range d.legs {
		d.stopWhisper(l)
		d.hangupLeg(l)
	}
	if c.ctx.Err() == nil {
		d.stopRingback()
	}
	if d.made {
		if err := d.rest(ctx, http.MethodDelete, "/bridges/"+esc(d.bridge), nil, nil); err != nil && !IsNotFound(err) {
			c.log.Warn().Err(err).Msg("dial: bridge not destroyed")
		}
	}
	ids := make([]string, 0, len(d.legs)+1)
	ids = append(ids, d.bridge)
	for _, l := range d.legs {
		ids = append(ids, l.id)
	}
	c.disown(ids...)
}
