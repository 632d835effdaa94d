package applets

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Passthru asks the admin's own web app what to do with the call. It sends
// the call's data (id, numbers, flow, step, variables, tags, ZIP, time) as
// JSON (POST) or URL parameters (GET) and reads a JSON answer that may set
// variables and tags and name the outcome:
//
//	{"outcome": "vip", "vars": {"account": "42"}, "tags": ["known"]}
//
// An outcome the app may name must be declared in `outcomes` so that check
// can verify its routing; an undeclared one is taken as success (and
// logged). Without one the outcome is success for a 2xx answer, failed for
// anything else: another status, a timeout, a bad or oversized (64 KiB)
// answer, an endpoint that is down. `timeout` bounds the whole step,
// retries included, so a dead endpoint never holds the caller long.
//
//	applet = "passthru"
//	url = "https://crm.example/callflow"
//	method = "POST"                 # or GET
//	headers = { Authorization = "env:CRM_TOKEN" }   # "env:NAME" reads the environment
//	secret = "env:CRM_SECRET"       # signs requests (X-Callflow-Signature)
//	timeout = "3s"                  # whole step, at most 10s
//	retries = 1                     # on network errors and 5xx, at most 3
//	outcomes = ["vip", "regular"]
//	on = { vip = "vip-line", regular = "menu", failed = "menu" }
var PassthruDef = Definition{
	Name:     "passthru",
	Group:    "HTTP & bidding",
	Summary:  "Ask your web app about the call (HTTP); it may set variables, tags and the outcome.",
	Outcomes: []string{"success", "failed", "<outcomes>"},
	Params:   PassthruParams{},
	New:      newPassthru,
}

// PassthruParams are passthru's parameters.
type PassthruParams struct {
	URL      string            `toml:"url" doc:"address asked where the call goes"`
	Method   string            `toml:"method" doc:"HTTP method" enum:"POST,GET"`
	Headers  map[string]string `toml:"headers" doc:"request headers"`
	Secret   string            `toml:"secret" doc:"HMAC secret signing the request"`
	Timeout  Duration          `toml:"timeout" doc:"how long to wait for the answer"`
	Retries  int               `toml:"retries" doc:"retries after a failed request"`
	Outcomes []string          `toml:"outcomes" doc:"outcomes the server may answer, one a line"`
}

var headerNameRe = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")

type passthru struct {
	p        PassthruParams
	method   string
	outcomes []string
	declared map[string]bool
}

func newPassthru(p Params) (Applet, error) {
	h := &passthru{method: http.MethodPost, declared: map[string]bool{}}
	var errs problems
	errs.add(p.Decode(&h.p))
	if h.p.URL == "" {
		errs.add(p.Errorf("url", "passthru needs a `url`"))
	} else if err := checkURL(h.p.URL); err != nil {
		errs.add(p.Errorf("url", "%v", err))
	}
	if h.p.Method != "" {
		h.method = strings.ToUpper(h.p.Method)
		if h.method != http.MethodGet && h.method != http.MethodPost {
			errs.add(p.Errorf("method", "method must be GET or POST"))
		}
	}
	errs.add(checkHeaders(p, h.p.Headers))
	checkSecret(p, "secret", h.p.Secret)
	if h.p.Timeout != 0 && (h.p.Timeout.D() < 100*time.Millisecond || h.p.Timeout.D() > 10*time.Second) {
		errs.add(p.Errorf("timeout", "timeout must be between 100ms and 10s: the caller waits meanwhile"))
	}
	if h.p.Retries < 0 || h.p.Retries > 3 {
		errs.add(p.Errorf("retries", "retries must be between 0 and 3"))
	}
	h.outcomes = []string{"success", "failed"}
	for i, o := range h.p.Outcomes {
		if err := checkOutcomeName(p, fmt.Sprintf("outcomes[%d]", i), o, "outcome", "success", "failed"); err != nil {
			errs.add(err)
			continue
		}
		h.declared[o] = true
		h.outcomes = appendNew(h.outcomes, o)
	}
	return h, errs.err()
}

func checkHeaders(p Params, headers map[string]string) error {
	var errs problems
	for _, k := range sortedKeys(headers) {
		key := "headers." + k
		switch {
		case !headerNameRe.MatchString(k):
			errs.add(p.Errorf(key, "header name %q is not a valid HTTP header name", k))
		case strings.EqualFold(k, SignatureHeader) || strings.EqualFold(k, TimestampHeader):
			errs.add(p.Errorf(key, "%s is set by `secret`", k))
		case strings.ContainsAny(headers[k], "\r\n"):
			errs.add(p.Errorf(key, "header %s: the value must be one line", k))
		}
		checkSecret(p, key, headers[k])
	}
	return errs.err()
}

func (h *passthru) Facts() Facts { return Facts{Outcomes: h.outcomes} }

// passthruAnswer is what the app may answer.
type passthruAnswer struct {
	Outcome string                     `json:"outcome"`
	Vars    map[string]json.RawMessage `json:"vars"`
	Tags    []string                   `json:"tags"`
}

