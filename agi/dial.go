package agi

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/callflow/callflow/applets/call"
)

// The dialplan of asterisk/extensions.conf that a dial with an accept key
// runs. Dial's U() runs a subroutine on the agent who answered first and
// has hung the other targets up by then, so each agent is rung through a
// Local channel into legContext instead: that leg dials its agent with
// U(acceptSub^...) and answers the caller's Dial only once its agent
// accepted. The first agent to accept wins; the others ring on meanwhile.
const (
	acceptSub  = "callflow-whisper-accept"
	legContext = "callflow-whisper-leg"
	// acceptWait is how long an agent has to press the key after the
	// whisper, as over ARI.
	acceptWait = 10 * time.Second
	// acceptCheck expands to "11" when both contexts exist.
	acceptCheck = "${DIALPLAN_EXISTS(" + acceptSub + ",s,1)}${DIALPLAN_EXISTS(" + legContext + ",1,1)}"
)

// dialStatuses maps DIALSTATUS to an outcome.
var dialStatuses = map[string]call.DialStatus{
	"ANSWER":      call.Answered,
	"NOANSWER":    call.NoAnswer,
	"BUSY":        call.Busy,
	"CONGESTION":  call.Failed,
	"CHANUNAVAIL": call.Failed,
	"CANCEL":      call.Failed,
	"DONTCALL":    call.Failed,
	"TORTURE":     call.Failed,
	"INVALIDARGS": call.Failed,
}

// dialVars are read in one GET FULL VARIABLE after Dial returns.
const dialVars = "${DIALSTATUS}|${ANSWEREDTIME_MS}|${ANSWEREDTIME}|${DIALEDPEERNAME}|${DIALEDPEERNUMBER}"

// Dial rings every target at once with EXEC Dial and bridges the first to
// answer; it returns when that conversation ends. Options: g (the caller
// stays in the flow when the agent hangs up), r or m(class) for what the
// caller hears, A(file) for a one-sound whisper. With Accept the targets
// are rung through the whisper-accept dialplan (acceptSub), which plays
// the whole whisper and bridges only an agent who pressed an accept key;
// without that dialplan the dial is refused (Failed). CallerID is set on
// the channel for the dial and restored after. Record starts MixMonitor
// (b: bridged audio only) before the dial.
func (c *Call) Dial(ctx context.Context, spec call.DialSpec) (call.DialResult, error) {
	if err := c.ready(ctx, "EXEC Dial"); err != nil {
		return call.DialResult{}, err
	}
	c.clearKeys()
	if len(spec.Targets) == 0 {
		return call.DialResult{}, errors.New("agi EXEC Dial: no targets")
	}
	for _, t := range spec.Targets {
		if t == "" || strings.ContainsAny(t, "&,|()\"\\\r\n") {
			return call.DialResult{}, fmt.Errorf("agi EXEC Dial: bad target %q", t)
		}
	}
	ring := spec.RingTimeout
	if ring <= 0 {
		ring = 30 * time.Second
	}
	accept := spec.Accept != ""
	opts := "g" + c.musicOption(spec.Music)
	if accept {
		ok, err := c.acceptReady(ctx)
		if err != nil {
			return call.DialResult{}, err
		}
		if !ok {
			return call.DialResult{Status: call.Failed}, nil
		}
	} else if w := c.whisperFile(spec.Whisper); w != "" {
		opts += "A(" + w + ")"
	}

	if spec.CallerID != "" {
		if err := c.setVar(ctx, "SET VARIABLE CALLERID(num) "+quote(spec.CallerID)); err != nil {
			return call.DialResult{}, err
		}
		defer func() {
			if !c.s.hungUp.Load() {
				_ = c.setVar(context.WithoutCancel(ctx), "SET VARIABLE CALLERID(num) "+quote(c.req.CallerID))
			}
		}()
	}
	var recName string
	if spec.Record {
		c.mu.Lock()
		c.records++
		seq := c.records
		c.mu.Unlock()
		recName = "call-" + fileName(strings.ReplaceAll(c.req.UniqueID, ".", "-")) + "-" + strconv.Itoa(seq)
		mix := "EXEC MixMonitor " + quote(path.Join(c.s.srv.opts.RecordingsDir, recName)+".wav,b")
		if _, err := c.doNum(ctx, c.quick(), mix); err != nil {
			return call.DialResult{}, err
		}
		defer func() {
			if !c.s.hungUp.Load() {
				_, _ = c.doNum(context.WithoutCancel(ctx), c.quick(), "EXEC StopMixMonitor")
			}
		}()
	}

	targets := strings.Join(spec.Targets, "&")
	wait := ring
	if accept {
		if err := c.setLegVars(ctx, spec, ceilSeconds(ring)); err != nil {
			return call.DialResult{}, err
		}
		legs := make([]string, len(spec.Targets))
		for i := range legs {
			legs[i] = "Local/" + strconv.Itoa(i+1) + "@" + legContext
		}
		targets = strings.Join(legs, "&")
		// Each leg rings for ring, then its agent hears the whisper and
		// has acceptWait for the key: the legs end by themselves, so this
		// bound only guards against a dialplan that never ends them.
		wait += c.s.srv.opts.MaxPlayback + acceptWait
	}
	cmd := "EXEC Dial " + quote(targets+","+strconv.FormatInt(ceilSeconds(wait), 10)+","+opts)
	n, err := c.doNum(ctx, wait+c.s.srv.opts.MaxBridge+c.quick(), cmd)
	if err != nil {
		return call.DialResult{}, err
	}
	if n == -2 {
		return call.DialResult{}, cmdErr(cmd, errors.New("the Dial application is not loaded"))
	}
	if n < 0 {
		// Dial returns -1 when the caller hangs up, ringing or talking.
		c.s.markHangup()
	}
	// DIALSTATUS can be read on a dead channel: the result of a dial the
	// caller ended is still worth keeping.
	vars, err := c.getVar(context.WithoutCancel(ctx), "GET FULL VARIABLE "+quote(dialVars))
	if err != nil {
		return call.DialResult{}, err
	}
	res, err := parseDial(vars, spec.Targets, accept)
	if strings.HasPrefix(vars, "CANCEL|") {
		c.s.markHangup() // the caller gave up while it rang
	}
	if err != nil {
		if c.s.hungUp.Load() {
			return call.DialResult{}, cmdErr(cmd, call.ErrHangup)
		}
		return call.DialResult{}, cmdErr(cmd, err)
	}
	if res.Status == call.Answered {
		res.Answered = time.Now().Add(-res.TalkTime)
		res.Recording = recName
	}
	if c.s.hungUp.Load() {
		return res, cmdErr(cmd, call.ErrHangup)
	}
	return res, nil
}

func ceilSeconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// musicOption is what the caller hears while it rings: r (ringing) or
// m(class).
func (c *Call) musicOption(music string) string {
	switch {
	case music == "" || music == "ringing":
		return "r"
	case safeArg(music):
		return "m(" + music + ")"
	}
	c.s.log.Warn().Str("music", music).Msg("music class not usable in Dial: ringing instead")
	return "r"
}

// acceptReady checks that Asterisk has the whisper-accept dialplan. Without
// the subroutine Dial's U() fails and Dial bridges the agent all the same,
// so a dial is refused rather than connect an agent who never accepted.
func (c *Call) acceptReady(ctx context.Context) (bool, error) {
	v, err := c.getVar(ctx, "GET FULL VARIABLE "+quote(acceptCheck))
	if err != nil {
		return false, err
	}
	var missing []string
	for i, name := range []string{acceptSub, legContext} {
		if i >= len(v) || v[i] != '1' {
			missing = append(missing, name)
		}
	}
	c.s.srv.noteAcceptDialplan(missing)
	if len(missing) > 0 {
		c.s.log.Warn().Strs("missing", missing).Msg("dial with an accept key refused: Asterisk lacks the whisper-accept dialplan (asterisk/extensions.conf)")
		return false, nil
	}
	return true, nil
}

// setLegVars passes the dial to the legs: Dial copies variables named with
// a leading _ to the Local channels it makes (see asterisk/extensions.conf).
func (c *Call) setLegVars(ctx context.Context, spec call.DialSpec, ringSecs int64) error {
	keys := escapeDigits(spec.Accept)
	if keys == "" {
		c.s.log.Warn().Str("accept", spec.Accept).Msg("accept key is no phone key: no agent can accept")
	}
	vars := [][2]string{
		{"_CALLFLOW_TARGETS", strings.Join(spec.Targets, "&")},
		{"_CALLFLOW_RING", strconv.FormatInt(ringSecs, 10)},
		{"_CALLFLOW_WHISPER", strings.Join(c.whisperFiles(spec.Whisper), "&")},
		{"_CALLFLOW_ACCEPT", keys},
		{"_CALLFLOW_ACCEPT_WAIT", strconv.FormatInt(ceilSeconds(acceptWait), 10)},
	}
	for _, v := range vars {
		if err := c.setVar(ctx, "SET VARIABLE "+v[0]+" "+quote(v[1])); err != nil {
			return err
		}
	}
	return nil
}

