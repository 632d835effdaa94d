package ari

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callflow/callflow/applets/call"
	"github.com/callflow/callflow/ari/aritest"
)

// agent scripts a dialled endpoint; the zero agent rings for ever.
type agent struct {
	unknown bool // no such endpoint: Asterisk refuses the create (500)
	// stasis is when the leg's StasisStart comes: "" before the create
	// answer (as real Asterisk mostly does), "late" a moment after it,
	// "never".
	stasis string
	// left409: /dial gets 409, the leg having left Stasis meanwhile.
	left409 bool
	// onDial is what follows /dial: Dial events, an answer, a hang-up.
	onDial func(s *scripted, leg, caller string)
	// keys are pressed when the whisper ends.
	keys string
	// onBridged is what follows the bridging.
	onBridged func(s *scripted, leg, caller string)
}

func rings(s *scripted, leg, _ string) {
	s.dialEvent(leg, "")
	s.dialEvent(leg, "RINGING")
}

func answers(s *scripted, leg, caller string) {
	rings(s, leg, caller)
	s.setState(leg, "Up")
	s.dialEvent(leg, "ANSWER")
}

func busy(s *scripted, leg, _ string) {
	s.dialEvent(leg, "")
	s.dialEvent(leg, "BUSY")
}

func congested(s *scripted, leg, _ string) {
	s.dialEvent(leg, "")
	s.dialEvent(leg, "CONGESTION")
}

// ringsOut is a ring timeout as Asterisk 20 reports it: no NOANSWER.
func ringsOut(s *scripted, leg, caller string) {
	rings(s, leg, caller)
	s.ringTimeout(leg)
}

func agentHangsUp(s *scripted, leg, _ string) { s.hangup(leg, 16, true) }

func callerHangsUp(s *scripted, _, caller string) { s.hangup(caller, 16, false) }

