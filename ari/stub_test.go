package ari

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// stub is a small scripted Asterisk for unit tests: real HTTP and
// websocket, event order taken from the transcripts (events often before
// the REST response that caused them).
type stub struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	wmu      sync.Mutex // orders event writes
	conns    []*websocket.Conn
	reqs     []stubReq
	chans    map[string]*stubChan
	bridges  map[string]bool
	pbs      map[string]*stubPB
	recs     map[string]*stubRec
	agents   map[string]stubAgent
	seq      int
	closed   bool
	timers   map[*time.Timer]struct{}
	tw       sync.WaitGroup
	wsw      sync.WaitGroup
	mediaDur map[string]time.Duration
	// stasisFirst sends a created leg's StasisStart before the create
	// response (as real Asterisk often does); otherwise a bit after.
	stasisFirst bool
	recSeconds  int
	violations  []string
	connected   chan struct{}
}

type stubReq struct {
	Method, Path string
	Query        url.Values
	Body         string
}

type stubChan struct {
	id, name, state string
	args            []string
	exten           string
	inStasis        bool
	agent           *stubAgent
	originator      string
	playbacks       map[string]bool
	answered        bool
}

type stubPB struct {
	id, ch string
	t      *time.Timer
}

type stubRec struct {
	name, ch, term string
	maxSilence     int
	t              *time.Timer
}

type stubAgent struct {
	mode        string // answer, noanswer, busy, congestion
	ringFor     time.Duration
	hangupAfter time.Duration
	keys        string
	keysAfter   time.Duration
}

func newStub(t testing.TB) *stub {
	s := &stub{
		t: t, chans: map[string]*stubChan{}, bridges: map[string]bool{}, pbs: map[string]*stubPB{},
		recs: map[string]*stubRec{}, agents: map[string]stubAgent{}, timers: map[*time.Timer]struct{}{},
		mediaDur: map[string]time.Duration{}, recSeconds: 2, connected: make(chan struct{}, 16),
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *stub) url() string { return s.srv.URL + "/ari" }

func (s *stub) close() {
	s.mu.Lock()
	s.closed = true
	for t := range s.timers {
		if t.Stop() {
			s.tw.Done()
		}
	}
	s.timers = map[*time.Timer]struct{}{}
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		c.CloseNow()
	}
	s.tw.Wait()
	s.wsw.Wait()
	s.srv.Close()
}

// after runs fn later unless the stub is closed first.
func (s *stub) after(d time.Duration, fn func()) *time.Timer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.tw.Add(1)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		defer s.tw.Done()
		s.mu.Lock()
		delete(s.timers, t)
		closed := s.closed
		s.mu.Unlock()
		if !closed {
			fn()
		}
	})
	s.timers[t] = struct{}{}
	return t
}

func (s *stub) stopTimer(t *time.Timer) {
	if t == nil {
		return
	}
	s.mu.Lock()
	if _, ok := s.timers[t]; ok && t.Stop() {
		delete(s.timers, t)
		s.tw.Done()
	}
	s.mu.Unlock()
}

func (s *stub) dropWebsockets() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		c.CloseNow()
	}
}

// restart forgets every channel, as an Asterisk restart does, without events.
func (s *stub) restart() {
	s.mu.Lock()
	for _, pb := range s.pbs {
		if pb.t != nil {
			if _, ok := s.timers[pb.t]; ok && pb.t.Stop() {
				delete(s.timers, pb.t)
				s.tw.Done()
			}
		}
	}
	s.chans = map[string]*stubChan{}
	s.bridges = map[string]bool{}
	s.pbs = map[string]*stubPB{}
	s.recs = map[string]*stubRec{}
	s.mu.Unlock()
	s.dropWebsockets()
}

func (s *stub) requests() []stubReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]stubReq(nil), s.reqs...)
}

