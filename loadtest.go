package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
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

// loadOptions are the flags of `callflow loadtest`.
type loadOptions struct {
	flows, number              string
	conc                       int
	rate                       float64
	duration, talk, prompt     time.Duration
	vmShare                    float64
	progress                   time.Duration
	inProcess, keep            bool
	pprofDir, binary, logLevel string
}

// cmdLoadtest drives `callflow serve` with scripted callers through the
// fake Asterisk and reports what it cost. By default serve runs as a child
// process (this program, `serve --config` in a temporary directory), so
// that its CPU, memory and goroutines are measured alone; --in-process
// runs the serve wiring in this process, fake Asterisk and all.
func cmdLoadtest(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o loadOptions
	fs.StringVar(&o.flows, "flows", "testdata/flows", "flows directory (seed 004's support flow on +914430001234 is dialled)")
	fs.StringVar(&o.number, "number", "+914430001234", "number the callers dial")
	fs.IntVar(&o.conc, "concurrency", 100, "calls in progress at most")
	fs.Float64Var(&o.rate, "rate", 50, "new calls per second")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long to place calls")
	fs.DurationVar(&o.talk, "talk", 10*time.Second, "talk time once an agent answers")
	fs.DurationVar(&o.prompt, "prompt", 2*time.Second, "length of each prompt")
	fs.Float64Var(&o.vmShare, "voicemail", 0.2, "share of callers who reach a busy team and leave a message")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "progress line interval")
	fs.BoolVar(&o.inProcess, "in-process", false, "run the serve wiring in this process (figures then include the fake Asterisk and the callers)")
	fs.BoolVar(&o.keep, "keep", false, "keep the child's temporary directory (config, database, log)")
	fs.StringVar(&o.pprofDir, "pprof", "", "write the child's CPU profile over the calls, and heap profiles and goroutine dumps at the peak and at the end, to this directory")
	fs.StringVar(&o.binary, "binary", "", "callflow program to start as `callflow serve` (default: this program)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level of the child")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	if o.conc <= 0 || o.rate <= 0 || o.progress <= 0 {
		return errors.New("loadtest: --concurrency, --rate and --progress must be positive")
	}
	if o.inProcess && (o.pprofDir != "" || o.keep || o.binary != "") {
		return errors.New("loadtest: --pprof, --keep and --binary need the child process (drop --in-process)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.inProcess {
		return loadInProcess(ctx, o, stdout)
	}
	return loadChild(ctx, o, stdout, stderr)
}

// newLoadFake starts the fake Asterisk the callers call through. Every team
// answers after a different ring; billing is busy, so those callers leave a
// voicemail.
func newLoadFake(o loadOptions, opts aritest.Options) *aritest.Server {
	opts.DefaultMediaDuration = o.prompt
	ast := aritest.NewServer(opts)
	for i, ep := range []string{"PJSIP/tech1", "PJSIP/tech2", "PJSIP/sales1", "PJSIP/sales2"} {
		ast.SetAgent(ep, aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: time.Duration(1+i) * time.Second, HangupAfter: o.talk})
	}
	ast.SetAgent("PJSIP/billing1", aritest.AgentBehavior{Mode: aritest.AgentBusy})
	return ast
}

// loadCounts are the callers' tallies.
type loadCounts struct {
	placed, completed, failed, stuck, interrupted, active, peak atomic.Int64
}

func (n *loadCounts) enter() {
	a := n.active.Add(1)
	for p := n.peak.Load(); a > p && !n.peak.CompareAndSwap(p, a); p = n.peak.Load() {
	}
}

// placeCalls places calls at o.rate, at most o.conc at once, for
// o.duration or until ctx ends (then the calls in progress hang up), and
// waits for every call to end. placed is called once no more calls will be
// placed. It returns the time from the first call to the end of the last.
func placeCalls(ctx context.Context, ast *aritest.Server, o loadOptions, n *loadCounts, placed func()) time.Duration {
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.conc)
	interval := time.Duration(float64(time.Second) / o.rate)
	start := time.Now()
	next := start
	wait := time.NewTimer(0)
	defer wait.Stop()
place:
	for time.Since(start) < o.duration {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break place
		}
		if d := time.Until(next); d > 0 {
			wait.Reset(d)
			select {
			case <-wait.C:
			case <-ctx.Done():
				<-sem
				break place
			}
		}
		next = next.Add(interval)
		wg.Add(1)
		n.placed.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n.enter()
			defer n.active.Add(-1)
			key := []string{"1", "3"}[rand.IntN(2)]
			if rand.Float64() < o.vmShare {
				key = "2"
			}
			cctx, ccancel := context.WithTimeout(ctx, 5*time.Minute)
			defer ccancel()
			c, err := ast.PlaceCall(cctx, aritest.CallSpec{Exten: o.number, From: fmt.Sprintf("+1555%07d", rand.IntN(10000000)), Talk: 3 * time.Second})
			if err != nil {
				if ctx.Err() != nil {
					n.interrupted.Add(1)
				} else {
					n.failed.Add(1)
				}
				return
			}
			if err := c.WaitPlayback(cctx, "sound:custom/acme-menu"); err == nil {
				c.Press(key)
			}
			select {
			case <-c.Done():
				n.completed.Add(1)
			case <-cctx.Done():
				c.Hangup()
				if ctx.Err() != nil {
					n.interrupted.Add(1)
				} else {
					n.stuck.Add(1)
				}
			}
		}()
	}
	if placed != nil {
		placed()
	}
	wg.Wait()
	return time.Since(start)
}

