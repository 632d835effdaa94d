package ari

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets/call"
	"github.com/callflow/callflow/ari/aritest"
)

// BenchmarkCalls runs b.N calls (answer, play, gather, hangup) through the
// fake Asterisk, so many at a time, and reports calls/s, the fake's
// event-to-command latency and the memory a parked call costs. With 50 ms
// prompts the machine is saturated (capacity); with 3 s prompts the load
// is paced like real calls and the latency is the one callers would see.
// The fake runs in the same process and takes its share of the CPU. Use
// -benchtime=Nx: a paced call lasts seconds.
func BenchmarkCalls(b *testing.B) {
	for _, bc := range []struct {
		conc  int
		media time.Duration
	}{{100, 50 * time.Millisecond}, {100, 3 * time.Second}, {1000, 50 * time.Millisecond}, {1000, 3 * time.Second}, {5000, 15 * time.Second}} {
		b.Run(fmt.Sprintf("concurrent=%d/prompt=%v", bc.conc, bc.media), func(b *testing.B) { benchCalls(b, bc.conc, bc.media) })
	}
}

func benchCalls(b *testing.B, conc int, media time.Duration) {
	srv := aritest.NewServer(aritest.Options{DefaultMediaDuration: media})
	defer srv.Close()
	var park atomic.Bool
	var parked atomic.Int32
	h := handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
		if err := c.Answer(ctx); err != nil {
			return
		}
		if park.Load() {
			parked.Add(1)
			_, _ = c.Gather(ctx, call.GatherSpec{FirstTimeout: time.Minute})
			return
		}
		if _, err := c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:hello-world"}}); err != nil {
			return
		}
		if _, err := c.Gather(ctx, call.GatherSpec{FirstTimeout: 5 * time.Second}); err != nil {
			return
		}
		_ = c.Hangup(ctx, "normal")
	})
	var latMu sync.Mutex
	var appLat []time.Duration
	app := New(Options{
		URL: srv.URL(), App: "callflow", Username: "callflow", Password: "secret",
		EventFilter: true, Logger: zerolog.Nop(),
		OnLatency: func(d time.Duration) {
			latMu.Lock()
			appLat = append(appLat, d)
			latMu.Unlock()
		},
	}, h)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { _ = app.Run(ctx); close(runDone) }()
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 30*time.Second)
		_ = app.Shutdown(sctx)
		c()
		cancel()
		<-runDone
	}()
	for !app.Health().Connected {
		time.Sleep(time.Millisecond)
	}
	place := func() (*aritest.Caller, error) {
		for {
			c, err := srv.PlaceCall(ctx, aritest.CallSpec{Exten: "100"})
			if err == nil || ctx.Err() != nil {
				return c, err
			}
			time.Sleep(time.Millisecond)
		}
	}

	// Paced calls arrive evenly, as real ones do, rather than in waves.
	var tick <-chan time.Time
	if media >= time.Second {
		t := time.NewTicker(media / time.Duration(conc))
		defer t.Stop()
		tick = t.C
	}
	b.ResetTimer()
	start := time.Now()
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := 0; i < b.N; i++ {
		if tick != nil {
			<-tick
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
			defer wcancel()
			caller, err := place()
			if err != nil {
				failed.Add(1)
				return
			}
			if err := caller.WaitPlayback(wctx, "sound:hello-world"); err != nil {
				failed.Add(1)
				return
			}
			caller.Press("1")
			select {
			case <-caller.Done():
			case <-wctx.Done():
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d calls failed", n)
	}
	pct := func(lat []time.Duration, p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		slices.Sort(lat)
		return float64(lat[int(float64(len(lat)-1)*p)].Microseconds())
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	// The fake's view: from writing an event to receiving the command.
	b.ReportMetric(pct(srv.Latencies(), 0.50), "p50-µs")
	b.ReportMetric(pct(srv.Latencies(), 0.99), "p99-µs")
	// Ours: from the event's arrival off the websocket to the command.
	latMu.Lock()
	b.ReportMetric(pct(appLat, 0.50), "app-p50-µs")
	b.ReportMetric(pct(appLat, 0.99), "app-p99-µs")
	latMu.Unlock()

	// Memory of parked calls: answered, waiting in a Gather.
	park.Store(true)
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	ms0 := memStats()
	callers := make([]*aritest.Caller, 0, conc)
	for i := 0; i < conc; i++ {
		c, err := place()
		if err != nil {
			b.Fatal(err)
		}
		callers = append(callers, c)
	}
	for parked.Load() < int32(conc) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	ms1 := memStats()
	ours := pkgHeap()
	b.ReportMetric(float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc))/float64(conc), "heap-B/call")
	b.ReportMetric(float64(ours)/float64(conc), "ari-heap-B/call")
	b.ReportMetric(float64(int64(ms1.StackInuse)-int64(ms0.StackInuse))/float64(conc), "stack-B/call")
	for _, c := range callers {
		c.Hangup()
	}
	for app.Health().ActiveCalls > 0 {
		time.Sleep(time.Millisecond)
	}
}

func memStats() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// pkgHeap sums the live bytes allocated by this package (not by the fake
// Asterisk in the same process), from the allocation stacks.
func pkgHeap() int64 {
	runtime.GC()
	runtime.GC()
	n, _ := runtime.MemProfile(nil, false)
	recs := make([]runtime.MemProfileRecord, n+1000)
	n, _ = runtime.MemProfile(recs, false)
	var ours int64
	for _, r := range recs[:n] {
		frames := runtime.CallersFrames(r.Stack())
		own := false
		for {
			f, more := frames.Next()
			fn := f.Function
			if strings.Contains(fn, "/ari/aritest.") || strings.Contains(fn, "net/http.(*conn).serve") {
				own = false
				break
			}
			if strings.Contains(fn, "callflow/ari.") {
				own = true
			}
			if !more {
				break
			}
		}
		if own {
			ours += r.InUseBytes()
		}
	}
	return ours
}
