package ari

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callflow/callflow/applets/call"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// scripted plays Asterisk for unit tests, in place of the REST client: a
// test scripts each answer in one function, which may send events first,
// as the real Asterisk often does. Events go through the App's own
// dispatch, as if read off the websocket. No HTTP, no websocket: what a
// call does next depends only on the script.
type scripted struct {
	t   *testing.T
	app *App
	// answer scripts the answer to a request; it may run on several
	// goroutines at once. A zero reply is a 204.
	answer func(r restReq) reply

	mu        sync.Mutex
	reqs      []restReq
	chans     map[string]*fakeChan
	bridges   map[string]bool // created and not destroyed
	problems  []string        // requests real Asterisk would refuse
	seq       int
	requested chan struct{}

	evMu sync.Mutex // one event at a time, as from the one reader
	bg   sync.WaitGroup
}

type restReq struct {
	Method, Path string
	Query        url.Values
	Body         string
}

// is matches "METHOD /path/*/glob" (a * stands for one path segment).
func (r restReq) is(pattern string) bool {
	method, p, _ := strings.Cut(pattern, " ")
	ok, _ := path.Match(p, r.Path)
	return ok && method == r.Method
}

func (r restReq) String() string {
	if len(r.Query) == 0 {
		return r.Method + " " + r.Path
	}
	return r.Method + " " + r.Path + "?" + r.Query.Encode()
}

// seg is the n-th segment of the path ("/channels/ID/play" -> 1 is ID).
func (r restReq) seg(n int) string {
	s := strings.Split(strings.Trim(r.Path, "/"), "/")
	if n < len(s) {
		return s[n]
	}
	return ""
}

type reply struct {
	status int
	body   string
}

func answered(status int, body string) reply { return reply{status: status, body: body} }

// refused is an error answer as Asterisk writes it.
func refused(status int, message string) reply {
	return reply{status: status, body: fmt.Sprintf(`{"message":%q}`, message)}
}

// fakeChan is a channel as the script describes it.
type fakeChan struct {
	id, name, state string
	exten           string
	args            []string // of Stasis(), after the application name
	app             string   // the Stasis application; "callflow" when empty
	movedTo         string   // the application it was moved to, if any (its dialplan still says app)
	created         time.Time
	inStasis        bool
	gone            bool // hung up
}

// newScripted returns an App on a scripted Asterisk. At the end of the test
// the App is shut down, and no goroutine of the test may be left.
func newScripted(t *testing.T, h call.Handler) *scripted {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
	if h == nil {
		h = handlerFunc(func(context.Context, *Call, call.Inbound) {})
	}
	app := New(Options{
		URL: "http://asterisk.invalid/ari", App: "callflow", DrainTimeout: 10 * time.Millisecond,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
	}, h)
	s := &scripted{t: t, app: app, chans: map[string]*fakeChan{}, bridges: map[string]bool{}, requested: make(chan struct{}, 1)}
	app.rest = s
	t.Cleanup(func() {
		s.bg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		app.cancelCalls(errTransport)
		app.stopAdoptions()
		app.helpers.Wait()
		if p := s.violations(); len(p) > 0 {
			t.Errorf("requests real Asterisk refuses: %v", p)
		}
	})
	return s
}

func (s *scripted) do(ctx context.Context, method, p string, q *params, body, out any) error {
	r := restReq{Method: method, Path: p, Query: url.Values{}}
	if q != nil {
		var err error
		if r.Query, err = url.ParseQuery(string(q.b)); err != nil {
			s.t.Errorf("%s %s: query %q: %v", method, p, q.b, err)
		}
	}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r.Body = string(b)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ari: %s %s: %w", method, p, err)
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
	select {
	case s.requested <- struct{}{}:
	default:
	}
	rep := reply{}
	if s.answer != nil {
		rep = s.answer(r)
	}
	if rep.status == 0 {
		rep.status = 204
	}
	return decodeAnswer(method, p, rep.status, []byte(rep.body), out)
}

// async does what Asterisk does on its own, while the call waits.
func (s *scripted) async(fn func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		fn()
	}()
}

func (s *scripted) requests() []restReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]restReq(nil), s.reqs...)
}

// sent lists the requests that match pattern (see restReq.is).
func (s *scripted) sent(pattern string) []restReq {
	var out []restReq
	for _, r := range s.requests() {
		if r.is(pattern) {
			out = append(out, r)
		}
	}
	return out
}

// waitFor waits until a request matching pattern was sent: for requests
// that goroutines of the App send in the background.
func (s *scripted) waitFor(pattern string) restReq {
	s.t.Helper()
	guard := time.NewTimer(10 * time.Second)
	defer guard.Stop()
	for {
		if rs := s.sent(pattern); len(rs) > 0 {
			return rs[0]
		}
		select {
		case <-s.requested:
		case <-guard.C:
			s.t.Fatalf("no %s; sent %v", pattern, s.requests())
		}
	}
}