// pbx scripts Asterisk for a dial: bridges, legs created and dialled as
// the agents say, and the caller's own requests as in basics.
func (s *scripted) pbx(agents map[string]agent) func(r restReq) reply {
	var mu sync.Mutex
	legs := map[string]agent{}
	legOf := func(id string) (agent, bool) {
		mu.Lock()
		defer mu.Unlock()
		ag, ok := legs[id]
		return ag, ok
	}
	return func(r restReq) reply {
		ag, isLeg := legOf(r.seg(1))
		switch {
		case r.is("POST /bridges"):
			id := r.Query.Get("bridgeId")
			s.mu.Lock()
			s.bridges[id] = true
			s.mu.Unlock()
			return answered(200, fmt.Sprintf(`{"id":%q,"technology":"simple_bridge","bridge_type":"mixing","bridge_class":"stasis","creator":"Stasis","name":%q,"channels":[],"creationtime":"2026-11-21T05:05:48.249+0000","video_mode":"talker"}`, id, r.Query.Get("name")))
		case r.is("DELETE /bridges/*"):
			s.mu.Lock()
			ok := s.bridges[r.seg(1)]
			delete(s.bridges, r.seg(1))
			s.mu.Unlock()
			if !ok {
				return refused(404, "Bridge not found")
			}
		case r.is("POST /bridges/*/addChannel"):
			ids := strings.Split(r.Query.Get("channel"), ",")
			for _, id := range ids {
				if !s.inStasis(id) {
					return refused(422, "Channel not in Stasis application")
				}
			}
			for _, id := range ids {
				if ag, ok := legOf(id); ok && ag.onBridged != nil {
					caller := ids[0]
					s.async(func() { ag.onBridged(s, id, caller) })
				}
			}
		case r.is("POST /bridges/*/record"):
			return answered(201, fmt.Sprintf(`{"name":%q,"format":"wav","state":"queued","target_uri":"bridge:%s"}`, r.Query.Get("name"), r.seg(1)))
		case r.is("POST /channels/create"):
			ag, ok := agents[r.Query.Get("endpoint")]
			if !ok || ag.unknown {
				return answered(500, `{"error":"Allocation failed"}`)
			}
			leg := r.Query.Get("channelId")
			args := strings.Split(r.Query.Get("appArgs"), ",")
			mu.Lock()
			legs[leg] = ag
			mu.Unlock()
			ch := s.channel(leg)
			s.mu.Lock()
			ch.name, ch.state, ch.args = r.Query.Get("endpoint")+"-00000001;1", "Down", args
			body, _ := json.Marshal(ch.json())
			s.mu.Unlock()
			enter := func() { s.stasisStart(fakeChan{id: leg, name: ch.name, state: "Down", args: args}) }
			switch ag.stasis {
			case "":
				enter()
			case "late":
				s.async(func() {
					time.Sleep(10 * time.Millisecond)
					enter()
				})
			}
			return answered(200, string(body))
		case isLeg && r.is("POST /channels/*/dial"):
			if !s.inStasis(r.seg(1)) {
				if !ag.left409 {
					s.violation("dial before StasisStart: %s", r.seg(1))
				}
				return refused(409, "Channel not in Stasis application")
			}
			if ag.left409 {
				return refused(409, "Channel not in Stasis application")
			}
			if ag.onDial != nil {
				ag.onDial(s, r.seg(1), r.Query.Get("caller"))
			}
		case isLeg && r.is("POST /channels/*/play/*"):
			rep := s.playToEnd(r)
			s.press(r.seg(1), ag.keys)
			return rep
		case isLeg && r.is("GET /channels/*"):
			if s.channel(r.seg(1)).gone {
				return refused(404, "Channel not found")
			}
			return answered(200, mustJSON(s.chanJSON(r.seg(1))))
		case isLeg && r.is("DELETE /channels/*"):
			if s.channel(r.seg(1)).gone {
				return refused(404, "Channel not found")
			}
			s.hangup(r.seg(1), 16, true)
		case r.is("GET /channels"), r.is("GET /bridges"):
			rep, _ := s.listing(r)
			return rep
		default:
			return s.basics(r)
		}
		return reply{}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// leftBehind lists the legs and bridges a dial made that still exist.
func (s *scripted) leftBehind(caller string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, ch := range s.chans {
		if id != caller && !ch.gone {
			out = append(out, "leg "+id)
		}
	}
	for id := range s.bridges {
		out = append(out, "bridge "+id)
	}
	return out
}

func TestDial(t *testing.T) {
	one := func(ag agent) map[string]agent { return map[string]agent{"PJSIP/a": ag} }
	to := func(targets ...string) call.DialSpec {
		return call.DialSpec{Targets: targets, RingTimeout: 20 * time.Second}
	}
	answersThenHangsUp := agent{onDial: answers, onBridged: agentHangsUp}
	whisper := func(spec call.DialSpec, accept string) call.DialSpec {
		spec.Whisper, spec.Accept = []call.Media{"sound:call-for-acme"}, accept
		return spec
	}
	cases := []struct {
		name     string
		caller   string // the caller's state; "Up" when empty
		spec     call.DialSpec
		agents   map[string]agent
		override func(s *scripted, r restReq) (reply, bool)
		tune     func(*guards)
		want     call.DialStatus
		target   string
		err      error
		check    func(t *testing.T, s *scripted, c *Call, res call.DialResult)
	}{
		{name: "answered: bridged until the agent hangs up", spec: to("PJSIP/a"), agents: one(answersThenHangsUp),
			want: call.Answered, target: "PJSIP/a",
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				checkSent(t, s, c, []string{
					"POST /channels/create", "POST /bridges", "POST /channels/C/ring", "POST /channels/C-l2/dial",
					"DELETE /channels/C/ring", "POST /bridges/C-b1/addChannel", "DELETE /bridges/C-b1",
				})
				create := s.sent("POST /channels/create")[0].Query
				if create.Get("endpoint") != "PJSIP/a" || create.Get("app") != "callflow" || create.Get("appArgs") != "dialed,"+c.id ||
					create.Get("channelId") != c.id+"-l2" || create.Get("originator") != c.id {
					t.Errorf("create %v", create)
				}
				if q := s.sent("POST /channels/*/dial")[0].Query; q.Get("caller") != c.id || q.Get("timeout") != "20" {
					t.Errorf("dial %v", q)
				}
				if q := s.sent("POST /bridges/*/addChannel")[0].Query; q.Get("channel") != c.id+","+c.id+"-l2" {
					t.Errorf("addChannel %v", q)
				}
				if q := s.sent("POST /bridges")[0].Query; q.Get("type") != "mixing" {
					t.Errorf("bridge %v", q)
				}
			}},
		{name: "answered: the leg's StasisStart after the create answer; dialled only then", spec: to("PJSIP/a"),
			agents: one(agent{stasis: "late", onDial: answers, onBridged: agentHangsUp}), want: call.Answered, target: "PJSIP/a"},
		{name: "answered: music on hold instead of ringing, the conversation recorded", caller: "Ring",
			spec:   call.DialSpec{Targets: []string{"PJSIP/a"}, Music: "default", Record: true},
			agents: one(answersThenHangsUp), want: call.Answered, target: "PJSIP/a",
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				checkSent(t, s, c, []string{
					"POST /channels/create", "POST /bridges", "POST /channels/C/moh", "POST /channels/C-l2/dial",
					"DELETE /channels/C/moh", "POST /channels/C/answer", "POST /bridges/C-b1/addChannel", "POST /bridges/C-b1/record", "DELETE /bridges/C-b1",
				})
				if q := s.sent("POST /channels/*/moh")[0].Query; q.Get("mohClass") != "default" {
					t.Errorf("moh %v", q)
				}
				rec := s.sent("POST /bridges/*/record")[0].Query
				if res.Recording == "" || rec.Get("name") != res.Recording || rec.Get("format") != "wav" {
					t.Errorf("recording %q, request %v", res.Recording, rec)
				}
				if q := s.sent("POST /channels/*/dial")[0].Query; q.Get("timeout") != "30" {
					t.Errorf("default ring timeout: %v", q)
				}
			}},
		{name: "the caller id goes on the legs", spec: call.DialSpec{Targets: []string{"PJSIP/a"}, CallerID: "+15550009999"},
			agents: one(answersThenHangsUp), want: call.Answered, target: "PJSIP/a",
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				if b := s.sent("POST /channels/create")[0].Body; b != `{"variables":{"CALLERID(num)":"+15550009999"}}` {
					t.Errorf("create body %s", b)
				}
			}},
		{name: "no answer: the ring timeout as Asterisk 20 reports it, without NOANSWER", spec: to("PJSIP/a"),
			agents: one(agent{onDial: ringsOut}), want: call.NoAnswer,
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				if n := len(s.sent("DELETE /channels/C-l2")); n != 0 {
					t.Errorf("a leg Asterisk ended was hung up again (%d)", n)
				}
			}},
		{name: "no answer: our own guard ends a leg Asterisk never ends", spec: call.DialSpec{Targets: []string{"PJSIP/a"}, RingTimeout: 10 * time.Millisecond},
			agents: one(agent{onDial: rings}), tune: func(g *guards) { g.ringMargin = 0 }, want: call.NoAnswer,
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				if q := s.sent("POST /channels/*/dial")[0].Query; q.Get("timeout") != "1" {
					t.Errorf("ring timeout rounded to whole seconds: %v", q)
				}
			}},
		{name: "busy", spec: to("PJSIP/a"), agents: one(agent{onDial: busy}), want: call.Busy},
		{name: "busy by the cause of the hang-up alone", spec: to("PJSIP/a"),
			agents: one(agent{onDial: func(s *scripted, leg, _ string) { s.dialEvent(leg, ""); s.hangup(leg, 17, true) }}), want: call.Busy},
		{name: "congestion fails", spec: to("PJSIP/a"), agents: one(agent{onDial: congested}), want: call.Failed},
		{name: "an unknown endpoint fails", spec: to("Bogus/1"), want: call.Failed,
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				if n := len(s.sent("DELETE /channels/C-l2")); n != 0 {
					t.Error("a leg Asterisk never made was hung up")
				}
			}},
		{name: "busy and congested fail", spec: to("PJSIP/a", "PJSIP/b"),
			agents: map[string]agent{"PJSIP/a": {onDial: busy}, "PJSIP/b": {onDial: congested}}, want: call.Failed},
		{name: "all busy is busy", spec: to("PJSIP/a", "PJSIP/b"),
			agents: map[string]agent{"PJSIP/a": {onDial: busy}, "PJSIP/b": {onDial: busy}}, want: call.Busy},
		{name: "busy and no answer is no answer", spec: to("PJSIP/a", "PJSIP/b"),
			agents: map[string]agent{"PJSIP/a": {onDial: busy}, "PJSIP/b": {onDial: ringsOut}}, want: call.NoAnswer},
		{name: "the first to answer wins; the others are hung up", spec: to("PJSIP/a", "PJSIP/b", "PJSIP/c", "Bogus/x"),
			agents: map[string]agent{"PJSIP/a": {onDial: rings}, "PJSIP/b": answersThenHangsUp, "PJSIP/c": {onDial: answers}},
			want:   call.Answered, target: "PJSIP/b",
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				for _, leg := range []string{"C-l2", "C-l4"} {
					if len(s.sent("DELETE /channels/"+strings.Replace(leg, "C", c.id, 1))) != 1 {
						t.Errorf("%s not hung up", leg)
					}
				}
			}},
		{name: "the 409 of a /dial before StasisStart: a leg that never arrives is never dialled and fails",
			spec: to("PJSIP/a"), agents: one(agent{stasis: "never"}), tune: func(g *guards) { g.stasisWait = 10 * time.Millisecond },
			want: call.Failed,
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				checkSent(t, s, c, []string{"POST /channels/create", "POST /bridges", "POST /channels/C/ring", "DELETE /channels/C-l2",
					"DELETE /channels/C/ring", "DELETE /bridges/C-b1"})
			}},
		{name: "a /dial refused with 409 (the leg left Stasis) fails that leg", spec: to("PJSIP/a", "PJSIP/b"),
			agents: map[string]agent{"PJSIP/a": {left409: true}, "PJSIP/b": {onDial: ringsOut}}, want: call.NoAnswer},
		{name: "whisper accepted by the agent's key; the caller does not hear it", spec: whisper(to("PJSIP/a"), "1"),
			agents: one(agent{onDial: answers, keys: "1", onBridged: agentHangsUp}), want: call.Answered, target: "PJSIP/a",
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				plays := s.sent("POST /channels/*/play/*")
				if len(plays) < 1 || plays[0].seg(1) != c.id+"-l2" || plays[0].Query.Get("media") != "sound:call-for-acme" {
					t.Errorf("whisper %v", plays)
				}
			}},
		{name: "whisper rejected by a wrong key", spec: whisper(to("PJSIP/a"), "1"),
			agents: one(agent{onDial: answers, keys: "9"}), want: call.NoAnswer},
		{name: "whisper rejected by one agent, accepted by another", spec: whisper(to("PJSIP/a", "PJSIP/b"), "1"),
			agents: map[string]agent{"PJSIP/a": {onDial: answers, keys: "9"}, "PJSIP/b": {onDial: answers, keys: "1", onBridged: agentHangsUp}},
			want:   call.Answered, target: "PJSIP/b"},
		{name: "whisper with no key before the accept time is no answer", spec: whisper(to("PJSIP/a"), "1"),
			agents: one(agent{onDial: answers}), tune: func(g *guards) { g.acceptTimeout = 10 * time.Millisecond }, want: call.NoAnswer},
		{name: "whisper without an accept key: bridged when it ends", spec: whisper(to("PJSIP/a"), ""),
			agents: one(answersThenHangsUp), want: call.Answered, target: "PJSIP/a"},
		{name: "an answer lost while disconnected is found by the resync", spec: to("PJSIP/a"),
			agents: one(agent{onBridged: agentHangsUp, onDial: func(s *scripted, leg, caller string) {
				rings(s, leg, caller)
				s.mu.Lock()
				s.chans[leg].state = "Up" // its events lost in the gap
				s.mu.Unlock()
				s.async(s.reconnected)
			}}),
			want: call.Answered, target: "PJSIP/a"},
		{name: "a leg found gone after a reconnect is no answer", spec: to("PJSIP/a"),
			agents: one(agent{onDial: func(s *scripted, leg, caller string) {
				rings(s, leg, caller)
				s.mu.Lock()
				s.chans[leg].gone = true // its events lost in the gap
				s.mu.Unlock()
				s.async(s.reconnected)
			}}),
			want: call.NoAnswer,
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				if n := len(s.sent("DELETE /channels/" + c.id + "-l2")); n != 0 {
					t.Errorf("a leg known gone was hung up (%d), or the ring guard ended it", n)
				}
			}},
		{name: "the caller hangs up while it rings", caller: "Ring", spec: to("PJSIP/a", "PJSIP/b"),
			agents: map[string]agent{"PJSIP/a": {onDial: rings}, "PJSIP/b": {onDial: func(s *scripted, leg, caller string) {
				rings(s, leg, caller)
				s.async(func() { callerHangsUp(s, leg, caller) })
			}}},
			err: call.ErrHangup,
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				if len(s.sent("POST /channels/*/ring")) != 1 || len(s.sent("DELETE /channels/*/ring")) != 0 {
					t.Errorf("ringing of a caller who left: %v", sentBy(s, c))
				}
			}},
		{name: "the caller hangs up while bridged", caller: "Ring", spec: to("PJSIP/a"),
			agents: one(agent{onDial: answers, onBridged: callerHangsUp}), want: call.Answered, target: "PJSIP/a", err: call.ErrHangup,
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				if len(s.sent("POST /channels/*/answer")) != 1 {
					t.Error("caller not answered before bridging")
				}
			}},
		{name: "no bridge, no dial: the leg already asked for is hung up", spec: to("PJSIP/a"), agents: one(answersThenHangsUp),
			override: func(s *scripted, r restReq) (reply, bool) {
				return answered(500, `{"error":"Allocation failed"}`), r.is("POST /bridges")
			},
			want: call.Failed,
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				checkSent(t, s, c, []string{"POST /channels/create", "POST /bridges", "DELETE /channels/C-l2"})
			}},
		{name: "the first leg is asked for before the bridge and the ringback", spec: to("PJSIP/a", "PJSIP/b"),
			agents: map[string]agent{"PJSIP/a": answersThenHangsUp, "PJSIP/b": {onDial: rings}}, want: call.Answered, target: "PJSIP/a",
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				got := sentBy(s, c)
				if len(got) < 4 || got[0] != "POST /channels/create" || got[1] != "POST /channels/create" || got[2] != "POST /bridges" {
					t.Errorf("order %v", got)
				}
			}},
		{name: "a ringback Asterisk refuses does not stop the dial", spec: to("PJSIP/a"), agents: one(answersThenHangsUp),
			override: func(s *scripted, r restReq) (reply, bool) {
				return refused(500, "Internal Server Error"), r.is("POST /channels/*/ring")
			},
			want: call.Answered, target: "PJSIP/a"},
		{name: "a caller gone when the ringback starts has hung up", spec: to("PJSIP/a"), agents: one(answersThenHangsUp),
			override: func(s *scripted, r restReq) (reply, bool) {
				return refused(404, "Channel not found"), r.is("POST /channels/*/ring")
			},
			err: call.ErrHangup,
			check: func(t *testing.T, s *scripted, c *Call, res call.DialResult) {
				if len(s.sent("POST /channels/*/dial")) != 0 {
					t.Error("dialled for a caller who left")
				}
				if len(s.sent("DELETE /channels/"+c.id+"-l2")) != 1 {
					t.Errorf("the leg asked for is left behind: %v", sentBy(s, c))
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newScripted(t, nil)
			if tc.tune != nil {
				tc.tune(&s.app.guards)
			}
			state := tc.caller
			if state == "" {
				state = "Up"
			}
			c := s.call(state)
			pbx := s.pbx(tc.agents)
			s.answer = func(r restReq) reply {
				if tc.override != nil {
					if rep, ok := tc.override(s, r); ok {
						return rep
					}
				}
				return pbx(r)
			}
			res, err := c.Dial(context.Background(), tc.spec)
			checkErr(t, err, tc.err)
			if res.Status != tc.want || res.Target != tc.target {
				t.Fatalf("got %+v, want %s %q", res, tc.want, tc.target)
			}
			if res.Status == call.Answered && (res.TalkTime <= 0 || res.Answered.IsZero()) {
				t.Errorf("no talk time: %+v", res)
			}
			s.bg.Wait()
			if left := s.leftBehind(c.id); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			s.app.mu.RLock()
			routes, owned := len(s.app.routes), len(c.owned)
			s.app.mu.RUnlock()
			if routes != 1 || owned != 0 {
				t.Errorf("%d routes, %d owned by the call: legs and bridges not disowned", routes, owned)
			}
			// Legs use the caller's codecs and are never taken for calls.
			for _, r := range s.sent("POST /channels/create") {
				if q := r.Query; q.Get("originator") != c.id || q.Get("appArgs") != "dialed,"+c.id || !strings.HasPrefix(q.Get("channelId"), c.id+"-l") {
					t.Errorf("create %v", q)
				}
			}
			if tc.check != nil {
				tc.check(t, s, c, res)
			}
			if err == nil {
				// The caller stays for the next step.
				if _, err := c.Play(context.Background(), call.PlaySpec{Media: []call.Media{"sound:after"}}); err != nil {
					t.Errorf("play after the dial: %v", err)
				}
			}
		})
	}
	t.Run("no target fails at once", func(t *testing.T) {
		s := newScripted(t, nil)
		c := s.call("Up")
		s.answer = s.basics
		res, err := c.Dial(context.Background(), call.DialSpec{})
		if err != nil || res.Status != call.Failed || len(s.requests()) != 0 {
			t.Fatalf("%+v %v, sent %v", res, err, s.requests())
		}
	})
}

