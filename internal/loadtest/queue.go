package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/store"
)

// queueNumber is the number of the queue flow the --queue mode adds.
const queueNumber = "+914430008888"

func queueFlow(strategy string) string {
	return `name = "Load Queue"
numbers = ["` + queueNumber + `"]
status = "published"

[[steps]]
id = "wait"
applet = "queue"
name = "load"
teams = ["load"]
strategy = "` + strategy + `"
ring_timeout = "10s"
retry = "1s"
max_wait = "30m"
announce_every = "60s"
announce_wait = true
`
}

// agentFree notes when each agent's leg went (the agent is free again)
// and, at the next leg of that agent bridged, how long it took: the time
// from an agent becoming free to the next caller talking to them.
type agentFree struct {
	mu    sync.Mutex
	freed map[string]time.Time
	lat   aritest.LatencyRecorder
}

func (a *agentFree) event(endpoint, ev string) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	switch ev {
	case "gone":
		a.freed[endpoint] = now
	case "bridged":
		if t, ok := a.freed[endpoint]; ok {
			delete(a.freed, endpoint)
			a.lat.Record(now.Sub(t))
		}
	}
}

// qnode is one `callflow serve` of the queue mode, beside its Asterisk.
type qnode struct {
	name string
	ast  *aritest.Server
	ch   *child
}

