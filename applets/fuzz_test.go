package applets

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// The answers of HTTP endpoints are whatever a buyer's or an admin's web
// app sends, broken or hostile. These fuzz targets hold the parsers of
// passthru and bid to the rules the steps promise; the seed corpora are in
// testdata/fuzz.

// valueParams hands a constructor ready-made parameters.
type valueParams struct{ v any }

func (p valueParams) Decode(dst any) error {
	reflect.ValueOf(dst).Elem().Set(reflect.ValueOf(p.v))
	return nil
}

func (p valueParams) Errorf(key, format string, args ...any) error {
	return fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...))
}

func (valueParams) Warnf(string, string, ...any) {}
func (valueParams) Has(string) bool              { return false }
func (valueParams) Dir() string                  { return "." }

func newTestPassthru(t testing.TB, url string) *passthru {
	t.Helper()
	a, err := newPassthru(valueParams{PassthruParams{URL: url, Outcomes: []string{"vip", "regular"}}})
	if err != nil {
		t.Fatal(err)
	}
	return a.(*passthru)
}

// answerEnv is a step's environment with some state from earlier steps.
func answerEnv() *Env {
	st := NewState()
	st.Vars["keep"] = "1"
	st.Vars["account"] = "old"
	st.Tags["old"] = true
	return &Env{State: st, Log: zerolog.Nop(), Step: "lookup"}
}

// FuzzPassthruAnswer: the parser never panics and is deterministic; an
// answer it accepts was JSON (or nothing); applied to a call, it only
// touches the variables it names, with valid names and values that are
// text, finite numbers or booleans, adds only trimmed tags of 1 to 64
// bytes, and the step's outcome is always one the step declares.
func FuzzPassthruAnswer(f *testing.F) {
	f.Add([]byte(`{"outcome": "vip", "vars": {"account": "42"}, "tags": ["known"]}`))
	h := newTestPassthru(f, "https://crm.example/callflow")
	outcomes := h.Facts().Outcomes
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxAnswer {
			return // never reaches the parser: the request fails first
		}
		ans, err := parsePassthruAnswer(body)
		ans2, err2 := parsePassthruAnswer(body)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(ans, ans2) {
			t.Fatalf("two parses differ: %v %+v / %v %+v", err, ans, err2, ans2)
		}
		if err != nil {
			if !reflect.DeepEqual(ans, passthruAnswer{}) {
				t.Fatalf("a refused answer came with content: %+v", ans)
			}
			return
		}
		if len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) {
			t.Fatalf("accepted a body that is not JSON: %q", body)
		}

		outcome, declared := h.outcomeOf(ans)
		if !slices.Contains(outcomes, outcome) {
			t.Fatalf("outcome %q is not one of the step's %v", outcome, outcomes)
		}
		if !declared && (outcome != "success" || ans.Outcome == "") {
			t.Fatalf("undeclared %q gave %q", ans.Outcome, outcome)
		}

		env := answerEnv()
		before := answerEnv().State
		h.apply(env, ans)
		for k, v := range env.State.Vars {
			raw, named := ans.Vars[k]
			if !named {
				if v != before.Vars[k] {
					t.Fatalf("variable %q changed to %q but the answer does not name it", k, v)
				}
				continue
			}
			if !varNameRe.MatchString(k) {
				t.Fatalf("variable with a bad name %q set", k)
			}
			if !utf8.ValidString(v) {
				t.Fatalf("variable %q = %q is not UTF-8", k, v)
			}
			var want any
			if err := json.Unmarshal(raw, &want); err != nil {
				// 1e309, say: ignored
				if old, ok := before.Vars[k]; !ok || v != old {
					t.Fatalf("variable %q = %q, from %q, which does not decode: %v", k, v, raw, err)
				}
				continue
			}
			switch x := want.(type) {
			case string:
				if v != x {
					t.Fatalf("variable %q = %q, the answer said %q", k, v, x)
				}
			case float64:
				n, err := strconv.ParseFloat(v, 64)
				if err != nil || math.IsInf(n, 0) || math.IsNaN(n) || n != x {
					t.Fatalf("variable %q = %q, from the number %q", k, v, raw)
				}
			case bool:
				if v != strconv.FormatBool(x) {
					t.Fatalf("variable %q = %q, from %q", k, v, raw)
				}
			default:
				if old, ok := before.Vars[k]; !ok || v != old {
					t.Fatalf("variable %q = %q, from the %T %q", k, v, x, raw)
				}
			}
		}
		for k := range before.Vars {
			if _, ok := env.State.Vars[k]; !ok && !(varNameRe.MatchString(k) && string(bytes.TrimSpace(ans.Vars[k])) == "null") {
				t.Fatalf("variable %q removed without a null", k)
			}
		}
		for tag := range env.State.Tags {
			if before.Tags[tag] {
				continue
			}
			if tag != strings.TrimSpace(tag) || tag == "" || len(tag) > 64 || !utf8.ValidString(tag) {
				t.Fatalf("tag %q added", tag)
			}
			if !slices.ContainsFunc(ans.Tags, func(s string) bool { return strings.TrimSpace(s) == tag }) {
				t.Fatalf("tag %q is not in the answer", tag)
			}
		}
		if !before.Tags["old"] || !env.State.Tags["old"] {
			t.Fatalf("a tag was removed")
		}
		if set, ok := env.details["vars"].([]string); ok && !slices.IsSorted(set) {
			t.Fatalf("vars noted out of order: %v", set)
		}

		again := answerEnv()
		h.apply(again, ans)
		if !reflect.DeepEqual(env.State, again.State) || !reflect.DeepEqual(env.details, again.details) {
			t.Fatalf("applying the answer twice gave different calls")
		}
	})
}

