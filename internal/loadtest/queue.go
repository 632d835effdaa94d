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

// loadQueue measures a queue: o.conc callers wait in one queue for
// o.queueAgents agents of the child `callflow serve`. First every agent is
// paused, so that all callers only wait: the CPU of that minute, divided by
// the callers waiting, is the cost of a waiting caller. Then every agent is
// made available and the queue drains: every caller must be answered and
// recorded once, and the time from an agent coming free to the next caller
// being bridged to them is measured at the fake Asterisk.
func loadQueue(ctx context.Context, o loadOptions, stdout io.Writer) error {
	if !canMeasureChild() {
		return errors.New("loadtest: --queue needs Linux /proc")
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
	db := filepath.Join(dir, "callflow.db")
	token, agents, err := seedQueueAgents(ctx, db, o.queueAgents)
	if err != nil {
		return err
	}
	free := &agentFree{freed: map[string]time.Time{}}
	ast := newLoadFake(o, aritest.Options{NoRequestLog: true, OnAgentLeg: free.event, RecordingsDir: filepath.Join(dir, "recordings")})
	defer ast.Close()
	for _, a := range agents {
		ast.SetAgent("PJSIP/"+a, aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 200 * time.Millisecond, HangupAfter: o.talk})
	}
	web, err := freeLoopbackAddr()
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	cfgPath := filepath.Join(dir, "callflow.toml")
	cfg := childConfig(flowsDir, db, ast.RecordingsDir(), ast.URL(), web, "", o.logLevel) + "\n[agents]\nwrap_up = \"0s\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	ch, err := startChild(bin, dir, cfgPath, web, "")
	if err != nil {
		return err
	}
	defer ch.kill()
	fmt.Fprintf(stdout, "callflow serve pid %d, log %s; %d agents (paused), %d callers\n", ch.pid, ch.logPath, len(agents), o.conc)
	if err := ch.waitReady(ctx, 30*time.Second); err != nil {
		return err
	}

	// Every caller joins while no agent takes calls.
	var answered, failed, gone atomic.Int64
	var wg sync.WaitGroup
	callers := make([]*aritest.Caller, 0, o.conc)
	interval := time.Duration(float64(time.Second) / o.rate)
	for i := 0; i < o.conc && ctx.Err() == nil; i++ {
		c, err := ast.PlaceCall(ctx, aritest.CallSpec{Exten: queueNumber, From: fmt.Sprintf("+1555%07d", i), Talk: time.Hour})
		if err != nil {
			failed.Add(1)
			continue
		}
		callers = append(callers, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-c.Done()
			gone.Add(1)
		}()
		time.Sleep(interval)
	}
	waitingNow := func() float64 {
		m, err := ch.metrics()
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
	u0, s0, err := procCPU(ch.pid)
	if err != nil {
		return err
	}
	rss0, _, _ := procMem(ch.pid)
	select {
	case <-ctx.Done():
		return errors.New("loadtest: interrupted")
	case <-time.After(hold):
	}
	u1, s1, _ := procCPU(ch.pid)
	held := u1 + s1 - u0 - s0
	perCallerMinute := time.Duration(float64(held) / max(waiting, 1) / hold.Minutes())
	rss1, _, _ := procMem(ch.pid)
	fmt.Fprintf(stdout, "waiting only, %s: CPU %s, %s per waiting caller per minute (RSS %.1f MB → %.1f MB)\n",
		hold, held.Round(time.Millisecond), perCallerMinute.Round(time.Microsecond), mb(rss0), mb(rss1))

	// The agents come: the queue drains.
	start := time.Now()
	for _, a := range agents {
		if err := setPresence(ctx, ch, token, a, "available"); err != nil {
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
	ch.settle(ctx, 30*time.Second)
	if _, _, err := ch.stop(90 * time.Second); err != nil {
		return err
	}
	recs, waits, err := queueRecords(db)
	if err != nil {
		return err
	}
	for _, oc := range recs {
		if oc.name == "completed" {
			answered.Add(int64(oc.n))
		}
	}
	p := free.lat.Percentiles(0.5, 0.99)
	fmt.Fprintf(stdout, "drained in %s: %d callers, records %v, waits recorded %d (longest %s)\n",
		drain.Round(time.Second), len(callers), recs, len(waits), longest(waits))
	fmt.Fprintf(stdout, "agent free → next caller bridged (%d samples, %s ring included): p50 %s p99 %s max %s\n",
		free.lat.Count(), 200*time.Millisecond, fmtDur(p[0]), fmtDur(p[1]), fmtDur(free.lat.Max()))
	var errs []error
	if failed.Load() > 0 {
		errs = append(errs, fmt.Errorf("loadtest: %d callers could not call", failed.Load()))
	}
	if int(answered.Load()) != len(callers) || len(waits) != len(callers) {
		errs = append(errs, fmt.Errorf("loadtest: %d callers, %d answered, %d waits recorded", len(callers), answered.Load(), len(waits)))
	}
	return errors.Join(errs...)
}

// seedQueueAgents makes the database before callflow starts: n agents,
// paused, in team "load", and an admin token to unpause them with.
func seedQueueAgents(ctx context.Context, db string, n int) (token string, agents []string, err error) {
	st, err := store.Open(ctx, db, store.Options{BcryptCost: 4})
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
	_, outcomes, err := countRecords(db)
	if err != nil {
		return nil, nil, err
	}
	st, err := openRecords(db)
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
