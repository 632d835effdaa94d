package ari

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"
)

// direct sends REST requests to one Asterisk over keep-alive HTTP/1.1
// connections, reading each answer on the goroutine that asked.
//
// Why not net/http's Transport: it gives every connection a read and a
// write goroutine, so each request is handed to one goroutine and its
// answer back from another. A call makes about fifteen requests, and on a
// virtual machine each hand-off that wakes a sleeping thread costs more
// than the request's own system calls; the profile of a loaded node
// showed a quarter of its CPU in net/http's loops and thread wake-ups.
// Asterisk's HTTP server answers one request at a time per connection
// with a Content-Length, so the protocol needed is small: what this does
// not speak (a proxy from the environment) keeps net/http (client.go).
type direct struct {
	addr   string // host:port to dial
	host   string // Host header
	prefix string // path prefix, e.g. "/ari"
	tls    *tls.Config
	dialer net.Dialer

	slots chan struct{} // connections open at most (Asterisk's sessionlimit)

	mu   sync.Mutex
	idle []*directConn // most recently used last
}

type directConn struct {
	nc   net.Conn
	tcp  net.Conn // under TLS, the TCP connection (for closedByPeer)
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time
}

// directIdle is how long an idle connection is kept: Asterisk closes
// keep-alive connections idle for 15 s (session_keep_alive); closing ours
// first avoids sending a request on one it is closing.
const directIdle = 10 * time.Second

// newDirect returns nil when base is not a URL direct can serve; proxy
// is the environment's (http.ProxyFromEnvironment).
func newDirect(base string, maxConns int, proxy func(*http.Request) (*url.URL, error)) *direct {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return nil
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil
	}
	// A proxy configured for this URL is net/http's job.
	if p, err := proxy(&http.Request{URL: u}); err != nil || p != nil {
		return nil
	}
	// The request's context bounds the dial and the exchange (client.do).
	d := &direct{host: u.Host, addr: u.Host, prefix: u.EscapedPath(), dialer: net.Dialer{KeepAlive: 30 * time.Second}}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
		d.tls = &tls.Config{ServerName: u.Hostname()}
	}
	if u.Port() == "" {
		d.addr = net.JoinHostPort(u.Hostname(), port)
	}
	if maxConns <= 0 {
		maxConns = 1
	}
	d.slots = make(chan struct{}, maxConns)
	return d
}

// errRetryable marks a failure on a reused connection before Asterisk
// could have acted on the request: the connection was closed under it.
var errRetryable = errors.New("connection closed before the request was answered")

// errNotSent: the request could not be written at all.
var errNotSent = errors.New("request not sent")

// idempotent methods are sent again after a connection closed under them;
// a POST only when it was not sent, as net/http does.
func idempotent(method string) bool {
	return method == http.MethodGet || method == http.MethodPut || method == http.MethodDelete
}

// roundTrip sends one request and returns the status and the whole body
// (appended to buf).
func (d *direct) roundTrip(ctx context.Context, method, pathQuery, auth string, body []byte, buf *bytes.Buffer) (int, error) {
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-d.slots }()
	for attempt := 0; ; attempt++ {
		pc, reused, err := d.get(ctx)
		if err != nil {
			return 0, err
		}
		status, keep, err := d.exchange(ctx, pc, method, pathQuery, auth, body, buf)
		if err == nil && keep {
			d.put(pc)
		} else {
			pc.nc.Close()
		}
		if err != nil && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The connection's deadline is the request's: the same error
			// as a context that ran out.
			return 0, fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		if errors.Is(err, errRetryable) && reused && attempt == 0 && (idempotent(method) || errors.Is(err, errNotSent)) {
			buf.Reset()
			continue // Asterisk closed an idle connection: once more on a new one
		}
		return status, err
	}
}

func (d *direct) get(ctx context.Context) (*directConn, bool, error) {
	for {
		d.mu.Lock()
		n := len(d.idle)
		if n == 0 {
			d.mu.Unlock()
			break
		}
		pc := d.idle[n-1]
		d.idle = d.idle[:n-1]
		d.mu.Unlock()
		if time.Since(pc.used) < directIdle && pc.br.Buffered() == 0 && !closedByPeer(pc.tcp) {
			return pc, true, nil
		}
		pc.nc.Close()
	}
	nc, err := d.dialer.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, false, err
	}
	tcp := nc
	if d.tls != nil {
		tc := tls.Client(nc, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, false, err
		}
		nc = tc
	}
	return &directConn{nc: nc, tcp: tcp, br: bufio.NewReaderSize(nc, 4096), bw: bufio.NewWriterSize(nc, 1024)}, false, nil
}

// put keeps pc for the next request, and closes connections left idle
// too long at the bottom of the pool (the most recent are used first).
func (d *direct) put(pc *directConn) {
	pc.used = time.Now()
	var stale []*directConn
	d.mu.Lock()
	for len(d.idle) > 0 && pc.used.Sub(d.idle[0].used) >= directIdle {
		stale = append(stale, d.idle[0])
		d.idle = d.idle[1:]
	}
	d.idle = append(d.idle, pc)
	d.mu.Unlock()
	for _, c := range stale {
		c.nc.Close()
	}
}

func (d *direct) close() {
	d.mu.Lock()
	idle := d.idle
	d.idle = nil
	d.mu.Unlock()
	for _, pc := range idle {
		pc.nc.Close()
	}
}

// exchange writes the request and reads the answer on pc; keep says
// whether pc can carry another request.
func (d *direct) exchange(ctx context.Context, pc *directConn, method, pathQuery, auth string, body []byte, buf *bytes.Buffer) (status int, keep bool, err error) {
	deadline, _ := ctx.Deadline() // none: the zero time
	pc.nc.SetDeadline(deadline)
	// A cancelled context breaks the exchange at once; no goroutine waits
	// for it meanwhile.
	stop := context.AfterFunc(ctx, func() { pc.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	w := pc.bw
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(d.prefix)
	w.WriteString(pathQuery)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(d.host)
	if auth != "" {
		w.WriteString("\r\nAuthorization: ")
		w.WriteString(auth)
	}
	if body != nil {
		w.WriteString("\r\nContent-Type: application/json")
	}
	if body != nil || method == http.MethodPost || method == http.MethodPut {
		// As net/http: a POST or PUT always says its length, a GET or
		// DELETE without a body says nothing.
		w.WriteString("\r\nContent-Length: ")
		w.WriteString(strconv.Itoa(len(body)))
	}
	w.WriteString("\r\n\r\n")
	w.Write(body)
	if err := w.Flush(); err != nil {
		return 0, false, fmt.Errorf("%w: %w: %w", errRetryable, errNotSent, err)
	}
	if _, err := pc.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || connBroken(err) {
			err = fmt.Errorf("%w: %w", errRetryable, err)
		}
		return 0, false, err
	}
	resp, err := http.ReadResponse(pc.br, nil)
	if err != nil {
		return 0, false, err
	}
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, false, err
	}
	return resp.StatusCode, !resp.Close, nil
}

// connBroken: the connection failed under the read (reset, closed), not
// its deadline.
func connBroken(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}