func (s *scripted) violation(format string, args ...any) {
	s.mu.Lock()
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

func (s *scripted) violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...)
}

// ---- events, shaped as Asterisk 20 sends them (testdata/transcripts) ----

// send hands one event to the App as its reader does.
func (s *scripted) send(typ string, fields map[string]any) {
	ev := map[string]any{"type": typ, "timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.000-0700"),
		"asterisk_id": "02:fc:00:00:00:01", "application": "callflow"}
	for k, v := range fields {
		ev[k] = v
	}
	b, err := json.Marshal(ev)
	if err != nil {
		s.t.Fatal(err)
	}
	s.evMu.Lock()
	defer s.evMu.Unlock()
	s.app.dispatch(b)
}

func (s *scripted) channel(id string) *fakeChan {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.chans[id]
	if ch == nil {
		ch = &fakeChan{id: id, name: "PJSIP/" + id, state: "Up", created: time.Now()}
		s.chans[id] = ch
	}
	return ch
}

// json is the channel as Asterisk 20 writes it.
func (ch *fakeChan) json() map[string]any {
	appName, appData := "", ""
	if ch.inStasis {
		app := ch.app
		if app == "" {
			app = "callflow"
		}
		appName, appData = "Stasis", strings.Join(append([]string{app}, ch.args...), ",")
	}
	return map[string]any{
		"id": ch.id, "name": ch.name, "state": ch.state, "protocol_id": "",
		"caller":    map[string]string{"name": "Alice Caller", "number": "5551239999"},
		"connected": map[string]string{"name": "", "number": ""}, "accountcode": "",
		"dialplan":     map[string]any{"context": "from-pstn", "exten": ch.exten, "priority": 2, "app_name": appName, "app_data": appData},
		"creationtime": ch.created.Format("2006-01-02T15:04:05.000-0700"), "language": "en",
	}
}

