package agi

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callflow/callflow/applets/call"
)

// Call is one caller's channel driven over FastAGI. It implements
// call.Call. Its methods are meant for the handler's goroutine; commands
// from several goroutines are serialised.
type Call struct {
	s   *session
	req Request

	mu        sync.Mutex
	typeahead []byte // keys received and not consumed yet
	records   int    // recordings made, for unique names
}

var _ call.Call = (*Call)(nil)

// maxTypeahead bounds the keys kept for the next Gather.
const maxTypeahead = 32

// Request is the agi_ environment of the call.
func (c *Call) Request() Request { return c.req }

// ID is Asterisk's unique id of the caller's channel.
func (c *Call) ID() string { return c.req.UniqueID }

// Caller is the caller's number ("" when Asterisk does not know it).
func (c *Call) Caller() string { return c.req.CallerID }

// Called is the dialled number (agi_dnid, else agi_extension).
func (c *Call) Called() string { return c.req.Number }

// ready fails fast when the call is over: after a hang-up a command is a
// wasted round trip answered with 511.
func (c *Call) ready(ctx context.Context, what string) error {
	if c.s.hungUp.Load() {
		return cmdErr(what, call.ErrHangup)
	}
	if c.s.ctx.Err() != nil {
		if c.s.hungUp.Load() { // set before the cancel
			return cmdErr(what, call.ErrHangup)
		}
		// The session is failing: dead closes right after the cancel.
		<-c.s.dead
		return c.s.deadErr(what)
	}
	if err := ctx.Err(); err != nil {
		return cmdErr(what, err)
	}
	return nil
}

func (c *Call) quick() time.Duration { return c.s.srv.opts.CommandTimeout }

// Answer answers the channel.
func (c *Call) Answer(ctx context.Context) error {
	const cmd = "ANSWER"
	if err := c.ready(ctx, cmd); err != nil {
		return err
	}
	r, err := c.s.do(ctx, c.quick(), cmd)
	if err != nil {
		return err
	}
	if n, _ := r.num(); n < 0 {
		c.s.markHangup()
		return cmdErr(cmd, call.ErrHangup)
	}
	return nil
}

// hangupCauses maps ARI's hang-up reasons to Q.850 causes for Hangup().
var hangupCauses = map[string]int{
	"normal": 16, "busy": 17, "congestion": 34, "no_answer": 19,
	"timeout": 18, "rejected": 21, "unallocated": 1, "normal_unspecified": 31,
	"number_incomplete": 28, "codec_mismatch": 58, "interworking": 127,
	"failure": 38, "answered_elsewhere": 26,
}

// hangupCode is the Q.850 cause for an ARI reason ("busy") or a code
// ("17"); anything else is normal clearing, as over ARI.
func hangupCode(cause string) int {
	code, err := strconv.Atoi(cause)
	if err != nil {
		code = hangupCauses[strings.ToLower(cause)]
	}
	if code <= 0 || code > 127 {
		return 16
	}
	return code
}

// Hangup hangs the caller up with the Hangup() application, which records
// the cause for the channel (CDRs, HANGUPCAUSE); AGI's own HANGUP sets
// none, so Asterisk would record 0 (unknown). cause is an ARI reason
// ("busy") or a Q.850 code ("17"), "" for normal clearing. A caller
// already gone is no error.
func (c *Call) Hangup(ctx context.Context, cause string) error {
	cmd := "EXEC Hangup " + strconv.Itoa(hangupCode(cause))
	if err := c.ready(ctx, cmd); err != nil {
		if errors.Is(err, call.ErrHangup) {
			return nil
		}
		return err
	}
	_, err := c.s.do(ctx, c.quick(), cmd)
	if errors.Is(err, call.ErrHangup) {
		return nil
	}
	if err != nil {
		return err
	}
	// Hangup() returns -1: the channel is going.
	c.s.markHangup()
	return nil
}

// Var reads a channel variable or function ("CALLERID(num)"); an
// expression with ${...} is evaluated with GET FULL VARIABLE. Unset is "".
func (c *Call) Var(ctx context.Context, name string) (string, error) {
	var cmd string
	if strings.Contains(name, "${") {
		cmd = "GET FULL VARIABLE " + quote(name)
	} else {
		if name == "" {
			return "", errors.New("agi GET VARIABLE: empty name")
		}
		cmd = "GET VARIABLE " + word(name)
	}
	if err := c.ready(ctx, cmd); err != nil {
		return "", err
	}
	return c.getVar(ctx, cmd)
}

