package applets_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
)

// firstDial is the destination a call rang first.
func firstDial(sim *flows.Simulation) string {
	for _, a := range sim.Call.Log() {
		if strings.HasPrefix(a, "dial ") {
			return strings.Fields(a)[1]
		}
	}
	return ""
}

func TestRoundRobinGolden(t *testing.T) {
	set := loadFlows(t, "round_robin.toml")
	cases := []struct {
		name, agents, outcome string
	}{
		{"answered", "answered", "answered"},
		{"try-next-on-no-answer", "no_answer,answered", "answered"},
		{"try-next-on-busy", "busy,answered", "answered"},
		{"both-missed", "no_answer,busy", "no_answer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim, trace := simulate(t, set, "round_robin", scripted.Script{Agents: agents(c.agents)}, nil)
			if got := sim.Record.Steps[0].Outcome; got != c.outcome {
				t.Errorf("outcome %q, want %q\n%s", got, c.outcome, trace)
			}
			golden(t, goldenFile("round_robin", c.name), trace)
		})
	}
}

// Calls share the rotation through the counters: 30 calls over three
// agents start ten times with each, in turn.
func TestRoundRobinDistributesEvenly(t *testing.T) {
	set := loadFlows(t, "round_robin.toml")
	counters := &flows.MemCounters{}
	count := map[string]int{}
	var order []string
	for range 30 {
		sim, _ := simulate(t, set, "round_robin", scripted.Script{Agents: agents("answered")}, &applets.Services{Counters: counters})
		first := firstDial(sim)
		count[first]++
		order = append(order, first)
	}
	for _, a := range []string{"PJSIP/alice", "PJSIP/bob", "PJSIP/carol"} {
		if count[a] != 10 {
			t.Errorf("%s took %d calls, want 10 (%v)", a, count[a], count)
		}
	}
	if got := strings.Join(order[:4], " "); got != "PJSIP/alice PJSIP/bob PJSIP/carol PJSIP/alice" {
		t.Errorf("rotation %s", got)
	}
}

// try_next rings the next agent in the rotation, wrapping round the list,
// and does not move the rotation itself.
func TestRoundRobinTryNextWraps(t *testing.T) {
	set := loadFlows(t, "round_robin.toml")
	counters := &flows.MemCounters{}
	svc := func() *applets.Services { return &applets.Services{Counters: counters} }
	var dials [][]string
	for _, ag := range []string{"answered", "answered", "no_answer,no_answer", "answered"} {
		sim, _ := simulate(t, set, "round_robin", scripted.Script{Agents: agents(ag)}, svc())
		var d []string
		for _, a := range sim.Call.Log() {
			if strings.HasPrefix(a, "dial ") {
				d = append(d, strings.Fields(a)[1])
			}
		}
		dials = append(dials, d)
	}
	if got := strings.Join(dials[2], " "); got != "PJSIP/carol PJSIP/alice" {
		t.Errorf("third call dialled %s, want carol then alice", got)
	}
	if got := strings.Join(dials[3], " "); got != "PJSIP/alice" {
		t.Errorf("fourth call dialled %s, want alice", got)
	}
}

type failingCounters struct{}

func (failingCounters) Next(ctx context.Context, key string, n int) (int, error) {
	return 0, errors.New("database is locked")
}

type keyCounters struct{ keys []string }

func (k *keyCounters) Next(ctx context.Context, key string, n int) (int, error) {
	k.keys = append(k.keys, key)
	return 1, nil
}

func TestRoundRobinCounters(t *testing.T) {
	set := loadFlows(t, "round_robin.toml")
	t.Run("no-counters-starts-at-first", func(t *testing.T) {
		for range 3 {
			sim, _ := simulate(t, set, "round_robin", scripted.Script{Agents: agents("answered")}, &applets.Services{})
			if got := firstDial(sim); got != "PJSIP/alice" {
				t.Fatalf("first dial %s, want PJSIP/alice", got)
			}
		}
	})
	t.Run("counter-error-rings-first", func(t *testing.T) {
		sim, trace := simulate(t, set, "round_robin", scripted.Script{Agents: agents("answered")}, &applets.Services{Counters: failingCounters{}})
		if got := firstDial(sim); got != "PJSIP/alice" || sim.Record.Steps[0].Outcome != "answered" {
			t.Fatalf("first dial %s\n%s", got, trace)
		}
		if !strings.Contains(trace, "counter_error=database is locked") {
			t.Errorf("trace does not tell the counter failed:\n%s", trace)
		}
	})
	t.Run("key-is-workspace-flow-step", func(t *testing.T) {
		kc := &keyCounters{}
		sim, _ := simulate(t, set, "round_robin", scripted.Script{Agents: agents("answered")}, &applets.Services{Counters: kc})
		if len(kc.keys) != 1 || kc.keys[0] != "round_robin/default/round_robin/sales" {
			t.Fatalf("keys %q", kc.keys)
		}
		if got := firstDial(sim); got != "PJSIP/bob" {
			t.Fatalf("position 1 dialled %s, want PJSIP/bob", got)
		}
	})
}

func TestRoundRobinTryAll(t *testing.T) {
	set := setFromSource(t, huntFlow("round_robin", `to = ["PJSIP/1", "PJSIP/2", "PJSIP/3"]`+"\ntry_all = true"))
	sim, trace := simulate(t, set, "h", scripted.Script{Agents: agents("busy,busy,busy")}, nil)
	if sim.Record.Steps[0].Outcome != "busy" || len(sim.Record.Dials) != 3 {
		t.Fatalf("want three busy dials and busy:\n%s", trace)
	}
}

func TestRoundRobinChecks(t *testing.T) {
	cases := []struct {
		name   string
		params string
		sev    flows.Severity
		parts  []string
	}{
		{"valid", `to = ["PJSIP/1", "PJSIP/2"]` + "\ntry_next = 1", "", nil},
		{"empty", `to = []`, flows.Error, []string{"`to` is empty"}},
		{"both-tries", `to = ["PJSIP/1", "PJSIP/2"]` + "\ntry_next = 1\ntry_all = true", flows.Error, []string{"exclude each other"}},
		{"negative-try-next", `to = ["PJSIP/1", "PJSIP/2"]` + "\ntry_next = -1", flows.Error, []string{"must not be negative"}},
		{"try-next-too-big", `to = ["PJSIP/1", "PJSIP/2"]` + "\ntry_next = 5", flows.Warning, []string{"only 1 other destinations"}},
		{"one-destination", `to = ["PJSIP/1"]`, flows.Warning, []string{"use forward"}},
		{"string-not-list", `to = "PJSIP/1"`, flows.Error, []string{"want a list"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probs := lintSource(t, huntFlow("round_robin", c.params), nil)
			if c.sev == "" {
				if len(probs) > 0 {
					t.Fatalf("want no problem, got %v", probs)
				}
				return
			}
			if !hasProblem(probs, c.sev, c.parts...) {
				t.Fatalf("want a %s with %q, got %v", c.sev, c.parts, probs)
			}
		})
	}
}
