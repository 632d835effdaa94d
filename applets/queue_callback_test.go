package applets_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/queues"
)

func callbackFlow(t *testing.T, extra string) *flows.Set {
	t.Helper()
	src := "name = \"q\"\n[[steps]]\nid = \"wait\"\napplet = \"queue\"\nteams = [\"support\"]\nmax_wait = \"1m\"\n" +
		"callback_key = \"2\"\ncallback_dial = \"PJSIP/${number}@trunk\"\n" + extra +
		"on = { callback = \"bye\", timeout = \"bye\" }\n[[steps]]\nid = \"bye\"\napplet = \"hangup\"\n"
	f, probs := flows.Parse("q.toml", []byte(src), applets.Builtin(), flows.ParseOptions{})
	if f == nil || probs.HasErrors() {
		t.Fatalf("%v", probs)
	}
	return flows.NewSet(0, []*flows.Flow{f}, nil)
}

func TestQueueCallbackParamsAreChecked(t *testing.T) {
	cases := []struct{ params, want string }{
		{"callback_key = \"2\"", "callback_key needs callback_dial"},
		{"callback_key = \"2\"\ncallback_dial = \"PJSIP/5551234@trunk\"", "put ${number} where the caller's number goes"},
		{"callback_key = \"1\"\nexit_keys = \"1\"\ncallback_dial = \"PJSIP/${number}@trunk\"", "also one of exit_keys"},
		{"callback_key = \"12\"\ncallback_dial = \"PJSIP/${number}@trunk\"", "one phone key"},
		{"callback_key = \"2\"\ncallback_dial = \"PJSIP/${number}@trunk\"\ncallback_retry = \"1s\"", "callback_retry must be between"},
	}
	for _, c := range cases {
		src := "name = \"q\"\n[[steps]]\nid = \"wait\"\napplet = \"queue\"\nteams = [\"support\"]\n" + c.params + "\n"
		_, probs := flows.Parse("q.toml", []byte(src), applets.Builtin(), flows.ParseOptions{})
		if !probs.HasErrors() || !strings.Contains(fmt.Sprint(probs), c.want) {
			t.Errorf("%s: %v, want %q", c.params, probs, c.want)
		}
	}
}

// oneAgent is a team of alice, available or not.
type oneAgent struct {
	mu    sync.Mutex
	state string
}

func (a *oneAgent) set(s string) { a.mu.Lock(); a.state = s; a.mu.Unlock() }
func (a *oneAgent) Resolve(context.Context, string) ([]applets.AgentLeg, error) {
	return nil, nil
}
func (a *oneAgent) Claim(names []string) (applets.Claim, []string) { return nil, names }
func (a *oneAgent) SetByCaller(context.Context, string, string, string) (string, string, error) {
	return "", "", applets.ErrNotAgent
}
func (a *oneAgent) Members(context.Context, string) ([]applets.AgentInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return []applets.AgentInfo{{Name: "alice", State: a.state, Endpoints: []string{"PJSIP/alice"}}}, nil
}

type jobs struct{ list []applets.CallbackJob }

func (j *jobs) Start(job applets.CallbackJob) { j.list = append(j.list, job) }

// phones answer the agent's phone as agent says and, from it, the
// caller's as caller says; they keep what was dialled.
type phones struct {
	agent, caller applets.DialStatus
	dialled       []string
	away          int // the first requests fail: Asterisk away
}

func (p *phones) Originate(_ context.Context, spec applets.OriginateSpec) (applets.Call, applets.DialResult, func(), error) {
	if p.away > 0 {
		p.away--
		return nil, applets.DialResult{}, nil, errors.New("ari: not connected")
	}
	p.dialled = append(p.dialled, spec.Targets...)
	if p.agent != applets.Answered {
		return nil, applets.DialResult{Status: p.agent}, nil, nil
	}
	return &agentPhone{p: p}, applets.DialResult{Status: applets.Answered, Target: spec.Targets[0]}, func() {}, nil
}

