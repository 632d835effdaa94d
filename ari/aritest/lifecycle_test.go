package aritest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRestart(t *testing.T) {
	s, c, st := setup(t, Options{MediaDurations: map[string]time.Duration{"sound:long": time.Hour}})
	s.SetAgent("PJSIP/tech1", AgentBehavior{Mode: AgentNoAnswer})
	cl := answeredCall(t, s, c, st, CallSpec{})
	c.do("POST", "/channels/"+cl.ID()+"/record", vals("name", "kept", "format", "wav", "maxDurationSeconds", "1"), nil)
	st.next("RecordingFinished", nil)
	c.do("POST", "/channels/"+cl.ID()+"/play", vals("media", "sound:long"), nil)
	c.do("POST", "/bridges", vals("bridgeId", "b1"), nil)
	c.do("POST", "/channels", vals("endpoint", "PJSIP/tech1", "app", "callflow", "originator", cl.ID()), nil)

	s.Restart()
	if err := st.waitClosed(); err == nil {
		t.Fatal("websocket should be dropped")
	}
	for _, ev := range st.all() {
		if ev["type"] == "StasisEnd" {
			t.Fatal("a restart sends no StasisEnd")
		}
	}
	select {
	case <-cl.Done():
	default:
		t.Fatal("the call is gone after a restart")
	}
	if len(s.Channels()) != 0 || len(s.Bridges()) != 0 {
		t.Fatalf("state survived: %v %v", s.Channels(), s.Bridges())
	}
	// A client reconnecting finds a fresh Asterisk, with its stored recordings.
	st2 := dialEvents(t, s, "callflow")
	if r := c.do("GET", "/channels", nil, nil); string(r.body) != "[]" {
		t.Errorf("channels after restart %s", r.body)
	}
	if r := c.do("GET", "/bridges", nil, nil); string(r.body) != "[]" {
		t.Errorf("bridges after restart %s", r.body)
	}
	if r := c.do("GET", "/recordings/stored/kept", nil, nil); r.status != 200 {
		t.Errorf("stored recording lost: %d", r.status)
	}
	if r := c.do("GET", "/channels/"+cl.ID(), nil, nil); r.status != 404 {
		t.Errorf("old channel still there: %d", r.status)
	}
	cl2 := placeCall(t, s, st2, CallSpec{})
	if cl2.ID() == cl.ID() {
		t.Error("channel id reused")
	}
}

func TestDropWebsockets(t *testing.T) {
	s, c, st := setup(t, Options{})
	cl := answeredCall(t, s, c, st, CallSpec{})
	s.DropWebsockets()
	if err := st.waitClosed(); err == nil {
		t.Fatal("websocket not dropped")
	}
	// Events while no websocket is open are lost.
	c.do("POST", "/channels/"+cl.ID()+"/variable", vals("variable", "LOST", "value", "1"), nil)
	st2 := dialEvents(t, s, "callflow")
	if r := c.do("GET", "/channels", nil, nil); !strings.Contains(string(r.body), cl.ID()) {
		t.Fatalf("the call should survive: %s", r.body)
	}
	c.do("POST", "/channels/"+cl.ID()+"/variable", vals("variable", "SEEN", "value", "1"), nil)
	ev := st2.next("ChannelVarset", nil)
	if ev["variable"] != "SEEN" {
		t.Errorf("first event after reconnect is %v", ev["variable"])
	}
	cl.Hangup()
	st2.next("StasisEnd", nil)
}

