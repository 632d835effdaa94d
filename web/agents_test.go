package web

import (
	"context"
	"net/http"
	"testing"
)

// Agents set their own presence over the API; only an admin sets
// another's; the list shows each agent's state and endpoints.
func TestAgentPresenceAPI(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, a := range []string{"alice", "bob"} {
		if err := f.st.SetAgentEndpoints(ctx, a, []string{"PJSIP/" + a}); err != nil {
			t.Fatal(err)
		}
	}
	alice, admin := f.login("alice"), f.login("admin")
	resp, out := alice.api("POST", "/api/agents/alice/presence", "", map[string]string{"state": "paused", "reason": "lunch"})
	wantStatus(t, "alice pauses herself", resp, http.StatusOK)
	if out["state"] != "paused" || out["reason"] != "lunch" {
		t.Errorf("answer %v", out)
	}
	resp, _ = alice.api("POST", "/api/agents/bob/presence", "", map[string]string{"state": "logged_out"})
	wantStatus(t, "alice logs bob out", resp, http.StatusForbidden)
	resp, _ = alice.api("POST", "/api/agents/alice/presence", "", map[string]string{"state": "busy"})
	wantStatus(t, "a state nobody chooses", resp, http.StatusBadRequest)
	resp, _ = admin.api("POST", "/api/agents/bob/presence", "", map[string]string{"state": "logged_out"})
	wantStatus(t, "admin logs bob out", resp, http.StatusOK)
	resp, _ = admin.api("POST", "/api/agents/wendy/presence", "", map[string]string{"state": "available"})
	wantStatus(t, "wendy is no agent", resp, http.StatusNotFound)

	resp, out = alice.api("GET", "/api/agents", "", nil)
	wantStatus(t, "list", resp, http.StatusOK)
	list, _ := out["agents"].([]any)
	want := map[string]string{"alice": "paused", "bob": "logged_out"}
	if len(list) != 2 {
		t.Fatalf("agents %v", out)
	}
	for _, item := range list {
		a := item.(map[string]any)
		if want[a["agent"].(string)] != a["state"] {
			t.Errorf("agent %v", a)
		}
	}
}
