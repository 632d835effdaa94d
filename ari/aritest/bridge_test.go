package aritest

import (
	"testing"
	"time"
)

// bridgedCall sets up a caller and an answering agent in a mixing bridge.
func bridgedCall(t *testing.T, s *Server, c *client, st *stream) (cl *Caller, agent, bridgeID string) {
	t.Helper()
	s.SetAgent("PJSIP/tech1", AgentBehavior{Mode: AgentAnswer, RingFor: time.Second})
	cl = answeredCall(t, s, c, st, CallSpec{})
	b := c.do("POST", "/bridges", vals("type", "mixing", "name", "cf-"+cl.ID()), nil)
	if b.status != 200 || b.obj()["bridge_type"] != "mixing" || b.obj()["technology"] != "simple_bridge" {
		t.Fatalf("bridge %d %s", b.status, b.body)
	}
	bridgeID = str(b.obj()["id"])
	if r := c.do("POST", "/bridges/"+bridgeID+"/addChannel", vals("channel", cl.ID()), nil); r.status != 204 {
		t.Fatalf("add caller %d %s", r.status, r.body)
	}
	st.next("ChannelEnteredBridge", onChannel(cl.ID()))
	agent = str(c.do("POST", "/channels/create", vals("endpoint", "PJSIP/tech1", "app", "callflow", "appArgs", "agent", "originator", cl.ID()), nil).obj()["id"])
	st.next("StasisStart", onChannel(agent))
	c.do("POST", "/channels/"+agent+"/dial", vals("caller", cl.ID(), "timeout", "20"), nil)
	st.next("Dial", func(ev map[string]any) bool { return ev["dialstatus"] == "ANSWER" })
	if r := c.do("POST", "/bridges/"+bridgeID+"/addChannel", vals("channel", agent), nil); r.status != 204 {
		t.Fatalf("add agent %d %s", r.status, r.body)
	}
	st.next("ChannelEnteredBridge", onChannel(agent))
	return cl, agent, bridgeID
}

func TestBridgeTwoParties(t *testing.T) {
	s, c, st := setup(t, Options{})
	cl, agent, b := bridgedCall(t, s, c, st)
	if ep, err := cl.WaitBridged(ctxT(t)); err != nil || ep != "PJSIP/tech1" {
		t.Fatalf("WaitBridged %q %v", ep, err)
	}
	st.next("ChannelVarset", func(ev map[string]any) bool { return chanID(ev) == agent && ev["variable"] == "BRIDGEPEER" })
	peers := map[string]string{}
	for _, ev := range st.all() {
		if ev["type"] == "ChannelVarset" && ev["variable"] == "BRIDGEPEER" {
			peers[chanID(ev)] = str(ev["value"])
		}
	}
	if peers[cl.ID()] != str(s.Channels()[1].Name) || peers[agent] != cl.Name() {
		t.Errorf("BRIDGEPEER %v", peers)
	}
	g := c.do("GET", "/bridges/"+b, nil, nil).obj()
	if chans := g["channels"].([]any); len(chans) != 2 || chans[0] != cl.ID() || chans[1] != agent {
		t.Errorf("bridge channels %v", g["channels"])
	}
	if got := s.Bridges(); !equal(got, []string{b}) {
		t.Errorf("Bridges() %v", got)
	}
	// The caller hangs up: the agent stays, as in Asterisk; the app hangs it up.
	cl.Hangup()
	hr := st.next("ChannelHangupRequest", onChannel(cl.ID()))
	if hr["cause"] != 16.0 {
		t.Errorf("hangup request %v", hr)
	}
	left := st.next("ChannelLeftBridge", onChannel(cl.ID()))
	if n := len(field(left, "bridge", "channels").([]any)); n != 1 {
		t.Errorf("bridge after leave has %d channels", n)
	}
	st.next("StasisEnd", onChannel(cl.ID()))
	// The app subscribed to the caller as originator of the agent leg.
	st.next("ChannelDestroyed", onChannel(cl.ID()))
	time.Sleep(20 * time.Millisecond)
	if chans := s.Channels(); len(chans) != 1 || chans[0].ID != agent || chans[0].Bridge != b {
		t.Fatalf("agent should still be bridged: %+v", chans)
	}
	c.do("DELETE", "/channels/"+agent, nil, nil)
	st.next("ChannelDestroyed", onChannel(agent))
	if r := c.do("DELETE", "/bridges/"+b, nil, nil); r.status != 204 {
		t.Fatalf("destroy %d", r.status)
	}
	ev := st.next("BridgeDestroyed", nil)
	if field(ev, "bridge", "id") != b || len(field(ev, "bridge", "channels").([]any)) != 0 {
		t.Errorf("BridgeDestroyed %v", ev)
	}
	if len(s.Bridges()) != 0 || len(s.Channels()) != 0 {
		t.Errorf("left behind: %v %v", s.Bridges(), s.Channels())
	}
}