// ---- end to end, against aritest's fake Asterisk ----

type dialEndToEnd struct {
	name    string
	agents  map[string]aritest.AgentBehavior
	spec    call.DialSpec
	want    call.DialStatus
	target  string
	opts    aritest.Options
	noAns   bool // do not answer the caller before dialling
	agentBy bool // the agent ends the conversation
}

func TestDialEndToEnd(t *testing.T) {
	ans := func(ring, hang time.Duration) aritest.AgentBehavior {
		return aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: ring, HangupAfter: hang}
	}
	cases := []dialEndToEnd{
		{name: "answered, agent hangs up first", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": ans(2*time.Second, 3*time.Second)},
			spec: call.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 20 * time.Second}, want: call.Answered, target: "PJSIP/tech1", agentBy: true},
		{name: "answered, caller not answered before, stasis first, recorded", noAns: true, opts: aritest.Options{CreateStasisDelay: -1},
			agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": ans(time.Second, 2*time.Second)},
			spec:   call.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 20 * time.Second, Record: true, Music: "default"}, want: call.Answered, target: "PJSIP/tech1", agentBy: true},
		{name: "answered, stasis late", opts: aritest.Options{CreateStasisDelay: 30 * time.Millisecond},
			agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": ans(time.Second, 2*time.Second)},
			spec:   call.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 20 * time.Second}, want: call.Answered, target: "PJSIP/tech1", agentBy: true},
		{name: "no answer", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": {Mode: aritest.AgentNoAnswer}},
			spec: call.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 6 * time.Second}, want: call.NoAnswer},
		{name: "busy", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": {Mode: aritest.AgentBusy, HangupAfter: 5 * time.Second}},
			spec: call.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 15 * time.Second}, want: call.Busy},
		{name: "congestion", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": {Mode: aritest.AgentCongestion, HangupAfter: 5 * time.Second}},
			spec: call.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 15 * time.Second}, want: call.Failed},
		{name: "unknown endpoint", spec: call.DialSpec{Targets: []string{"PJSIP/nobody"}, RingTimeout: 15 * time.Second}, want: call.Failed},
		{name: "all busy", agents: map[string]aritest.AgentBehavior{"PJSIP/a": {Mode: aritest.AgentBusy}, "PJSIP/b": {Mode: aritest.AgentBusy, RingFor: time.Second}},
			spec: call.DialSpec{Targets: []string{"PJSIP/a", "PJSIP/b"}, RingTimeout: 15 * time.Second}, want: call.Busy},
		{name: "busy and no answer", agents: map[string]aritest.AgentBehavior{"PJSIP/a": {Mode: aritest.AgentBusy}, "PJSIP/b": {Mode: aritest.AgentNoAnswer}},
			spec: call.DialSpec{Targets: []string{"PJSIP/a", "PJSIP/b"}, RingTimeout: 5 * time.Second}, want: call.NoAnswer},
		{name: "first to answer wins", agents: map[string]aritest.AgentBehavior{
			"PJSIP/a": {Mode: aritest.AgentNoAnswer}, "PJSIP/b": ans(2*time.Second, 2*time.Second), "PJSIP/c": ans(6*time.Second, 2*time.Second), "PJSIP/d": {Mode: aritest.AgentBusy}},
			spec: call.DialSpec{Targets: []string{"PJSIP/a", "PJSIP/b", "PJSIP/c", "PJSIP/d", "PJSIP/unknown"}, RingTimeout: 20 * time.Second}, want: call.Answered, target: "PJSIP/b", agentBy: true},
		{name: "whisper accepted", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": {Mode: aritest.AgentAnswer, RingFor: time.Second, Keys: "1", KeysAfter: 3 * time.Second, HangupAfter: 6 * time.Second}},
			spec: call.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 20 * time.Second, Whisper: []call.Media{"sound:call-for-acme"}, Accept: "1"}, want: call.Answered, target: "PJSIP/tech1", agentBy: true},
		{name: "whisper rejected", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": {Mode: aritest.AgentAnswer, RingFor: time.Second, Keys: "9", KeysAfter: 3 * time.Second}},
			spec: call.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 20 * time.Second, Whisper: []call.Media{"sound:call-for-acme"}, Accept: "1"}, want: call.NoAnswer},
		{name: "whisper rejected by one, accepted by the other", agents: map[string]aritest.AgentBehavior{
			"PJSIP/a": {Mode: aritest.AgentAnswer, RingFor: time.Second, Keys: "9", KeysAfter: 3 * time.Second},
			"PJSIP/b": {Mode: aritest.AgentAnswer, RingFor: 8 * time.Second, Keys: "1", KeysAfter: 3 * time.Second, HangupAfter: 6 * time.Second}},
			spec: call.DialSpec{Targets: []string{"PJSIP/a", "PJSIP/b"}, RingTimeout: 20 * time.Second, Whisper: []call.Media{"sound:call-for-acme"}, Accept: "1"}, want: call.Answered, target: "PJSIP/b", agentBy: true},
		{name: "whisper no key", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": ans(time.Second, 0)},
			spec: call.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 20 * time.Second, Whisper: []call.Media{"sound:call-for-acme"}, Accept: "1"}, want: call.NoAnswer},
		{name: "whisper without accept", agents: map[string]aritest.AgentBehavior{"PJSIP/tech1": ans(time.Second, 3*time.Second)},
			spec: call.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 20 * time.Second, Whisper: []call.Media{"sound:call-for-acme"}}, want: call.Answered, target: "PJSIP/tech1", agentBy: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := newResult()
			h := dialHandler(res, tc.spec, !tc.noAns)
			tune := func(g *guards) {
				if tc.name == "whisper no key" {
					g.acceptTimeout = 300 * time.Millisecond
				}
			}
			fh := startFake(t, tc.opts, h, nil, tune)
			for ep, b := range tc.agents {
				fh.srv.SetAgent(ep, b)
			}
			caller := fh.call(aritest.CallSpec{Exten: "300", From: "5551239999"})
			r, err := dialOutcome(t, res)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			if r.Status != tc.want || r.Target != tc.target {
				t.Fatalf("got %+v, want %s %s", r, tc.want, tc.target)
			}
			if r.Status == call.Answered && (r.TalkTime <= 0 || r.Answered.IsZero()) {
				t.Errorf("no talk time: %+v", r)
			}
			if tc.spec.Record != (r.Recording != "") {
				t.Errorf("recording %q", r.Recording)
			}
			// The caller stays for the next step.
			if got := res.get(); len(got) < 3 || got[2] != nil {
				t.Errorf("play after the dial: %v", got)
			}
			checkFakeClean(t, fh, caller.ID())
			if tc.spec.Whisper != nil && r.Status == call.Answered {
				if strings.Contains(strings.Join(caller.Heard(), " "), "call-for-acme") {
					t.Error("the caller heard the whisper")
				}
			}
		})
	}
}

