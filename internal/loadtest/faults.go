package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// The faults --fault makes during a --nodes run.
const (
	faultKillNode    = "kill-node"
	faultKillPrimary = "kill-primary"
	faultDBRestart   = "db-restart"
	faultDBOutage    = "db-outage"
)

// faultOptions say which fault to make, when, and for how long.
type faultOptions struct {
	kind            string
	at, lasts       time.Duration
	dbStop, dbStart string
}

func (f *faultOptions) check() error {
	switch f.kind {
	case "":
		return nil
	case faultKillNode:
		if f.lasts == 0 {
			f.lasts = 2 * time.Second
		}
	case faultKillPrimary:
	case faultDBRestart, faultDBOutage:
		if f.dbStop == "" || f.dbStart == "" {
			return fmt.Errorf("%w: --fault %s needs --db-stop and --db-start", errUsage, f.kind)
		}
		if f.kind == faultDBOutage && f.lasts == 0 {
			f.lasts = 30 * time.Second
		}
	default:
		return fmt.Errorf("%w: --fault %q: want kill-node, kill-primary, db-restart or db-outage", errUsage, f.kind)
	}
	if f.at < 0 || f.lasts < 0 {
		return fmt.Errorf("%w: --fault-at and --fault-for must not be negative", errUsage)
	}
	return nil
}

// faultTargets are what a fault acts on.
type faultTargets struct {
	bin     string
	nodes   []*node
	standby *node
}

// runningFault is a fault being made beside the calls.
type runningFault struct {
	done chan struct{}
	err  error
}

// wait waits for the fault to be over (a node started again, the database
// back) and says what went wrong making it.
func (f *runningFault) wait() error {
	<-f.done
	return f.err
}

// startFault makes the fault o names, o.at after now, beside the calls.
func startFault(ctx context.Context, o faultOptions, t faultTargets, stdout io.Writer) *runningFault {
	f := &runningFault{done: make(chan struct{})}
	if o.kind == "" {
		close(f.done)
		return f
	}
	go func() {
		defer close(f.done)
		select {
		case <-ctx.Done():
			return
		case <-time.After(o.at):
		}
		switch o.kind {
		case faultKillNode:
			f.err = killAndRestart(ctx, t.bin, t.nodes[0], o.lasts, stdout)
		case faultKillPrimary:
			f.err = killPrimary(ctx, t.nodes[0], t.standby, stdout)
		case faultDBRestart, faultDBOutage:
			f.err = stopDatabase(ctx, o, t.nodes, stdout)
		}
	}()
	return f
}

// killAndRestart SIGKILLs nd and starts it again after down.
func killAndRestart(ctx context.Context, bin string, nd *node, down time.Duration, stdout io.Writer) error {
	inCalls := callsInProgress(nd)
	nd.cpuBefore = nd.cpu()
	t0 := time.Now()
	nd.ch.kill()
	fmt.Fprintf(stdout, "fault: %s SIGKILLed with %d calls in progress; starting it again in %s\n", nd.name, inCalls, down)
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(down):
	}
	if err := nd.start(bin); err != nil {
		return err
	}
	if err := nd.ch.waitReady(ctx, 30*time.Second); err != nil {
		return fmt.Errorf("%s after the kill: %w", nd.name, err)
	}
	if u, s, err := procCPU(nd.ch.pid); err == nil {
		nd.cpu0 = u + s
	}
	fmt.Fprintf(stdout, "fault: %s serving again %s after the kill\n", nd.name, time.Since(t0).Round(10*time.Millisecond))
	return nil
}

