package aritest

import (
	"testing"
	"time"
)

// sig summarises the events about one channel: type plus the fields that
// distinguish the steps of a dial.
func sig(evs []map[string]any, id string) []string {
	var out []string
	for _, ev := range evs {
		if chanID(ev) != id {
			continue
		}
		s := str(ev["type"])
		switch ev["type"] {
		case "Dial":
			s += " " + str(ev["dialstatus"])
		case "ChannelStateChange":
			s += " " + str(field(ev, "channel", "state"))
		case "ChannelHangupRequest":
			s += " " + str(ev["cause"])
			if ev["soft"] == true {
				s += " soft"
			}
		case "ChannelDestroyed":
			s += " " + str(ev["cause"])
		case "ChannelVarset":
			s += " " + str(ev["variable"]) + "=" + str(ev["value"])
		}
		out = append(out, s)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// waitSig waits until the events about a channel are exactly want.
func waitSig(t *testing.T, st *stream, id string, want []string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		got := sig(st.all(), id)
		if equal(got, want) {
			return
		}
		if len(got) > len(want) || time.Now().After(deadline) {
			t.Fatalf("events about %s:\n got  %q\n want %q", id, got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestDialAgentModes(t *testing.T) {
	created := []string{"ChannelDialplan", "ChannelVarset STASISSTATUS=", "StasisStart"}
	cases := []struct {
		name    string
		b       AgentBehavior
		timeout string
		want    []string
		cause   int
	}{
		{"answering agent rings then answers", AgentBehavior{Mode: AgentAnswer, RingFor: 2 * time.Second}, "20",
			[]string{"ChannelConnectedLine", "Dial ", "ChannelStateChange Ringing", "Dial RINGING", "ChannelStateChange Up", "Dial ANSWER"}, 0},
		{"ring timeout has no NOANSWER, the leg is destroyed with cause 19", AgentBehavior{Mode: AgentNoAnswer}, "6",
			[]string{"ChannelConnectedLine", "Dial ", "ChannelStateChange Ringing", "Dial RINGING",
				"ChannelHangupRequest 32 soft", "StasisEnd", "ChannelVarset STASISSTATUS=SUCCESS", "ChannelDestroyed 19"}, 19},
		{"busy agent gives Dial BUSY and cause 17", AgentBehavior{Mode: AgentBusy, HangupAfter: 5 * time.Second}, "15",
			[]string{"ChannelConnectedLine", "Dial ", "Dial BUSY",
				"ChannelHangupRequest 17", "StasisEnd", "ChannelVarset STASISSTATUS=SUCCESS", "ChannelDestroyed 17"}, 17},
		{"congested agent gives Dial CONGESTION and cause 34", AgentBehavior{Mode: AgentCongestion}, "15",
			[]string{"ChannelConnectedLine", "Dial ", "Dial CONGESTION",
				"ChannelHangupRequest 34", "StasisEnd", "ChannelVarset STASISSTATUS=SUCCESS", "ChannelDestroyed 34"}, 34},
		{"busy after ringing", AgentBehavior{Mode: AgentBusy, RingFor: time.Second}, "15",
			[]string{"ChannelConnectedLine", "Dial ", "ChannelStateChange Ringing", "Dial RINGING", "Dial BUSY",
				"ChannelHangupRequest 17", "StasisEnd", "ChannelVarset STASISSTATUS=SUCCESS", "ChannelDestroyed 17"}, 17},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c, st := setup(t, Options{CreateStasisDelay: -1})
			s.SetAgent("PJSIP/tech1", tc.b)
			cl := placeCall(t, s, st, CallSpec{})
			r := c.do("POST", "/channels/create", vals("endpoint", "PJSIP/tech1", "app", "callflow", "appArgs", "agent,"+cl.ID(), "originator", cl.ID()), nil)
			if r.status != 200 || r.obj()["state"] != "Down" {
				t.Fatalf("create: %d %s", r.status, r.body)
			}
			agent := str(r.obj()["id"])
			ss := st.next("StasisStart", onChannel(agent))
			if args := ss["args"].([]any); len(args) != 2 || args[0] != "agent" || args[1] != cl.ID() {
				t.Errorf("args %v", args)
			}
			if r := c.do("POST", "/channels/"+agent+"/dial", vals("caller", cl.ID(), "timeout", tc.timeout), nil); r.status != 204 {
				t.Fatalf("dial: %d %s", r.status, r.body)
			}
			waitSig(t, st, agent, append(append([]string{}, created...), tc.want...))
			for _, ev := range st.all() {
				if ev["type"] == "Dial" && chanID(ev) == agent {
					if ds := str(ev["dialstring"]); (ev["dialstatus"] == "") != (ds == "tech1") {
						t.Errorf("dialstring %q with status %q", ds, ev["dialstatus"])
					}
				}
			}
			hist := s.History()
			if hist[1].ID != agent || hist[1].HangupCause != tc.cause {
				t.Errorf("agent history %+v", hist[1])
			}
		})
	}
}

func TestCreateStasisStartOrdering(t *testing.T) {
	cases := []struct {
		name  string
		delay time.Duration
		// dialAtOnce is the status of a /dial sent as soon as create returns.
		dialAtOnce int
	}{
		{"StasisStart before the create response", -1, 204},
		{"StasisStart after the create response", time.Second, 409},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c, st := setup(t, Options{CreateStasisDelay: tc.delay})
			s.SetAgent("PJSIP/tech1", AgentBehavior{Mode: AgentNoAnswer})
			cl := placeCall(t, s, st, CallSpec{})
			agent := str(c.do("POST", "/channels/create", vals("endpoint", "PJSIP/tech1", "app", "callflow", "originator", cl.ID()), nil).obj()["id"])
			r := c.do("POST", "/channels/"+agent+"/dial", vals("caller", cl.ID()), nil)
			if r.status != tc.dialAtOnce {
				t.Fatalf("dial at once: %d %s", r.status, r.body)
			}
			st.next("StasisStart", onChannel(agent))
			if r.status == 409 {
				if r.message() != "Channel not in Stasis application" {
					t.Errorf("message %q", r.message())
				}
				if r := c.do("POST", "/channels/"+agent+"/dial", vals("caller", cl.ID()), nil); r.status != 204 {
					t.Fatalf("dial after StasisStart: %d", r.status)
				}
			}
			st.next("Dial", func(ev map[string]any) bool { return ev["dialstatus"] == "RINGING" })
		})
	}
	t.Run("default delay lets StasisStart race the response", func(t *testing.T) {
		s, c, st := setup(t, Options{})
		s.SetAgent("PJSIP/tech1", AgentBehavior{Mode: AgentNoAnswer})
		cl := placeCall(t, s, st, CallSpec{})
		agent := str(c.do("POST", "/channels/create", vals("endpoint", "PJSIP/tech1", "app", "callflow", "originator", cl.ID()), nil).obj()["id"])
		st.next("StasisStart", onChannel(agent))
	})
}

func TestSampleRateOfCreatedChannels(t *testing.T) {
	cases := []struct {
		name   string
		params []string
		rate   int
	}{
		{"neither originator nor formats: 192 kHz", nil, 192000},
		{"with originator", []string{"originator", "ORIG"}, 8000},
		{"with formats", []string{"formats", "ulaw,alaw"}, 8000},
		{"with an originator that does not exist", []string{"originator", "nope"}, 192000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c, st := setup(t, Options{CreateStasisDelay: -1})
			s.SetAgent("PJSIP/tech1", AgentBehavior{Mode: AgentNoAnswer})
			cl := placeCall(t, s, st, CallSpec{})
			p := append([]string{"endpoint", "PJSIP/tech1", "app", "callflow"}, tc.params...)
			for i := range p {
				if p[i] == "ORIG" {
					p[i] = cl.ID()
				}
			}
			id := str(c.do("POST", "/channels/create", vals(p...), nil).obj()["id"])
			for _, ci := range s.Channels() {
				if ci.ID == id {
					if ci.SampleRate != tc.rate || ci.Kind != "create" || ci.Endpoint != "PJSIP/tech1" {
						t.Fatalf("info %+v", ci)
					}
					return
				}
			}
			t.Fatal("created channel not listed")
		})
	}
	t.Run("originate without originator or formats: 192 kHz", func(t *testing.T) {
		s, c, _ := setup(t, Options{})
		s.SetAgent("PJSIP/tech1", AgentBehavior{Mode: AgentNoAnswer})
		c.do("POST", "/channels", vals("endpoint", "PJSIP/tech1", "app", "callflow"), nil)
		if got := s.Channels()[0].SampleRate; got != 192000 {
			t.Fatalf("rate %d", got)
		}
	})
}