func TestEventFilter(t *testing.T) {
	cases := []struct {
		name   string
		body   any
		status int
		seen   []string
	}{
		{"allowed list keeps only those types", map[string]any{"allowed": []any{map[string]any{"type": "StasisStart"}, map[string]any{"type": "StasisEnd"}}}, 200,
			[]string{"StasisStart", "StasisEnd"}},
		{"disallowed list removes those types", map[string]any{"disallowed": []any{map[string]any{"type": "ChannelVarset"}}}, 200,
			[]string{"StasisStart", "ChannelStateChange", "ChannelHangupRequest", "StasisEnd"}},
		{"disallowed wins over allowed", map[string]any{"allowed": []any{map[string]any{"type": "StasisEnd"}}, "disallowed": []any{map[string]any{"type": "StasisEnd"}}}, 200,
			[]string{}},
		{"empty body resets", map[string]any{}, 200,
			[]string{"StasisStart", "ChannelStateChange", "ChannelVarset", "ChannelHangupRequest", "StasisEnd"}},
		{"entry without type is refused", map[string]any{"allowed": []any{map[string]any{"name": "x"}}}, 400, nil},
		{"a list that is not a list is refused", map[string]any{"allowed": "StasisStart"}, 400, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c, st := setup(t, Options{})
			c.do("PUT", "/applications/callflow/eventFilter", nil, map[string]any{"disallowed": []any{map[string]any{"type": "Dial"}}})
			r := c.do("PUT", "/applications/callflow/eventFilter", nil, tc.body)
			if r.status != tc.status {
				t.Fatalf("filter %d %s", r.status, r.body)
			}
			if tc.status != 200 {
				if r.message() != "Invalid format definition" {
					t.Errorf("message %q", r.message())
				}
				return
			}
			app := c.do("GET", "/applications/callflow", nil, nil).obj()
			if _, ok := app["events_allowed"].([]any); !ok {
				t.Errorf("application %v", app)
			}
			cl, _ := s.PlaceCall(ctxT(t), CallSpec{Exten: "1"})
			c.do("POST", "/channels/"+cl.ID()+"/answer", nil, nil)
			c.do("POST", "/channels/"+cl.ID()+"/variable", vals("variable", "V", "value", "1"), nil)
			c.do("DELETE", "/channels/"+cl.ID(), nil, nil)
			time.Sleep(30 * time.Millisecond)
			var got []string
			for _, ev := range st.all() {
				got = append(got, str(ev["type"]))
			}
			if !equal(got, tc.seen) && !(len(got) == 0 && len(tc.seen) == 0) {
				t.Errorf("events %v, want %v", got, tc.seen)
			}
		})
	}
}

