package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
)

// loadChild runs `callflow serve` as a child process with its own config,
// SQLite database and log in a temporary directory, drives it through the
// fake Asterisk in this process, and measures the child alone: CPU from
// /proc/PID/stat, memory from /proc/PID/status, goroutines and calls in
// progress from its /metrics, call records from its database.
func loadChild(ctx context.Context, o loadOptions, stdout, stderr io.Writer) error {
	if !canMeasureChild() {
		return errors.New("loadtest: measuring a child process needs Linux /proc; use --in-process")
	}
	flowsDir, err := filepath.Abs(o.flows)
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	if _, err := os.Stat(flowsDir); err != nil {
		return fmt.Errorf("loadtest: flows directory: %w", err)
	}
	dir, cleanup, err := workDir("callflow-loadtest-", o.keep)
	if err != nil {
		return err
	}
	defer cleanup()
	bin, pkg, name := o.binary, "github.com/callflow/callflow", "callflow serve"
	if o.floor {
		pkg, name = "github.com/callflow/callflow/cmd/ari-floor", "the raw ARI floor client (figures labelled callflow below are its own)"
	}
	if bin == "" {
		if bin, err = buildProgram(ctx, dir, pkg); err != nil {
			return err
		}
	}
	profDir := ""
	if o.pprofDir != "" {
		if profDir, err = filepath.Abs(o.pprofDir); err == nil {
			err = os.MkdirAll(profDir, 0o755)
		}
		if err != nil {
			return fmt.Errorf("loadtest: --pprof: %w", err)
		}
	}

	var fakeLat, dialLat aritest.LatencyRecorder
	recDir := filepath.Join(dir, "recordings")
	ast := newLoadFake(o, aritest.Options{OnCommandLatency: fakeLat.Record, OnDialLatency: dialLat.Record, NoRequestLog: true, RecordingsDir: recDir})
	defer ast.Close()

	web, err := freeLoopbackAddr()
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	cfgPath := filepath.Join(dir, "callflow.toml")
	dbPath := filepath.Join(dir, "callflow.db")
	pprofAddr := ""
	if profDir != "" {
		if pprofAddr, err = freeLoopbackAddr(); err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
	}
	if err := os.WriteFile(cfgPath, []byte(childConfig(flowsDir, dbPath, recDir, ast.URL(), web, pprofAddr, o.logLevel)), 0o600); err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	ch, err := startChild(bin, dir, cfgPath, web, pprofAddr)
	if err != nil {
		return err
	}
	defer ch.kill()
	fmt.Fprintf(stdout, "%s (pid %d, %s): config %s, log %s, web http://%s\n", name, ch.pid, bin, cfgPath, ch.logPath, web)
	if err := ch.waitReady(ctx, 20*time.Second); err != nil {
		return err
	}

	// Baseline: connected, flows loaded, no call yet.
	time.Sleep(500 * time.Millisecond)
	base, err := ch.sample()
	if err != nil {
		return err
	}
	user0, sys0, err := procCPU(ch.pid)
	if err != nil {
		return err
	}
	self0 := selfUsage()
	if profDir != "" {
		ch.startCPUProfile(profDir, o.duration+o.talk+10*time.Second)
	}

	var n loadCounts
	var mu sync.Mutex
	var last, peak childSample
	start := time.Now()
	// One sample per progress line: reading /metrics costs the child about
	// a millisecond of CPU each time.
	stopProgress := startProgress(stdout, o, &n, func() {
		s, err := ch.sample()
		if err != nil {
			return
		}
		s.at = time.Since(start)
		s.active = n.active.Load()
		mu.Lock()
		defer mu.Unlock()
		last = s
		if s.inCalls > peak.inCalls || s.inCalls == peak.inCalls && s.rss > peak.rss {
			peak = s
		}
	}, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("  callflow: RSS %6.1f MB, %5.0f calls, %6.0f goroutines", mb(last.rss), last.inCalls, last.goroutines)
	})
	// VmHWM misses peaks: Linux raises it only when memory is unmapped,
	// and the Go runtime returns memory with madvise, which does not. So
	// VmRSS is also read often; that costs the child nothing.
	rssPeak := rssWatch(ch.pid, &n, start)
	// If callflow dies, nobody hangs the calls up: end them at once.
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	go func() {
		select {
		case <-ch.exited:
			cancelRun()
		case <-runCtx.Done():
		}
	}()
	var profErr error
	elapsed := placeCalls(runCtx, ast, o, &n, func() {
		if profDir != "" && runCtx.Err() == nil {
			profErr = ch.snapshot(profDir, "peak")
		}
	})
	stopProgress()
	maxRSS, atConc := rssPeak()
	if !ch.running() {
		printCallsLine(stdout, &n, "not counted", elapsed)
		return fmt.Errorf("loadtest: callflow serve exited during the run (%s):\n%s", ch.state, tail(ch.logPath, 20))
	}
	if ctx.Err() != nil {
		printCallsLine(stdout, &n, "not counted", elapsed)
		return loadErr(ctx, &n)
	}

	// The calls are over for the callers; callflow may still be ending
	// some and writing records.
	drained := ch.settle(ctx, 15*time.Second)
	user1, sys1, cpuErr := procCPU(ch.pid)
	end, _ := ch.sample()
	self1 := selfUsage()
	// Idle keep-alive connections to Asterisk close after 10 s; wait for
	// the goroutine count to come back, a little longer than that.
	gStart := time.Now()
	settled := end
	for time.Since(gStart) < 12*time.Second && settled.goroutines > base.goroutines && ctx.Err() == nil {
		time.Sleep(250 * time.Millisecond)
		if s, err := ch.sample(); err == nil {
			settled = s
		}
	}
	gWait := time.Since(gStart)
	if profDir != "" {
		if err := ch.snapshot(profDir, "end"); profErr == nil {
			profErr = err
		}
		if err := ch.waitCPUProfile(); profErr == nil {
			profErr = err
		}
	}
	state, drain, stopErr := ch.stop(90 * time.Second)

	records, outcomes, dbErr := countRecords(dbPath)
	if o.floor {
		dbErr = errors.New("the floor client keeps no records")
	}
	spooled := countLines(dbPath + "-spool.jsonl")
	logInfo := scanLog(ch.logPath)

	// The report.
	recs := fmt.Sprintf("%d in the database", records)
	if dbErr != nil {
		recs = "unknown: " + dbErr.Error()
	}
	printCallsLine(stdout, &n, recs, elapsed)
	for _, oc := range outcomes {
		fmt.Fprintf(stdout, "  outcome %-16s %d\n", oc.name, oc.n)
	}
	if spooled > 0 {
		fmt.Fprintf(stdout, "  %d records left in the spool file, not in the database\n", spooled)
	}
	printFakeLatency(stdout, &fakeLat, "event-to-command latency", "at the fake Asterisk (an event written to the websocket to callflow's next request about its call; loopback websocket and HTTP included)")
	printFakeLatency(stdout, &dialLat, "key-to-agent latency", keyToLeg)
	completed := max(n.completed.Load(), 1)
	cpu := user1 + sys1 - user0 - sys0
	fakeCPU := self1.cpu - self0.cpu
	if cpuErr != nil {
		fmt.Fprintf(stdout, "CPU of callflow unknown: %v\n", cpuErr)
	} else {
		life := ""
		if state != nil {
			life = fmt.Sprintf("; %s in its whole life", (state.UserTime() + state.SystemTime()).Round(time.Millisecond))
		}
		fmt.Fprintf(stdout, "CPU callflow %s over the calls (user %s, system %s), %s per call%s\n",
			cpu.Round(time.Millisecond), (user1 - user0).Round(time.Millisecond), (sys1 - sys0).Round(time.Millisecond), (cpu / time.Duration(completed)).Round(time.Microsecond), life)
	}
	fmt.Fprintf(stdout, "CPU fake Asterisk and callers (this process, same interval) %s, %s per call\n",
		fakeCPU.Round(time.Millisecond), (fakeCPU / time.Duration(completed)).Round(time.Microsecond))
	peakCalls := max(n.peak.Load(), 1)
	peakRSS := max(end.hwm, maxRSS.rss)
	fmt.Fprintf(stdout, "peak RSS callflow %.1f MB (VmHWM %.1f MB, highest VmRSS read every %s %.1f MB; %.1f MB before the first call) at %d calls in progress: %.1f KB per call in progress\n",
		mb(peakRSS), mb(end.hwm), rssEvery, mb(maxRSS.rss), mb(base.rss), n.peak.Load(), float64(peakRSS-base.rss)/1024/float64(peakCalls))
	if atConc.active > 0 {
		fmt.Fprintf(stdout, "  VmRSS at the peak concurrency (%d calls, %.1fs): %.1f MB, %.1f KB per call over the start\n",
			atConc.active, atConc.at.Seconds(), mb(atConc.rss), float64(atConc.rss-base.rss)/1024/float64(atConc.active))
	}
	if peak.inCalls > 0 {
		perCall := func(v, b float64) float64 { return (v - b) / 1024 / peak.inCalls }
		fmt.Fprintf(stdout, "  progress sample with the most calls (%.0fs, %.0f calls in callflow): RSS %.1f MB (%.1f KB per call); Go heap in use %.1f MB (%.1f KB per call), stacks %.1f MB (%.1f KB per call), %.0f goroutines (%.2f per call)\n",
			peak.at.Seconds(), peak.inCalls, mb(peak.rss), perCall(float64(peak.rss), float64(base.rss)),
			mb(int64(peak.heap)), perCall(peak.heap, base.heap), mb(int64(peak.stack)), perCall(peak.stack, base.stack),
			peak.goroutines, (peak.goroutines-base.goroutines)/peak.inCalls)
	}
	fmt.Fprintf(stdout, "  Go heap in use %.1f MB and stacks %.1f MB before the first call; after the calls RSS %.1f MB, heap in use %.1f MB, stacks %.1f MB\n",
		mb(int64(base.heap)), mb(int64(base.stack)), mb(end.rss), mb(int64(end.heap)), mb(int64(end.stack)))
	fmt.Fprintf(stdout, "peak RSS fake Asterisk and callers (this process) %.1f MB\n", mb(self1.maxRSS))
	fmt.Fprintf(stdout, "goroutines callflow: %.0f at the start, %.0f when the calls ended, %.0f after %s more\n",
		base.goroutines, end.goroutines, settled.goroutines, gWait.Round(100*time.Millisecond))
	if !drained {
		fmt.Fprintf(stdout, "  callflow still had %.0f calls in progress and %.0f records queued 15s after the callers hung up\n", end.inCalls, end.queue)
	}
	fmt.Fprintf(stdout, "callflow stopped by SIGTERM: %s after %s\n", state, drain.Round(time.Millisecond))
	kept := "removed with its directory; --keep keeps it"
	if o.keep {
		kept = "kept"
	}
	fmt.Fprintf(stdout, "callflow log %s (%s): %d errors, %d warnings\n", ch.logPath, kept, logInfo.errors, logInfo.warns)
	for _, l := range logInfo.first {
		fmt.Fprintf(stdout, "  %s\n", l)
	}
	if profDir != "" {
		if profErr != nil {
			fmt.Fprintf(stdout, "profiles: %v\n", profErr)
		} else {
			fmt.Fprintf(stdout, "profiles in %s: cpu.pprof (the calls), heap-peak.pprof, heap-end.pprof, goroutines-peak.txt, goroutines-end.txt (go tool pprof %s %s)\n",
				profDir, bin, filepath.Join(profDir, "cpu.pprof"))
		}
	}

	var errs []error
	if stopErr != nil {
		errs = append(errs, stopErr)
	}
	if dbErr == nil && records+spooled != int(n.completed.Load()) {
		errs = append(errs, fmt.Errorf("loadtest: %d calls completed but %d records written", n.completed.Load(), records+spooled))
	}
	if err := loadErr(ctx, &n); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