func (c *Call) getVar(ctx context.Context, cmd string) (string, error) {
	r, err := c.s.do(ctx, c.quick(), cmd)
	if err != nil {
		return "", err
	}
	if r.result == "0" {
		return "", nil
	}
	v, ok := r.value()
	if r.result != "1" || !ok {
		return "", cmdErr(cmd, fmt.Errorf("%w: unexpected reply %q", ErrProtocol, clip(r.text)))
	}
	return v, nil
}

// SetVar sets a channel variable (or writes a function).
func (c *Call) SetVar(ctx context.Context, name, value string) error {
	if name == "" {
		return errors.New("agi SET VARIABLE: empty name")
	}
	cmd := "SET VARIABLE " + word(name) + " " + quote(value)
	if err := c.ready(ctx, cmd); err != nil {
		return err
	}
	return c.setVar(ctx, cmd)
}

func (c *Call) setVar(ctx context.Context, cmd string) error {
	r, err := c.s.do(ctx, c.quick(), cmd)
	if err != nil {
		return err
	}
	if r.result != "1" {
		return cmdErr(cmd, fmt.Errorf("%w: result=%s", ErrRejected, r.result))
	}
	return nil
}

// Play plays media in order; with BargeIn set a key in it stops the
// playback and is returned (and kept for the next Gather). Without BargeIn
// no escape digits are given, so Asterisk ignores keys.
func (c *Call) Play(ctx context.Context, spec call.PlaySpec) (string, error) {
	if err := c.ready(ctx, "STREAM FILE"); err != nil {
		return "", err
	}
	esc := escapeDigits(spec.BargeIn)
	for _, m := range spec.Media {
		key, err := c.playOne(ctx, m, esc)
		if err != nil {
			return "", err
		}
		if key != 0 {
			c.pushKey(key)
			return string(key), nil
		}
	}
	return "", nil
}

// escapeDigits turns a PlaySpec.BargeIn into STREAM FILE escape digits.
func escapeDigits(bargeIn string) string {
	if bargeIn == "" {
		return ""
	}
	if strings.EqualFold(bargeIn, "any") {
		return call.AnyKey
	}
	var b strings.Builder
	for i := 0; i < len(bargeIn); i++ {
		if k := bargeIn[i]; strings.IndexByte(call.AnyKey, k) >= 0 && strings.IndexByte(b.String(), k) < 0 {
			b.WriteByte(k)
		}
	}
	return b.String()
}

// mediaCommand maps a media URI to the AGI command that plays it; ""
// when AGI cannot play it.
func (c *Call) mediaCommand(m call.Media, esc string) (string, error) {
	s := string(m)
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || strings.ContainsAny(scheme, "/ ") {
		scheme, rest = "sound", s // a bare name is a sound
	}
	switch scheme {
	case "sound":
		if rest == "" {
			return "", errors.New("empty sound name")
		}
		return "STREAM FILE " + word(rest) + " " + quote(esc), nil
	case "digits":
		if rest == "" || strings.Trim(rest, "0123456789*#") != "" {
			return "", fmt.Errorf("digits %q: only 0-9, * and #", rest)
		}
		return "SAY DIGITS " + rest + " " + quote(esc), nil
	case "number":
		if _, err := strconv.Atoi(rest); err != nil {
			return "", fmt.Errorf("number %q is not an integer", rest)
		}
		return "SAY NUMBER " + rest + " " + quote(esc), nil
	case "recording":
		file, err := c.recordingFile(rest)
		if err != nil {
			return "", err
		}
		return "STREAM FILE " + word(file) + " " + quote(esc), nil
	}
	return "", fmt.Errorf("media %q cannot be played over AGI", s)
}

// recordingFile is the path (without extension, as STREAM FILE wants it)
// of a recording this transport stored.
func (c *Call) recordingFile(name string) (string, error) {
	for _, ext := range []string{".wav", ".WAV", ".gsm", ".ulaw", ".alaw", ".sln"} {
		name = strings.TrimSuffix(name, ext)
	}
	if name == "" || strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("recording %q: a recording is named by a plain file name", name)
	}
	return path.Join(c.s.srv.opts.RecordingsDir, name), nil
}

