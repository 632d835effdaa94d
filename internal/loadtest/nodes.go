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
}

// loadNodes runs o.nodes `callflow serve` processes, each beside a fake
// Asterisk of its own (one Asterisk box each), all on one database: the
// --database given, or one SQLite file they share. Callers are spread over
// the Asterisks in turn; one in four dials a round-robin flow, whose turns
// every node takes from the shared database. The report: calls recorded
// once in the shared database, the round-robin spread over its agents
// across nodes, CPU per call of each node.
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
	defer func() {
		for _, nd := range nodes {
			if nd != nil {
				nd.ch.kill()
				nd.ast.Close()
			}
		}
	}()
	for i := range nodes {
		nd := &node{name: fmt.Sprintf("node-%d", i+1)}
		// Each box its own systemname, or two boxes make the same channel
		// ids (epoch.sequence) and their calls' records collide.
		nd.ast = newLoadFake(o, aritest.Options{SystemName: "box" + strconv.Itoa(i+1), OnDialLatency: nd.lat.Record, NoRequestLog: true, RecordingsDir: filepath.Join(dir, nd.name, "recordings")})
		for _, ep := range rrAgents {
			nd.ast.SetAgent(ep, aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: time.Second, HangupAfter: o.talk})
		}
		ndDir := filepath.Join(dir, nd.name)
		if err := os.MkdirAll(ndDir, 0o755); err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
		web, err := freeLoopbackAddr()
		if err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
		cfg := childConfig(flowsDir, db, nd.ast.RecordingsDir(), nd.ast.URL(), web, "", o.logLevel) + nodeSection(nd.name)
		cfgPath := filepath.Join(ndDir, "callflow.toml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
		if nd.ch, err = startChild(bin, ndDir, cfgPath, web, ""); err != nil {
			nd.ast.Close()
			return err
		}
		nodes[i] = nd
		fmt.Fprintf(stdout, "%s: callflow serve pid %d, log %s, web http://%s\n", nd.name, nd.ch.pid, nd.ch.logPath, web)
	}
	for _, nd := range nodes {
		if err := nd.ch.waitReady(ctx, 30*time.Second); err != nil {
			return fmt.Errorf("%s: %w", nd.name, err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	for _, nd := range nodes {
		u, s, err := procCPU(nd.ch.pid)
		if err != nil {
			return err
		}
		nd.cpu0 = u + s
	}

	var n loadCounts
	perNode := make([]atomic.Int64, len(nodes))
	var turn atomic.Int64
	pick := func() (*aritest.Server, string) {
		i := turn.Add(1) - 1
		k := int(i % int64(len(nodes)))
		perNode[k].Add(1)
		if i%4 == 3 {
			return nodes[k].ast, rrNumber
		}
		return nodes[k].ast, o.number
	}
	stopProgress := startProgress(stdout, o, &n, nil, nil)
	elapsed := placeCallsWith(ctx, pick, o, &n, nil)
	stopProgress()
	if ctx.Err() != nil {
		printCallsLine(stdout, &n, "not counted", elapsed)
		return loadErr(ctx, &n)
	}
	for _, nd := range nodes {
		nd.ch.settle(ctx, 15*time.Second)
	}
	cpu := make([]time.Duration, len(nodes))
	for i, nd := range nodes {
		u, s, err := procCPU(nd.ch.pid)
		if err == nil {
			cpu[i] = u + s - nd.cpu0
		}
	}
	var stopErrs []error
	for _, nd := range nodes {
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
	fmt.Fprintf(stdout, "round robin across nodes: %s\n", rrSpread(nodes))

	errs := stopErrs
	if dbErr == nil && records != int(n.completed.Load()) {
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
	if !store.IsPostgres(db) {
		return countRecords(db)
	}
	st, err := sql.Open("pgx", db)
	if err != nil {
		return 0, nil, err
	}
	defer st.Close()
	return countOutcomes(st)
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