const rssEvery = 250 * time.Millisecond

// rssSample is the child's VmRSS at one moment.
type rssSample struct {
	at     time.Duration
	active int64 // calls in progress, callers' count
	rss    int64
}

// rssWatch reads the child's VmRSS every rssEvery until the returned
// function is called, which gives the highest reading and the highest
// reading among those taken with the most calls in progress.
func rssWatch(pid int, n *loadCounts, start time.Time) func() (highest, atPeak rssSample) {
	quit := make(chan struct{})
	done := make(chan struct{})
	var highest, atPeak rssSample
	go func() {
		defer close(done)
		t := time.NewTicker(rssEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			rss, _, err := procMem(pid)
			if err != nil {
				continue
			}
			s := rssSample{at: time.Since(start), active: n.active.Load(), rss: rss}
			if s.rss > highest.rss {
				highest = s
			}
			if s.active > atPeak.active || s.active == atPeak.active && s.rss > atPeak.rss {
				atPeak = s
			}
		}
	}()
	return func() (rssSample, rssSample) {
		close(quit)
		<-done
		return highest, atPeak
	}
}

// buildProgram builds pkg (the product, or the floor client) from the
// module this command runs in (go run ./cmd/callflow-load, from a clone),
// into dir.
func buildProgram(ctx context.Context, dir, pkg string) (string, error) {
	bin := filepath.Join(dir, path.Base(pkg))
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("loadtest: building %s (or give --binary): %w\n%s", pkg, err, out)
	}
	return bin, nil
}

