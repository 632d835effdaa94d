package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/store"
)

const builderFlow = `# kept as written
name = "Builder Line"
workspace = "acme"

[[steps]]
id = "menu"
applet = "menu"
say = "Press 1 for sales"
keys = { 1 = "sales" }   # sales only for now
on = { max_retries = "bye" }

[[steps]]
id = "sales"
applet = "forward"
to = "PJSIP/sales"
on = { no_answer = "bye" }

[[steps]]
id = "bye"
applet = "hangup"
`

func TestValidateAPIPlacesProblemsOnStepsAndSavesNothing(t *testing.T) {
	f := newFixture(t)
	alice := f.login("alice") // staff may check a source: nothing is saved
	for _, c := range []struct {
		name, src        string
		step, severity   string
		line             int
		messageHas       string
		problems, errors bool
	}{
		{name: "a good flow", src: builderFlow},
		{name: "a key to a missing step", src: strings.Replace(builderFlow, `1 = "sales"`, `1 = "nowhere"`, 1),
			step: "menu", severity: "error", line: 5, messageHas: "nowhere", problems: true, errors: true},
		{name: "an unreachable step is a warning", src: builderFlow + "\n[[steps]]\nid = \"lost\"\napplet = \"hangup\"\n",
			step: "lost", severity: "warning", line: 22, messageHas: "lost", problems: true},
		{name: "a syntax error", src: "name = \"x\n", severity: "error", line: 1, messageHas: "syntax", problems: true, errors: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, m := alice.api("POST", "/api/flows/validate", "", map[string]any{"toml": c.src})
			wantStatus(t, "validate", resp, http.StatusOK)
			probs := m["problems"].([]any)
			if !c.problems {
				if len(probs) != 0 {
					t.Fatalf("problems in a good flow: %v", probs)
				}
				if steps := m["steps"].([]any); len(steps) != 3 || steps[1].(map[string]any)["end_line"].(float64) != 16 {
					t.Errorf("steps: %v", steps)
				}
				return
			}
			if len(probs) == 0 {
				t.Fatal("no problems")
			}
			p := probs[0].(map[string]any)
			if p["step"] != nilIfEmpty(c.step) || p["severity"] != c.severity || p["line"].(float64) != float64(c.line) ||
				!strings.Contains(p["message"].(string), c.messageHas) {
				t.Errorf("problem %v, want step %q %s at line %d about %q", p, c.step, c.severity, c.line, c.messageHas)
			}
			if m["errors"] != c.errors {
				t.Errorf("errors = %v", m["errors"])
			}
		})
	}
	if _, err := f.st.GetFlow(context.Background(), "Builder Line"); err == nil {
		t.Error("validate saved the flow")
	}
	alice.csrf = "wrong"
	resp, _ := alice.api("POST", "/api/flows/validate", "", map[string]any{"toml": builderFlow})
	wantStatus(t, "validate without the CSRF token", resp, http.StatusForbidden)
}

