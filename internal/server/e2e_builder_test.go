package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/store"
)

// apiClient calls a node's JSON API with a token.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

func (c apiClient) do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// The "done": a workspace admin who never writes TOML builds the
// seed-004 support flow through the builder's API (a greeting, a menu of
// three keys, a team that rings, voicemail with an email, goodbye), tries it
// in the simulator, publishes it on a number, and a call through Asterisk
// walks it; the TOML it is kept as lints clean and simulates the same way.
func TestBuilderMadeFlowTakesACall(t *testing.T) {
	ctx := context.Background()
	var token string
	h := startWith(t, harnessOptions{flowsDir: writeFlowDir(t, map[string]string{}),
		tweak: []func(*config.Config){func(cfg *config.Config) {
			cfg.HTTP.Listen = freePort(t)
			st, err := store.Open(ctx, cfg.Database, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.CreateUser(ctx, store.NewUser{Name: "wendy", Password: "password-w", Role: store.RoleWorkspaceAdmin, Workspaces: []string{"acme"}}); err != nil {
				t.Fatal(err)
			}
			if token, _, err = st.CreateToken(ctx, "wendy", "builder"); err != nil {
				t.Fatal(err)
			}
		}}})
	defer h.stop()
	api := apiClient{t: t, base: "http://" + h.cfg.HTTP.Listen, token: token}
	h.ast.SetAgent("PJSIP/tech1", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 100 * time.Millisecond, HangupAfter: 300 * time.Millisecond})
	h.ast.SetAgent("PJSIP/tech2", aritest.AgentBehavior{Mode: aritest.AgentNoAnswer})

	code, created := api.do("POST", "/api/flows", map[string]any{"template": "blank", "name": "Acme Help", "workspace": "acme"})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, created)
	}
	src := created["source"].(string)
	revision := created["revision"].(float64)
	// The builder's steps, as its page composes them: every one new.
	step := func(p map[string]any) map[string]any { return map[string]any{"from": -1, "changed": true, "params": p} }
	code, out := api.do("POST", "/api/flows/compose", map[string]any{"toml": src, "steps": []any{
		step(map[string]any{"id": "welcome", "applet": "greeting", "play": []any{"sound:custom/welcome"}}),
		step(map[string]any{"id": "menu", "applet": "menu", "prompt": []any{"sound:custom/acme-menu"},
			"keys": map[string]any{"1": "tech", "2": "billing", "3": "sales"}, "on": map[string]any{"max_retries": "goodbye"}}),
		step(map[string]any{"id": "tech", "applet": "multi_ring", "to": []any{"PJSIP/tech1", "PJSIP/tech2"}, "ring_timeout": "20s",
			"on": map[string]any{"no_answer": "voicemail", "busy": "voicemail", "failed": "voicemail"}}),
		step(map[string]any{"id": "billing", "applet": "forward", "to": "PJSIP/billing1", "on": map[string]any{"no_answer": "voicemail", "busy": "voicemail", "failed": "voicemail"}}),
		step(map[string]any{"id": "sales", "applet": "forward", "to": "PJSIP/sales1", "on": map[string]any{"no_answer": "voicemail", "busy": "voicemail", "failed": "voicemail"}}),
		step(map[string]any{"id": "voicemail", "applet": "voicemail", "mailbox": "support", "on": map[string]any{"empty": "goodbye"}}),
		step(map[string]any{"id": "notify", "applet": "email", "to": []any{"support@acme.example"}, "attach_voicemail": true}),
		step(map[string]any{"id": "goodbye", "applet": "hangup"}),
	}})
	if code != http.StatusOK {
		t.Fatalf("compose: %d %v", code, out)
	}
	src = out["toml"].(string)
	code, out = api.do("POST", "/api/flows/validate", map[string]any{"toml": src, "name": "Acme Help"})
	if code != http.StatusOK || out["errors"] != false {
		t.Fatalf("validate: %d %v\n%s", code, out["problems"], src)
	}
	code, out = api.do("PUT", "/api/flows/Acme%20Help", map[string]any{"toml": src, "revision": revision})
	if code != http.StatusOK {
		t.Fatalf("save: %d %v", code, out)
	}
	code, out = api.do("POST", "/api/flows/Acme%20Help/simulate", map[string]any{"input": "1", "agents": "answered"})
	if code != http.StatusOK {
		t.Fatalf("simulate: %d %v", code, out)
	}
	var simulated []string
	for _, s := range out["steps"].([]any) {
		st := s.(map[string]any)
		simulated = append(simulated, st["step"].(string)+":"+st["outcome"].(string))
	}
	const number = "+914430005555"
	if code, out = api.do("POST", "/api/flows/Acme%20Help/numbers", map[string]any{"numbers": []string{number}}); code != http.StatusOK {
		t.Fatalf("number: %d %v", code, out)
	}
	if code, out = api.do("POST", "/api/flows/Acme%20Help/publish", map[string]any{}); code != http.StatusOK {
		t.Fatalf("publish: %d %v", code, out)
	}
	waitUntil(t, "the flow serving its number", func() bool {
		f, ok := h.srv.registry.Current().ByNumber(number)
		return ok && f.Name == "Acme Help"
	})

	c := h.call(aritest.CallSpec{Exten: number, Talk: time.Second})
	if err := c.WaitPlayback(ctxT(t), "sound:custom/acme-menu"); err != nil {
		t.Fatal(err)
	}
	c.Press("1")
	hangupWhenDone(t, c)
	rec := h.record(c.ID())
	if got := stepPath(rec); got != "welcome:done menu:1 tech:answered" {
		t.Errorf("the call walked %s", got)
	}
	if want := []string{"welcome:done", "menu:1", "tech:answered"}; !slices.Equal(simulated, want) {
		t.Errorf("simulated %v, want %v", simulated, want)
	}

	// Exported, it is a flow file like any other: clean, and the same walk.
	_, got := api.do("GET", "/api/flows/Acme%20Help", nil)
	exported := []byte(got["toml"].(string))
	f, probs := flows.Parse("acme-help.toml", exported, applets.Builtin(), flows.ParseOptions{Country: "91"})
	if f == nil || probs.HasErrors() {
		t.Fatalf("exported flow: %v\n%s", probs, exported)
	}
	set := flows.NewSet(0, []*flows.Flow{f}, nil)
	inputs, _ := scripted.ParseInputs("1")
	agents, _ := scripted.ParseAgents("answered")
	sim, err := flows.Simulate(ctx, set, "Acme Help", flows.SimOptions{Script: scripted.Script{Inputs: inputs, Agents: agents}, Log: zerolog.Nop()})
	if err != nil || stepPath(sim.Record) != "welcome:done menu:1 tech:answered" {
		t.Errorf("the exported flow simulates %v (%v)", stepPath(sim.Record), err)
	}
}