func TestOriginate(t *testing.T) {
	cases := []struct {
		name string
		b    AgentBehavior
		want []string
	}{
		{"StasisStart only once the agent answers", AgentBehavior{Mode: AgentAnswer, RingFor: time.Second},
			[]string{"Dial ", "ChannelStateChange Ringing", "Dial RINGING", "ChannelStateChange Up", "Dial ANSWER", "ChannelVarset STASISSTATUS=", "StasisStart"}},
		{"unanswered originate is destroyed at the timeout", AgentBehavior{Mode: AgentNoAnswer},
			[]string{"Dial ", "ChannelStateChange Ringing", "Dial RINGING", "ChannelDestroyed 19"}},
		{"busy originate", AgentBehavior{Mode: AgentBusy},
			[]string{"Dial ", "Dial BUSY", "ChannelDestroyed 17"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c, st := setup(t, Options{})
			s.SetAgent("PJSIP/tech1", tc.b)
			cl := placeCall(t, s, st, CallSpec{})
			r := c.do("POST", "/channels", vals("endpoint", "PJSIP/tech1", "app", "callflow", "appArgs", "agent-orig",
				"originator", cl.ID(), "timeout", "5", "callerId", "5551239999"), nil)
			if r.status != 200 {
				t.Fatalf("originate %d %s", r.status, r.body)
			}
			o := r.obj()
			if o["state"] != "Down" || field(o, "dialplan", "app_name") != "AppDial2" || field(o, "connected", "name") != "Alice Caller" ||
				field(o, "caller", "number") != "5551239999" {
				t.Errorf("originate response %s", r.body)
			}
			waitSig(t, st, str(o["id"]), tc.want)
		})
	}
	t.Run("originate into the dialplan stays out of Stasis", func(t *testing.T) {
		s, c, st := setup(t, Options{})
		s.SetAgent("Local/6001@agents/n", AgentBehavior{Mode: AgentAnswer})
		r := c.do("POST", "/channels", vals("endpoint", "Local/6001@agents/n", "context", "agents", "extension", "6001", "priority", "1"), nil)
		id := str(r.obj()["id"])
		deadline := time.Now().Add(testTimeout)
		for {
			if r := c.do("GET", "/channels/"+id, nil, nil); r.obj()["state"] == "Up" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("never answered")
			}
			time.Sleep(2 * time.Millisecond)
		}
		if r := c.do("POST", "/channels/"+id+"/answer", nil, nil); r.status != 409 {
			t.Errorf("answer: %d", r.status)
		}
		b := str(c.do("POST", "/bridges", vals("type", "mixing", "bridgeId", "errbridge"), nil).obj()["id"])
		if r := c.do("POST", "/bridges/"+b+"/addChannel", vals("channel", id), nil); r.status != 422 || r.message() != "Channel not in Stasis application" {
			t.Errorf("addChannel: %d %s", r.status, r.body)
		}
		if r := c.do("DELETE", "/channels/"+id, nil, nil); r.status != 204 {
			t.Errorf("hangup: %d", r.status)
		}
		if evs := st.all(); len(evs) != 0 {
			t.Errorf("the app is not subscribed to a dialplan channel, got %s", evSummary(evs[0]))
		}
	})
}

func TestAgentHangsUpAndPressesKeys(t *testing.T) {
	s, c, st := setup(t, Options{CreateStasisDelay: -1})
	s.SetAgent("PJSIP/tech1", AgentBehavior{Mode: AgentAnswer, Keys: "1", KeysAfter: time.Second, HangupAfter: 3 * time.Second})
	cl := placeCall(t, s, st, CallSpec{})
	agent := str(c.do("POST", "/channels/create", vals("endpoint", "PJSIP/tech1", "app", "callflow", "originator", cl.ID()), nil).obj()["id"])
	c.do("POST", "/channels/"+agent+"/dial", vals("caller", cl.ID()), nil)
	ev := st.next("ChannelDtmfReceived", onChannel(agent))
	if ev["digit"] != "1" {
		t.Errorf("digit %v", ev["digit"])
	}
	hr := st.next("ChannelHangupRequest", onChannel(agent))
	if hr["cause"] != 16.0 || hr["soft"] != nil {
		t.Errorf("agent hangup %v", hr)
	}
	st.next("ChannelDestroyed", onChannel(agent))
	select {
	case <-cl.Done():
		t.Fatal("the caller must stay up when the agent hangs up")
	default:
	}
}
