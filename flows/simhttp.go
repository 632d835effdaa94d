package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/internal/tomlpos"
)

// SimAnswer is a canned answer to the HTTP requests that passthru and bid
// steps make in a simulation, as `simulate --http FILE` reads it:
//
//	[[answer]]
//	step = "lookup"                 # a step id, or "Flow name/step"
//	url = "https://crm.example/*"   # * matches any run of characters
//	status = 200                    # default 200
//	body = '{"outcome": "vip"}'
//	delay = "300ms"                 # the server's answer time
//
// The first answer whose step, URL and method (those it names) fit the
// request answers it.
type SimAnswer struct {
	Step   string           `toml:"step"`
	URL    string           `toml:"url"`
	Method string           `toml:"method"`
	Status int              `toml:"status"`
	Body   string           `toml:"body"`
	Delay  tomlpos.Duration `toml:"delay"`
}

func (a SimAnswer) status() int {
	if a.Status == 0 {
		return http.StatusOK
	}
	return a.Status
}

// maxSimDelay bounds a canned delay: every HTTP step gives up sooner.
const maxSimDelay = time.Minute

// ParseSimAnswers reads a file of canned answers; file names it in errors.
func ParseSimAnswers(file string, src []byte) ([]SimAnswer, error) {
	doc, err := tomlpos.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var f struct {
		Answer []SimAnswer `toml:"answer"`
	}
	var errs []error
	for _, e := range doc.Decode("", doc.Root, &f) {
		errs = append(errs, fmt.Errorf("%s:%w", file, e))
	}
	errorf := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%w", file, doc.Errorf(path, format, args...)))
	}
	for i, a := range f.Answer {
		path := fmt.Sprintf("answer[%d]", i)
		if a.Step == "" && a.URL == "" {
			errorf(path, "an answer needs a `step` or a `url` to say which requests it answers")
		}
		if a.Status != 0 && (a.Status < 100 || a.Status > 599) {
			errorf(path+".status", "status %d is not an HTTP status", a.Status)
		}
		if m := strings.ToUpper(a.Method); a.Method != "" && m != http.MethodGet && m != http.MethodPost {
			errorf(path+".method", "method must be GET or POST")
		}
		if a.Delay.D() < 0 || a.Delay.D() > maxSimDelay {
			errorf(path+".delay", "delay must be between 0s and %s", maxSimDelay)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f.Answer, nil
}

// matchAnswer finds the answer to req. The step comes from the call data
// that every HTTP step sends: the JSON body of a POST, the query of a GET.
func matchAnswer(answers []SimAnswer, req *http.Request) (SimAnswer, bool) {
	if len(answers) == 0 {
		return SimAnswer{}, false
	}
	flow, step := requestStep(req)
	u := *req.URL
	u.RawQuery, u.Fragment = "", ""
	bare := u.String()
	for _, a := range answers {
		if a.Method != "" && !strings.EqualFold(a.Method, req.Method) {
			continue
		}
		if a.Step != "" && a.Step != step && a.Step != flow+"/"+step {
			continue
		}
		if a.URL != "" && !wildcard(a.URL, bare) && !wildcard(a.URL, req.URL.String()) {
			continue
		}
		return a, true
	}
	return SimAnswer{}, false
}

func requestStep(req *http.Request) (flow, step string) {
	if req.Method == http.MethodGet {
		q := req.URL.Query()
		return q.Get("flow"), q.Get("step")
	}
	if req.GetBody == nil {
		return "", ""
	}
	body, err := req.GetBody()
	if err != nil {
		return "", ""
	}
	defer body.Close()
	var data struct {
		Flow string `json:"flow"`
		Step string `json:"step"`
	}
	if json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(&data) != nil {
		return "", ""
	}
	return data.Flow, data.Step
}

// wildcard matches s against pattern, where * stands for any run of
// characters (slashes included).
func wildcard(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	last := parts[len(parts)-1]
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// simTransport answers the HTTP requests of a simulated call from the
// canned answers; it never dials unless given a live transport. It keeps
// each request for the trace of the step that made it.
type simTransport struct {
	answers []SimAnswer
	live    http.RoundTripper
	clock   *scripted.Call

	mu        sync.Mutex
	exchanges []*simExchange
}

// simExchange is one request and what became of it.
type simExchange struct {
	step   int    // the step's sequence number in the trace
	target string // "POST https://crm.example/callflow"
	answer string // "" while it is in flight
}

func (t *simTransport) client() *http.Client { return &http.Client{Transport: t} }

func (t *simTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := &simExchange{target: req.Method + " " + requestURL(req)}
	ex.step, _ = stepOf(req.Context())
	t.mu.Lock()
	t.exchanges = append(t.exchanges, ex)
	t.mu.Unlock()
	resp, err := t.roundTrip(req)
	answer := ""
	switch {
	case err == nil:
		answer = fmt.Sprintf("answered %d", resp.StatusCode)
	case errors.Is(err, ErrNotSent):
		answer = err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		answer = noAnswerInTime
	default:
		answer = "no answer (" + err.Error() + ")"
	}
	t.mu.Lock()
	ex.answer = answer
	t.mu.Unlock()
	return resp, err
}

const noAnswerInTime = "no answer in time"

func (t *simTransport) roundTrip(req *http.Request) (*http.Response, error) {
	a, ok := matchAnswer(t.answers, req)
	if !ok && t.live != nil {
		return t.live.RoundTrip(req)
	}
	if req.Body != nil {
		req.Body.Close()
	}
	if !ok {
		return nil, ErrNotSent
	}
	// The answer takes its delay in real time, so that the step's own
	// deadline cuts it short exactly as it would a slow server; the
	// call's virtual clock moves on by as much.
	start, began := t.clock.Now(), time.Now()
	if d := a.Delay.D(); d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-req.Context().Done():
			t.clock.AdvanceTo(start.Add(time.Since(began)))
			return nil, req.Context().Err()
		case <-timer.C:
		}
		t.clock.AdvanceTo(start.Add(d))
	}
	return cannedResponse(req, a.status(), a.Body), nil
}

// annotate adds each request to the actions of the step that made it,
// before them.
// Requests a step makes at once (bid pings) are listed by URL, so that
// the trace reads the same every time.
func (t *simTransport) annotate(rec *CallRecord) {
	t.mu.Lock()
	defer t.mu.Unlock()
	bySeq := map[int][]*simExchange{}
	for _, ex := range t.exchanges {
		bySeq[ex.step] = append(bySeq[ex.step], ex)
	}
	for i := range rec.Steps {
		st := &rec.Steps[i]
		exs := bySeq[st.Seq]
		sort.SliceStable(exs, func(a, b int) bool { return exs[a].target < exs[b].target })
		if len(exs) == 0 {
			continue
		}
		// The requests come before what the step did with their answers.
		lines := make([]string, 0, len(exs)+len(st.Actions))
		for _, ex := range exs {
			answer := ex.answer
			if answer == "" {
				answer = noAnswerInTime // still waiting when the step went on
			}
			lines = append(lines, ex.target+": "+answer)
		}
		st.Actions = append(lines, st.Actions...)
	}
}

// requestURL is the URL without its query: a GET carries the whole call's
// data there, which the step's details already show.
func requestURL(req *http.Request) string {
	u := *req.URL
	more := ""
	if u.RawQuery != "" {
		more = "?…"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String() + more
}