func TestBridgeErrors(t *testing.T) {
	s, c, st := setup(t, Options{})
	cl := placeCall(t, s, st, CallSpec{})
	b := str(c.do("POST", "/bridges", vals("type", "mixing"), nil).obj()["id"])
	cases := []struct {
		name, method, path string
		params             []string
		status             int
		msg                string
	}{
		{"unknown bridge", "GET", "/bridges/nope", nil, 404, "Bridge not found"},
		{"add to unknown bridge", "POST", "/bridges/nope/addChannel", []string{"channel", cl.ID()}, 404, "Bridge not found"},
		{"add unknown channel", "POST", "/bridges/" + b + "/addChannel", []string{"channel", "nope"}, 400, "Channel not found"},
		{"add without channel", "POST", "/bridges/" + b + "/addChannel", nil, 400, "Missing parameter channel"},
		{"remove a channel not in the bridge", "POST", "/bridges/" + b + "/removeChannel", []string{"channel", cl.ID()}, 422, "Channel not in this bridge"},
		{"bad bridge type", "POST", "/bridges", []string{"type", "notatype"}, 500, "Unable to create bridge. Possible duplicate bridge id '(null)'"},
		{"duplicate bridge id", "POST", "/bridges", []string{"bridgeId", b}, 409, "Bridge with id '" + b + "' already exists"},
		{"stop music that is not playing", "DELETE", "/bridges/" + b + "/moh", nil, 409, "Bridge isn't playing music"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(tc.method, tc.path, vals(tc.params...), nil)
			if r.status != tc.status || r.message() != tc.msg {
				t.Fatalf("%d %s, want %d %q", r.status, r.body, tc.status, tc.msg)
			}
		})
	}
	t.Run("a bridge never given a channel sends no BridgeDestroyed", func(t *testing.T) {
		c.do("DELETE", "/bridges/"+b, nil, nil)
		for _, ev := range st.eventsDuring(20 * time.Millisecond) {
			t.Errorf("unexpected %s", evSummary(ev))
		}
	})
}

func TestBridgeMusicOnHold(t *testing.T) {
	s, c, st := setup(t, Options{})
	cl := answeredCall(t, s, c, st, CallSpec{})
	b := str(c.do("POST", "/bridges", vals("type", "mixing"), nil).obj()["id"])
	c.do("POST", "/bridges/"+b+"/addChannel", vals("channel", cl.ID()), nil)
	st.next("ChannelEnteredBridge", nil)
	if r := c.do("POST", "/bridges/"+b+"/moh", vals("mohClass", "default"), nil); r.status != 204 {
		t.Fatalf("moh %d", r.status)
	}
	ev := st.next("ChannelVarset", nil)
	if ev["variable"] != "BRIDGEPEER" || str(ev["value"])[:18] != "Announcer/ARI_MOH-" {
		t.Errorf("BRIDGEPEER %v", ev["value"])
	}
	cl2 := st.next("ChannelConnectedLine", onChannel(cl.ID()))
	if field(cl2, "channel", "connected", "number") != "" {
		t.Errorf("connected line %v", field(cl2, "channel", "connected"))
	}
	if r := c.do("DELETE", "/bridges/"+b+"/moh", nil, nil); r.status != 204 {
		t.Fatalf("stop moh %d", r.status)
	}
}

func TestBridgeEventsReachOnlyBridgeSubscribers(t *testing.T) {
	s, c, st := setup(t, Options{})
	other := dialEvents(t, s, "other")
	cl := answeredCall(t, s, c, st, CallSpec{})
	// "other" subscribes to the channel, not to the bridge.
	if r := c.do("POST", "/applications/other/subscription", vals("eventSource", "channel:"+cl.ID()), nil); r.status != 200 {
		t.Fatalf("subscribe %d %s", r.status, r.body)
	}
	b := str(c.do("POST", "/bridges", vals("type", "mixing"), nil).obj()["id"])
	c.do("POST", "/bridges/"+b+"/addChannel", vals("channel", cl.ID()), nil)
	st.next("ChannelEnteredBridge", nil)
	c.do("POST", "/channels/"+cl.ID()+"/variable", vals("variable", "X", "value", "1"), nil)
	other.next("ChannelVarset", nil)
	for _, ev := range other.all() {
		if ev["type"] == "ChannelEnteredBridge" {
			t.Fatalf("ChannelEnteredBridge reached a non-subscriber of the bridge")
		}
	}
}

func TestBridgeRecording(t *testing.T) {
	s, c, st := setup(t, Options{})
	cl, agent, b := bridgedCall(t, s, c, st)
	r := c.do("POST", "/bridges/"+b+"/record", vals("name", "call-1", "format", "wav", "maxDurationSeconds", "3"), nil)
	if r.status != 201 || r.obj()["target_uri"] != "bridge:"+b {
		t.Fatalf("record %d %s", r.status, r.body)
	}
	st.next("RecordingStarted", nil)
	ev := st.next("RecordingFinished", nil)
	if field(ev, "recording", "duration") != 3.0 {
		t.Errorf("duration %v", field(ev, "recording", "duration"))
	}
	f := c.do("GET", "/recordings/stored/call-1/file", nil, nil)
	if length, audible := wavInfo(t, f.body); length != 3*time.Second || audible == 0 {
		t.Errorf("file %v audible %v", length, audible)
	}
	t.Run("destroying the bridge ends its recording", func(t *testing.T) {
		c.do("POST", "/bridges/"+b+"/record", vals("name", "call-2", "format", "wav"), nil)
		st.next("RecordingStarted", nil)
		c.do("DELETE", "/bridges/"+b, nil, nil)
		st.next("RecordingFinished", nil)
		st.next("BridgeDestroyed", nil)
		if chans := s.Channels(); len(chans) != 2 || chans[0].Bridge != "" {
			t.Errorf("channels after destroy %+v", chans)
		}
		_ = cl
		_ = agent
	})
}