func (h *passthru) Run(ctx context.Context, env *Env) (Result, error) {
	failed := func(why string) (Result, error) {
		env.Note("error", why)
		return Result{Outcome: "failed"}, nil
	}
	budget := orDefault(h.p.Timeout, 3*time.Second)
	secret, err := secretValue(h.p.Secret)
	if err != nil {
		return failed("secret: " + err.Error())
	}
	headers := make(map[string]string, len(h.p.Headers))
	for k, v := range h.p.Headers {
		if headers[k], err = secretValue(v); err != nil {
			return failed("header " + k + ": " + err.Error())
		}
	}
	req := httpRequest{method: h.method, url: h.p.URL, headers: headers, secret: secret}
	data := newCallData(env)
	if h.method == http.MethodGet {
		u, err := url.Parse(h.p.URL)
		if err != nil {
			return failed("bad url")
		}
		q := u.Query()
		data.query(q)
		u.RawQuery = q.Encode()
		req.url, req.payload = u.String(), []byte(u.RawQuery)
	} else {
		body, err := json.Marshal(data)
		if err != nil {
			return Result{}, fmt.Errorf("passthru: %w", err)
		}
		req.body, req.payload = body, body
	}

	rctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	started := env.Now()
	status, body, attempts, err := sendWithRetries(rctx, httpClient(env), req, h.p.Retries)
	env.Note("latency", env.Now().Sub(started).Round(time.Millisecond).String())
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("passthru: %w", ctx.Err())
	}
	if attempts > 1 {
		env.Note("attempts", attempts)
	}
	if err != nil {
		env.Log.Warn().Err(err).Str("url", h.p.URL).Msg("passthru request failed")
		return failed(httpProblem(err, budget))
	}
	env.Note("status", status)
	if status < 200 || status > 299 {
		return Result{Outcome: "failed"}, nil
	}
	ans, err := parsePassthruAnswer(body)
	if err != nil {
		env.Log.Warn().Err(err).Str("url", h.p.URL).Msg("passthru answer is not the expected JSON")
		return failed("bad JSON answer")
	}
	h.apply(env, ans)
	outcome, declared := h.outcomeOf(ans)
	if !declared {
		env.Log.Warn().Str("outcome", ans.Outcome).Str("url", h.p.URL).Msg("passthru answer names an outcome the step does not declare: taken as success")
		env.Note("undeclared_outcome", ans.Outcome)
	}
	return Result{Outcome: outcome}, nil
}

// parsePassthruAnswer reads the body of a 2xx answer: nothing at all, or
// the JSON object above. It looks at nothing else, so it can be fuzzed.
func parsePassthruAnswer(body []byte) (passthruAnswer, error) {
	var ans passthruAnswer
	if len(bytes.TrimSpace(body)) == 0 {
		return ans, nil
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return passthruAnswer{}, err
	}
	return ans, nil
}

// outcomeOf is the step's outcome for an answer: the outcome it names if
// the step declares it, else success; declared is false when the answer
// named an outcome the step does not declare.
func (h *passthru) outcomeOf(ans passthruAnswer) (outcome string, declared bool) {
	switch {
	case ans.Outcome == "":
		return "success", true
	case h.declared[ans.Outcome]:
		return ans.Outcome, true
	default:
		return "success", false
	}
}

// apply stores the variables and tags of the answer. A string sets a
// variable, a number or boolean sets its text, null removes it.
func (h *passthru) apply(env *Env, ans passthruAnswer) {
	var set []string
	for k, raw := range ans.Vars {
		if !varNameRe.MatchString(k) {
			env.Log.Warn().Str("var", k).Msg("passthru answer: bad variable name ignored")
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			continue
		}
		switch x := v.(type) {
		case nil:
			delete(env.State.Vars, k)
		case string:
			env.State.Vars[k] = x
		case float64, bool:
			env.State.Vars[k] = string(bytes.TrimSpace(raw))
		default:
			env.Log.Warn().Str("var", k).Msg("passthru answer: a variable must be a string, number or boolean")
			continue
		}
		set = append(set, k)
	}
	if len(set) > 0 {
		sort.Strings(set)
		env.Note("vars", set)
	}
	var tags []string
	for _, t := range ans.Tags {
		if t = strings.TrimSpace(t); t != "" && len(t) <= 64 {
			env.State.Tags[t] = true
			tags = append(tags, t)
		}
	}
	if len(tags) > 0 {
		env.Note("tags", tags)
	}
}

// sendWithRetries sends req, again after a short back-off on network
// errors and 5xx while retries and ctx's deadline allow.
func sendWithRetries(ctx context.Context, client *http.Client, req httpRequest, retries int) (status int, body []byte, attempts int, err error) {
	for attempt := 0; ; attempt++ {
		status, body, err = req.do(ctx, client)
		if attempt >= retries || !retryable(status, err) || ctx.Err() != nil {
			return status, body, attempt + 1, err
		}
		wait := 100 * time.Millisecond << attempt
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return status, body, attempt + 1, err
		}
		select {
		case <-ctx.Done():
			return status, body, attempt + 1, err
		case <-time.After(wait):
		}
	}
}
