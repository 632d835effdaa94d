package applets_test

import (
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
)

func TestRingInOrder(t *testing.T) {
	set := loadFlows(t, "ring_in_order.toml")
	cases := []struct {
		name    string
		agents  string
		outcome string
		dials   int
		ringing time.Duration // virtual time spent before the step ended
	}{
		// alice rings 10s (her own), bob 20s (the step's), carol 5s (hers).
		{"first-answers", "answered", "answered", 1, 0},
		{"second-answers", "no_answer,answered", "answered", 2, 10 * time.Second},
		{"no-answer-two-rounds", "", "no_answer", 6, 2 * 35 * time.Second},
		{"answered-in-second-round", "no_answer,no_answer,no_answer,answered", "answered", 4, 35 * time.Second},
		{"all-busy", "busy,busy,busy,busy,busy,busy", "busy", 6, 6 * time.Second},
		{"busy-and-no-answer", "busy,no_answer,busy,busy,busy,busy", "no_answer", 6, 5*time.Second + 20*time.Second},
		{"busy-and-failed", "busy,failed,busy,busy,failed,busy", "failed", 6, 6 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			script := scripted.Script{Agents: agents(c.agents), TalkTime: 90 * time.Second}
			sim, trace := simulate(t, set, "ring_in_order", script, nil)
			step := sim.Record.Steps[0]
			if step.Outcome != c.outcome {
				t.Errorf("outcome %q, want %q\n%s", step.Outcome, c.outcome, trace)
			}
			if n := len(sim.Record.Dials); n != c.dials {
				t.Errorf("%d dials, want %d", n, c.dials)
			}
			took := step.Ended.Sub(step.Started)
			if c.outcome == "answered" {
				took -= 5*time.Second + script.TalkTime // answering and talking
			}
			if took != c.ringing {
				t.Errorf("rang for %s, want %s", took, c.ringing)
			}
			golden(t, goldenFile("ring_in_order", c.name), trace)
		})
	}
}

func TestRingInOrderDialsInOrder(t *testing.T) {
	set := loadFlows(t, "ring_in_order.toml")
	sim, _ := simulate(t, set, "ring_in_order", scripted.Script{}, nil)
	var got []string
	for _, a := range sim.Call.Log() {
		if strings.HasPrefix(a, "dial ") {
			got = append(got, strings.Fields(a)[1])
		}
	}
	want := "PJSIP/alice PJSIP/bob PJSIP/carol PJSIP/alice PJSIP/bob PJSIP/carol"
	if strings.Join(got, " ") != want {
		t.Fatalf("dialled %v, want %s", got, want)
	}
}

func huntFlow(applet, params string) string {
	return "name = \"h\"\nstatus = \"draft\"\n[[steps]]\nid = \"h\"\napplet = \"" + applet + "\"\n" + params + "\n[[steps]]\nid = \"end\"\napplet = \"hangup\"\n"
}

func TestRingInOrderChecks(t *testing.T) {
	cases := []struct {
		name   string
		params string
		sev    flows.Severity
		parts  []string
	}{
		{"valid", `to = ["PJSIP/1", { target = "PJSIP/2", ring_timeout = "15s" }]`, "", nil},
		{"empty", `to = []`, flows.Error, []string{"`to` is empty"}},
		{"bare-number", `to = ["+15551234567"]`, flows.Error, []string{"not a dial string"}},
		{"table-without-target", `to = [{ ring_timeout = "15s" }]`, flows.Error, []string{"empty destination"}},
		{"unknown-table-key", `to = [{ target = "PJSIP/1", timeout = "15s" }]`, flows.Error, []string{`unknown key "timeout"`}},
		{"target-ring-timeout-too-short", `to = [{ target = "PJSIP/1", ring_timeout = "500ms" }]`, flows.Error, []string{"between 1s and 10m"}},
		{"bad-ring-timeout", `to = [{ target = "PJSIP/1", ring_timeout = "soon" }]`, flows.Error, []string{"bad duration"}},
		{"rounds-zero", `to = ["PJSIP/1"]` + "\nrounds = 0", flows.Error, []string{"rounds must be between 1 and 10"}},
		{"long-hunt", `to = ["PJSIP/1", "PJSIP/2", "PJSIP/3"]` + "\nring_timeout = \"2m\"\nrounds = 2", flows.Warning, []string{"may ring for 12m0s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probs := lintSource(t, huntFlow("ring_in_order", c.params), nil)
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

// A caller who hangs up while an agent rings ends the hunt there.
func TestRingInOrderCallerHangsUp(t *testing.T) {
	set := loadFlows(t, "ring_in_order.toml")
	sim, trace := simulate(t, set, "ring_in_order", scripted.Script{HangupAt: 2}, nil)
	if sim.Record.Outcome != "hangup" || sim.Record.Steps[0].Outcome != "hangup" || !sim.Record.Abandoned {
		t.Fatalf("call %s, abandoned %v\n%s", sim.Record.Outcome, sim.Record.Abandoned, trace)
	}
	if n := len(sim.Call.Log()); n != 2 {
		t.Fatalf("%d actions after the hang-up, want 2: %v", n, sim.Call.Log())
	}
}