// loadQueue measures a queue: o.conc callers wait in one queue for
// o.queueAgents agents, taken by o.nodes `callflow serve` processes (each
// beside a fake Asterisk of its own, callers spread over them in turn; more
// than one node shares the queue through PostgreSQL). First every agent is
// paused, so that all callers only wait: the CPU of that time, divided by
// the callers waiting, is the cost of a waiting caller. Then every agent
// is made available and the queue drains: every caller must be answered
// and recorded once; the time from an agent coming free to the next caller
// being bridged to them is measured at the fake Asterisks, and how far
// callers were answered out of their order of arrival (across nodes).
func loadQueue(ctx context.Context, o loadOptions, stdout io.Writer) error {
	if !canMeasureChild() {
		return errors.New("loadtest: --queue needs Linux /proc")
	}
	nNodes := max(o.nodes, 1)
	if nNodes > 1 && !store.IsPostgres(o.database) {
		return fmt.Errorf("%w: --queue with --nodes needs --database postgres://... (nodes share a queue on PostgreSQL only)", errUsage)
	}
	dir, cleanup, err := workDir("callflow-loadtest-queue-", o.keep)
	if err != nil {
		return err
	}
	defer cleanup()
	flowsDir := filepath.Join(dir, "flows")
	if err := os.MkdirAll(flowsDir, 0o755); err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(flowsDir, "load-queue.toml"), []byte(queueFlow(o.queueStrategy)), 0o644); err != nil {
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
		db = filepath.Join(dir, "callflow.db")
	}
	token, agents, err := seedQueueAgents(ctx, db, filepath.Join(dir, "seed-spool.jsonl"), o.queueAgents)
	if err != nil {
		return err
	}
	free := &agentFree{freed: map[string]time.Time{}}
	nodes := make([]*qnode, nNodes)
	defer func() {
		for _, nd := range nodes {
			if nd != nil {
				if nd.ch != nil {
					nd.ch.kill()
				}
				nd.ast.Close()
			}
		}
	}()
	for i := range nodes {
		nd := &qnode{name: fmt.Sprintf("node-%d", i+1)}
		nodeDir := filepath.Join(dir, nd.name)
		nd.ast = newLoadFake(o, aritest.Options{SystemName: fmt.Sprintf("box%d", i+1), NoRequestLog: true, OnAgentLeg: free.event,
			RecordingsDir: filepath.Join(nodeDir, "recordings")})
		nodes[i] = nd
		for _, a := range agents {
			nd.ast.SetAgent("PJSIP/"+a, aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 200 * time.Millisecond, HangupAfter: o.talk})
		}
		web, err := freeLoopbackAddr()
		if err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
		cfgPath := filepath.Join(nodeDir, "callflow.toml")
		cfg := childConfig(flowsDir, db, nd.ast.RecordingsDir(), nd.ast.URL(), web, "", o.logLevel) + "\n[agents]\nwrap_up = \"0s\"\n" + nodeSection(nd.name)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
		if nd.ch, err = startChild(bin, nodeDir, cfgPath, web, ""); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: callflow serve pid %d, log %s\n", nd.name, nd.ch.pid, nd.ch.logPath)
	}
	fmt.Fprintf(stdout, "%d agents (paused), %d callers over %d node(s)\n", len(agents), o.conc, nNodes)
	for _, nd := range nodes {
		if err := nd.ch.waitReady(ctx, 30*time.Second); err != nil {
			return fmt.Errorf("%s: %w", nd.name, err)
		}
	}

	// Every caller joins while no agent takes calls.
	var failed, gone atomic.Int64
	var wg sync.WaitGroup
	callers := make([]*aritest.Caller, 0, o.conc)
	var bmu sync.Mutex
	var bridgedOrder []int // arrival index of each caller, in the order they were bridged
	interval := time.Duration(float64(time.Second) / o.rate)
	for i := 0; i < o.conc && ctx.Err() == nil; i++ {
		c, err := nodes[i%nNodes].ast.PlaceCall(ctx, aritest.CallSpec{Exten: queueNumber, From: fmt.Sprintf("+1555%07d", i), Talk: time.Hour})
		if err != nil {
			failed.Add(1)
			continue
		}
		callers = append(callers, c)
		arrival := len(callers) - 1
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := c.WaitBridged(ctx); err == nil {
				bmu.Lock()
				bridgedOrder = append(bridgedOrder, arrival)
				bmu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			<-c.Done()
			gone.Add(1)
		}()
		time.Sleep(interval)
	}
	// With a shared list every node counts every caller; else one node.
	waitingNow := func() float64 {
		m, err := nodes[0].ch.metrics()
		if err != nil {
			return -1
		}
		return m[`callflow_queue_waiting{queue="load"}`]
	}
	for deadline := time.Now().Add(60 * time.Second); waitingNow() < float64(len(callers)) && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	waiting := waitingNow()
	fmt.Fprintf(stdout, "%d callers placed, %.0f waiting in the queue\n", len(callers), waiting)

	// --duration of waiting alone.
	hold := o.duration
	cpu := func() (time.Duration, float64) {
		var total time.Duration
		var rss float64
		for _, nd := range nodes {
			u, s, _ := procCPU(nd.ch.pid)
			r, _, _ := procMem(nd.ch.pid)
			total += u + s
			rss += mb(r)
		}
		return total, rss
	}
	c0, rss0 := cpu()
	select {
	case <-ctx.Done():
		return errors.New("loadtest: interrupted")
	case <-time.After(hold):
	}
	c1, rss1 := cpu()
	held := c1 - c0
	perCallerMinute := time.Duration(float64(held) / max(waiting, 1) / hold.Minutes())
	fmt.Fprintf(stdout, "waiting only, %s: CPU %s over the nodes, %s per waiting caller per minute (RSS %.1f MB → %.1f MB)\n",
		hold, held.Round(time.Millisecond), perCallerMinute.Round(time.Microsecond), rss0, rss1)

	// The agents come (set on node-1; the others hear of it): the queue
	// drains.
	start := time.Now()
	for _, a := range agents {
		if err := setPresence(ctx, nodes[0].ch, token, a, "available"); err != nil {
			return err
		}
	}
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	t := time.NewTicker(o.progress)
	defer t.Stop()
	for done := false; !done; {
		select {
		case <-drained:
			done = true
		case <-ctx.Done():
			for _, c := range callers {
				c.Hangup()
			}
			<-drained
			return errors.New("loadtest: interrupted")
		case <-t.C:
			fmt.Fprintf(stdout, "%5.0fs  done %d of %d, waiting %.0f\n", time.Since(start).Seconds(), gone.Load(), len(callers), waitingNow())
		}
	}
	drain := time.Since(start)
	for _, nd := range nodes {
		nd.ch.settle(ctx, 30*time.Second)
	}
	for _, nd := range nodes {
		if _, _, err := nd.ch.stop(90 * time.Second); err != nil {
			return fmt.Errorf("%s: %w", nd.name, err)
		}
	}
	recs, waits, err := queueRecords(db)
	if err != nil {
		return err
	}
	answered := 0
	for _, oc := range recs {
		if oc.name == "completed" {
			answered += oc.n
		}
	}
	p := free.lat.Percentiles(0.5, 0.99)
	fmt.Fprintf(stdout, "drained in %s: %d callers, records %v, waits recorded %d (longest %s)\n",
		drain.Round(time.Second), len(callers), recs, len(waits), longest(waits))
	fmt.Fprintf(stdout, "agent free → next caller bridged (%d samples, %s ring included): p50 %s p99 %s max %s\n",
		free.lat.Count(), 200*time.Millisecond, fmtDur(p[0]), fmtDur(p[1]), fmtDur(free.lat.Max()))
	late, worst := outOfOrder(bridgedOrder, len(agents))
	fmt.Fprintf(stdout, "order of arrival (across nodes): %d of %d callers answered after a caller who came more than %d places after them; the furthest %d places\n",
		late, len(bridgedOrder), len(agents), worst)
	var errs []error
	if failed.Load() > 0 {
		errs = append(errs, fmt.Errorf("loadtest: %d callers could not call", failed.Load()))
	}
	if answered != len(callers) || len(waits) != len(callers) || len(bridgedOrder) != len(callers) {
		errs = append(errs, fmt.Errorf("loadtest: %d callers, %d answered, %d bridged, %d waits recorded", len(callers), answered, len(bridgedOrder), len(waits)))
	}
	return errors.Join(errs...)
}