// agentPhone is the agent's answered phone: Dial calls the caller back.
type agentPhone struct {
	applets.Call
	p *phones
}

func (a *agentPhone) Play(context.Context, applets.PlaySpec) (string, error) { return "", nil }
func (a *agentPhone) Dial(_ context.Context, spec applets.DialSpec) (applets.DialResult, error) {
	a.p.dialled = append(a.p.dialled, spec.Targets...)
	r := applets.DialResult{Status: a.p.caller}
	if r.Status == applets.Answered {
		r.Target, r.TalkTime = spec.Targets[0], 42*time.Second
	}
	return r, nil
}

// The caller presses the callback key: their flow goes on (callback) and
// their place stays in the queue; the job rings the agent, then calls the
// caller back from the agent's phone. A caller who does not answer is
// given up after callback_attempts.
func TestQueueCallbackKeepsThePlaceAndCallsBack(t *testing.T) {
	for _, tc := range []struct {
		name          string
		caller        applets.DialStatus
		away          int
		want, dialled string
	}{
		{"caller answers", applets.Answered, 0, "answered", "PJSIP/alice PJSIP/+15557654321@trunk"},
		{"caller does not answer", applets.NoAnswer, 0, "no_answer", "PJSIP/alice PJSIP/+15557654321@trunk"},
		{"asterisk away at first", applets.Answered, 1, "answered", "PJSIP/alice PJSIP/+15557654321@trunk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			team := &oneAgent{state: "paused"}
			qs := queues.New(queues.Options{})
			cbs := &jobs{}
			set := callbackFlow(t, "callback_attempts = 1\n")
			sim, trace := simulate(t, set, "q", scripted.Script{Inputs: []scripted.Input{{Keys: "2"}}},
				&applets.Services{Agents: team, Queues: qs, Callbacks: cbs})
			if got := stepOutcomes(sim.Record); got != "wait:callback bye:hangup" {
				t.Fatalf("path %s\n%s", got, trace)
			}
			if len(cbs.list) != 1 {
				t.Fatalf("callbacks asked: %d", len(cbs.list))
			}
			snap := qs.Snapshot()
			if len(snap) != 1 || len(snap[0].Waiting) != 1 || !snap[0].Waiting[0].Callback {
				t.Fatalf("the place is not kept: %+v", snap)
			}
			team.set("available")
			p := &phones{agent: applets.Answered, caller: tc.caller, away: tc.away}
			res := cbs.list[0].Run(context.Background(), p)
			if res.Outcome != tc.want || strings.Join(p.dialled, " ") != tc.dialled {
				t.Errorf("callback: %s after %v, want %s after %s", res.Outcome, p.dialled, tc.want, tc.dialled)
			}
			if legs, _ := res.Details["legs"].([]map[string]any); len(legs) != 2 || legs[1]["status"] != string(tc.caller) {
				t.Errorf("legs: %v", res.Details["legs"])
			}
			if snap := qs.Snapshot(); len(snap[0].Waiting) != 0 || snap[0].Answered != 1 {
				t.Errorf("the place is not given up: %+v", snap)
			}
		})
	}
}

// With no way to place calls (FastAGI only) the key is not offered and
// the step says why.
func TestQueueCallbackNotOfferedWithoutOriginator(t *testing.T) {
	set := callbackFlow(t, "")
	team := &oneAgent{state: "paused"}
	sim, trace := simulate(t, set, "q", scripted.Script{Inputs: []scripted.Input{{Keys: "2"}}},
		&applets.Services{Agents: team, Queues: queues.New(queues.Options{})})
	if got := stepOutcomes(sim.Record); got != "wait:timeout bye:hangup" {
		t.Errorf("path %s\n%s", got, trace)
	}
	if !strings.Contains(trace, "not offered: this node cannot place calls") {
		t.Errorf("no reason given:\n%s", trace)
	}
}
