package ari

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// directServer is an httptest server that counts the connections it was
// given and the requests it saw.
type directServer struct {
	*httptest.Server
	conns    atomic.Int32
	requests atomic.Int32
}

func newDirectServer(t *testing.T, h http.HandlerFunc) *directServer {
	t.Helper()
	ds := &directServer{}
	ds.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ds.requests.Add(1)
		h(w, r)
	}))
	ds.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			ds.conns.Add(1)
		}
	}
	ds.Start()
	t.Cleanup(ds.Close)
	return ds
}

func directFor(t *testing.T, base string, maxConns int) *direct {
	t.Helper()
	d := newDirect(base, maxConns, http.ProxyFromEnvironment)
	if d == nil {
		t.Fatalf("no direct client for %s", base)
	}
	t.Cleanup(d.close)
	return d
}

func TestDirectRequestsShareOneKeptAliveConnection(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ds := newDirectServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, `{"value":%q}`, r.Method+" "+r.URL.RequestURI()+" "+string(b)+" "+r.Header.Get("Authorization"))
	})
	c := newClient(ds.URL+"/ari", "u", "p", 5*time.Second, 4)
	defer c.close()
	if c.direct == nil {
		t.Fatal("an http:// URL without a proxy is not served directly")
	}
	for i := range 10 {
		var out struct{ Value string }
		p := params{}
		p.addInt("n", i)
		if err := c.do(context.Background(), http.MethodPost, "/channels/a%2Fb/play", &p, map[string]int{"k": i}, &out); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`POST /ari/channels/a%%2Fb/play?n=%d {"k":%d} Basic dTpw`, i, i)
		if out.Value != want {
			t.Fatalf("server saw %q, want %q", out.Value, want)
		}
	}
	if n := ds.conns.Load(); n != 1 {
		t.Errorf("%d connections for 10 requests in a row, want 1", n)
	}
}

func TestDirectConnectionClosedWhileIdleIsNotUsed(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ds := newDirectServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	d := directFor(t, ds.URL+"/ari", 4)
	var buf bytes.Buffer
	if _, err := d.roundTrip(context.Background(), http.MethodPost, "/x", "", nil, &buf); err != nil {
		t.Fatal(err)
	}
	// Asterisk drops a keep-alive connection idle too long.
	ds.CloseClientConnections()
	d.mu.Lock()
	idle := d.idle[0]
	d.mu.Unlock()
	for !closedByPeer(idle.tcp) {
		time.Sleep(time.Millisecond) // the FIN is on its way over loopback
	}
	// A POST is never sent twice, so it must not go on the dead one.
	status, err := d.roundTrip(context.Background(), http.MethodPost, "/x", "", nil, &buf)
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("POST after the idle connection closed: %d %v", status, err)
	}
	if n := ds.requests.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

func TestDirectResendsOnlyWhatMayBeSentTwice(t *testing.T) {
	for _, tc := range []struct {
		method string
		sent   int32
		ok     bool
	}{
		{http.MethodGet, 2, true},
		{http.MethodDelete, 2, true},
		{http.MethodPost, 1, false}, // Asterisk may have acted on it
	} {
		t.Run(tc.method, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t) })
			var warm atomic.Bool
			var first atomic.Bool
			ds := newDirectServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/ari/warm" {
					warm.Store(true)
					return
				}
				if first.CompareAndSwap(false, true) {
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						conn.Close()
					}
					return
				}
			})
			d := directFor(t, ds.URL+"/ari", 4)
			var buf bytes.Buffer
			// The request goes on a reused connection, as it would in a
			// busy node.
			if _, err := d.roundTrip(context.Background(), http.MethodGet, "/warm", "", nil, &buf); err != nil || !warm.Load() {
				t.Fatal(err)
			}
			before := ds.requests.Load()
			_, err := d.roundTrip(context.Background(), tc.method, "/channels/1", "", nil, &buf)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want success %v", err, tc.ok)
			}
			if n := ds.requests.Load() - before; n != tc.sent {
				t.Errorf("sent %d times, want %d", n, tc.sent)
			}
		})
	}
}

func TestDirectOpensNoMoreConnectionsThanAllowed(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	var now, most atomic.Int32
	release := make(chan struct{})
	ds := newDirectServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		now.Add(-1)
	})
	d := directFor(t, ds.URL+"/ari", 2)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			var buf bytes.Buffer
			_, err := d.roundTrip(context.Background(), http.MethodGet, "/channels", "", nil, &buf)
			errs <- err
		})
	}
	for ds.requests.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := most.Load(); m != 2 {
		t.Errorf("%d requests at once, want 2 (the limit)", m)
	}
	if n := ds.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestDirectCancelledRequestEndsAtOnce(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	release := make(chan struct{})
	ds := newDirectServer(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	d := directFor(t, ds.URL+"/ari", 2)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ds.requests.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	var buf bytes.Buffer
	_, err := d.roundTrip(ctx, http.MethodGet, "/channels", "", nil, &buf)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.idle) != 0 {
		t.Error("a connection broken by the cancel went back to the pool")
	}
}