// FuzzBidAnswer: the parser never panics and is deterministic; its price
// is always finite; a non-empty body that is not JSON is bad-json; an
// answer without a problem that names a price has a dial string the
// dialler accepts; and a bid that takes part in the auction is positive,
// finite, at or above a floor the step accepts, and has such a
// destination. A floor is accepted exactly when finite and not negative.
func FuzzBidAnswer(f *testing.F) {
	f.Add([]byte(`{"bid": 12.5, "destination": "PJSIP/+15551112222@trunk", "id": "b-981"}`), "", 10.0)
	problems := []string{"", "bad-json", "no-destination", "bad-destination"}
	f.Fuzz(func(t *testing.T, body []byte, fallback string, floor float64) {
		if len(body) > maxAnswer {
			return
		}
		a := parseBidAnswer(body, fallback)
		if again := parseBidAnswer(body, fallback); !reflect.DeepEqual(a, again) {
			t.Fatalf("two parses differ: %+v / %+v", a, again)
		}
		if !slices.Contains(problems, a.problem) {
			t.Fatalf("unknown problem %q", a.problem)
		}
		if math.IsNaN(a.price) || math.IsInf(a.price, 0) {
			t.Fatalf("price %v", a.price)
		}
		if len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) && a.problem != "bad-json" {
			t.Fatalf("body %q is not JSON, problem %q", body, a.problem)
		}
		if a.problem == "" && a.destination != "" && validTarget(a.destination) != nil {
			t.Fatalf("destination %q accepted", a.destination)
		}
		if a.problem == "" && a.price != 0 && a.destination == "" {
			t.Fatalf("a bid of %v without a destination", a.price)
		}

		p := BidParams{Buyers: []BidBuyer{{Name: "acme", Ping: "https://acme.example/ping"}}, Floor: floor}
		app, err := newBid(valueParams{p})
		finite := !math.IsNaN(floor) && !math.IsInf(floor, 0)
		if (err == nil) != (finite && floor >= 0) {
			t.Fatalf("floor %v: %v", floor, err)
		}
		if err != nil {
			return
		}
		b := app.(*bid)
		what, counts := b.verdict(&a)
		if what2, counts2 := b.verdict(&a); what != what2 || counts != counts2 {
			t.Fatalf("two verdicts differ")
		}
		if !counts {
			return
		}
		if a.problem != "" || !(a.price > 0) || a.price < floor || validTarget(a.destination) != nil {
			t.Fatalf("bid %+v counts with floor %v", a, floor)
		}
		if n, err := strconv.ParseFloat(what, 64); err != nil || math.IsInf(n, 0) || what != price(a.price) {
			t.Fatalf("bid noted as %q", what)
		}
	})
}

