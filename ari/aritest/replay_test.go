package aritest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The replay tests drive the fake with the REST requests and caller
// actions recorded against a real Asterisk 20.20.1, then compare what the
// fake answered and the events it sent to app "callflow" with the real ones.

// transcriptDir is the captured traffic kept with package ari (see its README).
const transcriptDir = "../testdata/transcripts"

// replayScale compresses the transcripts' timeline tenfold.
const replayScale = 0.1

type tline struct {
	Seq      int             `json:"seq"`
	TMs      int             `json:"t_ms"`
	Kind     string          `json:"kind"`
	App      string          `json:"app"`
	Event    map[string]any  `json:"event"`
	Actor    string          `json:"actor"`
	Method   string          `json:"method"`
	Path     string          `json:"path"`
	Query    string          `json:"query"`
	Status   int             `json:"status"`
	RespBody json.RawMessage `json:"resp_body"`
	RespCT   string          `json:"resp_content_type"`
	RespHex  string          `json:"resp_body_binary_first_bytes_hex"`
	URL      string          `json:"url"`
	Body     string          `json:"body"`
	HTTPStat int             `json:"http_status"`
}

func loadTranscript(t *testing.T, name string) []tline {
	t.Helper()
	f, err := os.Open(filepath.Join(transcriptDir, name+".jsonl"))
	if err != nil {
		t.Fatalf("transcript missing: %v", err)
	}
	defer f.Close()
	var out []tline
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		var l tline
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, l)
	}
	return out
}

type replayCase struct {
	name    string
	talk    time.Duration
	agents  map[string]AgentBehavior
	missing []string
}

func TestReplayTranscripts(t *testing.T) {
	cases := []replayCase{
		{name: "greeting_menu_dtmf"},
		// The caller says hello-world (about 0.95 s after the beep) then stays silent.
		{name: "record_voicemail", talk: 950 * time.Millisecond},
		{name: "dial_agent_answered", agents: map[string]AgentBehavior{
			"Local/6005@agents/n": {Mode: AgentAnswer, RingFor: 2 * time.Second},
		}},
		{name: "dial_agent_noanswer", agents: map[string]AgentBehavior{
			"Local/6002@agents/n": {Mode: AgentNoAnswer},
		}},
		{name: "dial_agent_busy", agents: map[string]AgentBehavior{
			"Local/6003@agents/n": {Mode: AgentBusy, HangupAfter: 5 * time.Second},
			"Local/6004@agents/n": {Mode: AgentCongestion, HangupAfter: 5 * time.Second},
		}},
		{name: "caller_hangup_mid_playback"},
		{name: "dial_agent_answered_originate", agents: map[string]AgentBehavior{"Local/6005@agents/n": {Mode: AgentAnswer, RingFor: 2 * time.Second}}},
		{name: "errors_bad_requests", agents: map[string]AgentBehavior{
			"Local/6001@agents/n": {Mode: AgentAnswer},
		}, missing: []string{"sound:no-such-file", "sound:no-such-sound"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lines := loadTranscript(t, tc.name)
			r := newReplayer(t, tc, lines)
			r.run()
			r.compareEvents()
		})
	}
}

type replayer struct {
	t     *testing.T
	tc    replayCase
	lines []tline
	s     *Server
	c     *client
	st    *stream
	start time.Time

	mu      sync.Mutex
	toFake  map[string]string // transcript id -> fake id
	toTrans map[string]string // fake id -> transcript id
	caller  *Caller
	callerL string // transcript id of the caller's own (;1) leg
	inbound string // transcript id of the inbound channel
}