func TestDirectReadsEveryAnswerShape(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	big := strings.Repeat("x", 100_000)
	ds := newDirectServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ari/chunked":
			w.Write([]byte(`{"value":"`))
			w.(http.Flusher).Flush() // no Content-Length: chunked
			w.Write([]byte(big + `"}`))
		case "/ari/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte(`{"value":"closing"}`))
		case "/ari/garbled":
			conn, bw, err := w.(http.Hijacker).Hijack()
			if err == nil {
				bw.WriteString("HTTP/1.1 ok then\r\nno colon here\r\n\r\n")
				bw.Flush()
				conn.Close()
			}
		case "/ari/missing":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"Channel not found"}`))
		}
	})
	c := newClient(ds.URL+"/ari", "", "", 5*time.Second, 2)
	defer c.close()
	var out struct{ Value string }
	if err := c.do(context.Background(), http.MethodGet, "/chunked", nil, nil, &out); err != nil || out.Value != big {
		t.Fatalf("chunked: %v (%d bytes)", err, len(out.Value))
	}
	if err := c.do(context.Background(), http.MethodGet, "/close", nil, nil, &out); err != nil || out.Value != "closing" {
		t.Fatalf("close: %v %q", err, out.Value)
	}
	c.direct.mu.Lock()
	idle := len(c.direct.idle)
	c.direct.mu.Unlock()
	if idle != 0 {
		t.Errorf("a connection the server closes went back to the pool")
	}
	// An answer that is not HTTP is an error of the request, and its
	// connection is not kept.
	if err := c.do(context.Background(), http.MethodGet, "/garbled", nil, nil, &out); err == nil || !strings.Contains(err.Error(), "GET /garbled") {
		t.Fatalf("garbled answer: %v", err)
	}
	c.direct.mu.Lock()
	idle = len(c.direct.idle)
	c.direct.mu.Unlock()
	if idle != 0 {
		t.Errorf("the connection of a garbled answer went back to the pool")
	}
	err := c.do(context.Background(), http.MethodDelete, "/missing", nil, nil, nil)
	if !IsNotFound(err) || !strings.Contains(err.Error(), "Channel not found") {
		t.Fatalf("404: %v", err)
	}
}

func TestDirectLeavesProxiesAndOddURLsToNetHTTP(t *testing.T) {
	proxy := func(r *http.Request) (*url.URL, error) {
		if r.URL.Hostname() == "behind-proxy" {
			return url.Parse("http://proxy:3128")
		}
		return nil, nil
	}
	for _, u := range []string{"http://behind-proxy:8088/ari", "ftp://asterisk:21/ari", "http://u:p@asterisk:8088/ari"} {
		if newDirect(u, 1, proxy) != nil {
			t.Errorf("%s is served directly", u)
		}
	}
	if newDirect("https://asterisk:8089/ari", 1, proxy) == nil {
		t.Error("https is not served directly")
	}
}

// BenchmarkRESTRequest sends requests from 8 goroutines to a loopback
// server answering as Asterisk does (a small JSON body with its length),
// through the direct client and through net/http's Transport.
func BenchmarkRESTRequest(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "16")
		w.Write([]byte(`{"value":"done"}`))
	}))
	defer srv.Close()
	for _, name := range []string{"direct", "net-http"} {
		b.Run(name, func(b *testing.B) {
			c := newClient(srv.URL+"/ari", "u", "p", 5*time.Second, 16)
			defer c.close()
			if name == "net-http" {
				c.direct = nil
			}
			b.SetParallelism(4) // 8 goroutines on 2 cores
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var out struct{ Value string }
				for pb.Next() {
					if err := c.do(context.Background(), http.MethodPost, "/channels/1/answer", nil, nil, &out); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func TestDirectSpeaksTLS(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"value":"` + r.URL.Path + `"}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	d := directFor(t, srv.URL+"/ari", 2)
	if d.tls == nil {
		t.Fatal("https without TLS")
	}
	d.tls.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	for range 3 {
		var buf bytes.Buffer
		status, err := d.roundTrip(context.Background(), http.MethodGet, "/asterisk/info", "", nil, &buf)
		if err != nil || status != http.StatusOK || buf.String() != `{"value":"/ari/asterisk/info"}` {
			t.Fatalf("%d %q %v", status, buf.String(), err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d TLS connections for 3 requests, want 1", n)
	}
}
