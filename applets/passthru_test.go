package applets_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
	"github.com/rs/zerolog"
)

// crmServer is the admin's app: it checks every request's signature and
// call data, then answers with reply (n counts requests from 1).
func crmServer(t *testing.T, secret string, reply func(w http.ResponseWriter, r *http.Request, n int)) (*httptest.Server, *atomic.Int32) {
	var count atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(count.Add(1))
		body, _ := io.ReadAll(r.Body)
		payload := body
		if r.Method == http.MethodGet {
			payload = []byte(r.URL.RawQuery)
		}
		if secret == "" {
			// unsigned: nothing to verify
		} else if err := verifySignature(r, secret, payload); err != nil {
			t.Errorf("request %d: %v", n, err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			var data map[string]any
			if err := json.Unmarshal(body, &data); err != nil {
				t.Errorf("request %d: body %q: %v", n, body, err)
			}
			want := map[string]any{"call_id": "sim-1", "caller": "+15557654321", "called": "+15550001000",
				"country_code": "1", "area_code": "555", "step": "lookup", "time": "2026-12-18T15:00:00Z"}
			for k, v := range want {
				if data[k] != v {
					t.Errorf("request %d: %s = %v, want %v", n, k, data[k], v)
				}
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
		}
		reply(w, r, n)
	}))
	t.Cleanup(srv.Close)
	return srv, &count
}

func answer(body string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}
}

func TestPassthru(t *testing.T) {
	set := loadFlows(t, "passthru.toml")
	slow := func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}
	cases := []struct {
		name     string
		reply    func(http.ResponseWriter, *http.Request, int)
		down     bool
		outcome  string
		requests int32
	}{
		{"outcome-vars-tags", answer(`{"outcome": "vip", "vars": {"account": "42", "score": 7, "bad name": "x", "nested": {"a": 1}}, "tags": ["known", ""]}`), false, "vip", 1},
		{"other-declared-outcome", answer(`{"outcome": "regular"}`), false, "regular", 1},
		{"empty-answer-is-success", func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusNoContent) }, false, "success", 1},
		{"undeclared-outcome-is-success", answer(`{"outcome": "platinum"}`), false, "success", 1},
		{"server-error-then-ok", func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			answer(`{"outcome": "vip"}`)(w, r, n)
		}, false, "vip", 2},
		{"server-error-twice", func(w http.ResponseWriter, r *http.Request, n int) {
			http.Error(w, "broken", http.StatusInternalServerError)
		}, false, "failed", 2},
		{"not-found-is-not-retried", func(w http.ResponseWriter, r *http.Request, n int) { http.NotFound(w, r) }, false, "failed", 1},
		{"bad-json", answer(`<html>oops</html>`), false, "failed", 1},
		{"oversized", answer(`{"outcome": "vip", "pad": "` + strings.Repeat("x", 70<<10) + `"}`), false, "failed", 1},
		{"slow", slow, false, "failed", 1},
		{"down", nil, true, "failed", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := deadAddr(t)
			var count *atomic.Int32
			if !c.down {
				srv, n := crmServer(t, "s3cret", c.reply)
				addr, count = srv.Listener.Addr().String(), n
			}
			svc := &applets.Services{HTTP: hostClient(t, map[string]string{"crm.test": addr})}
			began := time.Now()
			sim, trace := simulate(t, set, "passthru", scripted.Script{}, svc)
			if took := time.Since(began); took > 2*time.Second {
				t.Errorf("step took %s: the timeout is 500ms", took)
			}
			if got := sim.Record.Steps[0].Outcome; got != c.outcome {
				t.Errorf("outcome %q, want %q\n%s", got, c.outcome, trace)
			}
			if count != nil && count.Load() != c.requests {
				t.Errorf("%d requests, want %d", count.Load(), c.requests)
			}
			golden(t, goldenFile("passthru", c.name), trace)
		})
	}
}