// startProgress prints a progress line every o.progress, after calling
// sample, with what line adds to it, until the returned stop is called.
func startProgress(stdout io.Writer, o loadOptions, n *loadCounts, sample func(), line func() string) (stop func()) {
	start := time.Now()
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(o.progress)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				if sample != nil {
					sample()
				}
				el := time.Since(start).Seconds()
				extra := ""
				if line != nil {
					extra = line()
				}
				fmt.Fprintf(stdout, "%5.0fs  active %5d  completed %7d  failed %4d  %.1f calls/s%s\n",
					el, n.active.Load(), n.completed.Load(), n.failed.Load(), float64(n.completed.Load())/el, extra)
			}
		}
	}()
	return func() { close(quit); <-done }
}

// printCallsLine is the first line of the report.
func printCallsLine(stdout io.Writer, n *loadCounts, records string, elapsed time.Duration) {
	fmt.Fprintf(stdout, "\ncalls placed %d, completed %d, failed %d, stuck %d (records %s) in %s: %.1f calls/s\n",
		n.placed.Load(), n.completed.Load(), n.failed.Load(), n.stuck.Load(), records, elapsed.Round(time.Second), float64(n.completed.Load())/elapsed.Seconds())
	if k := n.interrupted.Load(); k > 0 {
		fmt.Fprintf(stdout, "interrupted: %d calls hung up early\n", k)
	}
}

// printFakeLatency is the event-to-command latency measured at the fake.
func printFakeLatency(stdout io.Writer, lat *aritest.LatencyRecorder, what string) {
	p := lat.Percentiles(0.50, 0.95, 0.99)
	fmt.Fprintf(stdout, "event-to-command latency %s (%d samples): p50 %s  p95 %s  p99 %s  max %s\n",
		what, lat.Count(), fmtDur(p[0]), fmtDur(p[1]), fmtDur(p[2]), fmtDur(lat.Max()))
}

// fmtDur rounds a latency for reading.
func fmtDur(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= 100*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}

func loadErr(ctx context.Context, n *loadCounts) error {
	if ctx.Err() != nil {
		return errors.New("loadtest: interrupted")
	}
	if n.stuck.Load() > 0 || n.failed.Load() > 0 {
		return fmt.Errorf("loadtest: %d failed, %d stuck", n.failed.Load(), n.stuck.Load())
	}
	return nil
}

// loadInProcess runs the serve wiring in this process: its CPU and memory
// figures include the fake Asterisk and the callers.
func loadInProcess(ctx context.Context, o loadOptions, stdout io.Writer) error {
	baseGoroutines := runtime.NumGoroutine()
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)

	var fakeLat aritest.LatencyRecorder
	ast := newLoadFake(o, aritest.Options{OnCommandLatency: fakeLat.Record, NoRequestLog: true})
	defer ast.Close()

	cfg := config.Default()
	cfg.FlowsDir = o.flows
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
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.run(sctx) }()
	for deadline := time.Now().Add(10 * time.Second); !srv.ari.Health().Connected; time.Sleep(10 * time.Millisecond) {
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
	printCallsLine(stdout, &n, fmt.Sprint(ended.Load()), elapsed)
	outcomes.Range(func(k, v any) bool {
		fmt.Fprintf(stdout, "  outcome %-16s %d\n", k, v.(*atomic.Int64).Load())
		return true
	})
	fmt.Fprintf(stdout, "event-to-command latency (an event's arrival to the call's next request, %d samples): p50 %s  p95 %s  p99 %s\n", len(lat), pct(0.50), pct(0.95), pct(0.99))
	printFakeLatency(stdout, &fakeLat, "at the fake Asterisk (an event written to the websocket to the next request about its call, loopback included)")
	perCall := time.Duration(0)
	if c := n.completed.Load(); c > 0 {
		perCall = cpu / time.Duration(c)
	}
	fmt.Fprintf(stdout, "CPU %s in all (fake Asterisk included), %s per call\n", cpu.Round(time.Millisecond), perCall.Round(time.Microsecond))
	fmt.Fprintf(stdout, "peak RSS %.1f MB (%.1f MB at the start) at %d calls in progress: %.1f KB per call, fake Asterisk included\n",
		float64(ru1.Maxrss)/1024, float64(ru0.Maxrss)/1024, n.peak.Load(), float64(ru1.Maxrss-ru0.Maxrss)/float64(max(n.peak.Load(), 1)))
	fmt.Fprintf(stdout, "goroutines: %d at the start, %d at the end\n", baseGoroutines, runtime.NumGoroutine())
	if runErr != nil {
		return runErr
	}
	return loadErr(ctx, &n)
}
