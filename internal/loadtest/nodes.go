package loadtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/store"
	_ "github.com/jackc/pgx/v5/stdlib" // counting records on PostgreSQL
)

// rrNumber is the number of the round-robin flow the nodes mode adds, and
// rrAgents the agents it takes turns with.
const rrNumber = "+914430007777"

var rrAgents = []string{"PJSIP/rr1", "PJSIP/rr2", "PJSIP/rr3", "PJSIP/rr4"}

// rrFlow rings one agent a call, in turn, the turn kept in the database
// that every node shares.
const rrFlow = `name = "Load Round Robin"
numbers = ["` + rrNumber + `"]
status = "published"

[[steps]]
id = "agents"
applet = "round_robin"
to = ["PJSIP/rr1", "PJSIP/rr2", "PJSIP/rr3", "PJSIP/rr4"]
ring_timeout = "20s"
try_next = 1
on = { no_answer = "bye", busy = "bye", failed = "bye" }

[[steps]]
id = "bye"
applet = "hangup"
`

// node is one `callflow serve` process with the fake Asterisk it serves.
type node struct {
	name string
	ast  *aritest.Server
	ch   *child
	lat  aritest.LatencyRecorder
	cpu0 time.Duration
	// app is its Stasis application ("" callflow's default); standbyFor
	// the primary's, for a standby on the same Asterisk.
	app, standbyFor string
	dir, cfgPath    string
	web             string
	// cpuBefore is the CPU of its earlier processes (killed and started
	// again).
	cpuBefore time.Duration
}

// start starts the node's `callflow serve` (again, after a kill: the
// earlier log is kept beside).
func (nd *node) start(bin string) error {
	log := filepath.Join(nd.dir, "callflow.log")
	for i := 1; ; i++ {
		old := filepath.Join(nd.dir, fmt.Sprintf("callflow.%d.log", i))
		if _, err := os.Stat(old); os.IsNotExist(err) {
			_ = os.Rename(log, old)
			break
		}
	}
	ch, err := startChild(bin, nd.dir, nd.cfgPath, nd.web, "")
	if err != nil {
		return err
	}
	nd.ch = ch
	return nil
}

// cpu is the CPU the node's processes used since it was ready.
func (nd *node) cpu() time.Duration {
	u, s, err := procCPU(nd.ch.pid)
	if err != nil {
		return nd.cpuBefore
	}
	return nd.cpuBefore + u + s - nd.cpu0
}

