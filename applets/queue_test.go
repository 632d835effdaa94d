package applets_test

import (
	"strings"
	"testing"

	"github.com/callflow/callflow/applets/scripted"
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