func TestSecondWebsocketReplacesTheApplication(t *testing.T) {
	s, c, st1 := setup(t, Options{})
	st2 := dialEvents(t, s, "callflow")
	st1.next("ApplicationReplaced", nil)
	cl := placeCall(t, s, st2, CallSpec{})
	c.do("DELETE", "/channels/"+cl.ID(), nil, nil)
	st2.next("StasisEnd", nil)
	for _, ev := range st1.all() {
		if ev["type"] != "ApplicationReplaced" {
			t.Errorf("replaced websocket still got %s", evSummary(ev))
		}
	}
	st1.mu.Lock()
	raw := st1.raw[0]
	st1.mu.Unlock()
	if !strings.Contains(raw, `"application":"callflow","asterisk_id":`) {
		t.Errorf("ApplicationReplaced %s", raw)
	}
	// When the second goes away, the application is gone though the first is open.
	st2.close()
	deadline := time.Now().Add(testTimeout)
	for {
		if _, err := s.PlaceCall(ctxT(t), CallSpec{}); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("application still active")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSendMessage(t *testing.T) {
	s, c, _ := setup(t, Options{})
	r := c.do("PUT", "/endpoints/sendMessage", vals("to", "pjsip:+15551234567@trunk", "from", "pjsip:+15550000000", "body", "Your callback is booked"),
		map[string]any{"variables": map[string]any{"X-Flow": "support"}})
	if r.status != 202 || len(r.body) != 0 {
		t.Fatalf("send %d %s", r.status, r.body)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || msgs[0].To != "pjsip:+15551234567@trunk" || msgs[0].Body != "Your callback is booked" || msgs[0].Variables["X-Flow"] != "support" {
		t.Fatalf("messages %+v", msgs)
	}
	if r := c.do("PUT", "/endpoints/sendMessage", vals("from", "x"), nil); r.status != 400 || r.message() != "To must be specified" {
		t.Errorf("no to: %d %s", r.status, r.body)
	}
	if r := c.do("PUT", "/endpoints/sendMessage", vals("to", "carrier-pigeon:x", "from", "x"), nil); r.status != 404 {
		t.Errorf("unknown technology: %d", r.status)
	}
}

func TestRequestsAndLatencies(t *testing.T) {
	s, c, st := setup(t, Options{})
	cl := placeCall(t, s, st, CallSpec{})
	time.Sleep(5 * time.Millisecond)
	c.do("POST", "/channels/"+cl.ID()+"/answer", nil, nil)
	st.next("ChannelStateChange", nil)
	c.do("POST", "/channels/"+cl.ID()+"/play", vals("media", "sound:hello-world"), nil)
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Method != "POST" || reqs[0].Path != "/ari/channels/"+cl.ID()+"/answer" || reqs[0].Status != 204 ||
		!strings.Contains(reqs[1].Query, "media=sound") || reqs[1].Status != 201 {
		t.Fatalf("requests %+v", reqs)
	}
	lat := s.Latencies()
	if len(lat) != 2 || lat[0] < 5*time.Millisecond {
		t.Fatalf("latencies %v", lat)
	}
}

func TestWaitHelpers(t *testing.T) {
	s, c, st := setup(t, Options{})
	cl := placeCall(t, s, st, CallSpec{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := cl.WaitState(ctx, "Up"); err != context.DeadlineExceeded {
		t.Errorf("WaitState before answer: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cl.WaitPlayback(ctxT(t), "sound:welcome") }()
	c.do("POST", "/channels/"+cl.ID()+"/answer", nil, nil)
	c.do("POST", "/channels/"+cl.ID()+"/play", vals("media", "sound:welcome"), nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() { _, err := cl.WaitBridged(ctxT(t)); done <- err }()
	cl.Hangup()
	if err := <-done; err == nil {
		t.Error("WaitBridged should fail when the call ends")
	}
}

// aritestGoroutines lists goroutines running code of this package other
// than the calling test.
func aritestGoroutines() []string {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	var out []string
	for i, g := range strings.Split(string(buf[:n]), "\n\n") {
		if i == 0 || !strings.Contains(g, "callflow/ari/aritest.") {
			continue
		}
		if strings.Contains(g, "testing.tRunner") || strings.Contains(g, "aritest.(*stream).read") {
			continue
		}
		out = append(out, g)
	}
	return out
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		s := NewServer(Options{TimeScale: fast, MediaDurations: map[string]time.Duration{"sound:long": time.Hour}})
		defer s.Close()
		s.SetAgent("PJSIP/tech1", AgentBehavior{Mode: AgentNoAnswer})
		c := newClient(t, s)
		st := dialEvents(t, s, "callflow")
		cl := answeredCall(t, s, c, st, CallSpec{})
		c.do("POST", "/channels/"+cl.ID()+"/play", vals("media", "sound:long"), nil)
		c.do("POST", "/channels", vals("endpoint", "PJSIP/tech1", "app", "callflow", "originator", cl.ID(), "timeout", "-1"), nil)
		c.do("POST", "/channels/"+cl.ID()+"/record", vals("name", "r", "format", "wav"), nil)
		s.Close()
		st.waitClosed()
		select {
		case <-cl.Done():
		default:
			t.Error("Close leaves calls up")
		}
		st.close()
		c.hc.CloseIdleConnections()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := aritestGoroutines()
		n := runtime.NumGoroutine()
		if len(left) == 0 && n <= before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines before, %d after Close; package goroutines left:\n%s", before, n, strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestManyConcurrentCalls runs a thousand calls at once, each answered,
// prompted and hung up by its own goroutine, as a Stasis app would.
func TestManyConcurrentCalls(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	s, c, st := setup(t, Options{TimeScale: 0.001})
	runCalls(t, s, c, st, n)
	if left := s.Channels(); len(left) != 0 {
		t.Errorf("%d channels left", len(left))
	}
}

// BenchmarkConcurrentCalls measures the fake itself: b.N calls at once,
// each with an answer, a prompt and a hangup.
func BenchmarkConcurrentCalls(b *testing.B) {
	s := NewServer(Options{TimeScale: 0.001})
	defer s.Close()
	c := &client{base: s.URL(), user: s.opts.Username, pass: s.opts.Password}
	st := dialEventsTB(b, s, "callflow")
	defer st.close()
	b.ResetTimer()
	runCalls(b, s, c, st, b.N)
}

// runCalls places n calls and plays the application's part for each:
// answer, play a prompt, hang up after it, each call in its own goroutine
// fed by one event router, as a real client does.
func runCalls(tb testing.TB, s *Server, c *client, st *stream, n int) {
	tr := &http.Transport{MaxIdleConnsPerHost: 128}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: testTimeout}
	var mu sync.Mutex
	queues := map[string]chan string{}
	stop := make(chan struct{})
	routed := make(chan struct{})
	go func() {
		defer close(routed)
		seen := 0
		for {
			st.mu.Lock()
			evs := st.events[seen:]
			ch := st.notify
			st.mu.Unlock()
			for _, ev := range evs {
				seen++
				typ := str(ev["type"])
				if typ != "StasisStart" && typ != "PlaybackFinished" && typ != "StasisEnd" {
					continue
				}
				id := chanID(ev)
				if id == "" {
					id = strings.TrimPrefix(str(field(ev, "playback", "target_uri")), "channel:")
				}
				mu.Lock()
				q := queues[id]
				mu.Unlock()
				if q != nil {
					q <- typ
				}
			}
			select {
			case <-ch:
			case <-stop:
				return
			}
		}
	}()
	do := func(method, path string, params url.Values) int {
		params.Set("api_key", c.user+":"+c.pass)
		req, _ := http.NewRequest(method, c.base+path+"?"+params.Encode(), nil)
		res, err := hc.Do(req)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		q := make(chan string, 8)
		mu.Lock()
		cl, err := s.PlaceCall(context.Background(), CallSpec{Exten: fmt.Sprint(i)})
		if err == nil {
			queues[cl.ID()] = q
		}
		mu.Unlock()
		if err != nil {
			tb.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait := func(typ string) bool {
				select {
				case got := <-q:
					return got == typ
				case <-time.After(testTimeout):
					return false
				}
			}
			id := cl.ID()
			switch {
			case !wait("StasisStart"):
				errs <- "no StasisStart for " + id
			case do("POST", "/channels/"+id+"/answer", url.Values{}) != 204:
				errs <- "answer failed for " + id
			case do("POST", "/channels/"+id+"/play", url.Values{"media": {"sound:hello-world"}}) != 201:
				errs <- "play failed for " + id
			case !wait("PlaybackFinished"):
				errs <- "no PlaybackFinished for " + id
			case do("DELETE", "/channels/"+id, url.Values{}) != 204:
				errs <- "hangup failed for " + id
			case !wait("StasisEnd"):
				errs <- "no StasisEnd for " + id
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-routed
	close(errs)
	for e := range errs {
		tb.Error(e)
	}
}

// Key-to-leg latency: one sample per key, against the first leg created
// with the caller as originator; a second leg and a leg of another call
// yield none.
func TestDialLatencyFromKeyToFirstLeg(t *testing.T) {
	var mu sync.Mutex
	var got []time.Duration
	s, c, st := setup(t, Options{OnDialLatency: func(d time.Duration) {
		mu.Lock()
		got = append(got, d)
		mu.Unlock()
	}})
	cl := answeredCall(t, s, c, st, CallSpec{})
	other := answeredCall(t, s, c, st, CallSpec{})
	c.do("POST", "/channels/create", vals("endpoint", "PJSIP/tech1", "app", "callflow", "originator", cl.ID()), nil)
	cl.Press("1")
	st.next("ChannelDtmfReceived", nil)
	time.Sleep(3 * time.Millisecond)
	c.do("POST", "/channels/create", vals("endpoint", "PJSIP/tech2", "app", "callflow", "originator", other.ID()), nil)
	c.do("POST", "/channels/create", vals("endpoint", "PJSIP/tech1", "app", "callflow", "originator", cl.ID()), nil)
	c.do("POST", "/channels", vals("endpoint", "PJSIP/tech2", "app", "callflow", "originator", cl.ID()), nil)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] < 3*time.Millisecond {
		t.Fatalf("key-to-leg latencies %v, want one of at least 3ms", got)
	}
}