// outOfOrder looks at the arrival indexes of callers in the order they
// were answered: a caller is late when someone who arrived more than slack
// places after them was answered first (slack: as many callers as agents
// can be rung at one moment). It returns the late callers and the largest
// such gap.
func outOfOrder(answered []int, slack int) (late, worst int) {
	maxSoFar := -1
	for _, a := range answered {
		if maxSoFar-a > slack {
			late++
		}
		worst = max(worst, maxSoFar-a)
		maxSoFar = max(maxSoFar, a)
	}
	return late, worst
}

// seedQueueAgents makes the database before callflow starts: n agents,
// paused, in team "load", and an admin token to unpause them with.
func seedQueueAgents(ctx context.Context, db, spool string, n int) (token string, agents []string, err error) {
	st, err := store.Open(ctx, db, store.Options{BcryptCost: 4, SpoolPath: spool})
	if err != nil {
		return "", nil, err
	}
	defer st.Close()
	if _, err := st.CreateUser(ctx, store.NewUser{Name: "loadadmin", Password: "loadadmin-pw", Role: store.RoleAdmin}); err != nil {
		return "", nil, err
	}
	if token, _, err = st.CreateToken(ctx, "loadadmin", "load"); err != nil {
		return "", nil, err
	}
	if err := st.CreateTeam(ctx, "load", ""); err != nil {
		return "", nil, err
	}
	for i := range n {
		a := fmt.Sprintf("qagent%02d", i+1)
		if _, err := st.CreateUser(ctx, store.NewUser{Name: a, Password: "password-" + a, Role: store.RoleStaff}); err != nil {
			return "", nil, err
		}
		if err := st.SetAgentEndpoints(ctx, a, []string{"PJSIP/" + a}); err != nil {
			return "", nil, err
		}
		if err := st.AddTeamMember(ctx, "load", a); err != nil {
			return "", nil, err
		}
		if err := st.SetPresence(ctx, store.Presence{Agent: a, State: "paused", Reason: "load", Since: time.Now()}); err != nil {
			return "", nil, err
		}
		agents = append(agents, a)
	}
	return token, agents, nil
}

func setPresence(ctx context.Context, ch *child, token, agent, state string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ch.web+"/api/agents/"+agent+"/presence", strings.NewReader(`{"state":"`+state+`"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := ch.hc.Do(req)
	if err != nil {
		return fmt.Errorf("loadtest: presence of %s: %w", agent, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("loadtest: presence of %s: %s %s", agent, resp.Status, b)
	}
	return nil
}

// queueRecords reads the calls' outcomes and each queue step's wait.
func queueRecords(db string) ([]outcomeCount, []time.Duration, error) {
	_, outcomes, err := countRecordsIn(db)
	if err != nil {
		return nil, nil, err
	}
	st, err := openShared(db)
	if err != nil {
		return nil, nil, err
	}
	defer st.Close()
	rows, err := st.Query(`SELECT details FROM call_steps WHERE applet = 'queue'`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var waits []time.Duration
	for rows.Next() {
		var details string
		if err := rows.Scan(&details); err != nil {
			return nil, nil, err
		}
		var d struct {
			Waited *float64 `json:"waited_s"`
		}
		if json.Unmarshal([]byte(details), &d) == nil && d.Waited != nil {
			waits = append(waits, time.Duration(*d.Waited*float64(time.Second)))
		}
	}
	return outcomes, waits, rows.Err()
}

func longest(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)-1]
}