func TestDialCallerHangsUpEndToEnd(t *testing.T) {
	for _, bridged := range []bool{false, true} {
		name := "while ringing"
		if bridged {
			name = "while bridged"
		}
		t.Run(name, func(t *testing.T) {
			res := newResult()
			targets := []string{"PJSIP/a", "PJSIP/b"}
			fh := startFake(t, aritest.Options{}, dialHandler(res, call.DialSpec{Targets: targets, RingTimeout: 30 * time.Second}, true), nil)
			fh.srv.SetAgent("PJSIP/a", aritest.AgentBehavior{Mode: aritest.AgentNoAnswer})
			if bridged {
				fh.srv.SetAgent("PJSIP/b", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: time.Second})
			} else {
				fh.srv.SetAgent("PJSIP/b", aritest.AgentBehavior{Mode: aritest.AgentNoAnswer})
			}
			caller := fh.call(aritest.CallSpec{Exten: "300"})
			ctx := tctx(t, 5*time.Second)
			if bridged {
				if ep, err := caller.WaitBridged(ctx); err != nil || ep != "PJSIP/b" {
					t.Fatalf("bridged with %q: %v", ep, err)
				}
				time.Sleep(50 * time.Millisecond)
			} else {
				for len(fh.requests(func(r aritest.Request) bool { return strings.HasSuffix(r.Path, "/dial") })) < 2 {
					time.Sleep(2 * time.Millisecond)
				}
			}
			caller.Hangup()
			r, err := dialOutcome(t, res)
			if !errors.Is(err, call.ErrHangup) {
				t.Fatalf("err %v", err)
			}
			if bridged != (r.Status == call.Answered) {
				t.Errorf("result %+v", r)
			}
			checkFakeClean(t, fh, caller.ID())
		})
	}
}