// killPrimary SIGKILLs the primary and watches its standby take the calls
// it left: how long until the takeover, and how many channels it moved.
func killPrimary(ctx context.Context, primary, standby *node, stdout io.Writer) error {
	inCalls := callsInProgress(primary)
	primary.cpuBefore = primary.cpu()
	t0 := time.Now()
	primary.ch.kill()
	fmt.Fprintf(stdout, "fault: primary %s SIGKILLed with %d calls in progress; %s stands by\n", primary.name, inCalls, standby.name)
	var took time.Duration
	last, stableSince := -1, time.Now()
	for deadline := t0.Add(60 * time.Second); time.Now().Before(deadline); {
		h, err := nodeHealth(standby)
		if err == nil {
			if took == 0 && h.Takeovers > 0 {
				took = time.Since(t0)
			}
			if h.AdoptedChannels != last {
				last, stableSince = h.AdoptedChannels, time.Now()
			}
			if took > 0 && time.Since(stableSince) > 2*time.Second {
				fmt.Fprintf(stdout, "fault: %s took over %s after the kill and adopted %d channels (callers and agent legs) in %d takeovers\n",
					standby.name, took.Round(10*time.Millisecond), h.AdoptedChannels, h.Takeovers)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("loadtest: %s did not take over within a minute of the primary's kill", standby.name)
}

// stopDatabase stops the database, and starts it again at once
// (db-restart) or after o.lasts (db-outage), watching the nodes' write
// queues meanwhile.
func stopDatabase(ctx context.Context, o faultOptions, nodes []*node, stdout io.Writer) error {
	t0 := time.Now()
	if err := shell(ctx, o.dbStop); err != nil {
		return fmt.Errorf("loadtest: --db-stop: %w", err)
	}
	fmt.Fprintf(stdout, "fault: database stopped (%s)\n", time.Since(t0).Round(10*time.Millisecond))
	peak := make([]float64, len(nodes))
	for end := time.Now().Add(o.lasts); time.Now().Before(end); {
		for i, nd := range nodes {
			if s, err := nd.ch.sample(); err == nil {
				peak[i] = max(peak[i], s.queue)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(min(time.Second, time.Until(end)+time.Millisecond)):
		}
	}
	t1 := time.Now()
	if err := shell(ctx, o.dbStart); err != nil {
		return fmt.Errorf("loadtest: --db-start: %w", err)
	}
	var parts []string
	for i, nd := range nodes {
		parts = append(parts, fmt.Sprintf("%s %.0f", nd.name, peak[i]))
	}
	fmt.Fprintf(stdout, "fault: database back after %s down (started in %s); records waiting at the most: %s\n",
		t1.Sub(t0).Round(10*time.Millisecond), time.Since(t1).Round(10*time.Millisecond), strings.Join(parts, ", "))
	return nil
}

func shell(ctx context.Context, command string) error {
	out, err := exec.CommandContext(ctx, "sh", "-c", command).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// callsInProgress is the node's callflow_calls_in_progress (-1: unknown).
func callsInProgress(nd *node) int {
	s, err := nd.ch.sample()
	if err != nil {
		return -1
	}
	return int(s.inCalls)
}

// standbyHealth is the node block of a standby's /healthz.
type standbyHealth struct {
	AdoptedChannels int `json:"adopted_channels"`
	Takeovers       int `json:"takeovers"`
}

func nodeHealth(nd *node) (standbyHealth, error) {
	resp, err := nd.ch.hc.Get(nd.ch.web + "/healthz")
	if err != nil {
		return standbyHealth{}, err
	}
	defer resp.Body.Close()
	var h struct {
		Node standbyHealth `json:"node"`
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return standbyHealth{}, fmt.Errorf("/healthz: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h.Node, err
}

// withARI adds the node's application (and the primary it stands by for)
// to the [ari] table of a child's config.
func withARI(cfg, app, standbyFor string) string {
	var extra string
	if app != "" {
		extra += fmt.Sprintf("app = %q\n", app)
	}
	if standbyFor != "" {
		extra += fmt.Sprintf("standby_for = %q\ntakeover_after = \"3s\"\n", standbyFor)
	}
	return strings.Replace(cfg, "[ari]\n", "[ari]\n"+extra, 1)
}

// checkNothingLost checks that every call that reached callflow is in the
// shared database once, finished (not left in progress), and prints the
// outcomes they have.
func checkNothingLost(db string, ids []string, stdout io.Writer) error {
	st, err := openShared(db)
	if err != nil {
		return err
	}
	defer st.Close()
	rows, err := st.Query(`SELECT id, outcome FROM calls`)
	if err != nil {
		return fmt.Errorf("loadtest: reading the records: %w", err)
	}
	defer rows.Close()
	outcome := map[string]string{}
	for rows.Next() {
		var id, oc string
		if err := rows.Scan(&id, &oc); err != nil {
			return err
		}
		outcome[id] = oc
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var missing, open []string
	byOutcome := map[string]int{}
	for _, id := range ids {
		oc, ok := outcome[id]
		switch {
		case !ok:
			missing = append(missing, id)
		case oc == "in_progress":
			open = append(open, id)
		}
		byOutcome[oc]++
	}
	var parts []string
	for oc, k := range byOutcome {
		if oc == "" {
			oc = "(missing)"
		}
		parts = append(parts, fmt.Sprintf("%s %d", oc, k))
	}
	sort.Strings(parts)
	fmt.Fprintf(stdout, "nothing lost? %d calls reached callflow: %d recorded, %d missing, %d left in progress (%s)\n",
		len(ids), len(ids)-len(missing), len(missing), len(open), strings.Join(parts, ", "))
	var errs []error
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("loadtest: %d calls have no record (first: %s)", len(missing), first(missing)))
	}
	if len(open) > 0 {
		errs = append(errs, fmt.Errorf("loadtest: %d calls left in progress (first: %s)", len(open), first(open)))
	}
	return errors.Join(errs...)
}

func first(ids []string) string {
	sort.Strings(ids)
	return ids[0]
}