// playOne plays one media item; it returns the key that stopped it, or 0.
func (c *Call) playOne(ctx context.Context, m call.Media, esc string) (byte, error) {
	cmd, err := c.mediaCommand(m, esc)
	if err != nil {
		c.s.log.Warn().Err(err).Str("media", string(m)).Msg("media skipped")
		return 0, nil
	}
	n, err := c.doNum(ctx, c.quick()+c.s.srv.opts.MaxPlayback, cmd)
	switch {
	case err != nil:
		return 0, err
	case n < 0:
		gone, err := c.gone(ctx)
		if err != nil {
			return 0, err
		}
		if gone {
			return 0, cmdErr(cmd, call.ErrHangup)
		}
		c.s.log.Warn().Str("media", string(m)).Msg("Asterisk could not play the file: skipped")
		return 0, nil
	case n == 0:
		return 0, nil
	case n > 0 && n < 128 && strings.IndexByte(esc, byte(n)) >= 0:
		return byte(n), nil
	default:
		// Not one of the escape digits: Asterisk should not stop on it.
		c.s.log.Debug().Int("result", n).Msg("unexpected key ignored")
		return 0, nil
	}
}

// gone tells a caller who hung up from a file that failed to play: both
// are result=-1, but only a hang-up is followed by HANGUP and a dead
// channel, which Asterisk notes before it reads the next command.
func (c *Call) gone(ctx context.Context) (bool, error) {
	if c.s.hungUp.Load() {
		return true, nil
	}
	r, err := c.s.do(context.WithoutCancel(ctx), c.quick(), "CHANNEL STATUS")
	if errors.Is(err, call.ErrHangup) || c.s.hungUp.Load() {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if n, ok := r.num(); !ok || n < 0 {
		c.s.markHangup()
		return true, nil
	}
	return false, nil
}

func (c *Call) pushKey(k byte) {
	c.mu.Lock()
	if len(c.typeahead) < maxTypeahead {
		c.typeahead = append(c.typeahead, k)
	}
	c.mu.Unlock()
}

func (c *Call) popKey() (byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.typeahead) == 0 {
		return 0, false
	}
	k := c.typeahead[0]
	c.typeahead = append(c.typeahead[:0], c.typeahead[1:]...)
	return k, true
}

func (c *Call) clearKeys() {
	c.mu.Lock()
	c.typeahead = c.typeahead[:0]
	c.mu.Unlock()
}

// Gather collects keys: first those typed ahead (then the prompt is
// skipped), else the prompt is played with every key as an escape digit,
// then WAIT FOR DIGIT until MaxDigits, the terminator or a timeout. No key
// at all is ErrTimeout; the terminator alone gives "".
func (c *Call) Gather(ctx context.Context, spec call.GatherSpec) (string, error) {
	if err := c.ready(ctx, "WAIT FOR DIGIT"); err != nil {
		return "", err
	}
	spec = spec.WithDefaults()
	maxDigits, first, inter := spec.MaxDigits, spec.FirstTimeout, spec.InterTimeout
	var term byte
	if spec.Terminator != "" {
		term = spec.Terminator[0]
	}

	digits := make([]byte, 0, maxDigits)
	pressed := false
	// add takes one key and reports whether the entry is complete.
	add := func(k byte) bool {
		pressed = true
		if term != 0 && k == term {
			return true
		}
		digits = append(digits, k)
		return len(digits) >= maxDigits
	}

	done := false
	for !done {
		k, ok := c.popKey()
		if !ok {
			break
		}
		done = add(k)
	}
	if !pressed {
		for _, m := range spec.Prompt {
			k, err := c.playOne(ctx, m, call.AnyKey)
			if err != nil {
				return "", err
			}
			if k != 0 {
				done = add(k)
				break
			}
		}
	}
	for !done {
		wait := first
		if pressed {
			wait = inter
		}
		k, err := c.waitForDigit(ctx, wait)
		if err != nil {
			return "", err
		}
		if k == 0 {
			break
		}
		done = add(k)
	}
	if !pressed {
		return "", cmdErr("WAIT FOR DIGIT", call.ErrTimeout)
	}
	return string(digits), nil
}