// FuzzBidPostAnswer: the parser of a winner's answer to the post never
// panics and is deterministic; it declines only with post-declined, and
// otherwise names no destination or one the dialler accepts.
func FuzzBidPostAnswer(f *testing.F) {
	f.Add([]byte(`{"accepted": true, "destination": "PJSIP/+15552223333@trunk"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxAnswer {
			return
		}
		dest, declined := parsePostAnswer(body)
		dest2, declined2 := parsePostAnswer(body)
		if dest != dest2 || declined != declined2 {
			t.Fatalf("two parses differ")
		}
		switch {
		case declined != "" && declined != "post-declined":
			t.Fatalf("declined as %q", declined)
		case declined != "" && dest != "":
			t.Fatalf("declined, yet goes to %q", dest)
		case dest != "" && validTarget(dest) != nil:
			t.Fatalf("destination %q accepted", dest)
		case declined != "" && !json.Valid(body):
			t.Fatalf("a body that is not JSON declined the call")
		}
	})
}

// A floor of nan or inf in the flow file is refused: a NaN floor lets
// every bid through, an infinite one none.
func TestBidFloorMustBeAFiniteNumber(t *testing.T) {
	cases := []struct {
		name  string
		floor float64
		ok    bool
	}{
		{"zero", 0, true},
		{"positive", 2.5, true},
		{"negative", -1, false},
		{"nan", math.NaN(), false},
		{"inf", math.Inf(1), false},
		{"minus-inf", math.Inf(-1), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := BidParams{Buyers: []BidBuyer{{Name: "acme", Ping: "https://acme.example/ping"}}, Floor: c.floor}
			_, err := newBid(valueParams{p})
			if (err == nil) != c.ok {
				t.Fatalf("floor %v: err %v", c.floor, err)
			}
		})
	}
}

// hugeCall is all a call needs to be for the HTTP steps: they read its
// numbers and nothing else (any other method would panic).
type hugeCall struct{ Call }

func (hugeCall) ID() string     { return "c-1" }
func (hugeCall) Caller() string { return "+15557654321" }
func (hugeCall) Called() string { return "+15550001000" }

// hugeServer answers requests with a 1 GiB body, streamed, and counts the
// bytes it managed to send. declared sends a Content-Length too; onlyPost
// answers all but /post with a bid.
func hugeServer(t *testing.T, declared, onlyPost bool) (*httptest.Server, *atomic.Int64) {
	const size = 1 << 30
	var sent atomic.Int64
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if onlyPost && r.URL.Path != "/post" {
			w.Write([]byte(`{"bid": 12}`))
			return
		}
		if declared {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		}
		n, err := w.Write([]byte(`{"outcome": "vip", "bid": 99, "pad": "`))
		sent.Add(int64(n))
		for sent.Load() < size && err == nil {
			n, err = w.Write(chunk[:min(len(chunk), size-int(sent.Load()))])
			sent.Add(int64(n))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &sent
}

// A hostile endpoint answering 1 GiB: the step reads 64 KiB and one byte,
// takes its failure branch, and memory stays small.
func TestHugeAnswerIsCutOff(t *testing.T) {
	cases := []struct {
		name     string
		declared bool
		onlyPost bool // the ping bids; the post answers 1 GiB
		step     func(t *testing.T, url string) (Result, map[string]any)
		outcome  string
		note     string // a key of the trace
		want     string // in its value
	}{
		{"passthru", false, false, runPassthru, "failed", "error", "larger than 64 KiB"},
		{"passthru-declared-length", true, false, runPassthru, "failed", "error", "larger than 64 KiB"},
		{"bid-ping", false, false, runBid(false), "no_bid", "bids", "acme:too-large"},
		{"bid-ping-declared-length", true, false, runBid(false), "no_bid", "bids", "acme:too-large"},
		{"bid-post", false, true, runBid(true), "no_bid", "declined", "acme:post-too-large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, sent := hugeServer(t, c.declared, c.onlyPost)
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			res, notes := c.step(t, srv.URL)
			runtime.ReadMemStats(&m1)
			srv.Close() // waits for the handler: sent is final
			if res.Outcome != c.outcome {
				t.Errorf("outcome %q, want %q (%v)", res.Outcome, c.outcome, notes)
			}
			if got := fmt.Sprint(notes[c.note]); !strings.Contains(got, c.want) {
				t.Errorf("trace %s = %s, want %q in it", c.note, got, c.want)
			}
			if grew := m1.TotalAlloc - m0.TotalAlloc; grew > 64<<20 {
				t.Errorf("the step allocated %d MiB", grew>>20)
			}
			if sent.Load() >= 1<<30 {
				t.Errorf("the whole answer was sent: the step kept reading")
			}
		})
	}
}

func hugeEnv() *Env {
	env := answerEnv()
	env.Call = hugeCall{}
	env.Services = &Services{HTTP: &http.Client{}}
	return env
}

func runPassthru(t *testing.T, url string) (Result, map[string]any) {
	h := newTestPassthru(t, url+"/lookup")
	env := hugeEnv()
	res, err := h.Run(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if env.State.Vars["account"] != "old" {
		t.Errorf("a cut-off answer changed the call: %v", env.State.Vars)
	}
	return res, env.TakeDetails()
}

func runBid(withPost bool) func(t *testing.T, url string) (Result, map[string]any) {
	return func(t *testing.T, url string) (Result, map[string]any) {
		by := BidBuyer{Name: "acme", Ping: url + "/ping", Destination: "PJSIP/+15551110001@trunk"}
		if withPost {
			by.Post = url + "/post"
		}
		app, err := newBid(valueParams{BidParams{Buyers: []BidBuyer{by}}})
		if err != nil {
			t.Fatal(err)
		}
		env := hugeEnv()
		res, err := app.Run(context.Background(), env)
		if err != nil {
			t.Fatal(err)
		}
		return res, env.TakeDetails()
	}
}
