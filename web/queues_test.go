package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/store"
)

// An agent changes their own state on the agent page with one form; only
// an admin changes another's; the admin sees every agent.
func TestAgentPage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, a := range []string{"alice", "bob"} {
		if err := f.st.SetAgentEndpoints(ctx, a, []string{"PJSIP/" + a}); err != nil {
			t.Fatal(err)
		}
	}
	alice, admin := f.login("alice"), f.login("admin")
	resp, body := alice.get("/agent")
	wantStatus(t, "agent page", resp, http.StatusOK)
	if !strings.Contains(body, `data-state="available"`) {
		t.Errorf("alice not shown available:\n%s", body)
	}
	resp, _ = alice.post("/agent", url.Values{"state": {"paused"}, "reason": {"lunch"}})
	wantStatus(t, "alice pauses", resp, http.StatusSeeOther)
	if _, body = alice.get("/agent?msg=set"); !strings.Contains(body, `data-state="paused"`) || !strings.Contains(body, "(lunch)") {
		t.Errorf("alice not shown paused for lunch:\n%s", body)
	}
	resp, _ = alice.post("/agent", url.Values{"agent": {"bob"}, "state": {"logged_out"}})
	wantStatus(t, "alice logs bob out", resp, http.StatusForbidden)
	resp, _ = alice.do("POST", "/agent", url.Values{"state": {"available"}}, nil) // no CSRF token
	if resp.StatusCode == http.StatusSeeOther {
		t.Error("a form without the CSRF token was taken")
	}
	resp, _ = admin.post("/agent", url.Values{"agent": {"bob"}, "state": {"logged_out"}})
	wantStatus(t, "admin logs bob out", resp, http.StatusSeeOther)
	_, body = admin.get("/agent")
	if !strings.Contains(body, `data-agent="bob" data-state="logged_out"`) || !strings.Contains(body, `data-agent="alice" data-state="paused"`) {
		t.Errorf("admin's list:\n%s", body)
	}
}

// /api/queues lists the callers waiting and the day's figures; the event
// stream sends the view at once and again after each change, and ends
// when the server closes its streams.
func TestQueuesAPIAndEvents(t *testing.T) {
	f := newFixture(t)
	staff := f.login("alice")
	first := f.queues.Join("support", applets.QueueCaller{ID: "c1", Number: "+15550000001"})
	f.queues.Join("support", applets.QueueCaller{ID: "c2", Number: "+15550000002"})
	resp, out := staff.api("GET", "/api/queues", "", nil)
	wantStatus(t, "queues", resp, http.StatusOK)
	qs, _ := out["queues"].([]any)
	if len(qs) != 1 {
		t.Fatalf("queues %v", out)
	}
	q := qs[0].(map[string]any)
	waiting, _ := q["waiting"].([]any)
	if q["name"] != "support" || len(waiting) != 2 || waiting[1].(map[string]any)["number"] != "+15550000002" {
		t.Errorf("queue %v", q)
	}

	req, _ := http.NewRequest("GET", f.ts.URL+"/api/queues/events", nil)
	resp, err := staff.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, ct)
	}
	events := bufio.NewScanner(resp.Body)
	next := func() map[string]any {
		t.Helper()
		for events.Scan() {
			if data, ok := strings.CutPrefix(events.Text(), "data: "); ok {
				var v map[string]any
				if err := json.Unmarshal([]byte(data), &v); err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
		return nil
	}
	waitingIn := func(v map[string]any) int {
		qs, _ := v["queues"].([]any)
		if len(qs) == 0 {
			return -1
		}
		w, _ := qs[0].(map[string]any)["waiting"].([]any)
		return len(w)
	}
	if v := next(); waitingIn(v) != 2 {
		t.Fatalf("first event: %v", v)
	}
	first.Done("answered", "bob")
	for v := next(); waitingIn(v) != 1; v = next() {
		if v == nil {
			t.Fatal("the stream ended before the change")
		}
	}
	f.srv.CloseStreams()
	for events.Scan() {
	}
	_, out = staff.api("GET", "/api/queues", "", nil)
	if q := out["queues"].([]any)[0].(map[string]any); q["answered_today"] != float64(1) {
		t.Errorf("after an answer: %v", q)
	}
}

// The stats page and API sum the queues' steps over the range.
func TestStatsShowTheQueues(t *testing.T) {
	f := newFixture(t)
	at := base.Add(-time.Hour)
	for i, oc := range []string{"answered", "hangup"} {
		c := store.CallRecord{ID: fmt.Sprintf("q%d", i), Transport: "ari", Flow: "Acme Support", Workspace: "acme", Started: at, Ended: at.Add(time.Minute), Outcome: oc,
			Steps: []store.StepRecord{{Flow: "Acme Support", Step: "wait", Applet: "queue", Outcome: oc, Started: at, Ended: at,
				Details: map[string]any{"queue": "acme/Acme Support/wait", "waited_s": 12.0}}}}
		if err := f.st.RecordCall(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	admin := f.login("admin")
	day := base.Format("2006-01-02")
	resp, out := admin.api("GET", "/api/stats?from="+day+"&to="+day, "", nil)
	wantStatus(t, "stats", resp, http.StatusOK)
	qs, _ := out["queues"].([]any)
	if len(qs) != 1 {
		t.Fatalf("queues %v", out["queues"])
	}
	q := qs[0].(map[string]any)
	if q["callers"] != float64(2) || q["answered"] != float64(1) || q["abandoned"] != float64(1) || q["average_wait_s"] != float64(12) {
		t.Errorf("queue stats %v", q)
	}
	_, body := admin.get("/stats?from=" + day + "&to=" + day)
	if !strings.Contains(body, `data-queue="acme/Acme Support/wait"`) {
		t.Errorf("no queue row on the stats page")
	}
}