// waitForDigit waits for one key; 0 is a timeout.
func (c *Call) waitForDigit(ctx context.Context, wait time.Duration) (byte, error) {
	cmd := "WAIT FOR DIGIT " + strconv.FormatInt(wait.Milliseconds(), 10)
	n, err := c.doNum(ctx, wait+c.quick(), cmd)
	switch {
	case err != nil:
		return 0, err
	case n < 0:
		c.s.markHangup()
		return 0, cmdErr(cmd, call.ErrHangup)
	case n == 0:
		return 0, nil
	case n < 128:
		return byte(n), nil
	}
	return 0, cmdErr(cmd, fmt.Errorf("%w: result %d is not a key", ErrProtocol, n))
}

// samplesPerSecond is the rate of the "wav" format Asterisk records.
const samplesPerSecond = 8000

// Record records the caller into RecordingsDir with RECORD FILE. The name
// gets the channel's unique id appended. On hang-up it returns what was
// recorded (if anything) with ErrHangup.
func (c *Call) Record(ctx context.Context, spec call.RecordSpec) (call.Recording, error) {
	if err := c.ready(ctx, "RECORD FILE"); err != nil {
		return call.Recording{}, err
	}
	c.clearKeys()
	c.mu.Lock()
	c.records++
	seq := c.records
	c.mu.Unlock()
	// A name given by the flow is already unique (voicemails carry the
	// call id and time); only a nameless recording gets one made here.
	name := fileName(spec.Name)
	if spec.Name == "" {
		name = "rec-" + fileName(strings.ReplaceAll(c.req.UniqueID, ".", "-")) + "-" + strconv.Itoa(seq)
	}
	file := path.Join(c.s.srv.opts.RecordingsDir, name)

	ms := int64(-1)
	wait := c.s.srv.opts.MaxPlayback
	if spec.MaxDuration > 0 {
		ms = spec.MaxDuration.Milliseconds()
		wait = spec.MaxDuration + 2*time.Second // the beep
	}
	var finish string
	if spec.FinishKey != "" {
		finish = escapeDigits(spec.FinishKey)
	}
	cmd := "RECORD FILE " + quote(file) + " wav " + quote(finish) + " " + strconv.FormatInt(ms, 10)
	if spec.Beep {
		cmd += " BEEP"
	}
	if spec.MaxSilence > 0 {
		cmd += " s=" + strconv.FormatInt(int64((spec.MaxSilence+time.Second-1)/time.Second), 10)
	}
	r, err := c.s.do(ctx, wait+c.quick(), cmd)
	if err != nil {
		return call.Recording{}, err
	}
	n, ok := r.num()
	if !ok {
		return call.Recording{}, cmdErr(cmd, fmt.Errorf("%w: result %q", ErrProtocol, r.result))
	}
	rec := call.Recording{Name: name, Format: "wav", Path: file + ".wav"}
	if samples, ok := r.endpos(); ok {
		rec.Duration = time.Duration(samples) * time.Second / samplesPerSecond
	}
	switch reason := r.reason(); {
	case reason == "writefile":
		return call.Recording{}, cmdErr(cmd, fmt.Errorf("asterisk cannot write %s.wav", file))
	case reason == "hangup":
		c.s.markHangup()
		return partial(rec), cmdErr(cmd, call.ErrHangup)
	case n < 0:
		// randomerror or waitfor: the beep failed or the caller left.
		gone, err := c.gone(ctx)
		if err != nil {
			return partial(rec), err
		}
		if gone {
			return partial(rec), cmdErr(cmd, call.ErrHangup)
		}
		return call.Recording{}, cmdErr(cmd, fmt.Errorf("recording failed: %s", clip(r.text)))
	}
	return rec, nil
}

// partial is what a caller who hung up leaves: nothing if nothing was
// recorded.
func partial(r call.Recording) call.Recording {
	if r.Duration <= 0 {
		return call.Recording{}
	}
	return r
}

// fileName keeps the characters that are safe in a file name and in a
// dialplan argument.
func fileName(s string) string {
	b := []byte(s)
	for i, ch := range b {
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-', ch == '_':
		case ch == '.' && i > 0:
		default:
			b[i] = '_'
		}
	}
	if len(b) > 100 {
		b = b[:100]
	}
	if len(b) == 0 {
		return "recording"
	}
	return string(b)
}

