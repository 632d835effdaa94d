package ari

import (
	"context"
	"testing"
	"time"

	"github.com/callflow/callflow/applets/call"
	"github.com/callflow/callflow/ari/aritest"
)

// A callback over ARI: the agent's phone is rung with no caller on the
// line, and once it answers the caller is called back from it and the two
// are bridged; whoever hangs up, nothing is left behind.
func TestOriginateCallbackEndToEnd(t *testing.T) {
	ans := func(ring, hang time.Duration) aritest.AgentBehavior {
		return aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: ring, HangupAfter: hang}
	}
	cases := []struct {
		name       string
		agents     map[string]aritest.AgentBehavior
		targets    []string
		want       call.DialStatus // the agent's phone
		wantTarget string
		back       call.DialStatus // the caller called back
	}{
		{name: "agent answers, caller answers", targets: []string{"PJSIP/alice"},
			agents: map[string]aritest.AgentBehavior{"PJSIP/alice": ans(time.Second, 0), "PJSIP/5551230000@trunk": ans(2*time.Second, 3*time.Second)},
			want:   call.Answered, wantTarget: "PJSIP/alice", back: call.Answered},
		{name: "first of two phones answers", targets: []string{"PJSIP/alice", "PJSIP/bob"},
			agents: map[string]aritest.AgentBehavior{"PJSIP/alice": {Mode: aritest.AgentNoAnswer}, "PJSIP/bob": ans(time.Second, 0), "PJSIP/5551230000@trunk": ans(time.Second, 2*time.Second)},
			want:   call.Answered, wantTarget: "PJSIP/bob", back: call.Answered},
		{name: "agent answers, caller does not", targets: []string{"PJSIP/alice"},
			agents: map[string]aritest.AgentBehavior{"PJSIP/alice": ans(time.Second, 0), "PJSIP/5551230000@trunk": {Mode: aritest.AgentNoAnswer}},
			want:   call.Answered, wantTarget: "PJSIP/alice", back: call.NoAnswer},
		{name: "agent busy", targets: []string{"PJSIP/alice"},
			agents: map[string]aritest.AgentBehavior{"PJSIP/alice": {Mode: aritest.AgentBusy}},
			want:   call.Busy},
		{name: "agent does not answer", targets: []string{"PJSIP/alice"},
			agents: map[string]aritest.AgentBehavior{"PJSIP/alice": {Mode: aritest.AgentNoAnswer}},
			want:   call.NoAnswer},
		{name: "no such endpoint", targets: []string{"PJSIP/nobody"}, want: call.Failed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fh := startFake(t, aritest.Options{}, call.HandlerFunc(func(ctx context.Context, c call.Call, in call.Inbound) {
				t.Errorf("an inbound call: %s", c.ID())
			}), nil)
			for ep, b := range tc.agents {
				fh.srv.SetAgent(ep, b)
			}
			ctx := context.Background()
			agent, res, release, err := fh.app.Originate(ctx, call.OriginateSpec{Targets: tc.targets, RingTimeout: 8 * time.Second, CallerID: "5551230000", Number: "300"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.want || res.Target != tc.wantTarget {
				t.Fatalf("agent: %+v, want %s %s", res, tc.want, tc.wantTarget)
			}
			if tc.want != call.Answered {
				if agent != nil || release != nil {
					t.Fatal("a call without an answer")
				}
				checkNothingLeft(t, fh)
				return
			}
			if agent.Called() != "300" {
				t.Errorf("called %q", agent.Called())
			}
			back, err := agent.Dial(ctx, call.DialSpec{Targets: []string{"PJSIP/5551230000@trunk"}, RingTimeout: 5 * time.Second, CallerID: "300"})
			if err != nil {
				t.Fatal(err)
			}
			if back.Status != tc.back {
				t.Fatalf("caller: %+v, want %s", back, tc.back)
			}
			if back.Status == call.Answered && back.TalkTime <= 0 {
				t.Errorf("no talk time: %+v", back)
			}
			for _, ch := range fh.srv.History() {
				if ch.SampleRate != 8000 {
					t.Errorf("%s made at %d Hz (formats %q, originator %q)", ch.Endpoint, ch.SampleRate, ch.Formats, ch.Originator)
				}
			}
			release()
			release() // once is enough; twice does no harm
			checkNothingLeft(t, fh)
		})
	}
}

// checkNothingLeft: no channel and no bridge stays, and the application
// counts no call.
func checkNothingLeft(t *testing.T, fh *fakeHarness) {
	t.Helper()
	waitUntil(t, "channels and bridges gone", func() bool {
		return len(fh.srv.Channels()) == 0 && len(fh.srv.Bridges()) == 0 && fh.app.Health().ActiveCalls == 0
	})
}