// freeLoopbackAddr finds a free port on 127.0.0.1 for the child's web
// server. Another program could take it before the child does; the child
// then fails to start and says so in its log.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// childConfig is the child's callflow.toml.
func childConfig(flowsDir, db, recDir, ariURL, web, pprofAddr, level string) string {
	key := make([]byte, 16)
	rand.Read(key)
	q := strconv.Quote
	return fmt.Sprintf(`# written by callflow loadtest
flows_dir = %s
database = %s
recordings_dir = %s
default_country = "91"

[ari]
url = %s
password = "secret"

[agi]
listen = ""

[http]
listen = %s
session_key = %s

[log]
level = %s
format = "json"

[calls]
drain_timeout = "60s"

[tts]
cache_dir = %s

[debug]
pprof_listen = %s
`, q(flowsDir), q(db), q(recDir), q(ariURL), q(web), q(hex.EncodeToString(key)), q(level), q(filepath.Join(filepath.Dir(db), "tts")), q(pprofAddr))
}

// child is the `callflow serve` process under test.
type child struct {
	cmd     *exec.Cmd
	pid     int
	logPath string
	web     string // "http://127.0.0.1:PORT"
	hc      *http.Client
	exited  chan struct{}
	state   *os.ProcessState
	pprof   string // the child's profiler, host:port; "" for none
	cpuDone chan error
}

