package ari

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// exists puts channels in Asterisk without a StasisStart: they entered the
// application while no websocket was open, or under an earlier process.
func (s *scripted) exists(chans ...fakeChan) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range chans {
		if ch.created.IsZero() {
			ch.created = time.Now()
		}
		if ch.name == "" {
			ch.name = "PJSIP/" + ch.id
		}
		s.chans[ch.id] = &ch
	}
}

func bridgeJSON(id, creator string, members ...string) string {
	return fmt.Sprintf(`{"id":%q,"technology":"simple_bridge","bridge_type":"mixing","bridge_class":"stasis","creator":%q,"name":%q,"channels":[%s],"creationtime":"2026-11-21T05:05:48.249+0000","video_mode":"talker"}`,
		id, creator, id, strings.Join(quoteAll(members), ","))
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func TestOrphans(t *testing.T) {
	const (
		a = "1795237600.1" // a caller
		l = a + "-l2"      // its agent leg
	)
	longAgo := time.Now().Add(-5 * time.Hour)
	caller := func(state string, args ...string) fakeChan {
		return fakeChan{id: a, state: state, exten: "5551230009", args: append([]string{"inbound"}, args...), inStasis: true}
	}
	agentLeg := fakeChan{id: l, state: "Up", args: []string{"dialed", a}, inStasis: true}
	cases := []struct {
		name    string
		chans   []fakeChan
		bridges []string // "" fails the listing
		ended   string   // a call this process just ended
		flows   map[string]bool
		sent    []string
		notSent []string
		after   func(t *testing.T, s *scripted, ib *inbounds)
	}{
		{name: "a caller not yet answered starts its flow", chans: []fakeChan{caller("Ring", "flow=sales")},
			flows: map[string]bool{a: false},
			after: func(t *testing.T, s *scripted, ib *inbounds) {
				if in, _ := ib.get(a); in.FlowName != "sales" || in.Exten != "5551230009" || strings.Join(in.Args, ",") != "inbound,flow=sales" {
					t.Errorf("inbound %+v", in)
				}
			}},
		{name: "an answered caller talking to nobody starts over", chans: []fakeChan{caller("Up")},
			flows: map[string]bool{a: true}},
		{name: "an answered caller left alone in an earlier call's bridge leaves it, and the bridge goes",
			chans: []fakeChan{caller("Up")}, bridges: []string{bridgeJSON(a+"-b3", "Stasis", a)},
			flows: map[string]bool{a: true}, sent: []string{"POST /bridges/" + a + "-b3/removeChannel?channel=" + a, "DELETE /bridges/" + a + "-b3"}},
		{name: "a conversation an earlier run bridged goes on, and ends when one side leaves",
			chans: []fakeChan{caller("Up"), agentLeg}, bridges: []string{bridgeJSON(a+"-b1", "Stasis", a, l)},
			notSent: []string{"DELETE /channels/" + a, "DELETE /channels/" + l, "DELETE /bridges/" + a + "-b1"},
			after: func(t *testing.T, s *scripted, ib *inbounds) {
				if n := s.app.nAdopted.Load(); n != 2 {
					t.Errorf("%d channels adopted", n)
				}
				s.hangup(a, 16, false)
				s.waitFor("DELETE /channels/" + l)
				s.waitFor("DELETE /bridges/" + a + "-b1")
			}},
		{name: "a conversation older than the maximum call duration, by its creation time, is ended",
			chans:   []fakeChan{{id: a, state: "Up", args: []string{"inbound"}, created: longAgo, inStasis: true}, {id: l, state: "Up", args: []string{"dialed", a}, created: longAgo.Add(time.Minute), inStasis: true}},
			bridges: []string{bridgeJSON(a+"-b1", "Stasis", a, l)},
			sent:    []string{"DELETE /channels/" + a, "DELETE /channels/" + l, "DELETE /bridges/" + a + "-b1"}},
		{name: "an agent leg talking to nobody is hung up, answered or not",
			chans: []fakeChan{agentLeg, {id: a + "-l3", state: "Down", args: []string{"dialed", a}, inStasis: true}},
			sent:  []string{"DELETE /channels/" + l, "DELETE /channels/" + a + "-l3"}},
		{name: "empty bridges of earlier calls are destroyed, other bridges left alone",
			bridges: []string{bridgeJSON("1795237600.9-b2", "Stasis"), bridgeJSON("conference", "Stasis"), bridgeJSON("1795237600.8-b1", "Dial")},
			sent:    []string{"DELETE /bridges/1795237600.9-b2"}, notSent: []string{"DELETE /bridges/conference", "DELETE /bridges/1795237600.8-b1"}},
		{name: "channels of another application, or in the dialplan, are not ours",
			chans:   []fakeChan{{id: "other.1", state: "Ring", app: "otherapp", args: []string{"inbound"}, inStasis: true}, {id: "dialplan.1", state: "Up"}},
			notSent: []string{"DELETE /channels/other.1", "DELETE /channels/dialplan.1"}},
		{name: "a channel a standby moved to its own application is not ours, though its dialplan names ours",
			chans:   []fakeChan{{id: a, state: "Up", args: []string{"inbound"}, movedTo: "callflow-b", inStasis: true}},
			notSent: []string{"DELETE /channels/" + a, "POST /channels/" + a + "/answer"}},
		{name: "a call this process just ended is no orphan", chans: []fakeChan{caller("Up")}, ended: a},
		{name: "without the bridge listing an answered caller is left alone",
			chans: []fakeChan{caller("Up"), {id: "1795237600.2", state: "Ring", args: []string{"inbound"}, inStasis: true}}, bridges: []string{""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ib inbounds
			s := newScripted(t, ib.handler(nil))
			s.answer = func(r restReq) reply {
				switch {
				case r.is("GET /bridges") && len(tc.bridges) == 1 && tc.bridges[0] == "":
					return refused(500, "Internal Server Error")
				case r.is("GET /bridges"):
					return answered(200, "["+strings.Join(tc.bridges, ",")+"]")
				case r.is("GET /channels"), r.is("GET /applications/*"):
					rep, _ := s.listing(r)
					return rep
				}
				return s.basics(r)
			}
			s.exists(tc.chans...)
			if tc.ended != "" {
				s.app.ended.add(tc.ended, time.Now())
			}
			s.app.reconcile(context.Background(), false, s.app.liveRoutes())
			waitIdle(t, s.app)
			for _, p := range tc.sent {
				method, target, _ := strings.Cut(p, " ")
				path, query, _ := strings.Cut(target, "?")
				if r := s.waitFor(method + " " + path); query != "" && r.Query.Encode() != query {
					t.Errorf("%s: query %s", p, r.Query.Encode())
				}
			}
			s.app.helpers.Wait()
			for _, p := range tc.notSent {
				if len(s.sent(p)) > 0 {
					t.Errorf("sent %s", p)
				}
			}
			if int(ib.n.Load()) != len(tc.flows) {
				t.Errorf("%d flows started, want %d", ib.n.Load(), len(tc.flows))
			}
			for id, resumed := range tc.flows {
				in, ok := ib.get(id)
				if !ok || in.Resumed != resumed {
					t.Errorf("%s: flow %v, %+v", id, ok, in)
				}
			}
			if in, ok := ib.get(a); ok && (in.Number != "5551230009" || in.CallerNumber != "5551239999") {
				t.Errorf("inbound %+v", in)
			}
			if tc.after != nil {
				tc.after(t, s, &ib)
			}
		})
	}
}
