package server

import (
	"context"
	"testing"
	"time"

	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/presence"
	"github.com/callflow/callflow/store"
)

const teamFlow = `
name = "Team"
numbers = ["+914430000009"]
[[steps]]
id = "support"
applet = "multi_ring"
to = ["team:support"]
ring_timeout = "2s"
`

// withTeam makes, before the server starts, the support team of the given
// agents (the server follows their phones from its first connect).
func withTeam(t *testing.T, agents ...string) func(*config.Config) {
	return func(cfg *config.Config) {
		st, err := store.Open(context.Background(), cfg.Database, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		addTeam(t, st, agents...)
	}
}

// addTeam makes the support team of the given agents, each at PJSIP/NAME.
func addTeam(t *testing.T, st *store.Store, agents ...string) {
	t.Helper()
	ctx := context.Background()
	if err := st.CreateTeam(ctx, "support", ""); err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		if _, err := st.CreateUser(ctx, store.NewUser{Name: a, Password: "password1", Role: store.RoleStaff}); err != nil {
			t.Fatal(err)
		}
		if err := st.SetAgentEndpoints(ctx, a, []string{"PJSIP/" + a}); err != nil {
			t.Fatal(err)
		}
		if err := st.AddTeamMember(ctx, "support", a); err != nil {
			t.Fatal(err)
		}
	}
}

// waitState waits for Asterisk's word to reach the presence tracker.
func waitState(t *testing.T, tr *presence.Tracker, agent string, want presence.State) {
	t.Helper()
	for i := 0; tr.Status(agent).State != want; i++ {
		if i == 3000 {
			t.Fatalf("%s never became %s", agent, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A team rings its available members only: a paused agent and one whose
// phone Asterisk reports in use are skipped; with nobody left the dial
// ends busy without ringing anyone.
func TestTeamRingsAvailableAgentsOnly(t *testing.T) {
	ctx := context.Background()
	h := startWith(t, harnessOptions{flowsDir: writeFlowDir(t, map[string]string{"team.toml": teamFlow}),
		tweak: []func(*config.Config){withTeam(t, "alice", "bob", "carol")}})
	defer h.stop()
	for _, a := range []string{"PJSIP/alice", "PJSIP/bob"} {
		h.ast.SetAgent(a, answerQuick()) // would win if rung: they must not be
	}
	h.ast.SetAgent("PJSIP/carol", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 300 * time.Millisecond, HangupAfter: 200 * time.Millisecond})
	if err := h.srv.presence.Set(ctx, "alice", presence.Paused, "training"); err != nil {
		t.Fatal(err)
	}
	h.ast.SetDeviceState("PJSIP/bob", "INUSE") // bob took a call callflow did not place
	waitState(t, h.srv.presence, "bob", presence.Busy)

	c := h.call(aritest.CallSpec{Exten: "+914430000009"})
	hangupWhenDone(t, c)
	rec := h.record(c.ID())
	if stepPath(rec) != "support:answered" || len(rec.Dials) != 1 || rec.Dials[0].Target != "PJSIP/carol" {
		t.Fatalf("%s %+v, want carol to answer", stepPath(rec), rec.Dials)
	}

	if err := h.srv.presence.Set(ctx, "carol", presence.LoggedOut, ""); err != nil {
		t.Fatal(err)
	}
	c = h.call(aritest.CallSpec{Exten: "+914430000009"})
	hangupWhenDone(t, c)
	if rec := h.record(c.ID()); stepPath(rec) != "support:busy" || len(rec.Dials) != 0 {
		t.Errorf("nobody available: %s %+v, want busy without a dial", stepPath(rec), rec.Dials)
	}
}