func (s *scripted) chanJSON(id string) map[string]any {
	ch := s.channel(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	return ch.json()
}

// stasisStart brings ch into the application.
func (s *scripted) stasisStart(ch fakeChan) {
	if ch.created.IsZero() {
		ch.created = time.Now()
	}
	if ch.name == "" {
		ch.name = "PJSIP/" + ch.id
	}
	ch.inStasis = true
	s.mu.Lock()
	s.chans[ch.id] = &ch
	s.mu.Unlock()
	args := ch.args
	if args == nil {
		args = []string{}
	}
	s.send("StasisStart", map[string]any{"args": args, "channel": s.chanJSON(ch.id)})
}

// inbound brings an inbound call in; the handler runs it.
func (s *scripted) inbound(state string, args ...string) string {
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("1795237517.%d", 100+s.seq)
	s.mu.Unlock()
	s.stasisStart(fakeChan{id: id, state: state, exten: "5551230001", args: args})
	return id
}

// call is an inbound call that the test runs itself, in place of a
// handler, so that it sees what each method returns.
func (s *scripted) call(state string) *Call {
	s.t.Helper()
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("1795237545.%d", 50+s.seq)
	s.chans[id] = &fakeChan{id: id, name: "PJSIP/alice-" + id, state: state, exten: "5551230001", args: []string{"inbound"}, created: time.Now(), inStasis: true}
	s.mu.Unlock()
	a := s.app
	c := newCall(a, id, state, parseInbound([]string{"inbound"}, "5551230001", "from-pstn", "5551239999", "Alice Caller", "PJSIP/alice-"+id))
	a.mu.Lock()
	a.routes[id] = route{call: c, id: id, live: true}
	a.calls[id] = c
	a.mu.Unlock()
	s.t.Cleanup(func() { a.endCall(c) })
	return c
}

func (s *scripted) setState(id, state string) {
	ch := s.channel(id)
	s.mu.Lock()
	ch.state = state
	s.mu.Unlock()
	s.send("ChannelStateChange", map[string]any{"channel": s.chanJSON(id)})
}

// press sends the keys one event each, as Asterisk does when each is released.
func (s *scripted) press(id, keys string) {
	for _, k := range keys {
		s.send("ChannelDtmfReceived", map[string]any{"digit": string(k), "duration_ms": 100, "channel": s.chanJSON(id)})
	}
}

// hangup ends a channel as Asterisk reports it: ChannelHangupRequest,
// StasisEnd and, for the channels the application made, ChannelDestroyed.
func (s *scripted) hangup(id string, cause int, destroyed bool) {
	s.mu.Lock()
	ch := s.chans[id]
	if ch == nil || ch.gone {
		s.mu.Unlock()
		return
	}
	inStasis := ch.inStasis
	ch.inStasis, ch.gone = false, true
	s.mu.Unlock()
	s.send("ChannelHangupRequest", map[string]any{"cause": cause, "channel": s.chanJSON(id)})
	if inStasis {
		s.send("StasisEnd", map[string]any{"channel": s.chanJSON(id)})
	}
	if destroyed {
		s.send("ChannelDestroyed", map[string]any{"cause": cause, "cause_txt": "Normal Clearing", "channel": s.chanJSON(id)})
	}
}

// ringTimeout is how Asterisk 20 ends a leg that rang out: no Dial
// NOANSWER, a soft hang-up request (cause 32), then cause 19.
func (s *scripted) ringTimeout(id string) {
	s.mu.Lock()
	if ch := s.chans[id]; ch != nil {
		ch.inStasis, ch.gone = false, true
	}
	s.mu.Unlock()
	s.send("ChannelHangupRequest", map[string]any{"cause": 32, "soft": true, "channel": s.chanJSON(id)})
	s.send("StasisEnd", map[string]any{"channel": s.chanJSON(id)})
	s.send("ChannelDestroyed", map[string]any{"cause": 19, "cause_txt": "User alerting, no answer", "channel": s.chanJSON(id)})
}

func (s *scripted) inStasis(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.chans[id]
	return ch != nil && ch.inStasis && !ch.gone
}

func (s *scripted) dialEvent(peer, status string) {
	s.send("Dial", map[string]any{"dialstatus": status, "forward": "", "dialstring": "x", "peer": s.chanJSON(peer)})
}

func (s *scripted) playback(typ, pb, target, state string) {
	s.send(typ, map[string]any{"playback": map[string]any{"id": pb, "media_uri": "sound:x", "target_uri": "channel:" + target, "language": "en", "state": state}})
}

func (s *scripted) recording(typ, name, target, state string, seconds int) {
	rec := map[string]any{"name": name, "format": "wav", "state": state, "target_uri": "channel:" + target}
	if typ == "RecordingFinished" {
		rec["duration"] = seconds
	}
	s.send(typ, map[string]any{"recording": rec})
}

// reconnected is the reconcile after a websocket reconnect, with the
// channels Asterisk still has answered by the script.
func (s *scripted) reconnected() { s.app.reconcile(context.Background(), true, s.app.liveRoutes()) }

// listing answers GET /channels with the channels not hung up, GET
// /applications/{app} with those in Stasis, and GET /bridges with none.
func (s *scripted) listing(r restReq) (reply, bool) {
	switch {
	case r.is("GET /applications/*"):
		s.mu.Lock()
		defer s.mu.Unlock()
		ids := []string{}
		for _, ch := range s.chans {
			in := cmp.Or(ch.movedTo, ch.app, "callflow")
			if !ch.gone && ch.inStasis && in == r.seg(1) {
				ids = append(ids, ch.id)
			}
		}
		b, _ := json.Marshal(map[string]any{"name": r.seg(1), "channel_ids": ids, "bridge_ids": []string{},
			"endpoint_ids": []string{}, "device_names": []string{}, "events_allowed": []any{}, "events_disallowed": []any{}})
		return answered(200, string(b)), true
	case r.is("GET /channels"):
		s.mu.Lock()
		defer s.mu.Unlock()
		list := []map[string]any{}
		for _, ch := range s.chans {
			if !ch.gone {
				list = append(list, ch.json())
			}
		}
		b, err := json.Marshal(list)
		if err != nil {
			s.t.Error(err)
		}
		return answered(200, string(b)), true
	case r.is("GET /bridges"):
		return answered(200, "[]"), true
	}
	return reply{}, false
}

// play answers a play request as Asterisk does: PlaybackStarted before
// the 201.
func (s *scripted) play(r restReq) reply {
	pb := r.seg(3)
	s.playback("PlaybackStarted", pb, r.seg(1), "playing")
	return answered(201, fmt.Sprintf(`{"id":%q,"media_uri":%q,"target_uri":"channel:%s","language":"en","state":"queued"}`, pb, r.Query.Get("media"), r.seg(1)))
}

// playToEnd answers a play request with a prompt that plays to its end.
func (s *scripted) playToEnd(r restReq) reply {
	rep := s.play(r)
	s.playback("PlaybackFinished", r.seg(3), r.seg(1), "done")
	return rep
}

// basics answers what every call does with no surprise: answer, prompts
// that play to their end, hang-ups; anything else is a 204.
func (s *scripted) basics(r restReq) reply {
	switch {
	case r.is("POST /channels/*/answer"):
		s.setState(r.seg(1), "Up")
	case r.is("POST /channels/*/play/*"):
		return s.playToEnd(r)
	case r.is("DELETE /channels/*"):
		if s.channel(r.seg(1)).gone {
			return refused(404, "Channel not found")
		}
		s.hangup(r.seg(1), 16, false)
	}
	return reply{}
}
