package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// apiNumbersOf lists /api/numbers as number -> entry.
func apiNumbersOf(t *testing.T, c *client, query string) map[string]map[string]any {
	t.Helper()
	resp, out := c.api("GET", "/api/numbers"+query, "", nil)
	wantStatus(t, "GET /api/numbers", resp, 200)
	got := map[string]map[string]any{}
	list, _ := out["numbers"].([]any)
	for _, x := range list {
		m := x.(map[string]any)
		got[m["number"].(string)] = m
	}
	return got
}

// The inventory shows every number in the viewer's workspaces with its
// flow, since when, its calls, and why no flow answers it.
func TestNumbersListEveryNumberWithItsFlowAndFlags(t *testing.T) {
	f := newFixture(t)
	admin := apiNumbersOf(t, f.login("admin"), "")
	cases := []struct {
		number, flow, source, workspace, flag string
		calls                                 float64
	}{
		{acmeNumber, "Basic Support Flow", "file", "acme", "", 3},
		{otherNumber, "Other Line", "file", "other", "", 1},
		{"+15550002222", "Night Line", "database", "acme", "", 0},
		{"+15550003333", "Draft Line", "database", "acme", "its flow is a draft", 0},
		{"+15550004444", "Ghost Line", "database", "other", "its flow is not loaded", 0},
		{"+15550009999", "", "", "", "called, but no flow has this number", 1},
	}
	for _, tc := range cases {
		n := admin[tc.number]
		if n == nil {
			t.Errorf("%s missing from %v", tc.number, admin)
			continue
		}
		if n["flow"] != nilIfEmpty(tc.flow) || n["flow_source"] != nilIfEmpty(tc.source) || n["workspace"] != nilIfEmpty(tc.workspace) ||
			n["flag"] != nilIfEmpty(tc.flag) || n["calls_30d"] != tc.calls {
			t.Errorf("%s: %v", tc.number, n)
		}
	}
	if night := admin["+15550002222"]; night["assigned_by"] != "admin" || night["assigned"] != base.Format(time.RFC3339) {
		t.Errorf("since when: %v", night)
	}
	// Staff of acme see acme's numbers only, and no way to change them.
	alice := f.login("alice")
	mine := apiNumbersOf(t, alice, "")
	if len(mine) != 4 || mine["+914430009999"] == nil || mine["+15550004444"] != nil || mine["+15550009999"] != nil || mine[acmeNumber]["can_manage"] != false {
		t.Errorf("alice's numbers: %v", mine)
	}
	resp, page := alice.get("/numbers")
	wantStatus(t, "numbers page", resp, 200)
	if !strings.Contains(page, "+15550003333") || strings.Contains(page, "+15550004444") || strings.Contains(page, `name="op"`) {
		t.Errorf("alice's page:\n%s", pageText(page))
	}
	if flagged := apiNumbersOf(t, alice, "?show=flagged"); len(flagged) != 1 || flagged["+15550003333"] == nil {
		t.Errorf("alice's flagged numbers: %v", flagged)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

var resultRowRe = regexp.MustCompile(`(?s)<tr data-result="([a-z]+)">\s*<td><code>([^<]*)</code></td>`)

// resultsOf reads the results table: "typed:outcome" per line.
func resultsOf(page string) string {
	var out []string
	for _, m := range resultRowRe.FindAllStringSubmatch(page, -1) {
		out = append(out, m[2]+":"+m[1])
	}
	return strings.Join(out, " ")
}

// The bulk form gives each pasted line its result; admins of the
// workspace only, with a CSRF token, recorded with who and when.
func TestNumbersBulkFormAnswersEachLine(t *testing.T) {
	f := newFixture(t)
	wendy := f.login("wendy")
	cases := []struct {
		name string
		c    *client
		form url.Values
		code int
		want string // results, or text on the page
	}{
		{"assign pasted numbers", wendy, url.Values{"op": {"assign"}, "flow": {"Night Line"},
			"numbers": {"+15550007777\n(555) 000-8888\nnot a number\n+15550003333\n" + acmeNumber + "\n+1 555 000 7777"}},
			200, "+15550007777:assigned (555) 000-8888:assigned not a number:refused +15550003333:refused " + acmeNumber + ":refused +1 555 000 7777:unchanged"},
		{"move takes it from its flow", wendy, url.Values{"op": {"assign"}, "flow": {"Night Line"}, "move": {"1"}, "numbers": {"+15550003333"}},
			200, "+15550003333:moved"},
		{"release", wendy, url.Values{"op": {"release"}, "numbers": {"+15550008888, +15550004444"}},
			200, "+15550008888:released +15550004444:refused"},
		{"add without a flow", wendy, url.Values{"op": {"add"}, "workspace": {"acme"}, "numbers": {"+15550006666"}},
			200, "+15550006666:added"},
		{"add to another workspace", wendy, url.Values{"op": {"add"}, "workspace": {"other"}, "numbers": {"+15550006667"}},
			403, "only admins of workspace other add numbers to it"},
		{"assign to another workspace's flow", wendy, url.Values{"op": {"assign"}, "flow": {"Ghost Line"}, "numbers": {"+15550006666"}},
			404, "flow not found"}, // not in her scope: as if it were not there
		{"assign to a file flow", wendy, url.Values{"op": {"assign"}, "flow": {"Basic Support Flow"}, "numbers": {"+15550006666"}},
			409, "flow Basic Support Flow is a file flow"},
		{"no flow chosen", wendy, url.Values{"op": {"assign"}, "numbers": {"+15550006666"}},
			400, "choose a flow"},
		{"nothing typed", wendy, url.Values{"op": {"assign"}, "flow": {"Night Line"}, "numbers": {"\n \n"}},
			400, "enter one or more numbers"},
		{"staff", f.login("alice"), url.Values{"op": {"assign"}, "flow": {"Night Line"}, "numbers": {"+15550006666"}},
			403, "only admins change numbers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, page := tc.c.post("/numbers", tc.form)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d:\n%s", resp.StatusCode, tc.code, pageText(page))
			}
			if got := resultsOf(page); got != tc.want && !strings.Contains(page, tc.want) {
				t.Errorf("results %q, want %q", got, tc.want)
			}
		})
	}
	// Without the CSRF token nothing happens.
	if resp, _ := wendy.do("POST", "/numbers", url.Values{"op": {"release"}, "numbers": {"+15550007777"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("without CSRF: %d", resp.StatusCode)
	}
	ctx := context.Background()
	night, _ := f.st.GetFlow(ctx, "Night Line")
	if strings.Join(night.Numbers, ",") != "+15550002222,+15550003333,+15550007777" {
		t.Errorf("Night Line has %v", night.Numbers)
	}
	hist, _ := f.st.FlowHistory(ctx, "Draft Line")
	if hist[0].Author != "wendy" || hist[0].Comment != "released +15550003333 (moved to Night Line) on the numbers page" {
		t.Errorf("Draft Line's history: %+v", hist[0])
	}
	if f.reloads.Load() == 0 {
		t.Error("no reload after numbers changed")
	}
	// The number's own history says who did what.
	resp, one := wendy.api("GET", "/api/numbers/"+url.PathEscape("+15550008888"), "", nil)
	wantStatus(t, "one number", resp, 200)
	h, _ := one["history"].([]any)
	if one["flag"] != flagNoFlow || len(h) != 2 || h[0].(map[string]any)["action"] != "release number" || h[1].(map[string]any)["actor"] != "wendy" {
		t.Errorf("number +15550008888: %v", one)
	}
}

// The JSON API makes the same changes, with a result per number.
func TestNumbersAPIChangesNumbers(t *testing.T) {
	f := newFixture(t)
	admin := f.login("admin")
	tok, _, err := f.st.CreateToken(context.Background(), "admin", "script")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		token string
		body  any
		code  int
		want  string // outcomes, or the error
	}{
		{"assign by token", tok, map[string]any{"op": "assign", "flow": "Night Line", "numbers": []string{"+15550005555", "5550005556"}},
			200, "+15550005555:assigned +15550005556:assigned"},
		{"move another flow's number", "", map[string]any{"op": "assign", "flow": "Draft Line", "move": true, "numbers": []string{"+15550005555"}},
			200, "+15550005555:moved"},
		{"release", "", map[string]any{"op": "release", "numbers": []string{"+15550005556"}}, 200, "+15550005556:released"},
		{"remove what has no flow", "", map[string]any{"op": "remove", "numbers": []string{"+15550005556"}}, 200, "+15550005556:removed"},
		{"an unknown op", "", map[string]any{"op": "steal", "numbers": []string{"+15550005556"}}, 400, "op must be assign, release, add or remove"},
		{"an unknown field", "", map[string]any{"op": "release", "number": "+15550005556"}, 400, "bad JSON body"},
		{"a flow not there", "", map[string]any{"op": "assign", "flow": "Nope", "numbers": []string{"+15550005557"}}, 404, "flow not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := admin.api("POST", "/api/numbers", tc.token, tc.body)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.code, out)
			}
			if tc.code != 200 {
				if e, _ := out["error"].(string); !strings.Contains(e, tc.want) {
					t.Errorf("error %q, want %q", e, tc.want)
				}
				return
			}
			var got []string
			rs, _ := out["results"].([]any)
			for _, r := range rs {
				m := r.(map[string]any)
				got = append(got, m["number"].(string)+":"+m["outcome"].(string))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("results %v, want %s", out, tc.want)
			}
		})
	}
	draft, _ := f.st.GetFlow(context.Background(), "Draft Line")
	if strings.Join(draft.Numbers, ",") != "+15550003333,+15550005555" {
		t.Errorf("Draft Line has %v", draft.Numbers)
	}
	if resp, _ := admin.api("GET", "/api/numbers/not-a-number", "", nil); resp.StatusCode != 400 {
		t.Errorf("a bad number: %d", resp.StatusCode)
	}
	if resp, _ := f.login("bob").api("GET", "/api/numbers/"+url.PathEscape("+15550002222"), "", nil); resp.StatusCode != 404 {
		t.Errorf("another workspace's number: %d", resp.StatusCode)
	}
}