func startChild(bin, dir, cfgPath, web, pprofAddr string) (*child, error) {
	logPath := filepath.Join(dir, "callflow.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Only the config file configures the child: CALLFLOW_* variables of
	// this environment would override it.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, config.EnvPrefix) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadtest: starting %s: %w", bin, err)
	}
	c := &child{
		cmd:     cmd,
		pid:     cmd.Process.Pid,
		logPath: logPath,
		web:     "http://" + web,
		pprof:   pprofAddr,
		hc:      &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1}},
		exited:  make(chan struct{}),
	}
	go func() {
		_ = cmd.Wait()
		c.state = cmd.ProcessState
		close(c.exited)
	}()
	return c, nil
}

func (c *child) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// waitReady waits for /healthz to say ok: ARI connected, flows loaded.
func (c *child) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if !c.running() {
			return fmt.Errorf("loadtest: callflow serve exited at start (%s):\n%s", c.state, tail(c.logPath, 20))
		}
		resp, err := c.hc.Get(c.web + "/healthz")
		if err == nil {
			var h struct {
				OK bool `json:"ok"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && h.OK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("loadtest: callflow serve not ready after %s:\n%s", limit, tail(c.logPath, 20))
		}
		select {
		case <-ctx.Done():
			return errors.New("loadtest: interrupted")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// childSample is what the child looks like at one moment.
type childSample struct {
	at         time.Duration
	active     int64   // callers in progress, on this side
	rss, hwm   int64   // bytes
	inCalls    float64 // callflow_calls_in_progress
	queue      float64 // callflow_store_queue_depth
	goroutines float64
	heap       float64 // go_memstats_heap_inuse_bytes
	stack      float64 // go_memstats_stack_inuse_bytes
}

func (c *child) sample() (childSample, error) {
	var s childSample
	var err error
	if s.rss, s.hwm, err = procMem(c.pid); err != nil {
		return s, err
	}
	m, err := c.metrics()
	if err != nil {
		return s, err
	}
	s.inCalls, s.queue = m["callflow_calls_in_progress"], m["callflow_store_queue_depth"]
	s.goroutines, s.heap, s.stack = m["go_goroutines"], m["go_memstats_heap_inuse_bytes"], m["go_memstats_stack_inuse_bytes"]
	return s, nil
}

// metrics reads the child's /metrics: the samples without labels.
func (c *child) metrics() (map[string]float64, error) {
	resp, err := c.hc.Get(c.web + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("loadtest: callflow /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loadtest: callflow /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// settle waits until callflow has no call in progress and no record
// queued for the database; false if that did not happen within limit.
func (c *child) settle(ctx context.Context, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); ; {
		if s, err := c.sample(); err == nil && s.inCalls == 0 && s.queue == 0 {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil || !c.running() {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the child to drain and exit, killing
// it after limit.
func (c *child) stop(limit time.Duration) (*os.ProcessState, time.Duration, error) {
	t0 := time.Now()
	if c.running() {
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && c.running() {
			return nil, 0, fmt.Errorf("loadtest: SIGTERM: %w", err)
		}
	}
	select {
	case <-c.exited:
	case <-time.After(limit):
		c.kill()
		return c.state, time.Since(t0), fmt.Errorf("loadtest: callflow serve did not stop within %s of SIGTERM: killed", limit)
	}
	d := time.Since(t0)
	if !c.state.Success() {
		return c.state, d, fmt.Errorf("loadtest: callflow serve %s after SIGTERM:\n%s", c.state, tail(c.logPath, 20))
	}
	return c.state, d, nil
}

// kill ends the child at once if it still runs, and waits for it.
func (c *child) kill() {
	if c.running() {
		_ = c.cmd.Process.Kill()
	}
	<-c.exited
	c.hc.CloseIdleConnections()
}

// startCPUProfile has the child profile its CPU for d (--pprof), from its
// [debug] pprof_listen, into dir/cpu.pprof; waitCPUProfile waits for it.
func (c *child) startCPUProfile(dir string, d time.Duration) {
	c.cpuDone = make(chan error, 1)
	secs := int((d + time.Second - 1) / time.Second)
	go func() {
		c.cpuDone <- c.fetchProfile(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), filepath.Join(dir, "cpu.pprof"), d+time.Minute)
	}()
}

func (c *child) waitCPUProfile() error {
	if c.cpuDone == nil {
		return nil
	}
	return <-c.cpuDone
}

// snapshot writes a heap profile (after a collection) and a goroutine
// dump of the child (--pprof), named heap-LABEL.pprof and
// goroutines-LABEL.txt.
func (c *child) snapshot(dir, label string) error {
	if err := c.fetchProfile("/debug/pprof/heap?gc=1", filepath.Join(dir, "heap-"+label+".pprof"), time.Minute); err != nil {
		return err
	}
	return c.fetchProfile("/debug/pprof/goroutine?debug=1", filepath.Join(dir, "goroutines-"+label+".txt"), time.Minute)
}

// fetchProfile copies a profile from the child's profiler to path, under a
// temporary name first so that a reader never sees half a file.
func (c *child) fetchProfile(query, path string, limit time.Duration) error {
	if c.pprof == "" {
		return errors.New("loadtest: the child serves no profiler")
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.pprof+query, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("loadtest: profile %s: %w", query, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("loadtest: profile %s: %s", query, resp.Status)
	}
	f, err := os.Create(path + ".part")
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("loadtest: profile %s: %w", query, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".part", path)
}

type outcomeCount struct {
	name string
	n    int
}

// countRecords counts the calls in the child's database, opened read-only
// once the child has exited.
func countRecords(path string) (int, []outcomeCount, error) {
	db, err := openRecords(path)
	if err != nil {
		return 0, nil, err
	}
	defer db.Close()
	return countOutcomes(db)
}

// openRecords opens a SQLite database file read-only.
func openRecords(path string) (*sql.DB, error) {
	return sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
}

// countOutcomes counts the calls table's rows by outcome.
func countOutcomes(db *sql.DB) (int, []outcomeCount, error) {
	rows, err := db.Query(`SELECT outcome, COUNT(*) FROM calls GROUP BY outcome ORDER BY COUNT(*) DESC, outcome`)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	var out []outcomeCount
	total := 0
	for rows.Next() {
		var oc outcomeCount
		if err := rows.Scan(&oc.name, &oc.n); err != nil {
			return 0, nil, err
		}
		if oc.name == "" {
			oc.name = "(none)"
		}
		total += oc.n
		out = append(out, oc)
	}
	return total, out, rows.Err()
}

// countLines counts the lines of a file; 0 when it does not exist.
func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte("\n"))
}

type logSummary struct {
	errors, warns int
	first         []string // the first few warnings and errors
}

// scanLog counts the warnings and errors in the child's JSON log.
func scanLog(path string) logSummary {
	var s logSummary
	f, err := os.Open(path)
	if err != nil {
		return s
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e struct {
			Level   string `json:"level"`
			Message string `json:"message"`
			Error   string `json:"error"`
		}
		if !bytes.Contains(line, []byte(`"level"`)) || json.Unmarshal(line, &e) != nil {
			// not JSON: a panic or a runtime message
			if len(bytes.TrimSpace(line)) > 0 {
				s.errors++
				if len(s.first) < 5 {
					s.first = append(s.first, string(line))
				}
			}
			continue
		}
		switch e.Level {
		case "warn":
			s.warns++
		case "error", "fatal", "panic":
			s.errors++
		default:
			continue
		}
		if len(s.first) < 5 {
			msg := e.Level + ": " + e.Message
			if e.Error != "" {
				msg += ": " + e.Error
			}
			s.first = append(s.first, msg)
		}
	}
	return s
}

// tail is the end of a file, for errors.
func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
}