// parseDial reads dialVars' expansion; legs: the targets were rung as
// Local/N@legContext.
func parseDial(vars string, targets []string, legs bool) (call.DialResult, error) {
	f := strings.Split(vars, "|")
	if len(f) != 5 {
		return call.DialResult{}, fmt.Errorf("%w: dial variables %q", ErrProtocol, clip(vars))
	}
	status, ok := dialStatuses[f[0]]
	if !ok {
		return call.DialResult{}, fmt.Errorf("unknown DIALSTATUS %q", f[0])
	}
	res := call.DialResult{Status: status}
	if status != call.Answered {
		return res, nil
	}
	if ms, err := strconv.ParseInt(f[1], 10, 64); err == nil {
		res.TalkTime = time.Duration(ms) * time.Millisecond
	} else if s, err := strconv.ParseInt(f[2], 10, 64); err == nil {
		res.TalkTime = time.Duration(s) * time.Second
	}
	if legs {
		res.Target = legTarget(targets, f[3], f[4])
	} else {
		res.Target = answeredTarget(targets, f[3], f[4])
	}
	return res, nil
}

// answeredTarget finds which dial string answered from DIALEDPEERNAME
// ("PJSIP/101-0000002a") and DIALEDPEERNUMBER ("101").
func answeredTarget(targets []string, peerName, peerNumber string) string {
	for _, t := range targets {
		tech, res, _ := strings.Cut(t, "/")
		if res == peerNumber && strings.HasPrefix(peerName, tech+"/") {
			return t
		}
	}
	for _, t := range targets {
		if _, res, _ := strings.Cut(t, "/"); res == peerNumber {
			return t
		}
	}
	if len(targets) == 1 {
		return targets[0]
	}
	if tech, _, ok := strings.Cut(peerName, "/"); ok && peerNumber != "" {
		return tech + "/" + peerNumber
	}
	return peerName
}

// legTarget finds the target of the leg that answered from
// DIALEDPEERNUMBER ("2@callflow-whisper-leg") or DIALEDPEERNAME
// ("Local/2@callflow-whisper-leg-0000001f;1").
func legTarget(targets []string, peerName, peerNumber string) string {
	for _, s := range []string{peerNumber, strings.TrimPrefix(peerName, "Local/")} {
		n, rest, _ := strings.Cut(s, "@")
		i, err := strconv.Atoi(n)
		if err == nil && i >= 1 && i <= len(targets) && strings.HasPrefix(rest, legContext) {
			return targets[i-1]
		}
	}
	if len(targets) == 1 {
		return targets[0]
	}
	return peerName
}

// whisperFile is the file for Dial's A() option, which plays one sound.
func (c *Call) whisperFile(media []call.Media) string {
	files := c.whisperFiles(media)
	if len(files) == 0 {
		return ""
	}
	if len(files) > 1 {
		c.s.log.Warn().Int("items", len(files)).Msg("whisper without an accept key plays one sound over AGI: only the first is used")
	}
	return files[0]
}

// whisperFiles are the whisper's sounds and recordings as files a dialplan
// application can play; other media are skipped.
func (c *Call) whisperFiles(media []call.Media) []string {
	var files []string
	for _, m := range media {
		s := string(m)
		scheme, rest, ok := strings.Cut(s, ":")
		if !ok || strings.ContainsAny(scheme, "/ ") {
			scheme, rest = "sound", s
		}
		var file string
		switch scheme {
		case "sound":
			file = rest
		case "recording":
			if f, err := c.recordingFile(rest); err == nil {
				file = f
			}
		}
		if file == "" || !safeArg(file) {
			c.s.log.Warn().Str("media", s).Msg("whisper not playable over AGI: skipped")
			continue
		}
		files = append(files, file)
	}
	return files
}

// safeArg reports whether s can sit inside a dialplan option or a
// subroutine argument.
func safeArg(s string) bool {
	return s != "" && !strings.ContainsAny(s, ",()&^|\"\\ \t\r\n")
}
