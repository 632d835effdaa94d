package ari

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets/call"
)

// Errors besides call.ErrHangup and call.ErrTimeout.
var (
	// ErrPlaybackFailed: Asterisk could not play the media (missing file,
	// unknown scheme) or never started it.
	ErrPlaybackFailed = errors.New("playback failed")
	// ErrRecordingFailed: Asterisk could not record.
	ErrRecordingFailed = errors.New("recording failed")
)

// guards bound the waits for events that may never come. Each App has
// its own, so that tests can shorten them.
type guards struct {
	// startWatchdog: a playback not started by then will not start.
	startWatchdog time.Duration
	// maxPlayback bounds a playback that never reports its end (a media
	// scheme Asterisk accepts but cannot play, an endless tone).
	maxPlayback time.Duration
	// recordGrace is how long a recording may take to be reported
	// finished after the caller hung up or the limit passed.
	recordGrace time.Duration
	// resyncGrace is how long an event found missing after a reconnect
	// may still take to arrive before it counts as lost.
	resyncGrace time.Duration
	// stasisWait bounds the wait for a created leg's StasisStart: /dial
	// before it gets 409 "Channel not in Stasis application".
	stasisWait time.Duration
	// ringMargin is added to the ring timeout for our own guard: Asterisk
	// ends a ring timeout by hanging the leg up, with no NOANSWER event.
	ringMargin time.Duration
	// acceptTimeout is how long an agent has to press the accept key.
	acceptTimeout time.Duration
}

func defaultGuards() guards {
	return guards{
		startWatchdog: 5 * time.Second,
		maxPlayback:   10 * time.Minute,
		recordGrace:   3 * time.Second,
		resyncGrace:   500 * time.Millisecond,
		stasisWait:    10 * time.Second,
		ringMargin:    5 * time.Second,
		acceptTimeout: 10 * time.Second,
	}
}

// maxTypeahead bounds the keys kept for the next Gather. Keys past it are
// dropped, the newest first (as over AGI): the first keys typed are the
// ones the caller meant, and a caller who presses keys without end costs
// the call a fixed amount of memory.
const maxTypeahead = 64

// maxQueuedKeys bounds the caller's keys waiting in the call's inbox while
// its goroutine is busy elsewhere (an HTTP look-up, an email): the inbox
// is unbounded for every other event, and more keys than the typeahead
// keeps would be dropped anyway when they are read.
const maxQueuedKeys = maxTypeahead

// errDeadline is internal: the wait's own deadline passed.
var errDeadline = errors.New("deadline")

// queue is a call's inbox: unbounded but for the caller's keys (see
// maxQueuedKeys), one producer (the reader) that never waits, one consumer
// (the call's goroutine).
type queue struct {
	mu   sync.Mutex
	buf  []event
	head int
	keys int // DTMF events in buf[head:]
	wake chan struct{}
}

