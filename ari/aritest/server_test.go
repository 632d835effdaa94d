package aritest

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fast is the time scale of most tests: a simulated second lasts 10 ms.
const fast = 0.01

func setup(t *testing.T, opts Options) (*Server, *client, *stream) {
	t.Helper()
	if opts.TimeScale == 0 {
		opts.TimeScale = fast
	}
	s := newTestServer(t, opts)
	return s, newClient(t, s), dialEvents(t, s, "callflow")
}

func placeCall(t *testing.T, s *Server, st *stream, spec CallSpec) *Caller {
	t.Helper()
	if spec.Exten == "" {
		spec.Exten = "+15551230001"
	}
	if spec.From == "" {
		spec.From, spec.FromName = "5551239999", "Alice Caller"
	}
	cl, err := s.PlaceCall(ctxT(t), spec)
	if err != nil {
		t.Fatalf("PlaceCall: %v", err)
	}
	st.next("StasisStart", func(ev map[string]any) bool { return chanID(ev) == cl.ID() })
	return cl
}

func onChannel(id string) func(map[string]any) bool {
	return func(ev map[string]any) bool { return chanID(ev) == id }
}

func TestAuthentication(t *testing.T) {
	s := newTestServer(t, Options{Username: "u", Password: "p"})
	cases := []struct {
		name   string
		query  string
		basic  string
		status int
	}{
		{"no credentials are refused", "", "", 401},
		{"wrong api_key is refused", "api_key=u:x", "", 401},
		{"api_key without password is refused", "api_key=u", "", 401},
		{"right api_key is accepted", "api_key=u:p", "", 200},
		{"right basic auth is accepted", "", "u:p", 200},
		{"wrong basic auth is refused", "", "u:x", 401},
	}
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", s.URL()+"/channels?"+tc.query, nil)
			if tc.basic != "" {
				req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(tc.basic)))
			}
			res, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if tc.status == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic realm=") {
				t.Errorf("401 without a Basic challenge: %q", res.Header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("defaults are callflow and secret", func(t *testing.T) {
		d := newTestServer(t, Options{})
		c := newClient(t, d)
		if c.user != "callflow" || c.pass != "secret" {
			t.Fatalf("defaults %q/%q", c.user, c.pass)
		}
		if r := c.do("GET", "/asterisk/info", nil, nil); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	})
}

func TestRoutingErrors(t *testing.T) {
	_, c, _ := setup(t, Options{})
	cases := []struct {
		name, method, path string
		status             int
		msg                string
	}{
		{"unknown resource is 404", "GET", "/nonexistent", 404, "Resource not found"},
		{"unknown sub-resource is 404", "POST", "/channels/x/frobnicate", 404, "Resource not found"},
		{"wrong method is 405", "PUT", "/channels", 405, "Invalid method"},
		{"create only takes POST", "GET", "/channels/create", 405, "Invalid method"},
		{"trailing slash is refused", "GET", "/channels/", 404, "ARI URLs do not end with a slash. Try /ari/channels"},
		{"a route the fake does not model is 501", "GET", "/mailboxes", 501, "Not implemented by the fake Asterisk"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(tc.method, tc.path, nil, nil)
			if r.status != tc.status || r.message() != tc.msg {
				t.Fatalf("%d %q, want %d %q", r.status, r.message(), tc.status, tc.msg)
			}
		})
	}
}

