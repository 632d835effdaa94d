package applets_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
	"github.com/rs/zerolog"
)

// deskAgents is a directory of one agent, alice at 1001, who starts
// logged out.
type deskAgents struct{ state string }

func (d *deskAgents) Resolve(ctx context.Context, target string) ([]applets.AgentLeg, error) {
	return nil, nil
}

func (d *deskAgents) Claim(agents []string) (applets.Claim, []string) { return nil, nil }

func (d *deskAgents) SetByCaller(ctx context.Context, caller, action, reason string) (string, string, error) {
	if caller != "1001" {
		return "", "", applets.ErrNotAgent
	}
	if d.state == "logged_out" {
		d.state = "available"
	} else {
		d.state = "logged_out"
	}
	return "alice", d.state, nil
}

// *45 toggles the calling agent: in, then out; a phone of nobody's is told so.
func TestAgentLoginTogglesTheCallingAgent(t *testing.T) {
	all, probs := flows.LoadFiles([]string{"../testdata/applets/agent_login.toml"}, applets.Builtin(), flows.ParseOptions{}, flows.LintOptions{})
	if probs.HasErrors() {
		t.Fatalf("testdata flow: %v", probs)
	}
	set := flows.NewSet(1, all, nil)
	svc := &applets.Services{Agents: &deskAgents{state: "logged_out"}}
	var out bytes.Buffer
	for _, from := range []string{"1001", "1001", "1002"} {
		script := scripted.Script{Start: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC), From: from, To: "*45"}
		sim, err := flows.Simulate(context.Background(), set, "agent_login", flows.SimOptions{Script: script, Log: zerolog.Nop(), Services: svc})
		if err != nil {
			t.Fatal(err)
		}
		flows.WriteTrace(&out, sim.Record)
	}
	golden(t, filepath.Join("../testdata/golden/applets", "agent_login-toggle.golden"), out.String())
}