// mediaDurations derives how long each prompt played in the transcript;
// prompts cut short (stopped or interrupted) play "forever" in the fake so
// that only the same interruption ends them.
func mediaDurations(lines []tline) map[string]time.Duration {
	out := map[string]time.Duration{}
	type started struct {
		media string
		at    int
	}
	cur := map[string]started{}
	stopped := map[string]bool{}
	for _, l := range lines {
		if l.Kind == "rest" && l.Method == "DELETE" && strings.HasPrefix(l.Path, "/ari/playbacks/") {
			stopped[strings.TrimPrefix(l.Path, "/ari/playbacks/")] = true
		}
		if l.Kind != "ws_event" || l.App != "callflow" {
			continue
		}
		pb, _ := l.Event["playback"].(map[string]any)
		if pb == nil {
			continue
		}
		id, media, state := str(pb["id"]), str(pb["media_uri"]), str(pb["state"])
		switch l.Event["type"] {
		case "PlaybackStarted":
			cur[id] = started{media, l.TMs}
		case "PlaybackContinuing", "PlaybackFinished":
			s, ok := cur[id]
			if !ok {
				continue
			}
			if (state == "done" || state == "continuing") && !stopped[id] {
				out[s.media] = time.Duration(l.TMs-s.at) * time.Millisecond
			} else if state != "failed" || l.TMs-s.at > 5 {
				out[s.media] = time.Hour
			}
		}
	}
	return out
}

func newReplayer(t *testing.T, tc replayCase, lines []tline) *replayer {
	talk := tc.talk
	if talk == 0 {
		talk = 3 * time.Second
	}
	tc.talk = talk
	s := newTestServer(t, Options{
		Username:          "callflow",
		Password:          "callflow",
		TimeScale:         replayScale,
		MediaDurations:    mediaDurations(lines),
		MissingMedia:      tc.missing,
		CreateStasisDelay: -1,
	})
	for ep, b := range tc.agents {
		s.SetAgent(ep, b)
	}
	r := &replayer{t: t, tc: tc, lines: lines, s: s, c: newClient(t, s),
		toFake: map[string]string{}, toTrans: map[string]string{}}
	return r
}

func (r *replayer) mapID(trans, fake string) {
	if trans == "" || fake == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.toFake[trans] = fake
	r.toTrans[fake] = trans
}

func (r *replayer) fakeID(trans string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.toFake[trans]; ok {
		return f
	}
	return trans
}

func (r *replayer) transID(fake string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.toTrans[fake]
	return t, ok
}

// pace sleeps until the scaled transcript time of a line.
func (r *replayer) pace(l tline) {
	due := r.start.Add(time.Duration(float64(l.TMs) * replayScale * float64(time.Millisecond)))
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}

func (r *replayer) run() {
	t := r.t
	r.start = time.Now()
	for i, l := range r.lines {
		switch {
		case l.Kind == "ws_connect" && l.App == "callflow":
			r.st = dialEvents(t, r.s, "callflow")
		case l.Kind == "ws_connect_attempt":
			r.wsAttempt(l)
		case l.Kind == "rest" && l.Actor == "caller":
			r.pace(l)
			r.waitPreceding(i)
			r.callerAction(i, l)
		case l.Kind == "rest" && l.Actor == "callflow":
			r.pace(l)
			r.waitPreceding(i)
			r.rest(l)
		}
	}
	r.waitPreceding(len(r.lines))
}

// evRefs lists the object ids an event is about.
func evRefs(ev map[string]any) []string {
	if m, ok := ev["playback"].(map[string]any); ok {
		return []string{str(m["id"])}
	}
	if m, ok := ev["recording"].(map[string]any); ok {
		return []string{str(m["name"])}
	}
	var out []string
	for _, k := range []string{"channel", "peer", "bridge"} {
		if m, ok := ev[k].(map[string]any); ok {
			out = append(out, str(m["id"]))
		}
	}
	return out
}

// primary is the object an event is grouped under when comparing.
func primary(ev map[string]any) string {
	if m, ok := ev["playback"].(map[string]any); ok {
		return "playback:" + str(m["id"])
	}
	if m, ok := ev["recording"].(map[string]any); ok {
		return "recording:" + str(m["name"])
	}
	if id := chanID(ev); id != "" {
		return "channel:" + id
	}
	if m, ok := ev["bridge"].(map[string]any); ok {
		return "bridge:" + str(m["id"])
	}
	return ""
}

