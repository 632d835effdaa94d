package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callflow/callflow/ari/aritest"
)

// loadOptions are the flags of `callflow loadtest`.
type loadOptions struct {
	flows, number              string
	conc                       int
	rate                       float64
	duration, talk, prompt     time.Duration
	vmShare                    float64
	progress                   time.Duration
	inProcess, keep, floor     bool
	nodes                      int
	database                   string
	pprofDir, binary, logLevel string
	fault                      faultOptions
	queueAgents                int
	queueStrategy              string
}

// Main drives `callflow serve` with scripted callers through the fake
// Asterisk and reports what it cost. By default serve runs as a child
// process (`callflow serve --config` in a temporary directory, the program
// built from this module unless --binary names one), so that its CPU,
// memory and goroutines are measured alone; --in-process runs the same
// server in this process, fake Asterisk and all. It returns the exit
// status.
func Main(args []string, stdout, stderr io.Writer) int {
	err := run(args, stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "callflow-load: %v\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "callflow-load: %v\n", err)
	return 1
}

var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("callflow-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o loadOptions
	fs.StringVar(&o.flows, "flows", "testdata/flows", "flows directory (the example support flow on +914430001234 is dialled)")
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
	fs.StringVar(&o.binary, "binary", "", "callflow program to start as `callflow serve` (default: built from this module with go build)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level of the child")
	fs.IntVar(&o.nodes, "nodes", 1, "run this many callflow serve processes, each beside a fake Asterisk of its own, on one shared database")
	fs.StringVar(&o.database, "database", "", "the database the nodes share (a postgres:// URL; default a SQLite file they share); with it, even one node runs this way")
	fs.StringVar(&o.fault.kind, "fault", "", "with --nodes: a fault made during the calls: kill-node (node-1 SIGKILLed, started again after --fault-for), kill-primary (node-1 has a standby on its Asterisk; the primary is SIGKILLed), db-restart or db-outage (the database stopped with --db-stop and started with --db-start, at once or after --fault-for)")
	fs.DurationVar(&o.fault.at, "fault-at", 10*time.Second, "when the fault is made, from the first call")
	fs.DurationVar(&o.fault.lasts, "fault-for", 0, "how long the fault lasts (kill-node default 2s, db-outage default 30s)")
	fs.StringVar(&o.fault.dbStop, "db-stop", "", "shell command that stops the database (db-restart, db-outage)")
	fs.StringVar(&o.fault.dbStart, "db-start", "", "shell command that starts the database again")
	fs.IntVar(&o.queueAgents, "queue", 0, "measure a queue instead: --concurrency callers wait for this many agents (first all paused for --duration, then all available); with --nodes and a postgres:// --database, one queue over that many nodes")
	fs.StringVar(&o.queueStrategy, "queue-strategy", "longest_idle", "the queue's strategy with --queue")
	fs.BoolVar(&o.floor, "floor", false, "run the minimal raw ARI client (cmd/ari-floor) in callflow's place: the floor callflow's figures are measured against")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if o.conc <= 0 || o.rate <= 0 || o.progress <= 0 {
		return fmt.Errorf("%w: --concurrency, --rate and --progress must be positive", errUsage)
	}
	if o.inProcess && (o.pprofDir != "" || o.keep || o.binary != "") {
		return fmt.Errorf("%w: --pprof, --keep and --binary need the child process (drop --in-process)", errUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.queueAgents > 0 {
		return loadQueue(ctx, o, stdout)
	}
	if err := o.fault.check(); err != nil {
		return err
	}
	if o.fault.kind != "" && o.nodes < 1 {
		return fmt.Errorf("%w: --fault needs --nodes", errUsage)
	}
	if o.nodes > 1 || o.database != "" || o.fault.kind != "" {
		if o.inProcess || o.floor || o.pprofDir != "" {
			return fmt.Errorf("%w: --nodes and --database run child processes without --in-process, --floor or --pprof", errUsage)
		}
		return loadNodes(ctx, o, stdout, stderr)
	}
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
	// refused: no application took the call (every node of its box was
	// down): the dialplan's fallback answers it. A failure unless a fault
	// was made on purpose.
	refused atomic.Int64
	// entered, when set, is told each call that entered Stasis.
	entered          func(id string)
	refusalsExpected bool // a node was stopped on purpose
}

// dest is where a caller's call goes: an Asterisk box, the number, and
// the Stasis applications its dialplan tries in turn ("" is callflow's
// default), as [from-pstn-ha] does.
type dest struct {
	ast    *aritest.Server
	number string
	apps   []string
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
	return placeCallsWith(ctx, func() dest { return dest{ast: ast, number: o.number} }, o, n, placed)
}

// placeCallsWith is placeCalls with each call's destination chosen by
// pick, which must be safe for concurrent use.
func placeCallsWith(ctx context.Context, pick func() dest, o loadOptions, n *loadCounts, placed func()) time.Duration {
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
			d := pick()
			number := d.number
			c, err := placeCall(cctx, d, aritest.CallSpec{Exten: number, From: fmt.Sprintf("+1555%07d", rand.IntN(10000000)), Talk: 3 * time.Second})
			if errors.Is(err, aritest.ErrNoApplication) {
				n.refused.Add(1)
				return
			}
			if err != nil {
				if ctx.Err() != nil {
					n.interrupted.Add(1)
				} else {
					n.failed.Add(1)
				}
				return
			}
			if n.entered != nil {
				n.entered(c.ID())
			}
			// Only the support flow has a menu (the nodes' round robin has none).
			if number == o.number && c.WaitPlayback(cctx, "sound:custom/acme-menu") == nil {
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

// placeCall places spec at d, trying d's applications in turn while none
// is served.
func placeCall(ctx context.Context, d dest, spec aritest.CallSpec) (*aritest.Caller, error) {
	apps := d.apps
	if len(apps) == 0 {
		apps = []string{""}
	}
	var err error
	for _, app := range apps {
		spec.App = app
		var c *aritest.Caller
		if c, err = d.ast.PlaceCall(ctx, spec); !errors.Is(err, aritest.ErrNoApplication) {
			return c, err
		}
	}
	return nil, err
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
	if k := n.refused.Load(); k > 0 {
		fmt.Fprintf(stdout, "refused: %d calls no callflow application took (the dialplan's fallback answers them)\n", k)
	}
}

// printFakeLatency is the event-to-command latency measured at the fake.
func printFakeLatency(stdout io.Writer, lat *aritest.LatencyRecorder, name, what string) {
	p := lat.Percentiles(0.50, 0.95, 0.99)
	fmt.Fprintf(stdout, "%s %s (%d samples): p50 %s  p95 %s  p99 %s  max %s\n",
		name, what, lat.Count(), fmtDur(p[0]), fmtDur(p[1]), fmtDur(p[2]), fmtDur(lat.Max()))
}

// keyToLeg says what the key-to-agent figure measures.
const keyToLeg = "at the fake Asterisk (the caller's key written to the websocket to callflow's request creating the first agent leg)"

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
	if n.refused.Load() > 0 && !n.refusalsExpected {
		return fmt.Errorf("loadtest: %d calls refused (no application)", n.refused.Load())
	}
	return nil
}