func TestCreateEditAndPublishFromTheBuilderAPI(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	wendy := f.login("wendy") // workspace admin of acme
	bob := f.login("bob")     // staff

	resp, m := bob.api("POST", "/api/flows", "", map[string]any{"toml": builderFlow})
	wantStatus(t, "staff creates", resp, http.StatusForbidden)

	broken := strings.Replace(builderFlow, `1 = "sales"`, `1 = "nowhere"`, 1)
	resp, m = wendy.api("POST", "/api/flows", "", map[string]any{"toml": broken})
	wantStatus(t, "create with an error", resp, http.StatusCreated)
	if m["name"] != "Builder Line" || m["status"] != "draft" || m["revision"].(float64) != 1 || m["workspace"] != "acme" ||
		m["updated_by"] != "wendy" || len(m["problems"].([]any)) == 0 || m["source"] != broken {
		t.Fatalf("created: %v", m)
	}
	resp, _ = wendy.api("POST", "/api/flows", "", map[string]any{"toml": broken})
	wantStatus(t, "create twice", resp, http.StatusConflict)

	resp, m = wendy.api("POST", "/api/flows/Builder%20Line/publish", "", nil)
	wantStatus(t, "publish with errors", resp, http.StatusConflict)
	if ps, _ := m["problems"].([]any); len(ps) != 1 || !strings.Contains(m["error"].(string), "1 error") {
		t.Errorf("publish refusal: %v", m)
	}

	resp, m = wendy.api("PUT", "/api/flows/Builder%20Line", "", map[string]any{"toml": builderFlow, "revision": 1})
	wantStatus(t, "save from revision 1", resp, http.StatusOK)
	if m["revision"].(float64) != 2 || len(m["problems"].([]any)) != 0 || m["source"] != builderFlow {
		t.Fatalf("saved: %v", m)
	}
	resp, m = wendy.api("PUT", "/api/flows/Builder%20Line", "", map[string]any{"toml": broken, "revision": 1})
	wantStatus(t, "save from a stale revision", resp, http.StatusConflict)
	if m["error"] != "changed since you opened it" || m["current"].(float64) != 2 || m["toml"] != builderFlow {
		t.Errorf("conflict: %v", m)
	}
	resp, _ = bob.api("PUT", "/api/flows/Builder%20Line", "", map[string]any{"toml": broken, "revision": 2})
	wantStatus(t, "another workspace's staff saves", resp, http.StatusNotFound)
	alice := f.login("alice")
	resp, _ = alice.api("PUT", "/api/flows/Builder%20Line", "", map[string]any{"toml": broken, "revision": 2})
	wantStatus(t, "staff saves", resp, http.StatusForbidden)
	resp, _ = wendy.api("PUT", "/api/flows/Basic%20Support%20Flow", "", map[string]any{"toml": broken, "revision": 1})
	wantStatus(t, "save a file flow", resp, http.StatusConflict)
	resp, _ = wendy.api("PUT", "/api/flows/Builder%20Line", "", map[string]any{"toml": broken})
	wantStatus(t, "save without a revision", resp, http.StatusBadRequest)

	resp, m = wendy.api("POST", "/api/flows/Builder%20Line/publish", "", nil)
	wantStatus(t, "publish", resp, http.StatusOK)
	hist, err := f.st.FlowHistory(ctx, "Builder Line")
	if err != nil || len(hist) != 3 {
		t.Fatalf("history: %+v %v", hist, err)
	}
	for _, h := range hist {
		if h.Author != "wendy" || h.Created.IsZero() {
			t.Errorf("revision %d by %q at %v", h.Revision, h.Author, h.Created)
		}
	}
	if hist[1].Comment != "edited" || hist[2].Comment != "created in the builder" {
		t.Errorf("comments: %q %q", hist[1].Comment, hist[2].Comment)
	}

	// From a template, under a name of one's own; admins of every
	// workspace get "default" unless they say.
	admin := f.login("admin")
	resp, m = admin.api("POST", "/api/flows", "", map[string]any{"template": "lead-routing", "name": "Leads East", "workspace": "acme"})
	wantStatus(t, "create from a template", resp, http.StatusCreated)
	if m["name"] != "Leads East" || !strings.Contains(m["source"].(string), `name = "Leads East"`) || len(m["problems"].([]any)) != 0 {
		t.Errorf("from a template: %v", m)
	}
	resp, _ = admin.api("POST", "/api/flows", "", map[string]any{"template": "nope"})
	wantStatus(t, "an unknown template", resp, http.StatusBadRequest)
	resp, _ = admin.api("POST", "/api/flows", "", map[string]any{"toml": "description = \"no name\"\n"})
	wantStatus(t, "no name", resp, http.StatusBadRequest)
}

