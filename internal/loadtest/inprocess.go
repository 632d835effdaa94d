package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/internal/server"
)

// loadInProcess runs the server in this process, built as serve builds
// it: its CPU and memory figures include the fake Asterisk and the
// callers.
func loadInProcess(ctx context.Context, o loadOptions, stdout io.Writer) error {
	baseGoroutines := runtime.NumGoroutine()
	self0 := selfUsage()

	var fakeLat, dialLat aritest.LatencyRecorder
	ast := newLoadFake(o, aritest.Options{OnCommandLatency: fakeLat.Record, OnDialLatency: dialLat.Record, NoRequestLog: true})
	defer ast.Close()

	dir, err := os.MkdirTemp("", "callflow-loadtest-")
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	defer os.RemoveAll(dir)
	cfg := config.Default()
	cfg.FlowsDir = o.flows
	cfg.Database = filepath.Join(dir, "callflow.db")
	cfg.RecordingsDir = filepath.Join(dir, "recordings")
	cfg.HTTP.Listen = ""
	cfg.DefaultCountry = "91"
	cfg.ARI.URL = ast.URL()
	cfg.ARI.Password = "secret"
	cfg.Calls.DrainTimeout.UnmarshalTOMLValue("60s")
	var ended atomic.Int64
	var outcomes sync.Map
	sink := flows.TraceSinkFunc(func(r *flows.CallRecord) {
		ended.Add(1)
		v, _ := outcomes.LoadOrStore(r.Outcome, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	})
	var latMu sync.Mutex
	var appLat []time.Duration
	srv, err := server.New(cfg, server.Deps{Log: zerolog.New(io.Discard), Sinks: []flows.TraceSink{sink}, OnLatency: func(d time.Duration) {
		latMu.Lock()
		appLat = append(appLat, d)
		latMu.Unlock()
	}})
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	for deadline := time.Now().Add(10 * time.Second); !srv.ARI().Health().Connected; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			cancel()
			<-done
			return errors.New("loadtest: could not connect to the fake Asterisk")
		}
	}

	var n loadCounts
	stopProgress := startProgress(stdout, o, &n, nil, nil)
	elapsed := placeCalls(ctx, ast, o, &n, nil)
	stopProgress()
	cancel()
	runErr := <-done
	ast.Close()
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > baseGoroutines && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	self1 := selfUsage()
	cpu := self1.cpu - self0.cpu
	latMu.Lock()
	lat := appLat
	latMu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	printCallsLine(stdout, &n, fmt.Sprint(ended.Load()), elapsed)
	outcomes.Range(func(k, v any) bool {
		fmt.Fprintf(stdout, "  outcome %-16s %d\n", k, v.(*atomic.Int64).Load())
		return true
	})
	fmt.Fprintf(stdout, "event-to-command latency (an event's arrival to the call's next request, %d samples): p50 %s  p95 %s  p99 %s\n", len(lat), pct(0.50), pct(0.95), pct(0.99))
	printFakeLatency(stdout, &fakeLat, "event-to-command latency", "at the fake Asterisk (an event written to the websocket to the next request about its call, loopback included)")
	printFakeLatency(stdout, &dialLat, "key-to-agent latency", keyToLeg)
	perCall := time.Duration(0)
	if c := n.completed.Load(); c > 0 {
		perCall = cpu / time.Duration(c)
	}
	fmt.Fprintf(stdout, "CPU %s in all (fake Asterisk included), %s per call\n", cpu.Round(time.Millisecond), perCall.Round(time.Microsecond))
	fmt.Fprintf(stdout, "peak RSS %.1f MB (%.1f MB at the start) at %d calls in progress: %.1f KB per call, fake Asterisk included\n",
		mb(self1.maxRSS), mb(self0.maxRSS), n.peak.Load(), float64(self1.maxRSS-self0.maxRSS)/1024/float64(max(n.peak.Load(), 1)))
	fmt.Fprintf(stdout, "goroutines: %d at the start, %d at the end\n", baseGoroutines, runtime.NumGoroutine())
	if runErr != nil {
		return runErr
	}
	return loadErr(ctx, &n)
}
