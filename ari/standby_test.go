package ari

import (
	"context"
	"testing"
)

// A standby moves into its own application the channels Asterisk lists in
// the primary's, with their Stasis arguments, and starts each once its
// StasisStart arrives; one it moved before (its dialplan still names the
// primary) and one Asterisk refuses to move are left.
func TestStandbyTakesThePrimarysChannels(t *testing.T) {
	const (
		taken   = "1795237600.1"
		already = "1795237600.2" // moved by an earlier run of this standby
		gone    = "1795237600.3" // left Stasis as the move was asked
	)
	var ib inbounds
	s := newScripted(t, ib.handler(nil))
	s.app.opts.StandbyFor = "callflow-a"
	s.answer = func(r restReq) reply {
		switch {
		case r.is("GET /channels"), r.is("GET /applications/*"):
			rep, _ := s.listing(r)
			return rep
		case r.is("GET /bridges"):
			return answered(200, "[]")
		case r.is("POST /channels/" + gone + "/move"):
			return refused(409, "Channel not in Stasis application")
		case r.is("POST /channels/*/move"):
			ch := s.channel(r.seg(1))
			s.mu.Lock()
			ch.movedTo = r.Query.Get("app")
			s.mu.Unlock()
			s.async(func() {
				s.send("StasisStart", map[string]any{"args": []string{r.Query.Get("appArgs")}, "channel": s.chanJSON(ch.id)})
			})
			return reply{}
		}
		return s.basics(r)
	}
	s.exists(
		fakeChan{id: taken, state: "Up", app: "callflow-a", args: []string{"inbound", "flow=sales"}, inStasis: true},
		fakeChan{id: already, state: "Up", app: "callflow-a", args: []string{"inbound"}, movedTo: "callflow", inStasis: true},
		fakeChan{id: gone, state: "Ring", app: "callflow-a", args: []string{"inbound"}, inStasis: true},
	)
	if n := s.app.takeFromPrimary(context.Background()); n != 1 {
		t.Fatalf("%d channels moved, want 1", n)
	}
	mv := s.sent("POST /channels/" + taken + "/move")
	if len(mv) != 1 || mv[0].Query.Get("app") != "callflow" || mv[0].Query.Get("appArgs") != "inbound,flow=sales" {
		t.Errorf("move %v", mv)
	}
	if len(s.sent("POST /channels/"+already+"/move")) != 0 {
		t.Error("moved a channel already in this application")
	}
	if moved, _ := s.app.wasMoved(gone); moved {
		t.Error("a refused move is remembered")
	}
	s.bg.Wait() // the StasisStart of the moved channel
	if _, arrived := s.app.wasMoved(taken); !arrived {
		t.Fatal("the moved channel's StasisStart was not noted")
	}
	if ib.n.Load() != 0 {
		t.Fatal("a flow started before the takeover pass")
	}
	s.app.takeArrived(context.Background())
	waitIdle(t, s.app)
	in, ok := ib.get(taken)
	if !ok || !in.Resumed || in.FlowName != "sales" || ib.n.Load() != 1 {
		t.Errorf("flows started %d; %s: %+v", ib.n.Load(), taken, in)
	}
	if h := s.app.Health(); h.AdoptedChannels != 1 || h.Takeovers != 1 {
		t.Errorf("health %+v", h)
	}
}

func TestHeartbeatVariableName(t *testing.T) {
	for app, want := range map[string]string{
		"callflow":   "CALLFLOW_HEARTBEAT_CALLFLOW",
		"callflow-a": "CALLFLOW_HEARTBEAT_CALLFLOW_A",
		"pbx1.b_2":   "CALLFLOW_HEARTBEAT_PBX1_B_2",
		"café":       "CALLFLOW_HEARTBEAT_CAF_",
	} {
		if got := heartbeatVar(app); got != want {
			t.Errorf("heartbeatVar(%q) = %q, want %q", app, got, want)
		}
	}
}
