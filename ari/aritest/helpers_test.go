package aritest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testTimeout bounds every wait so that a broken test fails instead of hanging.
const testTimeout = 20 * time.Second

func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Logf == nil && testing.Verbose() {
		opts.Logf = t.Logf
	}
	s := NewServer(opts)
	t.Cleanup(s.Close)
	return s
}

// client is a bare ARI REST client, deliberately independent of the package.
type client struct {
	t    *testing.T
	base string
	user string
	pass string
	hc   *http.Client
}

func newClient(t *testing.T, s *Server) *client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, base: s.URL(), user: s.opts.Username, pass: s.opts.Password, hc: &http.Client{Transport: tr, Timeout: testTimeout}}
}

type resp struct {
	status int
	body   []byte
	header http.Header
}

func (r resp) json() any {
	var v any
	if len(r.body) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		return string(r.body)
	}
	return v
}

func (r resp) obj() map[string]any {
	m, _ := r.json().(map[string]any)
	return m
}

func (r resp) message() string {
	m := r.obj()
	if m == nil {
		return ""
	}
	if s, ok := m["message"].(string); ok {
		return s
	}
	s, _ := m["error"].(string)
	return s
}

// do sends a request; params go in the query string; body, if not nil, as JSON.
func (c *client) do(method, path string, params url.Values, body any) resp {
	c.t.Helper()
	u := c.base + path
	q := url.Values{}
	for k, v := range params {
		q[k] = v
	}
	if c.user != "" {
		q.Set("api_key", c.user+":"+c.pass)
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		c.t.Fatalf("request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, body: data, header: res.Header}
}

func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// stream collects the events of one websocket.
type stream struct {
	t      testing.TB
	conn   *websocket.Conn
	mu     sync.Mutex
	events []map[string]any
	raw    []string
	pos    int
	notify chan struct{}
	closed chan struct{}
	err    error
}

func dialEvents(t *testing.T, s *Server, apps string) *stream {
	t.Helper()
	st := dialEventsTB(t, s, apps)
	t.Cleanup(st.close)
	return st
}

// dialEventsTB opens an event websocket; the caller closes it.
func dialEventsTB(t testing.TB, s *Server, apps string) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	u := s.WebsocketURL() + "?" + vals("app", apps, "api_key", s.opts.Username+":"+s.opts.Password).Encode()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	conn.SetReadLimit(1 << 20)
	st := &stream{t: t, conn: conn, notify: make(chan struct{}), closed: make(chan struct{})}
	go st.read()
	return st
}

func (st *stream) read() {
	defer close(st.closed)
	for {
		_, data, err := st.conn.Read(context.Background())
		if err != nil {
			st.mu.Lock()
			st.err = err
			close(st.notify)
			st.notify = make(chan struct{})
			st.mu.Unlock()
			return
		}
		var ev map[string]any
		_ = json.Unmarshal(data, &ev)
		st.mu.Lock()
		st.events = append(st.events, ev)
		st.raw = append(st.raw, string(data))
		close(st.notify)
		st.notify = make(chan struct{})
		st.mu.Unlock()
	}
}

func (st *stream) close() {
	_ = st.conn.CloseNow()
	<-st.closed
}

func (st *stream) all() []map[string]any {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]map[string]any(nil), st.events...)
}

// next waits for the next event, after those already consumed, that has
// the type and satisfies match (nil: any); events skipped over are consumed.
func (st *stream) next(typ string, match func(map[string]any) bool) map[string]any {
	st.t.Helper()
	deadline := time.After(testTimeout)
	for {
		st.mu.Lock()
		for st.pos < len(st.events) {
			ev := st.events[st.pos]
			st.pos++
			if ev["type"] == typ && (match == nil || match(ev)) {
				st.mu.Unlock()
				return ev
			}
		}
		ch, err := st.notify, st.err
		st.mu.Unlock()
		if err != nil {
			st.t.Fatalf("websocket closed while waiting for %s: %v", typ, err)
		}
		select {
		case <-ch:
		case <-deadline:
			st.t.Fatalf("timed out waiting for %s; events: %s", typ, st.summary())
		}
	}
}

// waitClosed waits until the server closed the websocket.
func (st *stream) waitClosed() error {
	select {
	case <-st.closed:
		return st.err
	case <-time.After(testTimeout):
		st.t.Fatalf("websocket not closed")
		return nil
	}
}

// quiet returns the events received during d after the call.
func (st *stream) eventsDuring(d time.Duration) []map[string]any {
	st.mu.Lock()
	n := len(st.events)
	st.mu.Unlock()
	time.Sleep(d)
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]map[string]any(nil), st.events[n:]...)
}

func (st *stream) summary() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var parts []string
	for _, ev := range st.events {
		parts = append(parts, evSummary(ev))
	}
	return strings.Join(parts, " | ")
}

func evSummary(ev map[string]any) string {
	s := fmt.Sprint(ev["type"])
	if c, ok := ev["channel"].(map[string]any); ok {
		s += " " + fmt.Sprint(c["id"]) + "/" + fmt.Sprint(c["state"])
	}
	for _, k := range []string{"dialstatus", "cause", "variable", "value", "digit"} {
		if v, ok := ev[k]; ok {
			s += fmt.Sprintf(" %s=%v", k, v)
		}
	}
	if p, ok := ev["playback"].(map[string]any); ok {
		s += fmt.Sprintf(" %v %v", p["media_uri"], p["state"])
	}
	if r, ok := ev["recording"].(map[string]any); ok {
		s += fmt.Sprintf(" %v %v", r["name"], r["state"])
	}
	return s
}

func chanID(ev map[string]any) string {
	for _, k := range []string{"channel", "peer"} {
		if c, ok := ev[k].(map[string]any); ok {
			s, _ := c["id"].(string)
			return s
		}
	}
	return ""
}

func field(ev map[string]any, path ...string) any {
	var cur any = ev
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
