package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/flows"
)

// cmdLoadtest drives the real serve code path with scripted callers
// through the fake Asterisk, in this process, and reports what it cost.
func cmdLoadtest(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("flows", "testdata/flows", "flows directory (seed 004's support flow on +914430001234 is dialled)")
	number := fs.String("number", "+914430001234", "number the callers dial")
	conc := fs.Int("concurrency", 100, "calls in progress at most")
	rate := fs.Float64("rate", 50, "new calls per second")
	duration := fs.Duration("duration", 30*time.Second, "how long to place calls")
	talk := fs.Duration("talk", 10*time.Second, "talk time once an agent answers")
	prompt := fs.Duration("prompt", 2*time.Second, "length of each prompt")
	vmShare := fs.Float64("voicemail", 0.2, "share of callers who reach a busy team and leave a message")
	progress := fs.Duration("progress", 5*time.Second, "progress line interval")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	baseGoroutines := runtime.NumGoroutine()
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)

	ast := aritest.NewServer(aritest.Options{DefaultMediaDuration: *prompt})
	defer ast.Close()
	// Every team answers after a different ring; billing is busy, so those
	// callers leave a voicemail.
	for i, ep := range []string{"PJSIP/tech1", "PJSIP/tech2", "PJSIP/sales1", "PJSIP/sales2"} {
		ast.SetAgent(ep, aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: time.Duration(1+i) * time.Second, HangupAfter: *talk})
	}
	ast.SetAgent("PJSIP/billing1", aritest.AgentBehavior{Mode: aritest.AgentBusy})

	cfg := config.Default()
	cfg.FlowsDir = *dir
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
	srv := newServerWith(cfg, zerolog.New(io.Discard), sink, &applets.Services{}, serverExtras{onLatency: func(d time.Duration) {
		latMu.Lock()
		appLat = append(appLat, d)
		latMu.Unlock()
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); !srv.ari.Health().Connected; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cancel()
			<-done
			return errors.New("loadtest: could not connect to the fake Asterisk")
		}
	}

	var placed, completed, failed, stuck, active, peak atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, *conc)
	start := time.Now()
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(*progress)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				el := time.Since(start).Seconds()
				fmt.Fprintf(stdout, "%5.0fs  active %5d  completed %7d  failed %4d  %.1f calls/s\n", el, active.Load(), completed.Load(), failed.Load(), float64(completed.Load())/el)
			}
		}
	}()
	interval := time.Duration(float64(time.Second) / *rate)
	next := time.Now()
	for time.Since(start) < *duration {
		sem <- struct{}{}
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		wg.Add(1)
		placed.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if n := active.Add(1); n > peak.Load() {
				peak.Store(n)
			}
			defer active.Add(-1)
			key := []string{"1", "3"}[rand.IntN(2)]
			if rand.Float64() < *vmShare {
				key = "2"
			}
			cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer ccancel()
			c, err := ast.PlaceCall(cctx, aritest.CallSpec{Exten: *number, From: fmt.Sprintf("+1555%07d", rand.IntN(10000000)), Talk: 3 * time.Second})
			if err != nil {
				failed.Add(1)
				return
			}
			if err := c.WaitPlayback(cctx, "sound:custom/acme-menu"); err == nil {
				c.Press(key)
			}
			select {
			case <-c.Done():
				completed.Add(1)
			case <-cctx.Done():
				stuck.Add(1)
				c.Hangup()
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	elapsed := time.Since(start)
	cancel()
	runErr := <-done
	ast.Close()
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > baseGoroutines && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
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
	fmt.Fprintf(stdout, "\ncalls placed %d, completed %d, failed %d, stuck %d (records %d) in %s: %.1f calls/s\n",
		placed.Load(), completed.Load(), failed.Load(), stuck.Load(), ended.Load(), elapsed.Round(time.Second), float64(completed.Load())/elapsed.Seconds())
	outcomes.Range(func(k, v any) bool {
		fmt.Fprintf(stdout, "  outcome %-16s %d\n", k, v.(*atomic.Int64).Load())
		return true
	})
	fmt.Fprintf(stdout, "event-to-command latency (an event's arrival to the call's next request, %d samples): p50 %s  p95 %s  p99 %s\n", len(lat), pct(0.50), pct(0.95), pct(0.99))
	perCall := time.Duration(0)
	if completed.Load() > 0 {
		perCall = cpu / time.Duration(completed.Load())
	}
	fmt.Fprintf(stdout, "CPU %s in all (fake Asterisk included), %s per call\n", cpu.Round(time.Millisecond), perCall.Round(time.Microsecond))
	fmt.Fprintf(stdout, "peak RSS %.1f MB (%.1f MB at the start) at %d calls in progress: %.1f KB per call, fake Asterisk included\n",
		float64(ru1.Maxrss)/1024, float64(ru0.Maxrss)/1024, peak.Load(), float64(ru1.Maxrss-ru0.Maxrss)/float64(max(peak.Load(), 1)))
	fmt.Fprintf(stdout, "goroutines: %d at the start, %d at the end\n", baseGoroutines, runtime.NumGoroutine())
	if runErr != nil {
		return runErr
	}
	if stuck.Load() > 0 || failed.Load() > 0 {
		return fmt.Errorf("loadtest: %d failed, %d stuck", failed.Load(), stuck.Load())
	}
	return nil
}