// loadNodes runs o.nodes `callflow serve` processes, each beside a fake
// Asterisk of its own (one Asterisk box each), all on one database: the
// --database given, or one SQLite file they share. Callers are spread over
// the Asterisks in turn; one in four dials a round-robin flow, whose turns
// every node takes from the shared database. The report: calls recorded
// once in the shared database, the round-robin spread over its agents
// across nodes, CPU per call of each node. With --fault, the fault is made
// during the calls and every call that reached callflow is checked to be
// recorded, finished, once.
func loadNodes(ctx context.Context, o loadOptions, stdout, stderr io.Writer) error {
	if !canMeasureChild() {
		return errors.New("loadtest: --nodes needs Linux /proc")
	}
	dir, cleanup, err := workDir("callflow-loadtest-nodes-", o.keep)
	if err != nil {
		return err
	}
	defer cleanup()
	flowsDir := filepath.Join(dir, "flows")
	if err := copyFlows(o.flows, flowsDir); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(flowsDir, "load-round-robin.toml"), []byte(rrFlow), 0o644); err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	bin := o.binary
	if bin == "" {
		if bin, err = buildProgram(ctx, dir, "github.com/callflow/callflow"); err != nil {
			return err
		}
	}
	db := o.database
	if db == "" {
		db = filepath.Join(dir, "shared.db")
	}

	nodes := make([]*node, o.nodes)
	var standby *node // kill-primary: node-1's standby on the same Asterisk
	all := func() []*node {
		out := append([]*node(nil), nodes...)
		if standby != nil {
			out = append(out, standby)
		}
		return out
	}
	defer func() {
		for _, nd := range all() {
			if nd != nil && nd.ch != nil {
				nd.ch.kill()
			}
		}
		for _, nd := range nodes {
			if nd != nil {
				nd.ast.Close()
			}
		}
	}()
	setUp := func(nd *node) error {
		nd.dir = filepath.Join(dir, nd.name)
		if err := os.MkdirAll(nd.dir, 0o755); err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
		web, err := freeLoopbackAddr()
		if err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
		nd.web = web
		cfg := childConfig(flowsDir, db, nd.ast.RecordingsDir(), nd.ast.URL(), web, "", o.logLevel) + nodeSection(nd.name)
		cfg = withARI(cfg, nd.app, nd.standbyFor)
		nd.cfgPath = filepath.Join(nd.dir, "callflow.toml")
		if err := os.WriteFile(nd.cfgPath, []byte(cfg), 0o600); err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
		if err := nd.start(bin); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: callflow serve pid %d, log %s, web http://%s\n", nd.name, nd.ch.pid, nd.ch.logPath, web)
		return nil
	}
	for i := range nodes {
		nd := &node{name: fmt.Sprintf("node-%d", i+1)}
		// Each box its own systemname, or two boxes make the same channel
		// ids (epoch.sequence) and their calls' records collide.
		nd.ast = newLoadFake(o, aritest.Options{SystemName: "box" + strconv.Itoa(i+1), OnDialLatency: nd.lat.Record, NoRequestLog: true, RecordingsDir: filepath.Join(dir, nd.name, "recordings")})
		for _, ep := range rrAgents {
			nd.ast.SetAgent(ep, aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: time.Second, HangupAfter: o.talk})
		}
		nodes[i] = nd
		if i == 0 && o.fault.kind == faultKillPrimary {
			nd.app = "callflow-a"
			standby = &node{name: "node-1-standby", ast: nd.ast, app: "callflow-b", standbyFor: "callflow-a"}
		}
		if err := setUp(nd); err != nil {
			return err
		}
	}
	if standby != nil {
		if err := setUp(standby); err != nil {
			return err
		}
	}
	for _, nd := range all() {
		if err := nd.ch.waitReady(ctx, 30*time.Second); err != nil {
			return fmt.Errorf("%s: %w", nd.name, err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	for _, nd := range all() {
		u, s, err := procCPU(nd.ch.pid)
		if err != nil {
			return err
		}
		nd.cpu0 = u + s
	}

	var n loadCounts
	var entered sync.Map // call id → true: the calls that reached callflow
	n.entered = func(id string) { entered.Store(id, true) }
	n.refusalsExpected = o.fault.kind == faultKillNode || o.fault.kind == faultKillPrimary
	perNode := make([]atomic.Int64, len(nodes))
	var turn atomic.Int64
	pick := func() dest {
		i := turn.Add(1) - 1
		k := int(i % int64(len(nodes)))
		perNode[k].Add(1)
		d := dest{ast: nodes[k].ast, number: o.number, apps: []string{nodes[k].app}}
		if k == 0 && standby != nil {
			d.apps = append(d.apps, standby.app)
		}
		if i%4 == 3 {
			d.number = rrNumber
		}
		return d
	}
	fault := startFault(ctx, o.fault, faultTargets{bin: bin, nodes: nodes, standby: standby}, stdout)
	stopProgress := startProgress(stdout, o, &n, nil, nil)
	elapsed := placeCallsWith(ctx, pick, o, &n, nil)
	stopProgress()
	faultErr := fault.wait()
	if ctx.Err() != nil {
		printCallsLine(stdout, &n, "not counted", elapsed)
		return loadErr(ctx, &n)
	}
	for _, nd := range all() {
		if nd.ch.running() {
			nd.ch.settle(ctx, 30*time.Second)
		}
	}
	cpu := make([]time.Duration, len(nodes))
	for i, nd := range nodes {
		cpu[i] = nd.cpu()
	}
	var standbyCPU time.Duration
	if standby != nil {
		standbyCPU = standby.cpu()
	}
	var stopErrs []error
	for _, nd := range all() {
		if !nd.ch.running() {
			continue // killed on purpose and left dead
		}
		if _, _, err := nd.ch.stop(90 * time.Second); err != nil {
			stopErrs = append(stopErrs, fmt.Errorf("%s: %w", nd.name, err))
		}
	}

	records, outcomes, dbErr := countRecordsIn(db)
	recs := fmt.Sprintf("%d in the shared database", records)
	if dbErr != nil {
		recs = "unknown: " + dbErr.Error()
	}
	printCallsLine(stdout, &n, recs, elapsed)
	for _, oc := range outcomes {
		fmt.Fprintf(stdout, "  outcome %-16s %d\n", oc.name, oc.n)
	}
	for i, nd := range nodes {
		calls := max(perNode[i].Load(), 1)
		p := nd.lat.Percentiles(0.5, 0.99)
		fmt.Fprintf(stdout, "%s: %d calls, CPU %s (%s per call), key-to-agent p50 %s p99 %s\n",
			nd.name, perNode[i].Load(), cpu[i].Round(time.Millisecond), (cpu[i] / time.Duration(calls)).Round(time.Microsecond), fmtDur(p[0]), fmtDur(p[1]))
	}
	if standby != nil {
		fmt.Fprintf(stdout, "%s: CPU %s (node-1's calls after the takeover)\n", standby.name, standbyCPU.Round(time.Millisecond))
	}
	fmt.Fprintf(stdout, "round robin across nodes: %s\n", rrSpread(nodes))

	errs := append(stopErrs, faultErr)
	if store.IsPostgres(db) {
		errs = append(errs, checkVoicemailAudio(db, stdout))
	}
	if o.fault.kind != "" {
		// Records are checked call by call: a call a killed node was
		// running is recorded by whichever process finished it.
		var ids []string
		entered.Range(func(k, _ any) bool { ids = append(ids, k.(string)); return true })
		errs = append(errs, checkNothingLost(db, ids, stdout))
	} else if dbErr == nil && records != int(n.completed.Load()) {
		errs = append(errs, fmt.Errorf("loadtest: %d calls completed but %d records in the shared database", n.completed.Load(), records))
	}
	if err := loadErr(ctx, &n); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// rrSpread counts the legs each round-robin agent was rung on, over every
// node's Asterisk, and how far the busiest and idlest are apart.
func rrSpread(nodes []*node) string {
	count := map[string]int{}
	for _, nd := range nodes {
		for _, c := range nd.ast.History() {
			for _, ep := range rrAgents {
				if c.Endpoint == ep {
					count[ep]++
				}
			}
		}
	}
	lo, hi := -1, 0
	var parts []string
	for _, ep := range rrAgents {
		k := count[ep]
		parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(ep, "PJSIP/"), k))
		hi = max(hi, k)
		if lo < 0 || k < lo {
			lo = k
		}
	}
	return fmt.Sprintf("%s (most minus least: %d)", strings.Join(parts, ", "), hi-lo)
}

// copyFlows copies the *.toml files of src into dst.
func copyFlows(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(src, "*.toml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("loadtest: no flows in %s", src)
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644)
		}
		if err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
	}
	return nil
}

