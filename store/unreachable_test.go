package store

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callflow/callflow/internal/pgtest"
)

// cutProxy forwards TCP to a server until cut: then it drops every
// connection and hangs up on new ones at once, as a server that went away
// or a network that broke would look, until restored.
type cutProxy struct {
	ln     net.Listener
	target string
	cut    atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.drop()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.cut.Load() {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(up, c); up.Close() }()
		go func() { defer p.wg.Done(); io.Copy(c, up); c.Close() }()
	}
}

func (p *cutProxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// While PostgreSQL cannot be reached, calls still end (RecordCall never
// blocks) and their records wait; once it is back every record is
// written, each once.
func TestRecordsWaitWhilePostgreSQLIsUnreachable(t *testing.T) {
	if !onPostgres() {
		t.Skip("the PostgreSQL run's test")
	}
	dsn := pgtest.Database(t, "unreachable")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	opts := testOptions()
	opts.SpoolPath = filepath.Join(t.TempDir(), "spool.jsonl")
	s, err := Open(context.Background(), u.String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	for i := range 5 {
		s.RecordCall(sampleCall(fmt.Sprintf("before-%d", i), t0, 3))
	}
	flush(t, s)

	proxy.cut.Store(true)
	proxy.drop()
	for i := range 40 {
		if err := s.RecordCall(sampleCall(fmt.Sprintf("during-%d", i), t0, 3)); err != nil {
			t.Fatalf("RecordCall while unreachable: %v", err)
		}
	}
	waitFor(t, "failed attempts", func() bool { return s.WriterStats().Retries >= 3 })
	if d := s.WriterStats().Depth; d != 40 {
		t.Errorf("%d records waiting, want 40", d)
	}

	proxy.cut.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("flush once reachable: %v", err)
	}
	if n := count(t, s, `SELECT COUNT(*) FROM calls`); n != 45 {
		t.Errorf("calls = %d, want 45", n)
	}
	if n := count(t, s, `SELECT COUNT(*) FROM call_steps`); n != 45*3 {
		t.Errorf("steps = %d, want %d", n, 45*3)
	}
}