func (q *queue) push(ev event) {
	q.mu.Lock()
	q.buf = append(q.buf, ev)
	if ev.kind == evDTMF {
		q.keys++
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// waitingKeys is how many DTMF events are queued.
func (q *queue) waitingKeys() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.keys
}

func (q *queue) pop() (event, bool) {
	q.mu.Lock()
	if q.head == len(q.buf) {
		q.mu.Unlock()
		return event{}, false
	}
	ev := q.buf[q.head]
	q.buf[q.head] = event{}
	q.head++
	if ev.kind == evDTMF {
		q.keys--
	}
	switch {
	case q.head == len(q.buf):
		q.buf = q.buf[:0]
		q.head = 0
	case q.head >= 64 && q.head*2 >= len(q.buf):
		n := copy(q.buf, q.buf[q.head:])
		q.buf = q.buf[:n]
		q.head = 0
	}
	q.mu.Unlock()
	return ev, true
}

// Call is one inbound call over ARI. It implements call.Call. Its
// methods are meant for the call's handler goroutine: they consume the
// call's events and must not run concurrently.
type Call struct {
	app     *App
	id      string
	in      inbound
	log     zerolog.Logger
	ctx     context.Context
	cancel  context.CancelCauseFunc
	started time.Time

	q      queue
	events atomic.Int64

	// chores are requests the call does not wait for (stopping a prompt
	// the caller cut short); its end waits for them.
	chores sync.WaitGroup

	// owned ids (legs, bridges) routed to this call; guarded by app.mu.
	owned []string

	// Handler-goroutine state.
	typeahead []byte
	swallow   string // keys eaten by a running recording (its finish key)
	up        bool
	hangupReq bool
	hungUp    bool
	seq       int
	timer     *time.Timer
	answered  atomic.Int64 // unix nanoseconds
	lastEvent atomic.Int64 // unix nanoseconds, only with Options.OnLatency
}

var _ call.Call = (*Call)(nil)

func newCall(a *App, id, state string, in inbound) *Call {
	c := &Call{
		app:     a,
		id:      id,
		in:      in,
		log:     a.opts.Logger.With().Str("call", id).Logger(),
		started: time.Now(),
		up:      state == "Up",
	}
	if c.up {
		// answered by the dialplan before Stasis()
		c.answered.Store(c.started.UnixNano())
	}
	c.q.wake = make(chan struct{}, 1)
	c.ctx, c.cancel = context.WithCancelCause(a.callsCtx)
	return c
}

func (c *Call) push(ev event) {
	c.events.Add(1)
	// The reader is the only producer: the count can only fall meanwhile.
	if ev.kind == evDTMF && ev.id == c.id && c.q.waitingKeys() >= maxQueuedKeys {
		return // a key flood while the call is busy: see maxQueuedKeys
	}
	if c.app.opts.OnLatency != nil {
		c.lastEvent.Store(time.Now().UnixNano())
	}
	c.q.push(ev)
}

// do sends a request on behalf of the call.
func (c *Call) do(ctx context.Context, method, path string, p *params, body, out any) error {
	if hook := c.app.opts.OnLatency; hook != nil {
		if t := c.lastEvent.Swap(0); t != 0 {
			hook(time.Duration(time.Now().UnixNano() - t))
		}
	}
	return c.app.rest.do(ctx, method, path, p, body, out)
}

// ID is the caller's channel id.
func (c *Call) ID() string { return c.id }

// Channel is the caller's channel id.
func (c *Call) Channel() string { return c.id }

// Caller is the caller's number.
func (c *Call) Caller() string { return c.in.CallerNumber }

// Called is the number dialled.
func (c *Call) Called() string { return c.in.Number }

// Started is when the call entered the application.
func (c *Call) Started() time.Time { return c.started }

// Answered is when the call was answered (zero if not).
func (c *Call) Answered() time.Time {
	n := c.answered.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Events is how many events were routed to the call.
func (c *Call) Events() int64 { return c.events.Load() }

// Logger is the call's logger (field call = channel id).
func (c *Call) Logger() *zerolog.Logger { return &c.log }

// Gone reports whether the caller has left.
func (c *Call) Gone() bool { return c.ctx.Err() != nil }

func (c *Call) newID(kind string) string {
	c.seq++
	return c.id + "-" + kind + strconv.Itoa(c.seq)
}

// own routes the events of id (a leg or bridge) to this call; it must be
// called before the request that creates id, whose events may come first.
func (c *Call) own(id string) {
	a := c.app
	a.mu.Lock()
	a.routes[id] = route{call: c, id: id}
	c.owned = append(c.owned, id)
	a.mu.Unlock()
}

func (c *Call) disown(ids ...string) {
	a := c.app
	a.mu.Lock()
	for _, id := range ids {
		delete(a.routes, id)
		for i, o := range c.owned {
			if o == id {
				c.owned = append(c.owned[:i], c.owned[i+1:]...)
				break
			}
		}
	}
	a.mu.Unlock()
}

func (c *Call) stopTimer() {
	if c.timer != nil {
		c.timer.Stop()
	}
}

func hangupErr(op string) error { return fmt.Errorf("ari: %s: %w", op, call.ErrHangup) }

// stopErr explains why a wait ended early.
func (c *Call) stopErr(ctx context.Context, op string) error {
	if c.ctx.Err() != nil {
		return hangupErr(op)
	}
	return fmt.Errorf("ari: %s: %w", op, context.Cause(ctx))
}

// restErr maps a failed request on the caller's channel: a 404 there
// means the caller is gone.
func (c *Call) restErr(op string, err error) error {
	if c.ctx.Err() != nil || channelNotFound(err) {
		return hangupErr(op)
	}
	return fmt.Errorf("ari: %s: %w", op, err)
}

// channelNotFound tells "Channel not found" from other 404s (an unset
// variable, a finished playback).
func channelNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound && strings.Contains(strings.ToLower(e.Message), "channel")
}

// next returns the call's next event. It ends early when ctx ends, when
// the caller is gone (if watchGone), or at deadline (errDeadline). Queued
// events come first, so events that came before a hang-up are still seen.
func (c *Call) next(ctx context.Context, deadline time.Time, watchGone bool, op string) (event, error) {
	var tc <-chan time.Time
	for {
		if ev, ok := c.q.pop(); ok {
			return ev, nil
		}
		if !deadline.IsZero() && tc == nil {
			d := time.Until(deadline)
			if d <= 0 {
				return event{}, errDeadline
			}
			if c.timer == nil {
				c.timer = time.NewTimer(d)
			} else {
				c.timer.Reset(d)
			}
			tc = c.timer.C
		}
		var gone <-chan struct{}
		if watchGone {
			gone = c.ctx.Done()
		}
		select {
		case <-c.q.wake:
		case <-gone:
			c.stopTimer()
			return event{}, hangupErr(op)
		case <-ctx.Done():
			c.stopTimer()
			return event{}, c.stopErr(ctx, op)
		case <-tc:
			return event{}, errDeadline
		}
	}
}

// common applies an event no running operation claimed.
func (c *Call) common(ev event) {
	if ev.id != c.id {
		return
	}
	switch ev.kind {
	case evDTMF:
		c.addKey(ev.state)
	case evHangupRequest:
		c.hangupReq = true
	case evStateChange:
		if ev.state == "Up" {
			c.setUp()
		}
	}
}

func (c *Call) addKey(k string) {
	if k == "" || strings.Contains(c.swallow, k) {
		return
	}
	if len(c.typeahead)+len(k) > maxTypeahead {
		// Keep the first keys, as AGI does; dropping the oldest ones
		// instead let a burst of noise erase the key the caller meant.
		return
	}
	c.typeahead = append(c.typeahead, k...)
}

func (c *Call) setUp() {
	if !c.up {
		c.up = true
		c.answered.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// drain applies the events already queued.
func (c *Call) drain() {
	for {
		ev, ok := c.q.pop()
		if !ok {
			return
		}
		c.common(ev)
	}
}

func (c *Call) chanPath(suffix string) string { return "/channels/" + esc(c.id) + suffix }

// bg is for clean-up requests that must go out even when ctx has ended.
func bg(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// Answer answers the call.
func (c *Call) Answer(ctx context.Context) error {
	if c.ctx.Err() != nil {
		return hangupErr("answer")
	}
	if err := c.do(ctx, http.MethodPost, c.chanPath("/answer"), nil, nil, nil); err != nil {
		return c.restErr("answer", err)
	}
	c.setUp()
	return nil
}

var hangupReasons = map[string]bool{
	"normal": true, "busy": true, "congestion": true, "no_answer": true, "timeout": true,
	"rejected": true, "unallocated": true, "normal_unspecified": true, "number_incomplete": true,
	"codec_mismatch": true, "interworking": true, "failure": true, "answered_elsewhere": true,
}

// Hangup hangs the caller up. cause is an ARI reason ("normal", "busy",
// ...) or a numeric Q.850 code; anything else is "normal".
func (c *Call) Hangup(ctx context.Context, cause string) error {
	p := params{}
	switch {
	case cause != "" && strings.Trim(cause, "0123456789") == "":
		p.add("reason_code", cause)
	case hangupReasons[strings.ToLower(cause)]:
		p.add("reason", strings.ToLower(cause))
	default:
		p.add("reason", "normal")
	}
	c.hungUp = true
	err := c.do(bg(ctx), http.MethodDelete, c.chanPath(""), &p, nil, nil)
	if err != nil && !IsNotFound(err) {
		c.hungUp = false
		return fmt.Errorf("ari: hangup: %w", err)
	}
	return nil
}

var mediaSchemes = map[string]bool{"sound": true, "recording": true, "number": true, "digits": true, "characters": true, "tone": true}

// mediaList joins the playable media into one comma-separated list; bare
// names are sounds, and an unknown scheme is dropped because Asterisk
// accepts it and then never finishes the playback.
func (c *Call) mediaList(media []call.Media) string {
	var b strings.Builder
	for _, m := range media {
		s := strings.TrimSpace(string(m))
		if s == "" {
			continue
		}
		scheme, _, ok := strings.Cut(s, ":")
		if !ok {
			s = "sound:" + s
		} else if !mediaSchemes[scheme] {
			c.log.Warn().Str("media", s).Msg("unknown media scheme: skipped")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s)
	}
	return b.String()
}

func bargeKeys(s string) string {
	if strings.EqualFold(s, "any") {
		return call.AnyKey
	}
	return s
}

// Play plays media to the caller in one playback. A key in spec.BargeIn
// stops it and is returned; every key, that one too, goes to the typeahead.
func (c *Call) Play(ctx context.Context, spec call.PlaySpec) (string, error) {
	d, err := c.play(ctx, spec.Media, bargeKeys(spec.BargeIn))
	// The barge-in key is typed ahead too (call.Call: a greeting with
	// barge_in hands its key to the next menu, as over AGI); without this
	// the key that stopped the greeting was lost.
	c.addKey(d)
	return d, err
}

func (c *Call) play(ctx context.Context, media []call.Media, barge string) (string, error) {
	if c.ctx.Err() != nil {
		return "", hangupErr("play")
	}
	list := c.mediaList(media)
	if list == "" {
		return "", nil
	}
	pb := c.newID("p")
	p := params{}
	p.add("media", list)
	if err := c.do(ctx, http.MethodPost, c.chanPath("/play/"+esc(pb)), &p, nil, nil); err != nil {
		return "", c.restErr("play", err)
	}
	stopPB := func() {
		err := c.do(bg(ctx), http.MethodDelete, "/playbacks/"+esc(pb), nil, nil, nil)
		if err != nil && !IsNotFound(err) {
			c.log.Warn().Err(err).Msg("stop playback failed")
		}
	}
	started := false
	startBy := time.Now().Add(c.app.guards.startWatchdog)
	endBy := time.Now().Add(c.app.guards.maxPlayback)
	var lostBy time.Time // set when a resync found the playback gone
	for {
		dl := endBy
		if !started {
			dl = startBy
		}
		if !lostBy.IsZero() && lostBy.Before(dl) {
			dl = lostBy
		}
		ev, err := c.next(ctx, dl, true, "play")
		if errors.Is(err, errDeadline) && !lostBy.IsZero() && !time.Now().Before(lostBy) {
			// Its PlaybackFinished was lost in the gap.
			c.log.Warn().Str("media", list).Msg("playback ended while disconnected")
			if c.hangupReq {
				return "", hangupErr("play")
			}
			return "", nil
		}
		if errors.Is(err, errDeadline) {
			stopPB()
			if !started {
				c.log.Warn().Str("media", list).Msg("playback never started")
				return "", fmt.Errorf("ari: play %s: never started: %w", list, ErrPlaybackFailed)
			}
			c.log.Warn().Str("media", list).Msg("playback never finished: stopped")
			return "", nil
		}
		if err != nil {
			if !errors.Is(err, call.ErrHangup) {
				stopPB()
			}
			return "", err
		}
		switch {
		case ev.kind == evPlaybackStarted && ev.ref == pb:
			started = true
		case ev.kind == evPlaybackFinished && ev.ref == pb:
			if ev.state == "failed" {
				if c.hangupReq || c.ctx.Err() != nil {
					return "", hangupErr("play")
				}
				return "", fmt.Errorf("ari: play %s: %w", list, ErrPlaybackFailed)
			}
			return "", nil
		case ev.kind == evDTMF && ev.id == c.id && ev.state != "" && strings.Contains(barge, ev.state):
			// Stopped off the call's path: what the key chose (an agent
			// leg, the next prompt) is asked for at once. A request for
			// the channel made meanwhile waits in Asterisk behind the
			// playback until the stop lands.
			c.chore(stopPB)
			return ev.state, nil
		case ev.kind == evResync && lostBy.IsZero() && c.playbackGone(ctx, pb):
			// Gone; its PlaybackFinished may still be on its way.
			started = true
			lostBy = time.Now().Add(c.app.guards.resyncGrace)
		default:
			c.common(ev)
		}
	}
}

// chore runs f beside the call; the call's end waits for it.
func (c *Call) chore(f func()) {
	c.chores.Add(1)
	go func() {
		defer c.chores.Done()
		f()
	}()
}

// playbackGone asks Asterisk whether a playback is over, for when its
// PlaybackFinished may have been lost.
func (c *Call) playbackGone(ctx context.Context, pb string) bool {
	return IsNotFound(c.do(ctx, http.MethodGet, "/playbacks/"+esc(pb), nil, nil, nil))
}

// Gather collects keys: those typed ahead first (then the prompt is
// skipped), else the prompt is played with barge-in on any key.
func (c *Call) Gather(ctx context.Context, spec call.GatherSpec) (string, error) {
	c.drain()
	if c.ctx.Err() != nil {
		return "", hangupErr("gather")
	}
	spec = spec.WithDefaults()
	max, first, inter := spec.MaxDigits, spec.FirstTimeout, spec.InterTimeout
	if len(c.typeahead) == 0 && len(spec.Prompt) > 0 {
		d, err := c.play(ctx, spec.Prompt, call.AnyKey)
		switch {
		case errors.Is(err, ErrPlaybackFailed):
			// A broken prompt should not cost the caller the menu.
			c.log.Warn().Err(err).Msg("gather prompt failed")
		case err != nil:
			return "", err
		}
		if d != "" {
			c.typeahead = append([]byte(d), c.typeahead...)
		}
	}
	var got []byte
	deadline := time.Now().Add(first)
	for {
		for len(c.typeahead) > 0 {
			k := c.typeahead[0]
			c.typeahead = c.typeahead[1:]
			if spec.Terminator != "" && strings.IndexByte(spec.Terminator, k) >= 0 {
				return string(got), nil
			}
			got = append(got, k)
			if len(got) >= max {
				return string(got), nil
			}
			deadline = time.Now().Add(inter)
		}
		ev, err := c.next(ctx, deadline, true, "gather")
		if errors.Is(err, errDeadline) {
			if len(got) == 0 {
				return "", fmt.Errorf("ari: gather: %w", call.ErrTimeout)
			}
			return string(got), nil
		}
		if err != nil {
			return string(got), err
		}
		c.common(ev)
	}
}

// Record records the caller into a uniquely named stored recording.
func (c *Call) Record(ctx context.Context, spec call.RecordSpec) (call.Recording, error) {
	if c.ctx.Err() != nil {
		return call.Recording{}, hangupErr("record")
	}
	// A name the flow gives is unique already (voicemails carry the call
	// id and time, and are found again by it); only a nameless recording
	// gets one made here.
	c.seq++
	name := safeName(spec.Name)
	if spec.Name == "" {
		name = "rec-" + safeName(c.id) + "-" + strconv.Itoa(c.seq)
	}
	p := params{}
	p.add("name", name).add("format", "wav").add("ifExists", "overwrite")
	if s := ceilSec(spec.MaxDuration); s > 0 {
		p.addInt("maxDurationSeconds", s)
	}
	if s := ceilSec(spec.MaxSilence); s > 0 {
		p.addInt("maxSilenceSeconds", s)
	}
	p.addBool("beep", spec.Beep)
	if spec.FinishKey != "" {
		p.add("terminateOn", spec.FinishKey)
	} else {
		p.add("terminateOn", "none")
	}
	began := time.Now()
	if err := c.do(ctx, http.MethodPost, c.chanPath("/record"), &p, nil, nil); err != nil {
		return call.Recording{}, c.restErr("record", err)
	}
	// The finish key is consumed by the recording, not typed ahead.
	c.swallow = spec.FinishKey
	defer func() { c.swallow = "" }()

	stop := func() {
		err := c.do(bg(ctx), http.MethodPost, "/recordings/live/"+esc(name)+"/stop", nil, nil, nil)
		if err != nil && !IsNotFound(err) {
			c.log.Warn().Err(err).Msg("stop recording failed")
		}
	}
	limit := time.Hour
	if spec.MaxDuration > 0 {
		limit = spec.MaxDuration + 10*time.Second
	}
	endBy := time.Now().Add(limit)
	var (
		finalErr error
		wctx     = ctx
		watch    = true
		lost     time.Time // when a resync found the recording over
	)
	for {
		ev, err := c.next(wctx, endBy, watch, "record")
		switch {
		case err == nil:
		case errors.Is(err, errDeadline) && watch:
			// Past the limit: stop it and take what was recorded.
			stop()
			watch, wctx, endBy = false, context.Background(), time.Now().Add(c.app.guards.recordGrace)
			continue
		case errors.Is(err, errDeadline) && !lost.IsZero():
			// Its end was lost while disconnected: the length is a guess.
			d := lost.Sub(began)
			if spec.MaxDuration > 0 && d > spec.MaxDuration {
				d = spec.MaxDuration
			}
			c.log.Warn().Str("recording", name).Dur("estimated", d).Msg("recording ended while disconnected")
			if finalErr == nil && (c.hangupReq || c.ctx.Err() != nil) {
				finalErr = hangupErr("record")
			}
			return call.Recording{Name: name, Format: "wav", Duration: d.Truncate(time.Second)}, finalErr
		case errors.Is(err, errDeadline):
			c.log.Warn().Str("recording", name).Msg("recording end never reported")
			if finalErr == nil {
				finalErr = fmt.Errorf("ari: record: %w", ErrRecordingFailed)
			}
			return call.Recording{Name: name, Format: "wav"}, finalErr
		case errors.Is(err, call.ErrHangup):
			// Asterisk finishes the recording after a hang-up: keep it.
			finalErr = err
			watch, wctx, endBy = false, context.Background(), time.Now().Add(c.app.guards.recordGrace)
			continue
		default:
			// ctx ended while the caller is still there.
			stop()
			return call.Recording{}, err
		}
		switch {
		case ev.kind == evRecordingFinished && ev.ref == name:
			rec := call.Recording{Name: name, Format: "wav", Duration: time.Duration(ev.dur) * time.Second}
			if finalErr == nil && (c.hangupReq || c.ctx.Err() != nil) {
				finalErr = hangupErr("record")
			}
			if rec.Duration <= 0 {
				// Under a second (or a full disk): no message. The file
				// goes too, so no reconcile takes it for a lost voicemail.
				c.app.deleteStored(name)
			}
			if finalErr != nil && rec.Duration <= 0 {
				// Nothing worth keeping before the hang-up.
				return call.Recording{}, finalErr
			}
			return rec, finalErr
		case ev.kind == evResync && lost.IsZero() && IsNotFound(c.do(bg(ctx), http.MethodGet, "/recordings/live/"+esc(name), nil, nil, nil)):
			// Over; its RecordingFinished may still be on its way.
			lost = time.Now()
			watch, wctx, endBy = false, context.Background(), lost.Add(c.app.guards.resyncGrace)
		case ev.kind == evRecordingFailed && ev.ref == name:
			if finalErr == nil && (c.hangupReq || c.ctx.Err() != nil) {
				finalErr = hangupErr("record")
			}
			if finalErr == nil {
				finalErr = fmt.Errorf("ari: record: %w", ErrRecordingFailed)
			}
			return call.Recording{}, finalErr
		default:
			c.common(ev)
		}
	}
}

func ceilSec(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// safeName keeps recording names to letters, digits, '-' and '_': Asterisk
// stores them as files and finds them again by name and extension.
func safeName(s string) string {
	b := []byte(s)
	for i, ch := range b {
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-', ch == '_':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// Var reads a channel variable ("" when unset).
func (c *Call) Var(ctx context.Context, name string) (string, error) {
	p := params{}
	p.add("variable", name)
	var out struct {
		Value string `json:"value"`
	}
	err := c.do(ctx, http.MethodGet, c.chanPath("/variable"), &p, nil, &out)
	if err != nil {
		if IsNotFound(err) && c.ctx.Err() == nil && !channelNotFound(err) {
			return "", nil
		}
		return "", c.restErr("var", err)
	}
	return out.Value, nil
}

// SetVar sets a channel variable.
func (c *Call) SetVar(ctx context.Context, name, value string) error {
	p := params{}
	p.add("variable", name).add("value", value)
	if err := c.do(ctx, http.MethodPost, c.chanPath("/variable"), &p, nil, nil); err != nil {
		return c.restErr("setvar", err)
	}
	return nil
}

// Send sends a text message; msg.To is a full ARI endpoint URI
// ("pjsip:+15551234567@trunk").
func (c *Call) Send(ctx context.Context, msg call.Message) error {
	p := params{}
	p.add("to", msg.To).add("from", msg.From).add("body", msg.Body)
	if err := c.do(ctx, http.MethodPut, "/endpoints/sendMessage", &p, nil, nil); err != nil {
		return fmt.Errorf("ari: send: %w", err)
	}
	return nil
}

// Hold starts music on hold on the caller's channel and waits for one of
// spec.Keys, spec.Timeout or ctx; the music is stopped before it returns
// (it goes out even when ctx ended, so the next step is not heard under
// it).
func (c *Call) Hold(ctx context.Context, spec call.HoldSpec) (string, error) {
	c.drain()
	if c.ctx.Err() != nil {
		return "", hangupErr("hold")
	}
	if k := c.takeKey(spec.Keys); k != "" {
		return k, nil
	}
	p := params{}
	if spec.Music != "" {
		p.add("mohClass", spec.Music)
	}
	if err := c.do(ctx, http.MethodPost, c.chanPath("/moh"), &p, nil, nil); err != nil {
		if c.ctx.Err() != nil || channelNotFound(err) {
			return "", hangupErr("hold")
		}
		if ctx.Err() != nil {
			return "", c.stopErr(ctx, "hold")
		}
		// The wait goes on in silence rather than not at all.
		c.log.Warn().Err(err).Str("class", spec.Music).Msg("music on hold failed")
	}
	defer func() {
		if c.ctx.Err() == nil {
			if err := c.do(bg(ctx), http.MethodDelete, c.chanPath("/moh"), nil, nil, nil); err != nil && !channelNotFound(err) {
				c.log.Debug().Err(err).Msg("stopping music on hold")
			}
		}
	}()
	var deadline time.Time
	if spec.Timeout > 0 {
		deadline = time.Now().Add(spec.Timeout)
	}
	for {
		ev, err := c.next(ctx, deadline, true, "hold")
		if errors.Is(err, errDeadline) {
			return "", fmt.Errorf("ari: hold: %w", call.ErrTimeout)
		}
		if err != nil {
			return "", err
		}
		c.common(ev)
		if k := c.takeKey(spec.Keys); k != "" {
			return k, nil
		}
	}
}

// takeKey consumes the buffered keys up to the first one of keys, which
// it returns; the keys before it are dropped ("" when none is there).
func (c *Call) takeKey(keys string) string {
	for len(c.typeahead) > 0 {
		k := c.typeahead[0]
		c.typeahead = c.typeahead[1:]
		if keys != "" && strings.IndexByte(keys, k) >= 0 {
			return string(k)
		}
	}
	return ""
}

// CanInterrupt: every operation of an ARI call stops when its context ends
// (a playback is stopped, a wait given up).
func (c *Call) CanInterrupt() bool { return true }
