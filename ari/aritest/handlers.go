package aritest

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// obj is a JSON object that keeps its field order.
type obj []kv

func (o obj) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(jsonBytes(f.k))
		b.WriteByte(':')
		b.Write(jsonBytes(f.v))
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

func implemented() []route {
	return []route{
		{"GET", "asterisk/info", hAsteriskInfo},
		{"GET", "asterisk/ping", hAsteriskPing},
		{"GET", "asterisk/variable", hGetGlobalVar},
		{"POST", "asterisk/variable", hSetGlobalVar},

		{"GET", "applications", hListApps},
		{"GET", "applications/{applicationName}", hGetApp},
		{"PUT", "applications/{applicationName}/eventFilter", hEventFilter},
		{"POST", "applications/{applicationName}/subscription", hSubscribe},
		{"DELETE", "applications/{applicationName}/subscription", hUnsubscribe},

		{"GET", "channels", hListChannels},
		{"POST", "channels", func(q *request) *reply { return q.s.originate(q, q.param("channelId")) }},
		{"POST", "channels/{channelId}", func(q *request) *reply { return q.s.originate(q, q.pathVar("channelId")) }},
		{"POST", "channels/create", hCreate},
		{"GET", "channels/{channelId}", hGetChannel},
		{"DELETE", "channels/{channelId}", hHangup},
		{"POST", "channels/{channelId}/continue", hContinue},
		{"POST", "channels/{channelId}/move", hMove},
		{"POST", "channels/{channelId}/answer", hAnswer},
		{"POST", "channels/{channelId}/ring", hSimpleControl(true, nil)},
		{"DELETE", "channels/{channelId}/ring", hSimpleControl(true, nil)},
		{"POST", "channels/{channelId}/progress", hSimpleControl(true, nil)},
		{"POST", "channels/{channelId}/hold", hSimpleControl(true, nil)},
		{"DELETE", "channels/{channelId}/hold", hSimpleControl(true, nil)},
		{"POST", "channels/{channelId}/silence", hSimpleControl(true, nil)},
		{"DELETE", "channels/{channelId}/silence", hSimpleControl(true, nil)},
		{"POST", "channels/{channelId}/mute", hSimpleControl(true, checkDirection)},
		{"DELETE", "channels/{channelId}/mute", hSimpleControl(true, checkDirection)},
		{"POST", "channels/{channelId}/moh", hSimpleControl(true, func(q *request, c *channel) *reply { c.moh = true; return nil })},
		{"DELETE", "channels/{channelId}/moh", hSimpleControl(true, func(q *request, c *channel) *reply { c.moh = false; return nil })},
		{"POST", "channels/{channelId}/dtmf", hSimpleControl(true, func(q *request, c *channel) *reply {
			if q.param("dtmf") == "" {
				return errReply(400, "DTMF is required")
			}
			return nil
		})},
		{"POST", "channels/{channelId}/play", func(q *request) *reply { return q.s.playOnChannel(q, q.param("playbackId")) }},
		{"POST", "channels/{channelId}/play/{playbackId}", func(q *request) *reply { return q.s.playOnChannel(q, q.pathVar("playbackId")) }},
		{"POST", "channels/{channelId}/record", hRecordChannel},
		{"GET", "channels/{channelId}/variable", hGetVar},
		{"POST", "channels/{channelId}/variable", hSetVar},
		{"POST", "channels/{channelId}/dial", hDial},

		{"GET", "bridges", hListBridges},
		{"POST", "bridges", func(q *request) *reply { return q.s.createBridge(q, q.param("bridgeId")) }},
		{"POST", "bridges/{bridgeId}", func(q *request) *reply { return q.s.createBridge(q, q.pathVar("bridgeId")) }},
		{"GET", "bridges/{bridgeId}", hGetBridge},
		{"DELETE", "bridges/{bridgeId}", hDestroyBridge},
		{"POST", "bridges/{bridgeId}/addChannel", hAddChannel},
		{"POST", "bridges/{bridgeId}/removeChannel", hRemoveChannel},
		{"POST", "bridges/{bridgeId}/moh", hBridgeMOH},
		{"DELETE", "bridges/{bridgeId}/moh", hBridgeStopMOH},
		{"POST", "bridges/{bridgeId}/play", func(q *request) *reply { return q.s.playOnBridge(q, q.param("playbackId")) }},
		{"POST", "bridges/{bridgeId}/play/{playbackId}", func(q *request) *reply { return q.s.playOnBridge(q, q.pathVar("playbackId")) }},
		{"POST", "bridges/{bridgeId}/record", hRecordBridge},

		{"GET", "deviceStates", hListDeviceStates},
		{"GET", "deviceStates/{deviceName}", hGetDeviceState},
		{"PUT", "deviceStates/{deviceName}", hUpdateDeviceState},
		{"DELETE", "deviceStates/{deviceName}", hDeleteDeviceState},

		{"GET", "playbacks/{playbackId}", hGetPlayback},
		{"DELETE", "playbacks/{playbackId}", hStopPlayback},
		{"POST", "playbacks/{playbackId}/control", hControlPlayback},

		{"GET", "recordings/stored", hListStored},
		{"GET", "recordings/stored/{recordingName}", hGetStored},
		{"DELETE", "recordings/stored/{recordingName}", hDeleteStored},
		{"GET", "recordings/stored/{recordingName}/file", hGetStoredFile},
		{"POST", "recordings/stored/{recordingName}/copy", hCopyStored},
		{"GET", "recordings/live/{recordingName}", hGetLive},
		{"DELETE", "recordings/live/{recordingName}", hLiveOp("cancel")},
		{"POST", "recordings/live/{recordingName}/stop", hLiveOp("stop")},
		{"POST", "recordings/live/{recordingName}/pause", hLiveOp("pause")},
		{"DELETE", "recordings/live/{recordingName}/pause", hLiveOp("unpause")},
		{"POST", "recordings/live/{recordingName}/mute", hLiveOp("mute")},
		{"DELETE", "recordings/live/{recordingName}/mute", hLiveOp("unmute")},

		{"GET", "endpoints", hListEndpoints},
		{"GET", "endpoints/{tech}", hListEndpointsByTech},
		{"GET", "endpoints/{tech}/{resource}", hGetEndpoint},
		{"PUT", "endpoints/sendMessage", hSendMessage},
		{"PUT", "endpoints/{tech}/{resource}/sendMessage", hSendMessageToEndpoint},

		{"GET", "sounds", func(q *request) *reply { return okReply([]any{}) }},
		{"GET", "sounds/{soundId}", hGetSound},
	}
}

