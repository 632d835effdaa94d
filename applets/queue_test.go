package applets_test

import (
	"context"
	"strings"
	"testing"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/queues"
	"github.com/rs/zerolog"
)

// A queue rings a free agent (the simulator's team stands for one) and
// goes on ringing, music between tries, until an agent answers, the caller
// leaves with an exit key, or the wait is over.
func TestQueueGolden(t *testing.T) {
	set := loadFlows(t, "queue.toml")
	cases := []struct {
		name, agents, keys, path string
	}{
		{"answered", "answered", "", "wait:answered"},
		{"answered-on-the-third-try", "no_answer,busy,answered", "", "wait:answered"},
		{"exit-key", "no_answer", "1", "wait:exit_key voicemail:recorded"},
		{"timeout", "no_answer", "", "wait:timeout voicemail:recorded"},
		{"agent-free-after-75s", "after=75s,answered", "", "wait:answered"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			as, after, err := scripted.ParseAgentScript(c.agents)
			if err != nil {
				t.Fatal(err)
			}
			script := scripted.Script{Agents: as, AgentsFreeAfter: after}
			if c.keys != "" {
				script.Inputs = []scripted.Input{{Keys: c.keys}}
			}
			sim, trace := simulate(t, set, "queue", script, nil)
			if got := stepOutcomes(sim.Record); got != c.path {
				t.Errorf("path %s, want %s\n%s", got, c.path, trace)
			}
			if c.name == "timeout" && !strings.Contains(trace, "sound:queue-youarenext") {
				t.Errorf("no position announced while waiting:\n%s", trace)
			}
			golden(t, goldenFile("queue", c.name), trace)
		})
	}
}

// noAgents is a team whose agents are all logged out.
type noAgents struct{}

func (noAgents) Resolve(context.Context, string) ([]applets.AgentLeg, error) { return nil, nil }
func (noAgents) Claim(a []string) (applets.Claim, []string)                  { return nil, nil }
func (noAgents) SetByCaller(context.Context, string, string, string) (string, string, error) {
	return "", "", applets.ErrNotAgent
}
func (noAgents) Members(context.Context, string) ([]applets.AgentInfo, error) {
	return []applets.AgentInfo{{Name: "alice", State: "logged_out", Endpoints: []string{"PJSIP/alice"}}}, nil
}

// A queue with max_callers waiting is full; one whose team has nobody
// logged in is no_agents when join_empty is false, and with
// leave_when_empty a caller who joined anyway leaves.
func TestQueueFullAndNoAgents(t *testing.T) {
	flow := func(extra string) *flows.Set {
		t.Helper()
		src := "name = \"q\"\n[[steps]]\nid = \"wait\"\napplet = \"queue\"\nteams = [\"support\"]\nmax_wait = \"1m\"\n" + extra +
			"on = { full = \"bye\", no_agents = \"bye\", timeout = \"bye\" }\n[[steps]]\nid = \"bye\"\napplet = \"hangup\"\n"
		f, probs := flows.Parse("q.toml", []byte(src), applets.Builtin(), flows.ParseOptions{})
		if f == nil || probs.HasErrors() {
			t.Fatalf("%v", probs)
		}
		return flows.NewSet(0, []*flows.Flow{f}, nil)
	}
	run := func(set *flows.Set, svc *applets.Services) string {
		t.Helper()
		sim, err := flows.Simulate(context.Background(), set, "q", flows.SimOptions{Script: scripted.Script{}, Log: zerolog.Nop(), Services: svc})
		if err != nil {
			t.Fatal(err)
		}
		return stepOutcomes(sim.Record)
	}
	full := queues.New(queues.Options{})
	full.Join("default/q/wait", applets.QueueCaller{ID: "a"})
	full.Join("default/q/wait", applets.QueueCaller{ID: "b"})
	if got := run(flow("max_callers = 2\n"), &applets.Services{Agents: noAgents{}, Queues: full}); got != "wait:full bye:hangup" {
		t.Errorf("two waiting, max 2: %s", got)
	}
	if got := run(flow("join_empty = false\n"), &applets.Services{Agents: noAgents{}, Queues: queues.New(queues.Options{})}); got != "wait:no_agents bye:hangup" {
		t.Errorf("nobody logged in, join_empty false: %s", got)
	}
	if got := run(flow("leave_when_empty = true\n"), &applets.Services{Agents: noAgents{}, Queues: queues.New(queues.Options{})}); got != "wait:no_agents bye:hangup" {
		t.Errorf("nobody logged in, leave_when_empty: %s", got)
	}
	if got := run(flow(""), &applets.Services{Agents: noAgents{}, Queues: queues.New(queues.Options{})}); got != "wait:timeout bye:hangup" {
		t.Errorf("nobody logged in, the defaults: %s", got)
	}
}
