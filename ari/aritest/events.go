package aritest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// kv is one field of an event; events keep Asterisk's field order.
type kv struct {
	k string
	v any
}

// event is one ARI event. Its JSON is built per recipient application, in
// the field order a real Asterisk uses: fields before "type" (pre), type,
// timestamp, fields after it (post), asterisk_id, application.
type event struct {
	typ  string
	ts   time.Time
	pre  []kv
	post []kv
	lat  *latTracker
}

// latTracker measures event-to-command latency for one channel.
type latTracker struct {
	sent     atomic.Int64 // unix nanos when the last event about the channel was written
	consumed int64        // under Server.mu: the last event already counted
	cmd      *cmdGroup    // under Server.mu: the call, for Options.OnCommandLatency
	recent   stampRing    // the last events written, for Options.OnCommandLatency
	dtmf     atomic.Int64 // unix nanos of the last key not yet answered by a leg, for Options.OnDialLatency
}

func astTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000-0700")
}

// jsonBytes marshals like Asterisk's jansson: no HTML escaping.
func jsonBytes(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte("null")
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

func (e *event) encode(app, eid string) []byte {
	var b bytes.Buffer
	b.Grow(512)
	b.WriteByte('{')
	first := true
	put := func(k string, v any) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.Write(jsonBytes(k))
		b.WriteByte(':')
		b.Write(jsonBytes(v))
	}
	for _, f := range e.pre {
		put(f.k, f.v)
	}
	put("type", e.typ)
	put("timestamp", astTime(e.ts))
	for _, f := range e.post {
		put(f.k, f.v)
	}
	if e.typ == "ApplicationReplaced" {
		put("application", app)
		put("asterisk_id", eid)
	} else {
		put("asterisk_id", eid)
		put("application", app)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// app is a Stasis application: registered while a websocket serves it.
type app struct {
	name       string
	ws         *wsConn
	allowed    []any
	disallowed []any
}

func filterMatched(list []any, typ string, empty bool) bool {
	if len(list) == 0 {
		return empty
	}
	for _, it := range list {
		if m, ok := it.(map[string]any); ok {
			if t, _ := m["type"].(string); t == typ {
				return true
			}
		}
	}
	return false
}

func (a *app) allows(typ string) bool {
	return !filterMatched(a.disallowed, typ, false) && filterMatched(a.allowed, typ, true)
}

func (a *app) json(s *Server) obj {
	chans := []string{}
	for _, c := range s.sortedChannelsLocked() {
		if c.subs[a.name] > 0 {
			chans = append(chans, c.id())
		}
	}
	brs := []string{}
	for id, b := range s.bridges {
		if b.subs[a.name] > 0 {
			brs = append(brs, id)
		}
	}
	sort.Strings(brs)
	allowed, disallowed := a.allowed, a.disallowed
	if allowed == nil {
		allowed = []any{}
	}
	if disallowed == nil {
		disallowed = []any{}
	}
	return obj{
		{"name", a.name},
		{"channel_ids", chans},
		{"bridge_ids", brs},
		{"endpoint_ids", []string{}},
		{"device_names", []string{}},
		{"events_allowed", allowed},
		{"events_disallowed", disallowed},
	}
}

// wsConn is one event websocket with its own writer goroutine and an
// unbounded queue, so that the call model never blocks on a slow client.
type wsConn struct {
	s    *Server
	apps []string
	mu   sync.Mutex // guards c and q
	c    *websocket.Conn
	q    []queued
	wake chan struct{}
	done chan struct{}
	once sync.Once
}

type queued struct {
	ev  *event
	app string
}

func (w *wsConn) enqueue(ev *event, app string) {
	w.mu.Lock()
	w.q = append(w.q, queued{ev, app})
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// setConn attaches the accepted connection; false if the websocket was
// already closed (dropped during the handshake).
func (w *wsConn) setConn(c *websocket.Conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.done:
		_ = c.CloseNow()
		return false
	default:
	}
	w.c = c
	return true
}

func (w *wsConn) closeNow() {
	w.once.Do(func() {
		close(w.done)
		w.mu.Lock()
		c := w.c
		w.mu.Unlock()
		if c != nil {
			_ = c.CloseNow()
		}
	})
}

func (w *wsConn) writer() {
	defer w.s.bg.Done()
	for {
		select {
		case <-w.wake:
		case <-w.done:
			return
		}
		w.mu.Lock()
		batch, c := w.q, w.c
		w.q = nil
		w.mu.Unlock()
		for _, it := range batch {
			data := it.ev.encode(it.app, w.s.eid)
			// Stamp before writing: a fast client's command can arrive
			// before Write returns, and must be measured against this event.
			if it.ev.lat != nil {
				now := time.Now().UnixNano()
				it.ev.lat.sent.Store(now)
				if w.s.opts.OnCommandLatency != nil {
					it.ev.lat.recent.add(now)
				}
				if w.s.opts.OnDialLatency != nil && it.ev.typ == "ChannelDtmfReceived" {
					it.ev.lat.dtmf.Store(now)
				}
			}
			if err := c.Write(context.Background(), websocket.MessageText, data); err != nil {
				w.closeNow()
				return
			}
		}
	}
}

// serveEvents upgrades GET /ari/events to the event websocket.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, appParam []string) {
	var names []string
	for _, a := range appParam {
		for _, n := range strings.Split(a, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\r\n<html><head>\r\n" +
			"<title>400 Bad Request</title>\r\n</head><body>\r\n<h1>Bad Request</h1>\r\n" +
			"<p>HTTP request is missing param: [app]</p>\r\n<hr />\r\n" +
			"<address>Asterisk/20.20.1</address>\r\n</body></html>\r\n"))
		return
	}
	// The applications are registered before the handshake completes, so a
	// client may place calls as soon as its dial returns.
	wc := &wsConn{s: s, apps: names, wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.registerWSLocked(wc)
	s.mu.Unlock()
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		s.mu.Lock()
		s.detachWSLocked(wc)
		s.mu.Unlock()
		wc.closeNow()
		return
	}
	if !wc.setConn(c) {
		s.mu.Lock()
		s.detachWSLocked(wc)
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	if s.closed {
		s.detachWSLocked(wc)
		s.mu.Unlock()
		wc.closeNow()
		return
	}
	s.bg.Add(1)
	go wc.writer()
	s.mu.Unlock()
	s.logf("websocket connected for %v", names)

	for {
		if _, _, err := c.Read(context.Background()); err != nil {
			break
		}
	}
	s.mu.Lock()
	s.detachWSLocked(wc)
	s.mu.Unlock()
	wc.closeNow()
	s.logf("websocket for %v closed", names)
}

// registerWSLocked makes w the websocket of its applications. A previous
// websocket of the same application gets ApplicationReplaced and then nothing.
func (s *Server) registerWSLocked(w *wsConn) {
	s.ws[w] = struct{}{}
	for _, n := range w.apps {
		a := s.apps[n]
		if a == nil {
			a = &app{name: n}
			s.apps[n] = a
		}
		if a.ws != nil && a.ws != w {
			s.logf("replacing Stasis app %q", n)
			ev := &event{typ: "ApplicationReplaced", ts: time.Now()}
			if a.allows(ev.typ) {
				a.ws.enqueue(ev, n)
			}
		}
		a.ws = w
	}
}

func (s *Server) detachWSLocked(w *wsConn) {
	delete(s.ws, w)
	for _, a := range s.apps {
		if a.ws == w {
			a.ws = nil
		}
	}
}

func (s *Server) detachAllWSLocked() []*wsConn {
	var out []*wsConn
	for w := range s.ws {
		out = append(out, w)
		s.detachWSLocked(w)
	}
	return out
}

// appActiveLocked reports whether a websocket serves the application.
func (s *Server) appActiveLocked(name string) bool {
	a := s.apps[name]
	return a != nil && a.ws != nil
}

func (s *Server) sendToAppLocked(name string, ev *event) {
	a := s.apps[name]
	if a == nil || a.ws == nil || !a.allows(ev.typ) {
		return
	}
	a.ws.enqueue(ev, name)
}

func sortedSubs(m map[string]int) []string {
	var out []string
	for k, n := range m {
		if n > 0 {
			out = append(out, k)
		}
	}
	if len(out) > 1 {
		sort.Strings(out)
	}
	return out
}

// chanEventLocked sends an event about a channel to the applications
// subscribed to it. The channel snapshot is appended as "channel" unless
// noChannel; it is copied now, so later changes do not leak into it.
func (s *Server) chanEventLocked(c *channel, typ string, pre, post []kv) {
	ev := &event{typ: typ, ts: time.Now(), pre: pre, post: post, lat: c.lat}
	for _, a := range sortedSubs(c.subs) {
		s.sendToAppLocked(a, ev)
	}
	c.notifyLocked()
}

// bridgeEventLocked sends an event to the applications subscribed to a bridge.
func (s *Server) bridgeEventLocked(b *bridge, typ string, post []kv, lat *latTracker) {
	ev := &event{typ: typ, ts: time.Now(), post: post, lat: lat}
	for _, a := range sortedSubs(b.subs) {
		s.sendToAppLocked(a, ev)
	}
}