func TestSimulateAPIAnswersTheStepsAsSimulateJSON(t *testing.T) {
	f := newFixture(t)
	var hits atomic.Int32
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer endpoint.Close()
	src := `name = "Sim Line"
workspace = "acme"

[[steps]]
id = "ask"
applet = "passthru"
url = "` + endpoint.URL + `"
outcomes = ["vip"]
on = { vip = "bye", failed = "menu" }

[[steps]]
id = "menu"
applet = "menu"
say = "Press 1"
keys = { 1 = "sales" }

[[steps]]
id = "sales"
applet = "forward"
to = "PJSIP/sales"

[[steps]]
id = "bye"
applet = "hangup"
`
	if _, err := f.st.CreateFlow(context.Background(), store.FlowInput{Name: "Sim Line", Workspace: "acme", Source: src, Author: "admin"}); err != nil {
		t.Fatal(err)
	}
	f.rebuild()
	alice := f.login("alice")
	body := map[string]any{"input": "timeout,1", "agents": "answered", "at": "2026-03-10T10:00:00-05:00", "from": "+15551230000"}
	resp, m := alice.api("POST", "/api/flows/Sim%20Line/simulate", "", body)
	wantStatus(t, "simulate a draft", resp, http.StatusOK)
	if hits.Load() != 0 {
		t.Errorf("the HTTP step reached its endpoint %d times", hits.Load())
	}
	got, _ := json.Marshal(m["steps"])

	// The same call, simulated as `callflow simulate --json` does.
	fl, _ := flows.Parse("db:Sim Line@1", []byte(src), f.reg, flows.ParseOptions{Source: "db"})
	script := scripted.Script{From: "+15551230000"}
	script.Start, _ = flows.ParseAt("2026-03-10T10:00:00-05:00", time.UTC)
	script.Inputs, _ = scripted.ParseInputs("timeout,1")
	script.Agents, _ = scripted.ParseAgents("answered")
	sim, err := flows.Simulate(context.Background(), flows.NewSet(0, []*flows.Flow{fl}, nil), "Sim Line", flows.SimOptions{Script: script, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	var cli bytes.Buffer
	if err := flows.WriteTraceJSON(&cli, sim.Record); err != nil {
		t.Fatal(err)
	}
	var want any
	json.Unmarshal(cli.Bytes(), &want)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Errorf("steps differ from simulate --json:\n got %s\nwant %s", got, wantJSON)
	}
	var walked []string
	for _, s := range m["steps"].([]any) {
		walked = append(walked, s.(map[string]any)["step"].(string))
	}
	if fmt.Sprint(walked) != "[ask menu menu sales]" {
		t.Errorf("walked %v", walked)
	}

	// Unsaved edits are simulated when sent; errors are refused with them.
	edited := strings.Replace(src, `keys = { 1 = "sales" }`, `keys = { 1 = "bye" }`, 1)
	body["toml"] = edited
	resp, m = alice.api("POST", "/api/flows/Sim%20Line/simulate", "", body)
	wantStatus(t, "simulate an edit", resp, http.StatusOK)
	if steps := m["steps"].([]any); steps[len(steps)-1].(map[string]any)["step"] != "bye" {
		t.Errorf("edited run ended at %v", steps[len(steps)-1])
	}
	body["toml"] = strings.Replace(src, `keys = { 1 = "sales" }`, `keys = { 1 = "nowhere" }`, 1)
	resp, m = alice.api("POST", "/api/flows/Sim%20Line/simulate", "", body)
	wantStatus(t, "simulate a broken edit", resp, http.StatusUnprocessableEntity)
	if len(m["problems"].([]any)) == 0 {
		t.Error("no problems with the refusal")
	}
	delete(body, "toml")
	body["agents"] = "sometimes"
	resp, _ = alice.api("POST", "/api/flows/Sim%20Line/simulate", "", body)
	wantStatus(t, "bad agents", resp, http.StatusBadRequest)
	bob := f.login("bob")
	resp, _ = bob.api("POST", "/api/flows/Sim%20Line/simulate", "", map[string]any{})
	wantStatus(t, "another workspace's flow", resp, http.StatusNotFound)
}

func TestAppletsAPIListsEveryAppletWithItsParams(t *testing.T) {
	f := newFixture(t)
	resp, m := f.login("alice").api("GET", "/api/applets", "", nil)
	wantStatus(t, "applets", resp, http.StatusOK)
	list := m["applets"].([]any)
	if len(list) != len(f.reg.Names()) {
		t.Fatalf("%d applets, %d registered", len(list), len(f.reg.Names()))
	}
	for _, a := range list {
		a := a.(map[string]any)
		if a["name"] != "menu" {
			continue
		}
		if a["group"] != "gather" || !strings.Contains(fmt.Sprint(a["outcomes"]), "max_retries") {
			t.Errorf("menu: %v", a)
		}
		for _, p := range a["params"].([]any) {
			if p := p.(map[string]any); p["name"] == "keys" && (p["type"] != "map" || p["target"] != "step" || p["doc"] == "") {
				t.Errorf("menu keys: %v", p)
			}
		}
	}
}