// nodeSection names a node in its config.
func nodeSection(name string) string {
	return fmt.Sprintf("\n[node]\nname = %q\n", name)
}

// countRecordsIn counts the call records in the shared database.
func countRecordsIn(db string) (int, []outcomeCount, error) {
	st, err := openShared(db)
	if err != nil {
		return 0, nil, err
	}
	defer st.Close()
	return countOutcomes(st)
}

// openShared opens the database the nodes share, to read.
func openShared(db string) (*sql.DB, error) {
	if !store.IsPostgres(db) {
		return openRecords(db)
	}
	return sql.Open("pgx", db)
}

// workDir makes the run's temporary directory; cleanup removes it unless
// keep.
func workDir(prefix string, keep bool) (dir string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, fmt.Errorf("loadtest: %w", err)
	}
	return dir, func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}, nil
}

// checkVoicemailAudio checks that the database holds the audio of every
// voicemail, which is what lets every node's inbox play every message.
func checkVoicemailAudio(db string, stdout io.Writer) error {
	st, err := openShared(db)
	if err != nil {
		return err
	}
	defer st.Close()
	var messages, withAudio int
	if err := st.QueryRow(`SELECT COUNT(*), COUNT(a.name) FROM voicemails v LEFT JOIN audio a ON a.name = v.recording`).Scan(&messages, &withAudio); err != nil {
		return fmt.Errorf("loadtest: counting voicemails: %w", err)
	}
	fmt.Fprintf(stdout, "voicemails: %d, %d with their audio in the database (playable from every node)\n", messages, withAudio)
	if withAudio != messages {
		return fmt.Errorf("loadtest: %d voicemails without their audio in the database", messages-withAudio)
	}
	return nil
}