// doNum runs cmd and returns its numeric result (a key, EXEC's result).
func (c *Call) doNum(ctx context.Context, timeout time.Duration, cmd string) (int, error) {
	r, err := c.s.do(ctx, timeout, cmd)
	if err != nil {
		return 0, err
	}
	n, ok := r.num()
	if !ok {
		return 0, cmdErr(cmd, fmt.Errorf("%w: result %q", ErrProtocol, r.result))
	}
	return n, nil
}

// Send sends a text message with MessageSend: MESSAGE(body) is set on the
// channel first, as the dialplan does. To is a message destination
// Asterisk knows ("pjsip:+15551234@trunk"); From is optional.
func (c *Call) Send(ctx context.Context, msg call.Message) error {
	const what = "EXEC MessageSend"
	if err := c.ready(ctx, what); err != nil {
		return err
	}
	if msg.To == "" || strings.ContainsAny(msg.To+msg.From, ",\r\n") {
		return fmt.Errorf("agi %s: bad address to=%q from=%q", what, msg.To, msg.From)
	}
	if err := c.setVar(ctx, "SET VARIABLE MESSAGE(body) "+quote(msg.Body)); err != nil {
		return err
	}
	data := msg.To
	if msg.From != "" {
		data += "," + msg.From
	}
	cmd := what + " " + quote(data)
	n, err := c.doNum(ctx, c.quick(), cmd)
	if err != nil {
		return err
	}
	if n == -2 {
		return cmdErr(cmd, errors.New("the MessageSend application is not loaded"))
	}
	status, err := c.getVar(ctx, "GET VARIABLE MESSAGE_SEND_STATUS")
	if err != nil {
		return err
	}
	if status != "SUCCESS" {
		return cmdErr(cmd, fmt.Errorf("message not sent: MESSAGE_SEND_STATUS=%s", status))
	}
	return nil
}

// holdSlice is how long one WAIT FOR DIGIT of Hold lasts: AGI cannot be
// interrupted, so ctx is looked at between slices.
const holdSlice = 500 * time.Millisecond

// Hold starts music on hold (StartMusicOnHold) and waits for one of
// spec.Keys, spec.Timeout or ctx, in short WAIT FOR DIGIT slices; the
// music is stopped (StopMusicOnHold) before it returns.
func (c *Call) Hold(ctx context.Context, spec call.HoldSpec) (string, error) {
	if err := c.ready(ctx, "EXEC StartMusicOnHold"); err != nil {
		return "", err
	}
	for {
		k, ok := c.popKey()
		if !ok {
			break
		}
		if spec.Keys != "" && strings.IndexByte(spec.Keys, k) >= 0 {
			return string(k), nil
		}
	}
	start := "EXEC StartMusicOnHold"
	if spec.Music != "" {
		start += " " + quote(spec.Music)
	}
	if _, err := c.s.do(context.WithoutCancel(ctx), c.quick(), start); err != nil {
		return "", err
	}
	defer func() {
		if _, err := c.s.do(context.WithoutCancel(ctx), c.quick(), "EXEC StopMusicOnHold"); err != nil && !errors.Is(err, call.ErrHangup) {
			c.s.log.Debug().Err(err).Msg("stopping music on hold")
		}
	}()
	// The wait is counted in the slices Asterisk waited out (a WAIT FOR
	// DIGIT that ends without a key took its whole time).
	left := spec.Timeout
	for {
		wait := holdSlice
		if spec.Timeout > 0 {
			if left <= 0 {
				return "", cmdErr("WAIT FOR DIGIT", call.ErrTimeout)
			}
			wait = min(wait, left)
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		// A command cannot be taken back once sent: the slice runs to its
		// end whatever ctx does, and ctx is looked at before the next.
		k, err := c.waitForDigit(context.WithoutCancel(ctx), max(wait, time.Millisecond))
		if err != nil {
			return "", err
		}
		if k != 0 && spec.Keys != "" && strings.IndexByte(spec.Keys, k) >= 0 {
			return string(k), nil
		}
		if k == 0 {
			left -= wait
		}
	}
}
