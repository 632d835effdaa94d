package applets

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The headers that let a receiver check that a request came from us and
// is fresh: X-Callflow-Signature is "sha256=" + hex(HMAC-SHA256(secret,
// timestamp + "." + payload)), where timestamp is X-Callflow-Timestamp
// (Unix seconds) and payload the body (POST) or the raw query (GET).
const (
	SignatureHeader = "X-Callflow-Signature"
	TimestampHeader = "X-Callflow-Timestamp"
)

// maxAnswer bounds what an HTTP step reads from an answer.
const maxAnswer = 64 << 10

var errTooLarge = errors.New("answer larger than 64 KiB")

// fallbackHTTP serves HTTP steps when the process gave no client; every
// request carries a deadline of its own.
var fallbackHTTP = &http.Client{}

func httpClient(env *Env) *http.Client {
	if env.Services != nil && env.Services.HTTP != nil {
		return env.Services.HTTP
	}
	return fallbackHTTP
}

// callData is what HTTP steps tell about the call.
type callData struct {
	CallID      string            `json:"call_id"`
	Caller      string            `json:"caller"`
	Called      string            `json:"called"`
	CountryCode string            `json:"country_code,omitempty"`
	AreaCode    string            `json:"area_code,omitempty"`
	Flow        string            `json:"flow"`
	Workspace   string            `json:"workspace,omitempty"`
	Step        string            `json:"step"`
	Zip         string            `json:"zip,omitempty"`
	Vars        map[string]string `json:"vars"`
	Tags        []string          `json:"tags"`
	Time        string            `json:"time"`
}

func newCallData(env *Env) callData {
	caller := env.Call.Caller()
	parts := SplitNumber(caller)
	vars := make(map[string]string, len(env.State.Vars))
	for k, v := range env.State.Vars {
		vars[k] = v
	}
	return callData{
		CallID: env.Call.ID(), Caller: caller, Called: env.Call.Called(),
		CountryCode: parts.Country, AreaCode: parts.Area,
		Flow: env.Flow.Name, Workspace: env.Flow.Workspace, Step: env.Step,
		Zip: env.State.Vars["zip"], Vars: vars, Tags: env.State.TagList(),
		Time: env.Now().UTC().Format(time.RFC3339),
	}
}

// query writes the call data as URL parameters: vars as vars[name]=value
// and tags as tags[]=tag, which common web frameworks read as a table and
// a list.
func (d callData) query(q url.Values) {
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("call_id", d.CallID)
	set("caller", d.Caller)
	set("called", d.Called)
	set("country_code", d.CountryCode)
	set("area_code", d.AreaCode)
	set("flow", d.Flow)
	set("workspace", d.Workspace)
	set("step", d.Step)
	set("zip", d.Zip)
	set("time", d.Time)
	for k, v := range d.Vars {
		q.Set("vars["+k+"]", v)
	}
	for _, t := range d.Tags {
		q.Add("tags[]", t)
	}
}

// sign returns the signature header value of payload.
func sign(secret, timestamp string, payload []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(payload)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// secretValue resolves "env:NAME" from the environment when the step runs,
// so a secret need not sit in the flow file.
func secretValue(s string) (string, error) {
	name, ok := strings.CutPrefix(s, "env:")
	if !ok {
		return s, nil
	}
	v := os.Getenv(name)
	if v == "" {
		return "", fmt.Errorf("environment variable %s is not set", name)
	}
	return v, nil
}

// checkSecret warns at load time about an "env:" secret that is missing here.
func checkSecret(p Params, key, s string) {
	if name, ok := strings.CutPrefix(s, "env:"); ok {
		if name == "" {
			p.Warnf(key, "%s names no environment variable", key)
		} else if os.Getenv(name) == "" {
			p.Warnf(key, "environment variable %s is not set here: the step fails where it is missing", name)
		}
	}
}

// checkURL accepts absolute http and https URLs.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	return nil
}

// httpRequest is one request an HTTP step makes.
type httpRequest struct {
	method  string
	url     string
	body    []byte // POST body
	payload []byte // what the signature covers
	headers map[string]string
	secret  string
}

// do sends r and reads at most maxAnswer bytes of the answer.
func (r httpRequest) do(ctx context.Context, client *http.Client) (int, []byte, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Accept", "application/json")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "callflow")
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.secret != "" {
		// Stamped at sending time: receivers compare it with their clock.
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set(TimestampHeader, ts)
		req.Header.Set(SignatureHeader, sign(r.secret, ts, r.payload))
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if len(data) > maxAnswer {
		return resp.StatusCode, nil, errTooLarge
	}
	return resp.StatusCode, data, nil
}

// httpProblem says in a few stable words why a request failed, for the
// trace (the full error, with addresses, goes to the log).
func httpProblem(err error, budget time.Duration) string {
	var dns *net.DNSError
	switch {
	case errors.Is(err, errTooLarge):
		return errTooLarge.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", budget)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.As(err, &dns):
		return "host not found"
	}
	return "request failed"
}

// retryable reports whether a request may succeed when tried again:
// network trouble and server errors, not answers the server meant.
func retryable(status int, err error) bool {
	if err != nil {
		return !errors.Is(err, errTooLarge) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
	}
	return status >= 500
}