func (s *stub) count(method, prefix string) int {
	n := 0
	for _, r := range s.requests() {
		if r.Method == method && strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

func (s *stub) waitReq(t testing.TB, method, contains string, d time.Duration) stubReq {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for _, r := range s.requests() {
			if r.Method == method && strings.Contains(r.Path, contains) {
				return r
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no %s %s within %v; got %v", method, contains, d, s.requests())
	return stubReq{}
}

func (s *stub) waitFor(t testing.TB, desc string, d time.Duration, pred func(stubReq) bool) stubReq {
	t.Helper()
	end := time.Now().Add(d)
	for {
		for _, r := range s.requests() {
			if pred(r) {
				return r
			}
		}
		if time.Now().After(end) {
			t.Fatalf("no request %s within %v", desc, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitPlay waits for a play request whose media includes media.
func (s *stub) waitPlay(t testing.TB, media string) stubReq {
	t.Helper()
	return s.waitFor(t, "play "+media, 3*time.Second, func(r stubReq) bool {
		return r.Method == "POST" && strings.Contains(r.Path, "/play") && strings.Contains(r.Query.Get("media"), media)
	})
}

func (s *stub) has(pred func(stubReq) bool) bool {
	for _, r := range s.requests() {
		if pred(r) {
			return true
		}
	}
	return false
}

func (s *stub) waitConnected(t testing.TB) {
	t.Helper()
	select {
	case <-s.connected:
	case <-time.After(5 * time.Second):
		t.Fatal("app never connected")
	}
}

// ---- events ----

func (s *stub) send(ev map[string]any) {
	ev["application"] = "callflow"
	ev["timestamp"] = time.Now().UTC().Format("2006-01-02T15:04:05.000+0000")
	ev["asterisk_id"] = "02:fc:00:00:00:01"
	b, _ := json.Marshal(ev)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	conns := append([]*websocket.Conn(nil), s.conns...)
	s.mu.Unlock()
	for _, c := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = c.Write(ctx, websocket.MessageText, b)
		cancel()
	}
}

func (s *stub) chanJSON(c *stubChan) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chanJSONLocked(c)
}

func (s *stub) chanJSONLocked(c *stubChan) map[string]any {
	appData := ""
	appName := ""
	if c.inStasis {
		appName = "Stasis"
		appData = strings.Join(append([]string{"callflow"}, c.args...), ",")
	}
	return map[string]any{
		"id": c.id, "name": c.name, "state": c.state, "protocol_id": "",
		"caller":    map[string]string{"name": "Alice Caller", "number": "5551239999"},
		"connected": map[string]string{"name": "", "number": ""}, "accountcode": "",
		"dialplan":     map[string]any{"context": "from-pstn", "exten": c.exten, "priority": 2, "app_name": appName, "app_data": appData},
		"creationtime": "2026-11-21T05:05:17.730+0000", "language": "en",
	}
}

func (s *stub) chanEv(typ string, c *stubChan, extra map[string]any) {
	ev := map[string]any{"type": typ, "channel": s.chanJSON(c)}
	for k, v := range extra {
		ev[k] = v
	}
	s.send(ev)
}

// placeCall makes an inbound channel enter the application.
func (s *stub) placeCall(args ...string) string {
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("1795237517.%d", 100+s.seq)
	c := &stubChan{id: id, name: "PJSIP/alice-" + strconv.Itoa(s.seq), state: "Ring", args: args, exten: "5551230001", inStasis: true, playbacks: map[string]bool{}}
	s.chans[id] = c
	s.mu.Unlock()
	s.chanEv("StasisStart", c, map[string]any{"args": args})
	return id
}

func (s *stub) get(id string) *stubChan {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chans[id]
}

func (s *stub) press(id, digits string) {
	c := s.get(id)
	if c == nil {
		return
	}
	for _, d := range digits {
		s.chanEv("ChannelDtmfReceived", c, map[string]any{"digit": string(d), "duration_ms": 100})
		s.mu.Lock()
		var done *stubRec
		for _, r := range s.recs {
			if r.ch == id && strings.ContainsRune(r.term, d) {
				done = r
			}
		}
		s.mu.Unlock()
		if done != nil {
			s.finishRec(done, "done")
		}
	}
}

func (s *stub) finishRec(r *stubRec, state string) {
	s.mu.Lock()
	if _, ok := s.recs[r.name]; !ok {
		s.mu.Unlock()
		return
	}
	delete(s.recs, r.name)
	t := r.t
	s.mu.Unlock()
	s.stopTimer(t)
	s.send(map[string]any{"type": "RecordingFinished", "recording": map[string]any{
		"name": r.name, "format": "wav", "state": state, "target_uri": "channel:" + r.ch, "duration": s.recSeconds}})
}

// hangup ends a channel the way Asterisk reports it.
func (s *stub) hangup(id string, cause int, destroyed bool) {
	s.mu.Lock()
	c := s.chans[id]
	if c == nil {
		s.mu.Unlock()
		return
	}
	delete(s.chans, id)
	var pbs []*stubPB
	for pid := range c.playbacks {
		if pb := s.pbs[pid]; pb != nil {
			pbs = append(pbs, pb)
			delete(s.pbs, pid)
		}
	}
	var recs []*stubRec
	for _, r := range s.recs {
		if r.ch == id {
			recs = append(recs, r)
		}
	}
	s.mu.Unlock()
	s.chanEv("ChannelHangupRequest", c, map[string]any{"cause": cause})
	for _, pb := range pbs {
		s.stopTimer(pb.t)
		s.send(map[string]any{"type": "PlaybackFinished", "playback": map[string]any{"id": pb.id, "media_uri": "sound:x", "target_uri": "channel:" + id, "language": "en", "state": "failed"}})
	}
	if c.inStasis {
		s.chanEv("StasisEnd", c, nil)
	}
	for _, r := range recs {
		s.finishRec(r, "done")
	}
	if destroyed {
		s.chanEv("ChannelDestroyed", c, map[string]any{"cause": cause, "cause_txt": "x"})
	}
}

func (s *stub) replaceApp() {
	s.send(map[string]any{"type": "ApplicationReplaced"})
}

// ---- HTTP ----

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func msg(w http.ResponseWriter, code int, m string) {
	writeJSON(w, code, map[string]string{"message": m})
}

func (s *stub) serve(w http.ResponseWriter, r *http.Request) {
	if u, p, ok := r.BasicAuth(); !ok || u != "callflow" || p != "secret" {
		msg(w, 401, "Authentication required")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/ari")
	if path == "/events" {
		s.serveWS(w, r)
		return
	}
	var body []byte
	if r.Body != nil {
		body = make([]byte, 0, 256)
		buf := make([]byte, 512)
		for {
			n, err := r.Body.Read(buf)
			body = append(body, buf[:n]...)
			if err != nil {
				break
			}
		}
	}
	q := r.URL.Query()
	s.mu.Lock()
	s.reqs = append(s.reqs, stubReq{Method: r.Method, Path: path, Query: q, Body: string(body)})
	s.mu.Unlock()
	seg := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case r.Method == "GET" && path == "/channels":
		s.mu.Lock()
		var out []map[string]any
		for _, c := range s.chans {
			out = append(out, s.chanJSONLocked(c))
		}
		s.mu.Unlock()
		if out == nil {
			out = []map[string]any{}
		}
		writeJSON(w, 200, out)
	case r.Method == "POST" && path == "/channels/create":
		s.create(w, q)
	case seg[0] == "channels" && len(seg) >= 2:
		s.channelOp(w, r.Method, seg, q)
	case r.Method == "POST" && path == "/bridges":
		id := q.Get("bridgeId")
		s.mu.Lock()
		s.bridges[id] = true
		s.mu.Unlock()
		writeJSON(w, 200, map[string]any{"id": id, "technology": "simple_bridge", "bridge_type": "mixing", "channels": []string{}})
	case seg[0] == "bridges" && len(seg) >= 2:
		s.mu.Lock()
		ok := s.bridges[seg[1]]
		s.mu.Unlock()
		if !ok {
			msg(w, 404, "Bridge not found")
			return
		}
		switch {
		case r.Method == "DELETE" && len(seg) == 2:
			s.mu.Lock()
			delete(s.bridges, seg[1])
			s.mu.Unlock()
			w.WriteHeader(204)
			s.send(map[string]any{"type": "BridgeDestroyed", "bridge": map[string]any{"id": seg[1]}})
		case len(seg) == 3 && seg[2] == "addChannel":
			for _, id := range strings.Split(q.Get("channel"), ",") {
				c := s.get(id)
				if c == nil {
					msg(w, 400, "Channel not found")
					return
				}
				if !c.inStasis {
					msg(w, 422, "Channel not in Stasis application")
					return
				}
			}
			w.WriteHeader(204)
		case len(seg) == 3 && seg[2] == "record":
			writeJSON(w, 201, map[string]any{"name": q.Get("name"), "format": "wav", "state": "queued"})
		default:
			w.WriteHeader(204)
		}
	case r.Method == "GET" && seg[0] == "playbacks" && len(seg) == 2:
		s.mu.Lock()
		pb := s.pbs[seg[1]]
		s.mu.Unlock()
		if pb == nil {
			msg(w, 404, "Playback not found")
			return
		}
		writeJSON(w, 200, map[string]any{"id": pb.id, "target_uri": "channel:" + pb.ch, "state": "playing"})
	case r.Method == "DELETE" && seg[0] == "playbacks" && len(seg) == 2:
		s.mu.Lock()
		pb := s.pbs[seg[1]]
		delete(s.pbs, seg[1])
		if pb != nil {
			if c := s.chans[pb.ch]; c != nil {
				delete(c.playbacks, pb.id)
			}
		}
		s.mu.Unlock()
		if pb == nil {
			msg(w, 404, "Playback not found")
			return
		}
		s.stopTimer(pb.t)
		s.send(map[string]any{"type": "PlaybackFinished", "playback": map[string]any{"id": pb.id, "target_uri": "channel:" + pb.ch, "state": "done"}})
		w.WriteHeader(204)
	case r.Method == "POST" && seg[0] == "recordings" && len(seg) == 4 && seg[3] == "stop":
		s.mu.Lock()
		rec := s.recs[seg[2]]
		s.mu.Unlock()
		if rec == nil {
			msg(w, 404, "Recording not found")
			return
		}
		w.WriteHeader(204)
		s.finishRec(rec, "done")
	case r.Method == "PUT" && path == "/endpoints/sendMessage":
		w.WriteHeader(202)
	case r.Method == "PUT" && strings.HasSuffix(path, "/eventFilter"):
		writeJSON(w, 200, map[string]any{"name": "callflow"})
	default:
		msg(w, 404, "Resource not found")
	}
}

func (s *stub) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.CloseNow()
		return
	}
	s.conns = append(s.conns, c)
	s.wsw.Add(1)
	s.mu.Unlock()
	defer s.wsw.Done()
	select {
	case s.connected <- struct{}{}:
	default:
	}
	for {
		if _, _, err := c.Read(context.Background()); err != nil {
			c.CloseNow()
			return
		}
	}
}

func (s *stub) create(w http.ResponseWriter, q url.Values) {
	ep := q.Get("endpoint")
	s.mu.Lock()
	ag, ok := s.agents[ep]
	id := q.Get("channelId")
	if id == "" {
		s.seq++
		id = fmt.Sprintf("1795237600.%d", s.seq)
	}
	if !ok {
		s.mu.Unlock()
		writeJSON(w, 500, map[string]string{"error": "Allocation failed"})
		return
	}
	if _, dup := s.chans[id]; dup {
		s.mu.Unlock()
		msg(w, 409, "Channel with given unique ID already exists")
		return
	}
	if q.Get("originator") == "" {
		s.violations = append(s.violations, "leg created without originator")
	}
	c := &stubChan{id: id, name: ep + "-0001;1", state: "Down", args: strings.Split(q.Get("appArgs"), ","), agent: &ag, originator: q.Get("originator"), playbacks: map[string]bool{}}
	s.chans[id] = c
	first := s.stasisFirst
	s.mu.Unlock()
	enter := func() {
		s.mu.Lock()
		c.inStasis = true
		s.mu.Unlock()
		s.chanEv("StasisStart", c, map[string]any{"args": c.args})
	}
	if first {
		enter()
	} else {
		s.after(20*time.Millisecond, enter)
	}
	writeJSON(w, 200, s.chanJSON(c))
}

func (s *stub) channelOp(w http.ResponseWriter, method string, seg []string, q url.Values) {
	id := seg[1]
	c := s.get(id)
	if c == nil {
		msg(w, 404, "Channel not found")
		return
	}
	op := ""
	if len(seg) > 2 {
		op = seg[2]
	}
	switch {
	case method == "DELETE" && op == "":
		w.WriteHeader(204)
		s.hangup(id, 16, c.agent != nil)
	case method == "POST" && op == "answer":
		s.mu.Lock()
		c.state = "Up"
		c.answered = true
		s.mu.Unlock()
		s.chanEv("ChannelStateChange", c, nil)
		w.WriteHeader(204)
	case method == "POST" && op == "continue":
		w.WriteHeader(204)
		s.mu.Lock()
		c.inStasis = false
		delete(s.chans, id)
		s.mu.Unlock()
		s.chanEv("StasisEnd", c, nil)
	case op == "ring" || op == "moh":
		w.WriteHeader(204)
	case method == "POST" && op == "play":
		pb := q.Get("playbackId")
		if len(seg) > 3 {
			pb = seg[3]
		}
		media := q.Get("media")
		if strings.Contains(media, "nostart") {
			writeJSON(w, 201, map[string]any{"id": pb, "media_uri": media, "state": "queued"})
			return
		}
		s.mu.Lock()
		if pb == "" {
			s.seq++
			pb = "pb-" + strconv.Itoa(s.seq)
		}
		p := &stubPB{id: pb, ch: id}
		s.pbs[pb] = p
		c.playbacks[pb] = true
		s.mu.Unlock()
		s.send(map[string]any{"type": "PlaybackStarted", "playback": map[string]any{"id": pb, "media_uri": media, "target_uri": "channel:" + id, "state": "playing"}})
		writeJSON(w, 201, map[string]any{"id": pb, "media_uri": media, "target_uri": "channel:" + id, "state": "queued"})
		var dur time.Duration
		bad, missing := false, false
		for _, m := range strings.Split(media, ",") {
			if !strings.Contains(m, ":") || strings.HasPrefix(m, "badscheme:") {
				bad = true
			}
			if strings.Contains(m, "missing") {
				missing = true
			}
			d, ok := s.mediaDur[m]
			if !ok {
				d = 30 * time.Millisecond
			}
			dur += d
		}
		if bad {
			return
		}
		state := "done"
		if missing {
			state, dur = "failed", time.Millisecond
		}
		t := s.after(dur, func() {
			s.mu.Lock()
			_, live := s.pbs[pb]
			delete(s.pbs, pb)
			delete(c.playbacks, pb)
			s.mu.Unlock()
			if live {
				s.send(map[string]any{"type": "PlaybackFinished", "playback": map[string]any{"id": pb, "target_uri": "channel:" + id, "state": state}})
			}
		})
		s.mu.Lock()
		p.t = t
		s.mu.Unlock()
	case method == "POST" && op == "record":
		name := q.Get("name")
		s.mu.Lock()
		if _, dup := s.recs[name]; dup {
			s.mu.Unlock()
			msg(w, 409, "Recording '"+name+"' already exists and can not be overwritten")
			return
		}
		r := &stubRec{name: name, ch: id, term: q.Get("terminateOn")}
		r.maxSilence, _ = strconv.Atoi(q.Get("maxSilenceSeconds"))
		s.recs[name] = r
		s.mu.Unlock()
		s.send(map[string]any{"type": "RecordingStarted", "recording": map[string]any{"name": name, "format": "wav", "state": "recording", "target_uri": "channel:" + id}})
		writeJSON(w, 201, map[string]any{"name": name, "format": "wav", "state": "queued", "target_uri": "channel:" + id})
		if r.maxSilence > 0 {
			// the caller talks a little, then stays silent
			t := s.after(150*time.Millisecond, func() { s.finishRec(r, "done") })
			s.mu.Lock()
			r.t = t
			s.mu.Unlock()
		}
	case method == "GET" && op == "variable":
		if q.Get("variable") == "CF_SET" {
			writeJSON(w, 200, map[string]string{"value": "yes"})
			return
		}
		msg(w, 404, "Provided variable was not found")
	case method == "POST" && op == "variable":
		w.WriteHeader(204)
	case method == "POST" && op == "dial":
		s.dial(w, c, q)
	default:
		msg(w, 404, "Resource not found")
	}
}

func (s *stub) dial(w http.ResponseWriter, c *stubChan, q url.Values) {
	s.mu.Lock()
	in := c.inStasis
	if !in {
		s.violations = append(s.violations, "dial before StasisStart: "+c.id)
	}
	s.mu.Unlock()
	if !in {
		msg(w, 409, "Channel not in Stasis application")
		return
	}
	timeout, _ := strconv.Atoi(q.Get("timeout"))
	w.WriteHeader(204)
	ag := *c.agent
	dialEv := func(status string) {
		s.send(map[string]any{"type": "Dial", "dialstatus": status, "dialstring": "x", "peer": s.chanJSON(c)})
	}
	dialEv("")
	switch ag.mode {
	case "busy":
		dialEv("BUSY")
		s.after(50*time.Millisecond, func() { s.hangup(c.id, 17, true) })
	case "congestion":
		dialEv("CONGESTION")
		s.after(50*time.Millisecond, func() { s.hangup(c.id, 34, true) })
	case "noanswer":
		s.setState(c, "Ringing")
		dialEv("RINGING")
		s.after(time.Duration(timeout)*time.Second, func() {
			s.hangupNoAnswer(c.id)
		})
	case "answer":
		s.setState(c, "Ringing")
		dialEv("RINGING")
		s.after(ag.ringFor, func() {
			s.mu.Lock()
			_, live := s.chans[c.id]
			c.state = "Up"
			s.mu.Unlock()
			if !live {
				return
			}
			s.chanEv("ChannelStateChange", c, nil)
			dialEv("ANSWER")
			if ag.keys != "" {
				s.after(ag.keysAfter, func() { s.press(c.id, ag.keys) })
			}
			if ag.hangupAfter > 0 {
				s.after(ag.hangupAfter, func() { s.hangup(c.id, 16, true) })
			}
		})
	}
}

func (s *stub) setState(c *stubChan, st string) {
	s.mu.Lock()
	c.state = st
	s.mu.Unlock()
}

// hangupNoAnswer is a ring timeout as Asterisk 20 reports it: no NOANSWER.
func (s *stub) hangupNoAnswer(id string) {
	s.mu.Lock()
	c := s.chans[id]
	delete(s.chans, id)
	s.mu.Unlock()
	if c == nil {
		return
	}
	s.chanEv("ChannelHangupRequest", c, map[string]any{"cause": 32, "soft": true})
	s.chanEv("StasisEnd", c, nil)
	s.chanEv("ChannelDestroyed", c, map[string]any{"cause": 19, "cause_txt": "User alerting, no answer"})
}