// ---- helpers ----

// noteLocked records event-to-command latency for a channel named by a request.
func (s *Server) noteLocked(c *channel) {
	if c == nil {
		return
	}
	t := c.lat.sent.Load()
	if t > c.lat.consumed {
		c.lat.consumed = t
		s.latencies = append(s.latencies, time.Since(time.Unix(0, t)))
	}
}

// findControlLocked is Asterisk's find_control: 404 for an unknown channel,
// 409 for a channel that is not in a Stasis application.
func (s *Server) findControlLocked(id string) (*channel, *reply) {
	c := s.channelByIDLocked(id)
	if c == nil {
		return nil, errReply(404, "Channel not found")
	}
	s.noteLocked(c)
	if !c.inStasis {
		return nil, errReply(409, "Channel not in Stasis application")
	}
	return c, nil
}

// stateInvalid rejects operations on outbound channels not yet answered.
func stateInvalid(c *channel) *reply {
	switch c.snap.State {
	case "Down", "Reserved", "Ringing":
		return errReply(412, "Channel in invalid state")
	}
	return nil
}

var knownCodecs = map[string]bool{
	"ulaw": true, "alaw": true, "gsm": true, "g722": true, "g729": true, "g726": true,
	"slin": true, "slin16": true, "slin48": true, "slin192": true, "opus": true, "ilbc": true,
	"speex": true, "g723": true, "lpc10": true, "h264": true, "vp8": true, "t140": true,
}

func checkFormats(formats string) *reply {
	for _, f := range strings.Split(formats, ",") {
		f = strings.TrimSpace(f)
		if !knownCodecs[f] {
			return errReply(400, fmt.Sprintf("Provided format (%s) was not found", f))
		}
	}
	return nil
}

var hangupReasons = map[string]int{
	"normal": 16, "busy": 17, "congestion": 34, "no_answer": 19, "timeout": 18,
	"rejected": 21, "unallocated": 1, "normal_unspecified": 31, "number_incomplete": 28,
	"codec_mismatch": 58, "interworking": 127, "failure": 38, "answered_elsewhere": 26,
}

func bodyVariables(q *request) map[string]string {
	out := map[string]string{}
	if q.bodyObj == nil {
		return out
	}
	vars, _ := q.bodyObj["variables"].(map[string]any)
	for k, v := range vars {
		if m, ok := v.(map[string]any); ok {
			out[k] = jsonString(m["value"])
			continue
		}
		out[k] = jsonString(v)
	}
	return out
}

// ---- asterisk ----

func hAsteriskInfo(q *request) *reply {
	s := q.s
	parts := map[string]any{
		"build": obj{{"os", "Linux"}, {"kernel", "6.1.0-aritest"}, {"machine", runtime.GOARCH},
			{"options", "OPTIONAL_API"}, {"date", astTime(s.startup)}, {"user", "root"}},
		"system": obj{{"version", "20.20.1"}, {"entity_id", s.eid}},
		"config": obj{{"name", s.opts.SystemName}, {"default_language", "en"}, {"setid", obj{{"user", ""}, {"group", ""}}}},
		"status": obj{{"startup_time", astTime(s.startup)}, {"last_reload_time", astTime(s.startup)}},
	}
	only := map[string]bool{}
	for _, o := range q.list("only") {
		only[o] = true
	}
	var out obj
	for _, k := range []string{"build", "system", "config", "status"} {
		if len(only) == 0 || only[k] {
			out = append(out, kv{k, parts[k]})
		}
	}
	if out == nil {
		out = obj{}
	}
	return okReply(out)
}

func hAsteriskPing(q *request) *reply {
	return okReply(obj{{"asterisk_id", q.s.eid}, {"ping", "pong"}, {"timestamp", astTime(time.Now())}})
}

func hGetGlobalVar(q *request) *reply {
	v := q.param("variable")
	if v == "" {
		return errReply(400, "Variable name is required")
	}
	return okReply(obj{{"value", q.s.globals[v]}})
}

func hSetGlobalVar(q *request) *reply {
	v := q.param("variable")
	if v == "" {
		return errReply(400, "Variable name is required")
	}
	if val := q.param("value"); val != "" {
		q.s.globals[v] = val
	} else {
		delete(q.s.globals, v)
	}
	return noContent()
}

// ---- applications ----

func (s *Server) appLocked(name string) *app {
	a := s.apps[name]
	if a == nil {
		return nil
	}
	if a.ws != nil {
		return a
	}
	for _, c := range s.channels {
		if c.subs[name] > 0 {
			return a
		}
	}
	return nil
}