func TestPassthruAppliesAnswer(t *testing.T) {
	set := loadFlows(t, "passthru.toml")
	srv, _ := crmServer(t, "s3cret", answer(`{"outcome": "vip", "vars": {"account": "42", "score": 7.5, "ok": true, "nested": [1]}, "tags": ["known"]}`))
	svc := &applets.Services{HTTP: hostClient(t, map[string]string{"crm.test": srv.Listener.Addr().String()})}
	sim, trace := simulate(t, set, "passthru", scripted.Script{}, svc)
	want := map[string]string{"account": "42", "score": "7.5", "ok": "true"}
	for k, v := range want {
		if got := sim.Record.Vars[k]; got != v {
			t.Errorf("var %s = %q, want %q\n%s", k, got, v, trace)
		}
	}
	if _, ok := sim.Record.Vars["nested"]; ok {
		t.Errorf("a list was stored as a variable")
	}
	if strings.Join(sim.Record.Tags, ",") != "known" {
		t.Errorf("tags %v", sim.Record.Tags)
	}
}

func TestPassthruGet(t *testing.T) {
	set := loadFlows(t, "passthru-get.toml")
	srv, count := crmServer(t, "s3cret", func(w http.ResponseWriter, r *http.Request, n int) {
		q := r.URL.Query()
		if r.Method != http.MethodGet || r.URL.Path != "/lookup" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		want := map[string]string{"key": "abc", "caller": "+15557654321", "called": "+15550001000", "call_id": "sim-1",
			"flow": "passthru-get", "step": "lookup", "area_code": "555", "vars[lead_source]": "google", "tags[]": "new", "time": "2026-12-18T15:00:00Z"}
		for k, v := range want {
			if got := q.Get(k); got != v {
				t.Errorf("query %s = %q, want %q", k, got, v)
			}
		}
		if got := r.Header.Get("Authorization"); got != "Bearer t0ken" {
			t.Errorf("Authorization %q", got)
		}
		io.WriteString(w, `{"vars": {"segment": "smb"}}`)
	})
	svc := &applets.Services{HTTP: hostClient(t, map[string]string{"crm.test": srv.Listener.Addr().String()})}
	sim, trace := simulate(t, set, "passthru-get", scripted.Script{}, svc)
	if got := sim.Record.Steps[1].Outcome; got != "success" || count.Load() != 1 {
		t.Fatalf("outcome %q after %d requests\n%s", got, count.Load(), trace)
	}
	if sim.Record.Vars["segment"] != "smb" {
		t.Errorf("vars %v", sim.Record.Vars)
	}
	golden(t, goldenFile("passthru", "get-query"), trace)
}

func passthruFlow(params string) string {
	return "name = \"p\"\nstatus = \"draft\"\n[[steps]]\nid = \"lookup\"\napplet = \"passthru\"\n" + params + "\n[[steps]]\nid = \"end\"\napplet = \"hangup\"\n"
}

// A secret can come from the environment; a missing one fails the step
// rather than sending unsigned requests.
func TestPassthruSecretFromEnvironment(t *testing.T) {
	src := passthruFlow(`url = "http://crm.test/x"` + "\nsecret = \"env:CALLFLOW_TEST_PASSTHRU_SECRET\"")
	srv, count := crmServer(t, "from-env", answer(`{}`))
	svc := func() *applets.Services {
		return &applets.Services{HTTP: hostClient(t, map[string]string{"crm.test": srv.Listener.Addr().String()})}
	}
	t.Setenv("CALLFLOW_TEST_PASSTHRU_SECRET", "")
	if !hasProblem(lintSource(t, src, nil), flows.Warning, "CALLFLOW_TEST_PASSTHRU_SECRET is not set") {
		t.Errorf("no warning about the missing variable")
	}
	set := setFromSource(t, src)
	sim, trace := simulate(t, set, "p", scripted.Script{}, svc())
	if sim.Record.Steps[0].Outcome != "failed" || count.Load() != 0 || !strings.Contains(trace, "is not set") {
		t.Fatalf("without the variable: %d requests\n%s", count.Load(), trace)
	}
	t.Setenv("CALLFLOW_TEST_PASSTHRU_SECRET", "from-env")
	sim, trace = simulate(t, set, "p", scripted.Script{}, svc())
	if sim.Record.Steps[0].Outcome != "success" || count.Load() != 1 {
		t.Fatalf("with the variable:\n%s", trace)
	}
}

