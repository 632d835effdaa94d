package applets_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
	"github.com/rs/zerolog"
)

type reply func(w http.ResponseWriter, r *http.Request)

func replyJSON(body string) reply {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}
}

func replyStatus(code int) reply {
	return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
}

// replyLate answers only after the caller of the request gave up.
func replyLate(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
	io.WriteString(w, `{"bid": 99}`)
}

// buyer is a bidder's server: it checks signatures and keeps what it got.
type buyer struct {
	ping, post reply

	mu    sync.Mutex
	pings []map[string]any
	posts []map[string]any
}

func (b *buyer) start(t *testing.T, secret string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if secret == "" {
			// unsigned: nothing to verify
		} else if err := verifySignature(r, secret, body); err != nil {
			t.Errorf("%s: %v", r.URL.Path, err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var data map[string]any
		if err := json.Unmarshal(body, &data); err != nil {
			t.Errorf("%s: body %q: %v", r.URL.Path, body, err)
		}
		b.mu.Lock()
		h := b.ping
		if r.URL.Path == "/post" {
			b.posts = append(b.posts, data)
			h = b.post
		} else {
			b.pings = append(b.pings, data)
		}
		b.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func (b *buyer) got() (pings, posts []map[string]any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pings, b.posts
}

// dialled lists the destinations a call dialled.
func dialled(sim *flows.Simulation) []string {
	var out []string
	for _, a := range sim.Call.Log() {
		if strings.HasPrefix(a, "dial ") {
			out = append(out, strings.Fields(a)[1])
		}
	}
	return out
}

func TestBid(t *testing.T) {
	set := loadFlows(t, "bid.toml")
	cases := []struct {
		name              string
		acme, cheap, slow *buyer
		agents            string
		outcome           string
		dial              string // destination dialled, if any
		acmePosts         int
	}{
		{"winner-above-floor",
			&buyer{ping: replyJSON(`{"bid": 12.5, "id": "a-1"}`), post: replyJSON(`{"accepted": true}`)},
			&buyer{ping: replyJSON(`{"bid": 8}`)},
			&buyer{ping: replyLate},
			"answered", "answered", "PJSIP/+15551110001@trunk", 1},
		{"tie-first-listed-wins",
			&buyer{ping: replyJSON(`{"bid": 15, "id": "a-2"}`), post: replyStatus(http.StatusOK)},
			&buyer{ping: replyJSON(`{"bid": 15}`)},
			&buyer{ping: replyLate},
			"answered", "answered", "PJSIP/+15551110001@trunk", 1},
		{"post-declined-next-best",
			&buyer{ping: replyJSON(`{"bid": 20, "id": "a-3"}`), post: replyJSON(`{"accepted": false}`)},
			&buyer{ping: replyJSON(`{"bid": 12}`)},
			&buyer{ping: replyJSON(`{"bid": 11.99}`)},
			"answered", "answered", "PJSIP/+15551110002@trunk", 1},
		{"post-fails-next-best",
			&buyer{ping: replyJSON(`{"bid": 20}`), post: replyStatus(http.StatusInternalServerError)},
			&buyer{ping: replyJSON(`{"bid": 5}`)},
			&buyer{ping: replyJSON(`{"bid": 10}`)},
			"answered", "answered", "PJSIP/+15551110003@trunk", 1},
		{"bid-names-destination",
			&buyer{ping: replyJSON(`{}`)},
			&buyer{ping: replyJSON(`{"bid": 30, "destination": "PJSIP/+15559998888@trunk"}`)},
			&buyer{ping: replyJSON(`{"bid": 40, "destination": "+15550000000"}`)},
			"answered", "answered", "PJSIP/+15559998888@trunk", 0},
		{"no-bid",
			&buyer{ping: replyStatus(http.StatusNoContent)},
			&buyer{ping: replyJSON(`{"bid": 9.99}`)},
			&buyer{ping: replyStatus(http.StatusInternalServerError)},
			"", "no_bid", "", 0},
		{"bad-answers",
			&buyer{ping: replyJSON(`{"bid": "lots"}`)},
			&buyer{ping: replyJSON(`not json`)},
			&buyer{ping: replyJSON(`{"bid": 0}`)},
			"", "no_bid", "", 0},
		{"all-late",
			&buyer{ping: replyLate},
			&buyer{ping: replyLate},
			&buyer{ping: replyLate},
			"", "no_bid", "", 0},
		{"winner-no-answer",
			&buyer{ping: replyJSON(`{"bid": 12.5}`), post: replyJSON(`{}`)},
			&buyer{ping: replyJSON(`{"bid": 1}`)},
			&buyer{ping: replyLate},
			"no_answer", "no_answer", "PJSIP/+15551110001@trunk", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hosts := map[string]string{
				"acme.test":  c.acme.start(t, "rtb-secret"),
				"cheap.test": c.cheap.start(t, "rtb-secret"),
				"slow.test":  c.slow.start(t, "rtb-secret"),
			}
			svc := &applets.Services{HTTP: hostClient(t, hosts)}
			began := time.Now()
			sim, trace := simulate(t, set, "bid", scripted.Script{Agents: agents(c.agents)}, svc)
			if took := time.Since(began); took > 1500*time.Millisecond {
				t.Errorf("auction took %s: the deadline is 1s", took)
			}
			if got := sim.Record.Steps[0].Outcome; got != c.outcome {
				t.Errorf("outcome %q, want %q\n%s", got, c.outcome, trace)
			}
			if got := strings.Join(dialled(sim), " "); got != c.dial {
				t.Errorf("dialled %q, want %q", got, c.dial)
			}
			for name, b := range map[string]*buyer{"acme": c.acme, "cheap": c.cheap, "slow": c.slow} {
				if pings, _ := b.got(); len(pings) != 1 {
					t.Errorf("%s pinged %d times", name, len(pings))
				}
			}
			if _, posts := c.acme.got(); len(posts) != c.acmePosts {
				t.Errorf("acme got %d posts, want %d", len(posts), c.acmePosts)
			}
			golden(t, goldenFile("bid", c.name), trace)
		})
	}
}

// Buyers see what is known of the call; the winner's post carries its bid.
func TestBidPayloads(t *testing.T) {
	set := setFromSource(t, `name = "b"
status = "draft"
[[steps]]
id = "zip"
applet = "set"
vars = { zip = "10001", lead_source = "google" }
tags = ["vip"]
[[steps]]
id = "auction"
applet = "bid"
buyers = [{ name = "acme", ping = "http://acme.test/ping", post = "http://acme.test/post", destination = "PJSIP/+15551110001@trunk" }]
on = { no_bid = "end", answered = "end", no_answer = "end", busy = "end", failed = "end" }
[[steps]]
id = "end"
applet = "hangup"
`)
	acme := &buyer{ping: replyJSON(`{"bid": 3.25, "id": "q-7"}`), post: replyJSON(`{"destination": "PJSIP/+15552223333@trunk"}`)}
	svc := &applets.Services{HTTP: hostClient(t, map[string]string{"acme.test": acme.start(t, "")})}
	sim, trace := simulate(t, set, "b", scripted.Script{From: "+12125551234", Agents: agents("answered")}, svc)
	pings, posts := acme.got()
	if len(pings) != 1 || len(posts) != 1 {
		t.Fatalf("%d pings, %d posts\n%s", len(pings), len(posts), trace)
	}
	ping := pings[0]
	want := map[string]any{"caller": "+12125551234", "area_code": "212", "country_code": "1", "zip": "10001", "call_id": "sim-1", "flow": "b"}
	for k, v := range want {
		if ping[k] != v {
			t.Errorf("ping %s = %v, want %v", k, ping[k], v)
		}
	}
	if vars, _ := ping["vars"].(map[string]any); vars["lead_source"] != "google" {
		t.Errorf("ping vars %v", ping["vars"])
	}
	if tags, _ := ping["tags"].([]any); len(tags) != 1 || tags[0] != "vip" {
		t.Errorf("ping tags %v", ping["tags"])
	}
	if posts[0]["bid"] != 3.25 || posts[0]["bid_id"] != "q-7" || posts[0]["caller"] != "+12125551234" {
		t.Errorf("post %v", posts[0])
	}
	// The post named where to send the call.
	if got := strings.Join(dialled(sim), " "); got != "PJSIP/+15552223333@trunk" {
		t.Errorf("dialled %s\n%s", got, trace)
	}
	v := sim.Record.Vars
	if v["bid_buyer"] != "acme" || v["bid_price"] != "3.25" || v["bid_id"] != "q-7" {
		t.Errorf("vars %v", v)
	}
}

func bidFlow(params string) string {
	return "name = \"b\"\nstatus = \"draft\"\n[[steps]]\nid = \"auction\"\napplet = \"bid\"\n" + params + "\n[[steps]]\nid = \"end\"\napplet = \"hangup\"\n"
}

func TestBidChecks(t *testing.T) {
	const one = `buyers = [{ name = "a", ping = "https://a.example/ping", destination = "PJSIP/+15551234567@trunk" }]`
	cases := []struct {
		name   string
		params string
		sev    flows.Severity
		parts  []string
	}{
		{"valid", one + "\nfloor = 2.5\ndeadline = \"5s\"", "", nil},
		{"no-buyers", `buyers = []`, flows.Error, []string{"needs `buyers`"}},
		{"buyer-without-name", `buyers = [{ ping = "https://a.example/ping" }]`, flows.Error, []string{"a buyer needs a `name`"}},
		{"buyer-twice", `buyers = [{ name = "a", ping = "https://a.example/p" }, { name = "a", ping = "https://b.example/p" }]`, flows.Error, []string{`buyer "a" is listed twice`}},
		{"no-ping", `buyers = [{ name = "a" }]`, flows.Error, []string{"needs a `ping` URL"}},
		{"bad-ping", `buyers = [{ name = "a", ping = "a.example/ping" }]`, flows.Error, []string{"not an http:// or https:// URL"}},
		{"bad-post", `buyers = [{ name = "a", ping = "https://a.example/ping", post = "mailto:x" }]`, flows.Error, []string{`"mailto:x" is not an http`}},
		{"bad-destination", `buyers = [{ name = "a", ping = "https://a.example/ping", destination = "+15551234567" }]`, flows.Error, []string{"not a dial string"}},
		{"negative-floor", one + "\nfloor = -1.0", flows.Error, []string{"floor must not be negative"}},
		{"deadline-too-long", one + "\ndeadline = \"6s\"", flows.Error, []string{"between 100ms and 5s"}},
		{"bad-ring-timeout", one + "\nring_timeout = \"11m\"", flows.Error, []string{"between 1s and 10m"}},
		{"unknown-buyer-key", `buyers = [{ name = "a", url = "https://a.example/ping" }]`, flows.Error, []string{`unknown key "url"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probs := lintSource(t, bidFlow(c.params), nil)
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

// A caller who hangs up during the auction ends it at once.
func TestBidCallerHangsUp(t *testing.T) {
	set := loadFlows(t, "bid.toml")
	slow := &buyer{ping: replyLate}
	addr := slow.start(t, "rtb-secret")
	svc := &applets.Services{HTTP: hostClient(t, map[string]string{"acme.test": addr, "cheap.test": addr, "slow.test": addr})}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	sim, err := flows.Simulate(ctx, set, "bid", flows.SimOptions{Script: scripted.Script{Start: defaultAt, From: "+15557654321"}, Log: zerolog.Nop(), Services: svc})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 600*time.Millisecond {
		t.Errorf("took %s: the auction outlived the caller", took)
	}
	if sim.Record.Outcome != "hangup" || len(dialled(sim)) != 0 {
		t.Fatalf("call %s, dialled %v", sim.Record.Outcome, dialled(sim))
	}
}