func TestOwnLegsNeverInboundEndToEnd(t *testing.T) {
	var calls atomic.Int32
	res := newResult()
	inner := dialHandler(res, call.DialSpec{Targets: []string{"PJSIP/a", "PJSIP/b"}, RingTimeout: 10 * time.Second, CallerID: "+15550009999"}, true)
	h := handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
		calls.Add(1)
		inner.HandleCall(ctx, c, in)
	})
	fh := startFake(t, aritest.Options{}, h, nil)
	fh.srv.SetAgent("PJSIP/a", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: time.Second, HangupAfter: time.Second})
	fh.srv.SetAgent("PJSIP/b", aritest.AgentBehavior{Mode: aritest.AgentBusy})
	fh.call(aritest.CallSpec{Exten: "300"})
	if r, err := dialOutcome(t, res); err != nil || r.Status != call.Answered {
		t.Fatalf("%+v %v", r, err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times", n)
	}
	for _, ch := range fh.srv.History() {
		if !ch.Inbound && ch.Vars["CALLERID(num)"] != "+15550009999" {
			t.Errorf("leg %s caller id %v", ch.ID, ch.Vars)
		}
	}
}

// The agent answers while the websocket is down: the ANSWER is lost, and
// the resync finds the leg up and bridges it.
func TestDialAnswerLostInGapEndToEnd(t *testing.T) {
	res := newResult()
	fh := startFake(t, aritest.Options{TimeScale: 1}, dialHandler(res, call.DialSpec{Targets: []string{"PJSIP/tech1"}, RingTimeout: 10 * time.Second}, true),
		func(o *Options) { o.ReconnectMin, o.ReconnectMax = 500*time.Millisecond, 500*time.Millisecond })
	fh.srv.SetAgent("PJSIP/tech1", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 150 * time.Millisecond, HangupAfter: time.Second})
	caller := fh.call(aritest.CallSpec{Exten: "300"})
	end := time.Now().Add(5 * time.Second)
	for len(fh.requests(func(r aritest.Request) bool { return strings.HasSuffix(r.Path, "/dial") })) == 0 {
		if time.Now().After(end) {
			t.Fatal("never dialled")
		}
		time.Sleep(time.Millisecond)
	}
	fh.srv.DropWebsockets()
	if ep, err := caller.WaitBridged(tctx(t, 5*time.Second)); err != nil || ep != "PJSIP/tech1" {
		t.Fatalf("bridged with %q: %v", ep, err)
	}
	r, err := dialOutcome(t, res)
	if err != nil || r.Status != call.Answered {
		t.Fatalf("%+v %v", r, err)
	}
	checkFakeClean(t, fh, caller.ID())
}
