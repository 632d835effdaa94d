package ari

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Error is a REST response outside 2xx.
type Error struct {
	Method  string
	Path    string
	Status  int
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("ari: %s %s: %d %s", e.Method, e.Path, e.Status, e.Message)
}

// IsNotFound reports whether err is an ARI 404 (object gone or unknown).
func IsNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// requester sends one REST request to Asterisk: body, when not nil, goes
// as JSON; out, when not nil, receives the decoded 2xx answer; an answer
// outside 2xx is an *Error. Every request of the transport goes through
// one, so that calls can be unit-tested with a scripted Asterisk in place
// of the client.
type requester interface {
	do(ctx context.Context, method, path string, q *params, body, out any) error
}

// client is a small ARI REST client: one tuned http.Client for the whole
// process and a deadline on every request, because a hung Asterisk must not
// hang a call.
type client struct {
	base    string // "http://host:8088/ari"
	auth    string // precomputed Authorization header value
	hc      *http.Client
	direct  *direct // nil: through hc
	timeout time.Duration
}

func newClient(base, user, pass string, timeout time.Duration, maxConns int) *client {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		// Asterisk's http.conf sessionlimit defaults to 100: stay below it,
		// leaving room for the event websocket and other tools.
		MaxConnsPerHost: maxConns,
		// Asterisk drops idle keep-alive connections after 15 s
		// (session_keep_alive); closing ours first avoids sending a
		// request on a connection the server is closing.
		IdleConnTimeout:       10 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
	c := &client{base: strings.TrimRight(base, "/"), hc: &http.Client{Transport: tr}, timeout: timeout}
	c.direct = newDirect(c.base, maxConns, tr.Proxy)
	if user != "" || pass != "" {
		c.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	return c
}

func (c *client) close() {
	c.hc.CloseIdleConnections()
	if c.direct != nil {
		c.direct.close()
	}
}

// params builds a query string without the map that url.Values costs.
type params struct{ b []byte }

func (p *params) add(k, v string) *params {
	if len(p.b) > 0 {
		p.b = append(p.b, '&')
	}
	p.b = append(p.b, k...)
	p.b = append(p.b, '=')
	p.b = append(p.b, url.QueryEscape(v)...)
	return p
}

func (p *params) addInt(k string, v int) *params { return p.add(k, strconv.Itoa(v)) }

func (p *params) addBool(k string, v bool) *params { return p.add(k, strconv.FormatBool(v)) }

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// do sends one request. body, when not nil, is sent as JSON; out, when not
// nil, receives the decoded 2xx response.
func (c *client) do(ctx context.Context, method, path string, q *params, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	pq := path
	if q != nil && len(q.b) > 0 {
		pq += "?" + string(q.b)
	}
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	var status int
	var err error
	if c.direct != nil {
		status, err = c.direct.roundTrip(ctx, method, pq, c.auth, b, buf)
	} else {
		status, err = c.roundTrip(ctx, method, pq, b, buf)
	}
	if err != nil {
		return fmt.Errorf("ari: %s %s: %w", method, path, err)
	}
	return decodeAnswer(method, path, status, buf.Bytes(), out)
}

// roundTrip sends one request through net/http (behind a proxy) and
// returns the status and the whole body (appended to buf).
func (c *client) roundTrip(ctx context.Context, method, pathQuery string, body []byte, buf *bytes.Buffer) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+pathQuery, rd)
	if err != nil {
		return 0, err
	}
	if c.auth != "" {
		req.Header["Authorization"] = []string{c.auth}
	}
	if body != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// decodeAnswer turns Asterisk's answer to a request into the request's
// result: out decoded from a 2xx body, else an *Error with Asterisk's
// message ("message", or "error" on a 500).
func decodeAnswer(method, path string, status int, body []byte, out any) error {
	if status/100 != 2 {
		e := &Error{Method: method, Path: path, Status: status}
		var m struct {
			Message string `json:"message"`
			Error   string `json:"error"`
		}
		if json.Unmarshal(body, &m) == nil {
			e.Message = m.Message
			if e.Message == "" {
				e.Message = m.Error
			}
		}
		if e.Message == "" {
			e.Message = http.StatusText(status)
		}
		return e
	}
	if out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("ari: %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// esc escapes an id for use as a path segment.
func esc(id string) string { return url.PathEscape(id) }