func TestWebsocketHandshakeErrors(t *testing.T) {
	s := newTestServer(t, Options{})
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	cases := []struct {
		name, query string
		status      int
		body        string
	}{
		{"missing app is 400", "api_key=callflow:secret", 400, "HTTP request is missing param: [app]"},
		{"wrong credentials are 401", "app=callflow&api_key=callflow:wrong", 401, `{"message":"Authentication required"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", strings.Replace(s.WebsocketURL(), "ws://", "http://", 1)+"?"+tc.query, nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			res, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			buf := new(strings.Builder)
			_, _ = bufCopy(buf, res)
			if res.StatusCode != tc.status || !strings.Contains(buf.String(), tc.body) {
				t.Fatalf("%d %q, want %d containing %q", res.StatusCode, buf.String(), tc.status, tc.body)
			}
		})
	}
}

func bufCopy(b *strings.Builder, res *http.Response) (int64, error) {
	data := make([]byte, 4096)
	var n int64
	for {
		k, err := res.Body.Read(data)
		b.Write(data[:k])
		n += int64(k)
		if err != nil {
			return n, nil
		}
	}
}

func TestPlaceCallNeedsAnOpenWebsocket(t *testing.T) {
	s := newTestServer(t, Options{})
	_, err := s.PlaceCall(ctxT(t), CallSpec{Exten: "100"})
	if !errors.Is(err, ErrNoApplication) {
		t.Fatalf("err %v, want ErrNoApplication", err)
	}
	st := dialEvents(t, s, "callflow")
	if _, err := s.PlaceCall(ctxT(t), CallSpec{Exten: "100", App: "other"}); !errors.Is(err, ErrNoApplication) {
		t.Fatalf("other app: err %v", err)
	}
	cl := placeCall(t, s, st, CallSpec{})
	st.close()
	deadline := time.Now().Add(testTimeout)
	for {
		_, err := s.PlaceCall(ctxT(t), CallSpec{Exten: "100"})
		if errors.Is(err, ErrNoApplication) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("call placed after the websocket closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(s.Channels()) == 0 || s.Channels()[0].ID != cl.ID() {
		t.Fatalf("the first call should still be up: %+v", s.Channels())
	}
}

func TestInboundCallEvents(t *testing.T) {
	s, c, st := setup(t, Options{})
	cl, err := s.PlaceCall(ctxT(t), CallSpec{Exten: "+15551230001", Context: "from-pstn", From: "5551239999", FromName: "Alice Caller", Args: []string{"flow=support", "x"}})
	if err != nil {
		t.Fatal(err)
	}
	ev := st.next("StasisStart", nil)
	if got := str(field(ev, "channel", "state")); got != "Ring" {
		t.Errorf("state %q, want Ring", got)
	}
	if got := field(ev, "args").([]any); len(got) != 2 || got[0] != "flow=support" {
		t.Errorf("args %v", got)
	}
	dp := field(ev, "channel", "dialplan").(map[string]any)
	if dp["exten"] != "+15551230001" || dp["app_name"] != "Stasis" || dp["app_data"] != "callflow,flow=support,x" || dp["priority"] != 2.0 {
		t.Errorf("dialplan %v", dp)
	}
	if ev["application"] != "callflow" || ev["asterisk_id"] == "" {
		t.Errorf("envelope %v", ev)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000-0700", str(ev["timestamp"])); err != nil {
		t.Errorf("timestamp %q: %v", ev["timestamp"], err)
	}
	// Channel JSON carries exactly the fields of a real Channel.
	keys := []string{}
	for k := range ev["channel"].(map[string]any) {
		keys = append(keys, k)
	}
	if len(keys) != 10 {
		t.Errorf("channel fields %v", keys)
	}
	if r := c.do("GET", "/channels/"+cl.ID()+"/variable", vals("variable", "CALLERID(num)"), nil); r.status != 200 || r.obj()["value"] != "5551239999" {
		t.Errorf("CALLERID(num): %d %s", r.status, r.body)
	}
	if cl.Answered() {
		t.Error("answered before /answer")
	}
	if r := c.do("POST", "/channels/"+cl.ID()+"/answer", nil, nil); r.status != 204 {
		t.Fatalf("answer %d", r.status)
	}
	st.next("ChannelStateChange", onChannel(cl.ID()))
	if err := cl.WaitState(ctxT(t), "Up"); err != nil || !cl.Answered() {
		t.Fatalf("WaitState: %v", err)
	}
	cl.PressFor("12", 120*time.Millisecond)
	for _, d := range []string{"1", "2"} {
		ev := st.next("ChannelDtmfReceived", nil)
		if ev["digit"] != d || ev["duration_ms"] != 120.0 {
			t.Errorf("dtmf %v", ev)
		}
	}
	cl.Hangup()
	hr := st.next("ChannelHangupRequest", nil)
	if hr["cause"] != 16.0 || hr["soft"] != nil {
		t.Errorf("remote hangup request %v", hr)
	}
	st.next("StasisEnd", nil)
	<-cl.Done()
	if cl.HangupCause() != 16 {
		t.Errorf("cause %d", cl.HangupCause())
	}
	// An inbound channel nobody else subscribed to gets no ChannelDestroyed.
	for _, ev := range st.eventsDuring(30 * time.Millisecond) {
		t.Errorf("unexpected event after StasisEnd: %s", evSummary(ev))
	}
	if len(s.Channels()) != 0 {
		t.Errorf("channels left: %+v", s.Channels())
	}
}

func TestHangupByApplication(t *testing.T) {
	cases := []struct {
		name   string
		query  []string
		status int
		cause  int
		msg    string
	}{
		{"default reason is normal clearing", nil, 204, 16, ""},
		{"reason busy", []string{"reason", "busy"}, 204, 17, ""},
		{"reason_code", []string{"reason_code", "21"}, 204, 21, ""},
		{"unknown reason", []string{"reason", "bored"}, 400, 0, "Invalid reason for hangup reason provided"},
		{"both reason and code", []string{"reason", "busy", "reason_code", "17"}, 400, 0, "The reason and reason_code can't both be specified"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c, st := setup(t, Options{})
			cl := placeCall(t, s, st, CallSpec{})
			r := c.do("DELETE", "/channels/"+cl.ID(), vals(tc.query...), nil)
			if r.status != tc.status || r.message() != tc.msg {
				t.Fatalf("%d %q", r.status, r.message())
			}
			if tc.status != 204 {
				return
			}
			hr := st.next("ChannelHangupRequest", nil)
			if hr["cause"] != 32.0 || hr["soft"] != true {
				t.Errorf("ARI hangup is a soft hangup with cause 32: %v", hr)
			}
			st.next("StasisEnd", nil)
			<-cl.Done()
			if cl.HangupCause() != tc.cause {
				t.Errorf("cause %d, want %d", cl.HangupCause(), tc.cause)
			}
			if r := c.do("DELETE", "/channels/"+cl.ID(), nil, nil); r.status != 404 || r.message() != "Channel not found" {
				t.Errorf("second hangup: %d %q", r.status, r.message())
			}
		})
	}
}

func TestChannelErrors(t *testing.T) {
	s, c, st := setup(t, Options{CreateStasisDelay: time.Hour})
	s.SetAgent("PJSIP/tech1", AgentBehavior{Mode: AgentAnswer})
	cl := placeCall(t, s, st, CallSpec{})
	// A channel made by /channels/create that has not entered Stasis yet.
	created := c.do("POST", "/channels/create", vals("endpoint", "PJSIP/tech1", "app", "callflow", "originator", cl.ID()), nil).obj()
	pending := str(created["id"])
	cases := []struct {
		name, method, path string
		params             []string
		status             int
		msg                string
	}{
		{"get unknown channel", "GET", "/channels/nope", nil, 404, "Channel not found"},
		{"answer unknown channel", "POST", "/channels/nope/answer", nil, 404, "Channel not found"},
		{"play on unknown channel", "POST", "/channels/nope/play", []string{"media", "sound:x"}, 404, "Channel not found"},
		{"dial unknown channel", "POST", "/channels/nope/dial", nil, 404, "Channel not found"},
		{"dial a channel not yet in Stasis", "POST", "/channels/" + pending + "/dial", nil, 409, "Channel not in Stasis application"},
		{"answer a channel not yet in Stasis", "POST", "/channels/" + pending + "/answer", nil, 409, "Channel not in Stasis application"},
		{"dial an inbound channel", "POST", "/channels/" + cl.ID() + "/dial", nil, 409, "Channel is not in the 'Down' state"},
		{"play without media", "POST", "/channels/" + cl.ID() + "/play", nil, 500, "Failed to queue media for playback"},
		{"dtmf without digits", "POST", "/channels/" + cl.ID() + "/dtmf", nil, 400, "DTMF is required"},
		{"record unknown format", "POST", "/channels/" + cl.ID() + "/record", []string{"name", "x", "format", "mp9"}, 422, "specified format is unknown on this system"},
		{"record without name", "POST", "/channels/" + cl.ID() + "/record", []string{"format", "wav"}, 500, "Error parsing request"},
		{"record outside the recordings directory", "POST", "/channels/" + cl.ID() + "/record", []string{"format", "wav", "name", "../etc/evil"}, 400, "Recording name invalid"},
		{"record with bad ifExists", "POST", "/channels/" + cl.ID() + "/record", []string{"format", "wav", "name", "a", "ifExists", "bogus"}, 400, "ifExists invalid"},
		{"record with bad terminateOn", "POST", "/channels/" + cl.ID() + "/record", []string{"format", "wav", "name", "a", "terminateOn", "x"}, 400, "terminateOn invalid"},
		{"record negative duration", "POST", "/channels/" + cl.ID() + "/record", []string{"format", "wav", "name", "a", "maxDurationSeconds", "-1"}, 400, "max_duration_seconds cannot be negative"},
		{"unset variable", "GET", "/channels/" + cl.ID() + "/variable", []string{"variable", "NOPE"}, 404, "Provided variable was not found"},
		{"variable without name", "GET", "/channels/" + cl.ID() + "/variable", nil, 400, "Variable name is required"},
		{"variable of unknown channel", "GET", "/channels/nope/variable", []string{"variable", "X"}, 404, "Provided channel was not found"},
		{"create without endpoint", "POST", "/channels/create", []string{"app", "callflow"}, 400, "Endpoint must be specified"},
		{"create with both originator and formats", "POST", "/channels/create", []string{"endpoint", "PJSIP/tech1", "app", "callflow", "originator", cl.ID(), "formats", "ulaw"}, 400, "Originator and formats can't both be specified"},
		{"create with a malformed endpoint", "POST", "/channels/create", []string{"endpoint", "nochanneltype", "app", "callflow"}, 400, "Invalid endpoint specified"},
		{"create on an unknown endpoint", "POST", "/channels/create", []string{"endpoint", "PJSIP/nobody", "app", "callflow"}, 500, "Allocation failed"},
		{"create with a taken channelId", "POST", "/channels/create", []string{"endpoint", "PJSIP/tech1", "app", "callflow", "channelId", cl.ID()}, 409, "Channel with given unique ID already exists"},
		{"create with an unknown format", "POST", "/channels/create", []string{"endpoint", "PJSIP/tech1", "app", "callflow", "formats", "mp3"}, 400, "Provided format (mp3) was not found"},
		{"originate without endpoint", "POST", "/channels", nil, 400, "Endpoint must be specified"},
		{"originate without app or extension", "POST", "/channels", []string{"endpoint", "PJSIP/tech1"}, 400, "Application or extension must be specified"},
		{"originate on an unknown endpoint", "POST", "/channels", []string{"endpoint", "Bogus/123", "app", "callflow"}, 500, "Allocation failed"},
		{"originate with unknown originator", "POST", "/channels", []string{"endpoint", "PJSIP/tech1", "app", "callflow", "originator", "nope"}, 400, "Provided originator channel was not found"},
		{"get unknown playback", "GET", "/playbacks/nope", nil, 404, "Playback not found"},
		{"stop unknown playback", "DELETE", "/playbacks/nope", nil, 404, "Playback not found"},
		{"unknown live recording", "GET", "/recordings/live/nope", nil, 404, "Recording not found"},
		{"stop unknown live recording", "POST", "/recordings/live/nope/stop", nil, 404, "Recording not found"},
		{"unknown stored recording", "GET", "/recordings/stored/nope", nil, 404, "Recording not found"},
		{"file of unknown stored recording", "GET", "/recordings/stored/nope/file", nil, 404, "Recording not found"},
		{"unknown application", "GET", "/applications/nosuchapp", nil, 404, "Application not found"},
		{"filter of unknown application", "PUT", "/applications/nosuchapp/eventFilter", nil, 404, "Application not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(tc.method, tc.path, vals(tc.params...), nil)
			if r.status != tc.status || r.message() != tc.msg {
				t.Fatalf("%d %q, want %d %q", r.status, r.body, tc.status, tc.msg)
			}
		})
	}
	t.Run("500 allocation failures use error not message", func(t *testing.T) {
		r := c.do("POST", "/channels", vals("endpoint", "Bogus/123", "app", "callflow"), nil)
		if string(r.body) != `{"error":"Allocation failed"}` {
			t.Fatalf("body %s", r.body)
		}
	})
}

func TestChannelStateConflicts(t *testing.T) {
	s, c, st := setup(t, Options{CreateStasisDelay: -1})
	s.SetAgent("PJSIP/tech1", AgentBehavior{Mode: AgentNoAnswer})
	cl := placeCall(t, s, st, CallSpec{})
	agent := str(c.do("POST", "/channels/create", vals("endpoint", "PJSIP/tech1", "app", "callflow", "originator", cl.ID()), nil).obj()["id"])
	st.next("StasisStart", onChannel(agent))
	cases := []struct {
		name, method, path string
		params             []string
		status             int
		msg                string
	}{
		{"play on a Down outbound channel", "POST", "/channels/" + agent + "/play", []string{"media", "sound:x"}, 412, "Channel in invalid state"},
		{"answer a Down outbound channel", "POST", "/channels/" + agent + "/answer", nil, 412, "Channel in invalid state"},
		{"ring a Down outbound channel", "POST", "/channels/" + agent + "/ring", nil, 412, "Channel in invalid state"},
		{"dial a created channel", "POST", "/channels/" + agent + "/dial", []string{"caller", cl.ID()}, 204, ""},
		{"dial it twice", "POST", "/channels/" + agent + "/dial", nil, 409, "Channel is not in the 'Down' state"},
		{"play on a Ringing outbound channel", "POST", "/channels/" + agent + "/play", []string{"media", "sound:x"}, 412, "Channel in invalid state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(tc.method, tc.path, vals(tc.params...), nil)
			if r.status != tc.status || r.message() != tc.msg {
				t.Fatalf("%d %q, want %d %q", r.status, r.body, tc.status, tc.msg)
			}
			if tc.status == 204 {
				st.next("Dial", func(ev map[string]any) bool { return ev["dialstatus"] == "RINGING" })
			}
		})
	}
}

func TestVariables(t *testing.T) {
	s, c, st := setup(t, Options{})
	cl := placeCall(t, s, st, CallSpec{})
	if r := c.do("POST", "/channels/"+cl.ID()+"/variable", vals("variable", "CF_STATE", "value", "greeting"), nil); r.status != 204 {
		t.Fatalf("set %d", r.status)
	}
	ev := st.next("ChannelVarset", nil)
	if ev["variable"] != "CF_STATE" || ev["value"] != "greeting" {
		t.Errorf("varset %v", ev)
	}
	if r := c.do("GET", "/channels/"+cl.ID()+"/variable", vals("variable", "CF_STATE"), nil); r.obj()["value"] != "greeting" {
		t.Errorf("get %s", r.body)
	}
	// No value unsets the variable, without an event.
	c.do("POST", "/channels/"+cl.ID()+"/variable", vals("variable", "CF_STATE"), nil)
	if r := c.do("GET", "/channels/"+cl.ID()+"/variable", vals("variable", "CF_STATE"), nil); r.status != 404 {
		t.Errorf("unset variable: %d", r.status)
	}
	// Parameters may come in a JSON body.
	if r := c.do("POST", "/channels/"+cl.ID()+"/variable", nil, map[string]any{"variable": "J", "value": "from-json"}); r.status != 204 {
		t.Fatalf("json body %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/channels/"+cl.ID()+"/variable", vals("variable", "J"), nil); r.obj()["value"] != "from-json" {
		t.Errorf("json variable %s", r.body)
	}
	if got := s.Channels()[0].Vars["J"]; got != "from-json" {
		t.Errorf("ChannelInfo vars %v", s.Channels()[0].Vars)
	}
}

func TestContinueInDialplan(t *testing.T) {
	s, c, st := setup(t, Options{})
	cl := placeCall(t, s, st, CallSpec{Exten: "5551230001", Context: "from-pstn"})
	c.do("POST", "/channels/"+cl.ID()+"/answer", nil, nil)
	if r := c.do("POST", "/channels/"+cl.ID()+"/continue", nil, nil); r.status != 204 {
		t.Fatalf("continue %d %s", r.status, r.body)
	}
	st.next("StasisEnd", onChannel(cl.ID()))
	loc, ok := cl.Continued()
	if !ok || loc != "from-pstn,5551230001,3" {
		t.Fatalf("continued to %q %v", loc, ok)
	}
	info := s.Channels()
	if len(info) != 1 || info[0].InStasis || info[0].Continued != loc {
		t.Fatalf("channel info %+v", info)
	}
	if r := c.do("POST", "/channels/"+cl.ID()+"/play", vals("media", "sound:x"), nil); r.status != 409 {
		t.Errorf("play after continue: %d", r.status)
	}
	select {
	case <-cl.Done():
		t.Fatal("the call should stay up in the dialplan")
	default:
	}
	cl.Hangup()
	<-cl.Done()
	t.Run("continue to an explicit location after the current prompt", func(t *testing.T) {
		cl := placeCall(t, s, st, CallSpec{})
		c.do("POST", "/channels/"+cl.ID()+"/answer", nil, nil)
		c.do("POST", "/channels/"+cl.ID()+"/play", vals("media", "sound:hello-world"), nil)
		c.do("POST", "/channels/"+cl.ID()+"/continue", vals("context", "voicemail", "extension", "100", "priority", "1"), nil)
		st.next("PlaybackFinished", nil)
		st.next("StasisEnd", onChannel(cl.ID()))
		if loc, _ := cl.Continued(); loc != "voicemail,100,1" {
			t.Fatalf("continued to %q", loc)
		}
	})
}