func hListApps(q *request) *reply {
	s := q.s
	var names []string
	for n := range s.apps {
		if s.appLocked(n) != nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := []any{}
	for _, n := range names {
		out = append(out, s.apps[n].json(s))
	}
	return okReply(out)
}

func hGetApp(q *request) *reply {
	a := q.s.appLocked(q.pathVar("applicationName"))
	if a == nil {
		return errReply(404, "Application not found")
	}
	return okReply(a.json(q.s))
}

// hEventFilter follows app_event_filter_set: an empty body resets both
// lists; a list given replaces that list; a list not given is kept.
func hEventFilter(q *request) *reply {
	a := q.s.appLocked(q.pathVar("applicationName"))
	if a == nil {
		return errReply(404, "Application not found")
	}
	bad := errReply(400, "Invalid format definition")
	parse := func(v any) ([]any, bool) {
		arr, ok := v.([]any)
		if !ok {
			return nil, false
		}
		for _, it := range arr {
			m, ok := it.(map[string]any)
			if !ok {
				return nil, false
			}
			if t, _ := m["type"].(string); t == "" {
				return nil, false
			}
		}
		return arr, true
	}
	switch {
	case q.body == nil || (q.bodyObj != nil && len(q.bodyObj) == 0):
		a.allowed, a.disallowed = nil, nil
	case q.bodyObj != nil:
		var allowed, disallowed []any
		if v, ok := q.bodyObj["allowed"]; ok {
			if allowed, ok = parse(v); !ok {
				return bad
			}
		}
		if v, ok := q.bodyObj["disallowed"]; ok {
			if disallowed, ok = parse(v); !ok {
				return bad
			}
		}
		if _, ok := q.bodyObj["allowed"]; ok {
			a.allowed = allowed
		}
		if _, ok := q.bodyObj["disallowed"]; ok {
			a.disallowed = disallowed
		}
	default:
		return bad
	}
	return okReply(a.json(q.s))
}

func (s *Server) eventSourceLocked(src string) (map[string]int, bool) {
	kind, id, _ := strings.Cut(src, ":")
	switch kind {
	case "channel":
		if c := s.channelByIDLocked(id); c != nil {
			return c.subs, true
		}
	case "bridge":
		if b := s.bridges[id]; b != nil {
			return b.subs, true
		}
	case "deviceState":
		if id != "" {
			return s.deviceLocked(id).subs, true
		}
	}
	return nil, false
}

func hSubscribe(q *request) *reply {
	s := q.s
	srcs := q.list("eventSource")
	if len(srcs) == 0 {
		return errReply(400, "Missing parameter eventSource")
	}
	name := q.pathVar("applicationName")
	a := s.appLocked(name)
	if a == nil {
		return errReply(404, "Application not found")
	}
	var subs []map[string]int
	for _, src := range srcs {
		m, ok := s.eventSourceLocked(src)
		if !ok {
			return errReply(422, "Event source does not exist")
		}
		subs = append(subs, m)
	}
	for _, m := range subs {
		m[name]++
	}
	return okReply(a.json(s))
}

func hUnsubscribe(q *request) *reply {
	s := q.s
	srcs := q.list("eventSource")
	if len(srcs) == 0 {
		return errReply(400, "Missing parameter eventSource")
	}
	name := q.pathVar("applicationName")
	a := s.appLocked(name)
	if a == nil {
		return errReply(404, "Application not found")
	}
	var subs []map[string]int
	for _, src := range srcs {
		m, ok := s.eventSourceLocked(src)
		if !ok {
			return errReply(422, "Event source does not exist")
		}
		if m[name] == 0 {
			return errReply(409, "Application not subscribed to event source")
		}
		subs = append(subs, m)
	}
	for _, m := range subs {
		m[name]--
	}
	return okReply(a.json(s))
}

// ---- channels ----

func hListChannels(q *request) *reply {
	out := []channelJSON{}
	for _, c := range q.s.sortedChannelsLocked() {
		out = append(out, c.snap)
	}
	return okReply(out)
}

func hGetChannel(q *request) *reply {
	c := q.s.channelByIDLocked(q.pathVar("channelId"))
	if c == nil {
		return errReply(404, "Channel not found")
	}
	q.s.noteLocked(c)
	return okReply(c.snap)
}

func (s *Server) originate(q *request, channelID string) *reply {
	otherID := q.param("otherChannelId")
	if len(channelID) > 149 || len(otherID) > 149 {
		return errReply(400, "Uniqueid length exceeds maximum of 149")
	}
	endpoint := q.param("endpoint")
	if endpoint == "" {
		return errReply(400, "Endpoint must be specified")
	}
	originator, formats := q.param("originator"), q.param("formats")
	if originator != "" && formats != "" {
		return errReply(400, "Originator and formats can't both be specified")
	}
	if _, _, ok := splitEndpoint(endpoint); !ok {
		return errReply(400, "Invalid endpoint specified")
	}
	appName, appArgs, exten := q.param("app"), q.param("appArgs"), q.param("extension")
	if appName == "" && exten == "" {
		return errReply(400, "Application or extension must be specified")
	}
	ctx := q.param("context")
	if ctx == "" {
		ctx = "default"
	}
	prio := q.intParam("priority", 1)
	if prio <= 0 {
		prio = 1
	}
	if label := q.param("label"); label != "" && appName == "" {
		if n, err := strconv.Atoi(leadingInt(label)); err == nil && n > 0 {
			prio = n
		}
	}
	timeout := q.intParam("timeout", 30)
	cidName, cidNum := parseCallerID(q.param("callerId"))
	var origCh *channel
	if originator != "" {
		if origCh = s.channelByIDLocked(originator); origCh == nil {
			return errReply(400, "Provided originator channel was not found")
		}
		s.noteLocked(origCh)
	}
	if formats != "" {
		if rep := checkFormats(formats); rep != nil {
			return rep
		}
	}
	if channelID != "" && s.channels[channelID] != nil {
		return errReply(409, "Channel with given unique ID already exists")
	}
	b, ok := s.agents[endpointKey(endpoint)]
	if !ok {
		s.logf("originate to unknown endpoint %s", endpoint)
		return allocFailed()
	}
	c := s.newAgentChannelLocked(kindOriginate, endpoint, channelID, b)
	c.originator, c.formats = originator, formats
	c.highRate = origCh == nil && formats == ""
	c.snap.Dialplan.AppName, c.snap.Dialplan.AppData = "AppDial2", "(Outgoing Line)"
	if origCh != nil {
		c.snap.Connected = origCh.snap.Caller
	}
	if cidName != "" || cidNum != "" {
		c.snap.Caller = callerID{Name: cidName, Number: cidNum}
		if cidNum != "" {
			c.snap.Connected.Number = cidNum
		}
		if cidName != "" {
			c.snap.Connected.Name = cidName
		}
	}
	for k, v := range bodyVariables(q) {
		c.vars[k] = v
	}
	c.orig = origination{app: appName, appArgs: appArgs, context: ctx, exten: exten, priority: prio}
	if appName != "" {
		c.subs[appName]++
	}
	rep := okReply(c.snap)
	s.logf("originate %s to %s (originator %q, formats %q)", c.id(), endpoint, originator, formats)
	s.originateLocked(c, timeout)
	return rep
}

func hCreate(q *request) *reply {
	s := q.s
	originator, formats := q.param("originator"), q.param("formats")
	if originator != "" && formats != "" {
		return errReply(400, "Originator and formats can't both be specified")
	}
	endpoint := q.param("endpoint")
	if endpoint == "" {
		return errReply(400, "Endpoint must be specified")
	}
	if _, _, ok := splitEndpoint(endpoint); !ok {
		return errReply(400, "Invalid endpoint specified")
	}
	appName, appArgs := q.param("app"), q.param("appArgs")
	origCh := s.channelByIDLocked(originator)
	if origCh != nil {
		s.noteLocked(origCh)
	} else if formats != "" {
		if rep := checkFormats(formats); rep != nil {
			return rep
		}
	}
	channelID := q.param("channelId")
	if channelID != "" && s.channels[channelID] != nil {
		return errReply(409, "Channel with given unique ID already exists")
	}
	b, ok := s.agents[endpointKey(endpoint)]
	if !ok {
		s.logf("create on unknown endpoint %s", endpoint)
		return allocFailed()
	}
	c := s.newAgentChannelLocked(kindCreate, endpoint, channelID, b)
	c.originator, c.formats = originator, formats
	c.highRate = origCh == nil && formats == ""
	for k, v := range bodyVariables(q) {
		c.vars[k] = v
	}
	if appName != "" {
		c.subs[appName]++
		if origCh != nil {
			// Asterisk subscribes the application to the originator too,
			// which is why it later sees that channel's ChannelDestroyed.
			origCh.subs[appName]++
		}
	}
	rep := okReply(c.snap)
	s.logf("create %s on %s (originator %q, formats %q)", c.id(), endpoint, originator, formats)
	d := s.opts.CreateStasisDelay
	if d < 0 {
		s.createdEnterStasisLocked(c, appName, appArgs)
		return rep
	}
	if d == 0 {
		d = time.Duration(s.rnd.Int63n(int64(2 * time.Millisecond)))
	}
	c.afterLocked(d, func() { s.createdEnterStasisLocked(c, appName, appArgs) })
	return rep
}

func hHangup(q *request) *reply {
	s := q.s
	c := s.channelByIDLocked(q.pathVar("channelId"))
	if c == nil {
		return errReply(404, "Channel not found")
	}
	s.noteLocked(c)
	reason, code := q.param("reason"), q.param("reason_code")
	if reason != "" && code != "" {
		return errReply(400, "The reason and reason_code can't both be specified")
	}
	cause := 16
	switch {
	case code != "":
		n, err := strconv.Atoi(leadingInt(code))
		if err != nil {
			return errReply(400, "Invalid reason for hangup reason code provided")
		}
		cause = n
	case reason != "":
		n, ok := hangupReasons[reason]
		if !ok {
			return errReply(400, "Invalid reason for hangup reason provided")
		}
		cause = n
	}
	s.hangupLocked(c, hangup{reqCause: 32, soft: true, cause: cause})
	return noContent()
}

// continueOp is /continue, queued behind the channel's playbacks as in Asterisk.
type continueOp struct {
	s        *Server
	c        *channel
	context  string
	exten    string
	priority int
}

func (o *continueOp) start() {
	s, c := o.s, o.c
	if c.bridge != nil {
		s.leaveBridgeLocked(c, c.bridge)
	}
	s.leaveStasisLocked(c)
	c.continued = fmt.Sprintf("%s,%s,%d", o.context, o.exten, o.priority)
	c.snap.Dialplan = dialplanCEP{Context: o.context, Exten: o.exten, Priority: int64(o.priority)}
	c.notifyLocked()
	s.logf("channel %s continues in the dialplan at %s", c.id(), c.continued)
	c.q.done(o, c.alive)
}

func (o *continueOp) abort(bool) {}

func hContinue(q *request) *reply {
	s := q.s
	c, rep := s.findControlLocked(q.pathVar("channelId"))
	if rep != nil {
		return rep
	}
	if rep := stateInvalid(c); rep != nil {
		return rep
	}
	ctx, exten := q.param("context"), q.param("extension")
	var context string
	if ctx == "" {
		context = c.snap.Dialplan.Context
		if exten == "" {
			exten = c.snap.Dialplan.Exten
		}
	} else {
		context = ctx
		if exten == "" {
			exten = "s"
		}
	}
	prio := 1
	switch {
	case q.param("label") != "":
		if n, err := strconv.Atoi(leadingInt(q.param("label"))); err == nil && n > 0 {
			prio = n
		}
	case q.intParam("priority", 0) > 0:
		prio = q.intParam("priority", 0)
	case ctx == "" && q.param("extension") == "":
		prio = int(c.snap.Dialplan.Priority) + 1
	}
	c.q.push(&continueOp{s: s, c: c, context: context, exten: exten, priority: prio}, c.alive)
	return noContent()
}

// moveOp is POST /channels/{id}/move as Asterisk 20 does it: within the
// same Stasis() the channel leaves its application (StasisEnd there) and
// enters the other (StasisStart with appArgs). Its dialplan still says
// Stasis with the first application's data, and a bridge it is in keeps
// it. When no websocket serves the other application, Stasis() gives up
// and the channel goes on in the dialplan.
type moveOp struct {
	s    *Server
	c    *channel
	app  string
	args []string
}

func (o *moveOp) start() {
	s, c := o.s, o.c
	if !c.inStasis {
		c.q.done(o, c.alive)
		return
	}
	s.leaveStasisLocked(c)
	if s.appActiveLocked(o.app) {
		s.enterStasisLocked(c, o.app, o.args)
		s.logf("channel %s moved to Stasis app %q", c.id(), o.app)
	} else {
		if c.bridge != nil {
			s.leaveBridgeLocked(c, c.bridge)
		}
		d := c.snap.Dialplan
		c.continued = fmt.Sprintf("%s,%s,%d", d.Context, d.Exten, d.Priority+1)
		c.snap.Dialplan = dialplanCEP{Context: d.Context, Exten: d.Exten, Priority: d.Priority + 1}
		c.notifyLocked()
		s.logf("channel %s: Stasis app %q not registered: continues in the dialplan", c.id(), o.app)
	}
	c.q.done(o, c.alive)
}

func (o *moveOp) abort(bool) {}

func hMove(q *request) *reply {
	s := q.s
	c, rep := s.findControlLocked(q.pathVar("channelId"))
	if rep != nil {
		return rep
	}
	app := q.param("app")
	if app == "" {
		return errReply(400, "Missing parameter app")
	}
	var args []string
	if v := q.param("appArgs"); v != "" {
		args = strings.Split(v, ",")
	}
	c.q.push(&moveOp{s: s, c: c, app: app, args: args}, c.alive)
	return noContent()
}

func hAnswer(q *request) *reply {
	s := q.s
	c, rep := s.findControlLocked(q.pathVar("channelId"))
	if rep != nil {
		return rep
	}
	if rep := stateInvalid(c); rep != nil {
		return rep
	}
	s.setStateLocked(c, "Up")
	return noContent()
}

func checkDirection(q *request, c *channel) *reply {
	switch q.param("direction") {
	case "", "both", "in", "out":
		return nil
	}
	return errReply(400, "Invalid direction specified")
}

// hSimpleControl handles channel operations that only need the channel in
// Stasis (and, if checkState, answered or inbound) and have no event.
func hSimpleControl(checkState bool, extra func(*request, *channel) *reply) handlerFunc {
	return func(q *request) *reply {
		c, rep := q.s.findControlLocked(q.pathVar("channelId"))
		if rep != nil {
			return rep
		}
		if checkState {
			if rep := stateInvalid(c); rep != nil {
				return rep
			}
		}
		if extra != nil {
			if rep := extra(q, c); rep != nil {
				return rep
			}
		}
		return noContent()
	}
}

func (s *Server) playOnChannel(q *request, pbID string) *reply {
	c, rep := s.findControlLocked(q.pathVar("channelId"))
	if rep != nil {
		return rep
	}
	if rep := stateInvalid(c); rep != nil {
		return rep
	}
	p, rep := s.newPlayback(q, pbID, c.snap.Language, "channel:"+c.id())
	if rep != nil {
		return rep
	}
	p.ch = c
	out := &reply{code: 201, body: p.json(), location: "/ari/playbacks/" + p.id}
	c.q.push(p, c.alive)
	return out
}

func (s *Server) newPlayback(q *request, pbID, defLang, target string) (*playback, *reply) {
	if q.intParam("skipms", 3000) < 0 {
		return nil, errReply(400, "skipms cannot be negative")
	}
	if q.intParam("offsetms", 0) < 0 {
		return nil, errReply(400, "offsetms cannot be negative")
	}
	medias := q.list("media")
	if len(medias) == 0 {
		return nil, errReply(500, "Failed to queue media for playback")
	}
	for _, m := range medias {
		if m == "" {
			return nil, errReply(500, "Failed to queue media for playback")
		}
	}
	lang := q.param("lang")
	if lang == "" {
		lang = defLang
	}
	if pbID == "" {
		pbID = uuid4()
	}
	p := &playback{s: s, id: pbID, medias: medias, lang: lang, target: target, state: "queued"}
	s.playbacks[pbID] = p
	return p, nil
}

// recordingParams validates the parameters of a record request in
// Asterisk's order.
func (s *Server) recordingParams(q *request, target string) (*recording, *reply) {
	r := &recording{
		s:           s,
		name:        q.param("name"),
		format:      q.param("format"),
		target:      target,
		maxDur:      q.intParam("maxDurationSeconds", 0),
		maxSil:      q.intParam("maxSilenceSeconds", 0),
		ifExists:    q.param("ifExists"),
		beep:        q.boolParam("beep"),
		terminateOn: q.param("terminateOn"),
		state:       "queued",
	}
	if r.ifExists == "" {
		r.ifExists = "fail"
	}
	if r.terminateOn == "" {
		r.terminateOn = "none"
	}
	switch r.terminateOn {
	case "none", "any", "*", "#":
	default:
		return nil, errReply(400, "terminateOn invalid")
	}
	switch r.ifExists {
	case "fail", "overwrite", "append":
	default:
		return nil, errReply(400, "ifExists invalid")
	}
	if !knownFormats[r.format] {
		return nil, errReply(422, "specified format is unknown on this system")
	}
	if r.name == "" {
		return nil, errReply(500, "Error parsing request")
	}
	if !s.validRecordingName(r.name) {
		return nil, errReply(400, "Recording name invalid")
	}
	exists := fmt.Sprintf("Recording '%s' already exists and can not be overwritten", r.name)
	if _, ok := s.storedPath(r.name); ok && r.ifExists == "fail" {
		return nil, errReply(409, exists)
	}
	if s.liveRecs[r.name] != nil {
		return nil, errReply(409, exists)
	}
	return r, nil
}

func hRecordChannel(q *request) *reply {
	s := q.s
	if q.intParam("maxDurationSeconds", 0) < 0 {
		return errReply(400, "max_duration_seconds cannot be negative")
	}
	if q.intParam("maxSilenceSeconds", 0) < 0 {
		return errReply(400, "max_silence_seconds cannot be negative")
	}
	c, rep := s.findControlLocked(q.pathVar("channelId"))
	if rep != nil {
		return rep
	}
	r, rep := s.recordingParams(q, "channel:"+c.id())
	if rep != nil {
		return rep
	}
	r.ch = c
	r.talk = c.talk
	if c.kind != kindInbound {
		r.talk = 24 * time.Hour
	}
	s.liveRecs[r.name] = r
	out := &reply{code: 201, body: r.json(), location: "/ari/recordings/live/" + url.PathEscape(r.name)}
	c.q.push(r, c.alive)
	return out
}

func hGetVar(q *request) *reply {
	s := q.s
	name := q.param("variable")
	if name == "" {
		return errReply(400, "Variable name is required")
	}
	c := s.channelByIDLocked(q.pathVar("channelId"))
	if c == nil {
		return errReply(404, "Provided channel was not found")
	}
	s.noteLocked(c)
	v, found, known := c.variable(name)
	if !known {
		return errReply(500, "Unable to read provided function")
	}
	if !found {
		return errReply(404, "Provided variable was not found")
	}
	return okReply(obj{{"value", v}})
}

func hSetVar(q *request) *reply {
	s := q.s
	name := q.param("variable")
	if name == "" {
		return errReply(400, "Variable name is required")
	}
	c, rep := s.findControlLocked(q.pathVar("channelId"))
	if rep != nil {
		return rep
	}
	value, hasValue := q.param("value"), q.has("value")
	switch strings.ToUpper(name) {
	case "CALLERID(NAME)":
		c.snap.Caller.Name = value
		return noContent()
	case "CALLERID(NUM)":
		c.snap.Caller.Number = value
		return noContent()
	}
	if strings.HasSuffix(name, ")") {
		return errReply(400, "Failed to execute function")
	}
	if !hasValue {
		// No value deletes the variable, silently.
		delete(c.vars, name)
		return noContent()
	}
	s.setVarLocked(c, name, value)
	return noContent()
}

func hDial(q *request) *reply {
	s := q.s
	c, rep := s.findControlLocked(q.pathVar("channelId"))
	if rep != nil {
		return rep
	}
	var caller *channel
	if id := q.param("caller"); id != "" {
		if caller = s.channelByIDLocked(id); caller != nil {
			s.noteLocked(caller)
		}
	}
	if c.snap.State != "Down" || c.dialed {
		return errReply(409, "Channel is not in the 'Down' state")
	}
	if c.kind != kindCreate {
		return errReply(409, "Dialing a channel not created by ARI")
	}
	s.dialLocked(c, caller, q.intParam("timeout", 0))
	return noContent()
}

// ---- bridges ----

func hListBridges(q *request) *reply {
	var ids []string
	for id := range q.s.bridges {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := []bridgeJSON{}
	for _, id := range ids {
		out = append(out, q.s.bridges[id].json())
	}
	return okReply(out)
}

func (s *Server) createBridge(q *request, id string) *reply {
	if id != "" && s.bridges[id] != nil {
		return errReply(409, fmt.Sprintf("Bridge with id '%s' already exists", id))
	}
	typ, ok := validBridgeType(q.param("type"))
	if !ok {
		shown := id
		if shown == "" {
			shown = "(null)"
		}
		return errReply(500, fmt.Sprintf("Unable to create bridge. Possible duplicate bridge id '%s'", shown))
	}
	if id == "" {
		id = uuid4()
	}
	b := s.newBridgeLocked(id, q.param("name"), typ)
	s.logf("bridge %s created", id)
	return okReply(b.json())
}

func (s *Server) findBridgeLocked(id string) (*bridge, *reply) {
	b := s.bridges[id]
	if b == nil {
		return nil, errReply(404, "Bridge not found")
	}
	return b, nil
}

func hGetBridge(q *request) *reply {
	b, rep := q.s.findBridgeLocked(q.pathVar("bridgeId"))
	if rep != nil {
		return rep
	}
	return okReply(b.json())
}

func hDestroyBridge(q *request) *reply {
	b, rep := q.s.findBridgeLocked(q.pathVar("bridgeId"))
	if rep != nil {
		return rep
	}
	for _, m := range b.members {
		q.s.noteLocked(m)
	}
	q.s.destroyBridgeLocked(b)
	return noContent()
}

// bridgeChannels resolves the channel parameter of addChannel/removeChannel.
func (s *Server) bridgeChannels(q *request) ([]*channel, *reply) {
	var out []*channel
	for _, id := range q.list("channel") {
		if id == "" {
			continue
		}
		c := s.channelByIDLocked(id)
		if c == nil {
			return nil, errReply(400, "Channel not found")
		}
		s.noteLocked(c)
		if !c.inStasis {
			return nil, errReply(422, "Channel not in Stasis application")
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errReply(400, "Missing parameter channel")
	}
	return out, nil
}

func hAddChannel(q *request) *reply {
	s := q.s
	b, rep := s.findBridgeLocked(q.pathVar("bridgeId"))
	if rep != nil {
		return rep
	}
	chans, rep := s.bridgeChannels(q)
	if rep != nil {
		return rep
	}
	for _, c := range chans {
		if c.rec != nil {
			return errReply(409, fmt.Sprintf("Channel %s currently recording", c.id()))
		}
	}
	inhibit := q.boolParam("inhibitConnectedLineUpdates")
	for _, c := range chans {
		s.enterBridgeLocked(c, b, inhibit)
	}
	return noContent()
}

func hRemoveChannel(q *request) *reply {
	s := q.s
	b, rep := s.findBridgeLocked(q.pathVar("bridgeId"))
	if rep != nil {
		return rep
	}
	chans, rep := s.bridgeChannels(q)
	if rep != nil {
		return rep
	}
	for _, c := range chans {
		if c.bridge != b {
			return errReply(422, "Channel not in this bridge")
		}
	}
	for _, c := range chans {
		s.leaveBridgeLocked(c, b)
	}
	return noContent()
}

func hBridgeMOH(q *request) *reply {
	b, rep := q.s.findBridgeLocked(q.pathVar("bridgeId"))
	if rep != nil {
		return rep
	}
	q.s.startBridgeMOHLocked(b)
	return noContent()
}

func hBridgeStopMOH(q *request) *reply {
	b, rep := q.s.findBridgeLocked(q.pathVar("bridgeId"))
	if rep != nil {
		return rep
	}
	if !q.s.stopBridgeMOHLocked(b) {
		return errReply(409, "Bridge isn't playing music")
	}
	return noContent()
}

func (s *Server) playOnBridge(q *request, pbID string) *reply {
	b, rep := s.findBridgeLocked(q.pathVar("bridgeId"))
	if rep != nil {
		return rep
	}
	p, rep := s.newPlayback(q, pbID, "en", "bridge:"+b.id)
	if rep != nil {
		return rep
	}
	p.br = b
	out := &reply{code: 201, body: p.json(), location: "/ari/playbacks/" + p.id}
	b.q.push(p, b.alive)
	return out
}

func hRecordBridge(q *request) *reply {
	s := q.s
	b, rep := s.findBridgeLocked(q.pathVar("bridgeId"))
	if rep != nil {
		return rep
	}
	if !knownFormats[q.param("format")] {
		return errReply(422, "specified format is unknown on this system")
	}
	r, rep := s.recordingParams(q, "bridge:"+b.id)
	if rep != nil {
		return rep
	}
	r.br = b
	s.liveRecs[r.name] = r
	b.recs = append(b.recs, r)
	for _, m := range b.members {
		s.noteLocked(m)
	}
	out := &reply{code: 201, body: r.json(), location: "/ari/recordings/live/" + url.PathEscape(r.name)}
	r.start()
	if len(b.members) == 0 {
		s.finishRecordingLocked(r, endHangup)
	}
	return out
}

// ---- playbacks ----

func (s *Server) playbackLocked(id string) (*playback, *reply) {
	p := s.playbacks[id]
	if p == nil {
		return nil, errReply(404, "Playback not found")
	}
	s.noteLocked(p.ch)
	return p, nil
}

func hGetPlayback(q *request) *reply {
	p, rep := q.s.playbackLocked(q.pathVar("playbackId"))
	if rep != nil {
		return rep
	}
	return okReply(p.json())
}

func hStopPlayback(q *request) *reply {
	p, rep := q.s.playbackLocked(q.pathVar("playbackId"))
	if rep != nil {
		return rep
	}
	if rep := p.stop(); rep != nil {
		return rep
	}
	return noContent()
}

func hControlPlayback(q *request) *reply {
	op := q.param("operation")
	if op == "" {
		return errReply(400, "Missing operation")
	}
	switch op {
	case "pause", "unpause", "restart", "reverse", "forward":
	default:
		return errReply(400, fmt.Sprintf("Invalid operation %s", op))
	}
	p, rep := q.s.playbackLocked(q.pathVar("playbackId"))
	if rep != nil {
		return rep
	}
	if rep := p.control(op); rep != nil {
		return rep
	}
	return noContent()
}

// ---- recordings ----

func hListStored(q *request) *reply { return okReply(q.s.listStored()) }

func storedJSON(s *Server, name string) (storedRecordingJSON, bool) {
	p, ok := s.storedPath(name)
	if !ok {
		return storedRecordingJSON{}, false
	}
	ext := strings.TrimPrefix(filepath.Ext(p), ".")
	return storedRecordingJSON{Name: name, Format: ext}, true
}

func hGetStored(q *request) *reply {
	j, ok := storedJSON(q.s, q.pathVar("recordingName"))
	if !ok {
		return errReply(404, "Recording not found")
	}
	return okReply(j)
}

func hDeleteStored(q *request) *reply {
	name := q.pathVar("recordingName")
	if _, ok := q.s.storedPath(name); !ok {
		return errReply(404, "Recording not found")
	}
	if !q.s.removeStoredFiles(name) {
		return errReply(500, "Delete failed")
	}
	return noContent()
}

func hGetStoredFile(q *request) *reply {
	p, ok := q.s.storedPath(q.pathVar("recordingName"))
	if !ok {
		return errReply(404, "Recording not found")
	}
	ext := strings.TrimPrefix(filepath.Ext(p), ".")
	return &reply{code: 200, file: p, contentType: "audio/" + ext}
}

func hCopyStored(q *request) *reply {
	s := q.s
	src, ok := s.storedPath(q.pathVar("recordingName"))
	if !ok {
		return errReply(404, "Recording not found")
	}
	dst := q.param("destinationRecordingName")
	if dst == "" {
		return errReply(400, "Invalid destination recording name")
	}
	if !s.validRecordingName(dst) {
		return errReply(403, "Destination file path is forbidden")
	}
	if _, exists := s.storedPath(dst); exists {
		return errReply(409, "A recording with the same name already exists on the system")
	}
	ext := strings.TrimPrefix(filepath.Ext(src), ".")
	data, err := os.ReadFile(src)
	if err != nil {
		return errReply(500, "Copy failed")
	}
	path := s.recordingPath(dst, ext)
	if os.MkdirAll(filepath.Dir(path), 0o755) != nil || os.WriteFile(path, data, 0o644) != nil {
		return errReply(500, "Copy failed")
	}
	return okReply(storedRecordingJSON{Name: dst, Format: ext})
}

func (s *Server) liveLocked(name string) (*recording, *reply) {
	r := s.liveRecs[name]
	if r == nil {
		return nil, errReply(404, "Recording not found")
	}
	s.noteLocked(r.ch)
	return r, nil
}

func hGetLive(q *request) *reply {
	r, rep := q.s.liveLocked(q.pathVar("recordingName"))
	if rep != nil {
		return rep
	}
	return okReply(r.json())
}

func hLiveOp(op string) handlerFunc {
	return func(q *request) *reply {
		s := q.s
		r, rep := s.liveLocked(q.pathVar("recordingName"))
		if rep != nil {
			return rep
		}
		switch op {
		case "stop", "cancel":
			if r.state == "queued" {
				r.disregarded = true
				return noContent()
			}
			why := endStop
			if op == "cancel" {
				why = endCancel
			}
			s.finishRecordingLocked(r, why)
		default:
			if r.state != "recording" {
				return errReply(409, "Recording not in session")
			}
		}
		return noContent()
	}
}

// ---- endpoints ----

func (s *Server) endpointsLocked(tech string) []obj {
	var keys []string
	for k := range s.agents {
		if !strings.HasPrefix(k, "Local/") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := []obj{}
	for _, k := range keys {
		t, res, ok := splitEndpoint(k)
		if !ok || (tech != "" && !strings.EqualFold(t, tech)) {
			continue
		}
		ids := []string{}
		for _, c := range s.sortedChannelsLocked() {
			if endpointKey(c.endpoint) == k {
				ids = append(ids, c.id())
			}
		}
		out = append(out, obj{{"technology", t}, {"resource", res}, {"state", "online"}, {"channel_ids", ids}})
	}
	return out
}

func hListEndpoints(q *request) *reply { return okReply(q.s.endpointsLocked("")) }

func hListEndpointsByTech(q *request) *reply {
	eps := q.s.endpointsLocked(q.pathVar("tech"))
	if len(eps) == 0 {
		return errReply(404, "Endpoints not found")
	}
	return okReply(eps)
}

func hGetEndpoint(q *request) *reply {
	want := q.pathVar("resource")
	for _, e := range q.s.endpointsLocked(q.pathVar("tech")) {
		if e[1].v == want {
			return okReply(e)
		}
	}
	return errReply(404, "Endpoint not found")
}

func (s *Server) recordMessageLocked(to, from, body string, vars map[string]string) {
	s.messages = append(s.messages, SentMessage{To: to, From: from, Body: body, Variables: vars, Time: time.Now()})
	s.logf("message to %s from %s: %q", to, from, body)
}

func hSendMessage(q *request) *reply {
	to := q.param("to")
	if to == "" {
		return errReply(400, "To must be specified")
	}
	tech, _, _ := strings.Cut(to, ":")
	switch strings.ToLower(tech) {
	case "pjsip", "sip", "xmpp", "iax2":
	default:
		return errReply(404, "Endpoint not found")
	}
	q.s.recordMessageLocked(to, q.param("from"), q.param("body"), bodyVariables(q))
	return &reply{code: 202}
}

func hSendMessageToEndpoint(q *request) *reply {
	tech, res := q.pathVar("tech"), q.pathVar("resource")
	if _, ok := q.s.agents[tech+"/"+res]; !ok {
		return errReply(404, "Endpoint not found")
	}
	to := strings.ToLower(tech) + ":" + res
	q.s.recordMessageLocked(to, q.param("from"), q.param("body"), bodyVariables(q))
	return &reply{code: 202}
}

func hGetSound(q *request) *reply {
	id := q.pathVar("soundId")
	if q.s.missing["sound:"+id] {
		return errReply(404, "Sound not found")
	}
	return okReply(obj{{"id", id}, {"formats", []obj{{{"language", "en"}, {"format", "gsm"}}, {{"language", "en"}, {"format", "slin"}}}}})
}