// A caller who hangs up during the request ends the step at once.
func TestPassthruCallerHangsUp(t *testing.T) {
	set := setFromSource(t, passthruFlow(`url = "http://crm.test/x"`+"\ntimeout = \"5s\""))
	srv, _ := crmServer(t, "", func(w http.ResponseWriter, r *http.Request, n int) {
		<-r.Context().Done()
	})
	svc := &applets.Services{HTTP: hostClient(t, map[string]string{"crm.test": srv.Listener.Addr().String()})}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	sim, err := flows.Simulate(ctx, set, "p", flows.SimOptions{Script: scripted.Script{Start: defaultAt, From: "+15557654321", To: "+15550001000"}, Log: zerolog.Nop(), Services: svc})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("took %s", took)
	}
	if sim.Record.Outcome != "hangup" || sim.Record.Steps[0].Outcome != "hangup" {
		t.Fatalf("call %s, step %s", sim.Record.Outcome, sim.Record.Steps[0].Outcome)
	}
}

func TestPassthruChecks(t *testing.T) {
	cases := []struct {
		name   string
		params string
		sev    flows.Severity
		parts  []string
	}{
		{"valid", `url = "https://crm.example/x"` + "\nmethod = \"get\"\ntimeout = \"10s\"\nretries = 3\noutcomes = [\"a\", \"b\"]\nheaders = { X-Api-Key = \"k\" }", "", nil},
		{"no-url", ``, flows.Error, []string{"needs a `url`"}},
		{"bad-url", `url = "ftp://crm.example/x"`, flows.Error, []string{"not an http:// or https:// URL"}},
		{"relative-url", `url = "/x"`, flows.Error, []string{"not an http:// or https:// URL"}},
		{"bad-method", `url = "https://crm.example/x"` + "\nmethod = \"PUT\"", flows.Error, []string{"GET or POST"}},
		{"timeout-too-long", `url = "https://crm.example/x"` + "\ntimeout = \"20s\"", flows.Error, []string{"between 100ms and 10s"}},
		{"too-many-retries", `url = "https://crm.example/x"` + "\nretries = 4", flows.Error, []string{"between 0 and 3"}},
		{"reserved-outcome", `url = "https://crm.example/x"` + "\noutcomes = [\"success\"]", flows.Error, []string{"taken by the applet's own outcome"}},
		{"bad-outcome-name", `url = "https://crm.example/x"` + "\noutcomes = [\"a b\"]", flows.Error, []string{`outcome name "a b"`}},
		{"bad-header-name", `url = "https://crm.example/x"` + "\nheaders = { \"X Bad\" = \"1\" }", flows.Error, []string{`header name "X Bad"`}},
		{"signature-header", `url = "https://crm.example/x"` + "\nheaders = { X-Callflow-Signature = \"1\" }", flows.Error, []string{"set by `secret`"}},
		{"multiline-header", `url = "https://crm.example/x"` + "\nheaders = { X-A = \"1\\n2\" }", flows.Error, []string{"must be one line"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probs := lintSource(t, passthruFlow(c.params), nil)
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

// Routing a declared outcome is checked like any other.
func TestPassthruDeclaredOutcomesRoute(t *testing.T) {
	probs := lintSource(t, passthruFlow(`url = "https://crm.example/x"`+"\noutcomes = [\"vip\"]\non = { vip = \"end\", gold = \"end\" }"), nil)
	if !hasProblem(probs, flows.Error, `never produces outcome "gold"`) {
		t.Fatalf("routing an undeclared outcome was accepted: %v", probs)
	}
	if hasProblem(probs, flows.Error, `outcome "vip"`) {
		t.Fatalf("routing a declared outcome was refused: %v", probs)
	}
}