// transPrimary maps a fake event's primary object to the transcript's.
func (r *replayer) transPrimary(ev map[string]any) (string, bool) {
	p := primary(ev)
	kind, id, _ := strings.Cut(p, ":")
	if kind == "recording" {
		return p, true
	}
	tid, ok := r.transID(id)
	return kind + ":" + tid, ok
}

func (r *replayer) transcriptComparable(ev map[string]any) bool {
	p := primary(ev)
	kind, id, _ := strings.Cut(p, ":")
	if kind == "recording" {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.toFake[id]
	return ok
}

var bridgeishEvents = map[string]bool{"ChannelEnteredBridge": true, "ChannelLeftBridge": true, "ChannelConnectedLine": true, "BridgeDestroyed": true}

// requestRefs lists the ids a transcript line's request mentions.
func requestRefs(l tline) map[string]bool {
	refs := map[string]bool{}
	for _, seg := range strings.Split(l.Path, "/") {
		refs[seg] = true
	}
	q, _ := url.ParseQuery(l.Query)
	for _, vs := range q {
		for _, v := range vs {
			for _, p := range strings.Split(v, ",") {
				refs[p] = true
			}
		}
	}
	var body map[string]any
	if json.Unmarshal(l.RespBody, &body) == nil {
		refs[str(body["id"])] = true
		refs[str(body["name"])] = true
	}
	return refs
}

// caused reports whether a transcript event logged just before a request
// is that request's doing (Asterisk often sends events before answering).
func (r *replayer) caused(ev map[string]any, l tline) bool {
	if l.Method == "GET" {
		return false
	}
	typ := str(ev["type"])
	creates := l.Method == "POST" && (l.Path == "/ari/channels/create" || l.Path == "/ari/channels")
	if typ == "StasisStart" && !creates {
		return false
	}
	if typ == "Dial" && !creates && !strings.HasSuffix(l.Path, "/dial") {
		return false
	}
	refs := requestRefs(l)
	if l.Actor == "caller" {
		refs[r.inbound] = true
	}
	for _, id := range evRefs(ev) {
		if id != "" && refs[id] {
			return true
		}
	}
	if strings.Contains(l.Path, "/bridges/") || l.Method == "DELETE" {
		if bridgeishEvents[typ] || (typ == "ChannelVarset" && ev["variable"] == "BRIDGEPEER") {
			return true
		}
	}
	if l.Method == "DELETE" && typ == "PlaybackFinished" && field(ev, "playback", "state") == "failed" {
		_, target, _ := strings.Cut(str(field(ev, "playback", "target_uri")), ":")
		return refs[target]
	}
	return false
}

// waitPreceding waits until the fake sent as many comparable events as
// the transcript shows before line i, except those line i itself causes.
func (r *replayer) waitPreceding(i int) {
	want := 0
	blockStart := i
	for blockStart > 0 && r.lines[blockStart-1].Kind != "rest" {
		blockStart--
	}
	for j := 0; j < i; j++ {
		l := r.lines[j]
		if l.Kind != "ws_event" || l.App != "callflow" || !r.transcriptComparable(l.Event) {
			continue
		}
		if j >= blockStart && i < len(r.lines) && r.caused(l.Event, r.lines[i]) {
			continue
		}
		want++
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if r.fakeComparable() >= want {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	r.t.Logf("seq %d: proceeding with %d of %d expected events", r.lineSeq(i), r.fakeComparable(), want)
}

func (r *replayer) lineSeq(i int) int {
	if i < len(r.lines) {
		return r.lines[i].Seq
	}
	return -1
}

func (r *replayer) fakeComparable() int {
	if r.st == nil {
		return 0
	}
	n := 0
	for _, ev := range r.st.all() {
		if _, ok := r.transPrimary(ev); ok {
			n++
		}
	}
	return n
}

// callerAction plays the part of the "caller" application, which drove
// the PSTN side of the call in the transcript.
func (r *replayer) callerAction(i int, l tline) {
	t := r.t
	q, _ := url.ParseQuery(l.Query)
	switch {
	case l.Method == "POST" && l.Path == "/ari/channels":
		var leg map[string]any
		_ = json.Unmarshal(l.RespBody, &leg)
		r.callerL = str(leg["id"])
		// The inbound channel is the one the next callflow StasisStart is about.
		var ss map[string]any
		for _, nl := range r.lines[i+1:] {
			if nl.Kind == "ws_event" && nl.App == "callflow" && nl.Event["type"] == "StasisStart" {
				ss = nl.Event
				break
			}
		}
		if ss == nil {
			t.Fatalf("no StasisStart after the caller's originate")
		}
		r.inbound = chanID(ss)
		var args []string
		for _, a := range ss["args"].([]any) {
			args = append(args, str(a))
		}
		ep := strings.TrimPrefix(q.Get("endpoint"), "Local/")
		target, _, _ := strings.Cut(ep, "/")
		exten, ctx, _ := strings.Cut(target, "@")
		name, num := parseCallerID(q.Get("callerId"))
		cl, err := r.s.PlaceCall(ctxT(t), CallSpec{Exten: exten, Context: ctx, From: num, FromName: name, Args: args, Talk: r.tc.talk})
		if err != nil {
			t.Fatalf("PlaceCall: %v", err)
		}
		r.caller = cl
		r.mapID(r.inbound, cl.ID())
	case strings.HasSuffix(l.Path, "/dtmf") && r.caller != nil:
		d := 100 * time.Millisecond
		if v := q.Get("duration"); v != "" {
			var ms int
			fmt.Sscan(v, &ms)
			d = time.Duration(ms) * time.Millisecond
		}
		r.caller.PressFor(q.Get("dtmf"), d)
	case l.Method == "DELETE" && strings.HasPrefix(l.Path, "/ari/channels/") && r.caller != nil:
		r.caller.Hangup()
	}
}

var idLike = regexp.MustCompile(`^[0-9]{6,}\.[0-9]+$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func (r *replayer) rest(l tline) {
	t := r.t
	path := strings.TrimPrefix(l.Path, "/ari")
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = r.fakeID(s)
	}
	path = strings.Join(segs, "/")
	q, _ := url.ParseQuery(l.Query)
	if strings.Contains(l.Path, "/play/") {
		id := segs[len(segs)-1]
		r.mapID(id, id)
	}
	fq := url.Values{}
	for k, vs := range q {
		for _, v := range vs {
			parts := strings.Split(v, ",")
			for i, p := range parts {
				parts[i] = r.fakeID(p)
			}
			fq.Add(k, strings.Join(parts, ","))
		}
	}
	cl := r.c
	if l.Status == 401 {
		wrong := *r.c
		wrong.pass = "wrong"
		cl = &wrong
	}
	got := cl.do(l.Method, path, fq, nil)
	where := fmt.Sprintf("seq %d %s %s?%s", l.Seq, l.Method, l.Path, l.Query)
	if got.status != l.Status {
		t.Errorf("%s: status %d, want %d (body %s)", where, got.status, l.Status, got.body)
		return
	}
	if l.RespHex != "" {
		if ct := got.header.Get("Content-Type"); ct != l.RespCT {
			t.Errorf("%s: content type %q, want %q", where, ct, l.RespCT)
		}
		if len(got.body) < 44 || string(got.body[:4]) != "RIFF" || string(got.body[8:16]) != "WAVEfmt " {
			t.Errorf("%s: not a RIFF WAV file", where)
		}
		return
	}
	if len(l.RespBody) == 0 {
		if len(got.body) != 0 {
			t.Errorf("%s: body %s, want none", where, got.body)
		}
		return
	}
	var want any
	_ = json.Unmarshal(l.RespBody, &want)
	gotV := got.json()
	// Learn the ids the fake chose for what the transcript created.
	if wm, ok := want.(map[string]any); ok {
		if gm, ok := gotV.(map[string]any); ok && wm["id"] != nil && idLike.MatchString(str(wm["id"])) {
			r.mapID(str(wm["id"]), str(gm["id"]))
		}
	}
	if _, isList := want.([]any); isList && l.Method == "GET" && l.Path == "/ari/channels" {
		// The real list also holds the caller application's own legs.
		var kept []any
		for _, e := range want.([]any) {
			id := str(e.(map[string]any)["id"])
			if r.fakeID(id) != id {
				kept = append(kept, e)
			}
		}
		want = kept
	}
	if diff := r.diffBody(want, gotV, ""); diff != "" {
		t.Errorf("%s: body differs: %s\n got:  %s\n want: %s", where, diff, got.body, l.RespBody)
	}
}

var nameSeq = regexp.MustCompile(`-[0-9a-f]{8}(;[12])?`)

// normValue makes ids, channel names and times comparable across runs.
func (r *replayer) normValue(v string, fake bool) string {
	if fake {
		r.mu.Lock()
		for f, t := range r.toTrans {
			if f != t && strings.Contains(v, f) {
				v = strings.ReplaceAll(v, f, t)
			}
		}
		r.mu.Unlock()
	}
	return nameSeq.ReplaceAllString(v, "-N$1")
}

// ignoredKeys vary between runs or between a Local-channel lab and the
// fake's channel model.
var ignoredKeys = map[string]bool{"id": true, "creationtime": true, "timestamp": true, "date": true,
	"startup_time": true, "last_reload_time": true, "kernel": true, "machine": true, "entity_id": true}

func (r *replayer) diffBody(want, got any, at string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return at + ": not an object"
		}
		var wk, gk []string
		for k := range w {
			wk = append(wk, k)
		}
		for k := range g {
			gk = append(gk, k)
		}
		sort.Strings(wk)
		sort.Strings(gk)
		if strings.Join(wk, ",") != strings.Join(gk, ",") {
			return fmt.Sprintf("%s: keys %v, want %v", at, gk, wk)
		}
		for _, k := range wk {
			if ignoredKeys[k] || at == ".build" {
				continue
			}
			if k == "dialplan" {
				// Only an ARI-controlled channel's dialplan location is modelled.
				wd, gd := w[k].(map[string]any), g[k].(map[string]any)
				if wd["context"] != gd["context"] || wd["exten"] != gd["exten"] {
					return fmt.Sprintf("%s.dialplan: %v, want %v", at, gd, wd)
				}
				continue
			}
			if d := r.diffBody(w[k], g[k], at+"."+k); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: %d elements, want %d", at, len(g), len(w))
		}
		for i := range w {
			if d := r.diffBody(w[i], g[i], fmt.Sprintf("%s[%d]", at, i)); d != "" {
				return d
			}
		}
		return ""
	case string:
		gs, _ := got.(string)
		if r.normValue(w, false) != r.normValue(gs, true) {
			return fmt.Sprintf("%s: %q, want %q", at, gs, w)
		}
		return ""
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return fmt.Sprintf("%s: %v, want %v", at, got, want)
		}
		return ""
	}
}

// signature is what must match, ids and times aside, for one event.
func (r *replayer) signature(ev map[string]any, fake bool) string {
	n := func(v any) string { return r.normValue(str(v), fake) }
	s := str(ev["type"])
	add := func(k string, v any) { s += fmt.Sprintf(" %s=%s", k, n(v)) }
	if c, ok := ev["channel"].(map[string]any); ok {
		add("state", c["state"])
		add("name", c["name"])
	}
	switch ev["type"] {
	case "StasisStart":
		var args []string
		for _, a := range ev["args"].([]any) {
			args = append(args, n(a))
		}
		add("args", strings.Join(args, ","))
		add("app_data", field(ev, "channel", "dialplan", "app_data"))
	case "ChannelVarset":
		add("variable", ev["variable"])
		add("value", ev["value"])
	case "ChannelHangupRequest":
		add("cause", ev["cause"])
		add("soft", ev["soft"])
	case "ChannelDestroyed":
		add("cause", ev["cause"])
		add("cause_txt", ev["cause_txt"])
	case "ChannelDtmfReceived":
		add("digit", ev["digit"])
		add("duration_ms", ev["duration_ms"])
	case "ChannelDialplan":
		add("app", ev["dialplan_app"])
		add("data", ev["dialplan_app_data"])
	case "ChannelConnectedLine":
		add("connected", field(ev, "channel", "connected", "number"))
	case "Dial":
		add("dialstatus", ev["dialstatus"])
		add("dialstring", ev["dialstring"])
		if ev["dialstatus"] != "" {
			add("peer_state", field(ev, "peer", "state"))
		}
	case "ChannelEnteredBridge", "ChannelLeftBridge", "BridgeDestroyed":
		add("bridge_channels", len(field(ev, "bridge", "channels").([]any)))
		add("bridge_name", field(ev, "bridge", "name"))
	}
	if p, ok := ev["playback"].(map[string]any); ok {
		add("media", p["media_uri"])
		add("next", p["next_media_uri"])
		add("state", p["state"])
	}
	if rec, ok := ev["recording"].(map[string]any); ok {
		for _, k := range []string{"state", "format", "duration", "talking_duration", "silence_duration", "cause"} {
			add(k, rec[k])
		}
	}
	return s
}

func (r *replayer) compareEvents() {
	t := r.t
	// Let trailing events arrive.
	time.Sleep(100 * time.Millisecond)
	want := map[string][]string{}
	var order []string
	for _, l := range r.lines {
		if l.Kind != "ws_event" || l.App != "callflow" || !r.transcriptComparable(l.Event) {
			continue
		}
		p := primary(l.Event)
		if _, ok := want[p]; !ok {
			order = append(order, p)
		}
		want[p] = append(want[p], r.signature(l.Event, false))
	}
	got := map[string][]string{}
	for _, ev := range r.st.all() {
		p, ok := r.transPrimary(ev)
		if !ok {
			t.Errorf("unexpected event about an unknown object: %s", evSummary(ev))
			continue
		}
		got[p] = append(got[p], r.signature(ev, true))
	}
	for p := range want {
		want[p] = canonicalRaces(want[p])
	}
	for p := range got {
		got[p] = canonicalRaces(got[p])
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			order = append(order, p)
		}
	}
	total := 0
	for _, w := range want {
		total += len(w)
	}
	t.Logf("compared %d events about %d objects", total, len(want))
	for _, p := range order {
		w, g := want[p], got[p]
		if strings.Join(w, "\n") != strings.Join(g, "\n") {
			t.Errorf("events about %s differ:\n got:\n  %s\n want:\n  %s", p, strings.Join(g, "\n  "), strings.Join(w, "\n  "))
		}
	}
}

// wsAttempt replays a deliberately bad websocket handshake.
func (r *replayer) wsAttempt(l tline) {
	t := r.t
	u, err := url.Parse(l.URL)
	if err != nil {
		t.Fatalf("seq %d: %v", l.Seq, err)
	}
	target := r.s.WebsocketURL() + "?" + u.RawQuery
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	conn, res, err := websocket.Dial(ctx, target, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err == nil {
		_ = conn.CloseNow()
		t.Errorf("seq %d: handshake succeeded, want %d", l.Seq, l.HTTPStat)
		return
	}
	if res == nil || res.StatusCode != l.HTTPStat {
		t.Errorf("seq %d: handshake status %v, want %d (%v)", l.Seq, res, l.HTTPStat, err)
		return
	}
	body, _ := io.ReadAll(res.Body)
	if string(body) != l.Body {
		t.Errorf("seq %d: handshake body %q, want %q", l.Seq, body, l.Body)
	}
}

// canonicalRaces orders events whose relative order real Asterisk does not
// keep: an originated leg's first Dial and its Ringing state change come
// from two threads.
func canonicalRaces(sigs []string) []string {
	out := append([]string(nil), sigs...)
	for i := 0; i+1 < len(out); i++ {
		if strings.HasPrefix(out[i], "ChannelStateChange state=Ringing") && strings.HasPrefix(out[i+1], "Dial dialstatus= ") {
			out[i], out[i+1] = out[i+1], out[i]
		}
	}
	return out
}
