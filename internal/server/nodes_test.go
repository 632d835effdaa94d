package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/internal/tomlpos"
)

// node is a server of its own run in this process, with its web API.
type node struct {
	t    *testing.T
	cfg  *config.Config
	srv  *Server
	stop context.CancelFunc
	done chan error
}

// startNode runs a server on the example flows against ast; tweak sets
// what differs between nodes (name, application, database).
func startNode(t *testing.T, ast *aritest.Server, deps Deps, tweak func(*config.Config)) *node {
	t.Helper()
	cfg := serveConfig(t, ast)
	cfg.HTTP.Listen = freePort(t)
	cfg.Calls.DrainTimeout = config.Default().Calls.DrainTimeout
	if tweak != nil {
		tweak(cfg)
	}
	if testing.Verbose() {
		deps.Log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.DebugLevel).With().Str("node", cfg.NodeName()).Logger()
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{t: t, cfg: cfg, srv: srv, stop: cancel, done: make(chan error, 1)}
	go func() { n.done <- srv.Run(ctx) }()
	waitUntil(t, cfg.NodeName()+" serving", func() bool {
		code, _ := n.get("/healthz")
		return code == 200
	})
	t.Cleanup(n.close)
	return n
}

func (n *node) close() {
	if n.stop == nil {
		return
	}
	n.stop()
	n.stop = nil
	if err := <-n.done; err != nil {
		n.t.Errorf("%s: %v", n.cfg.NodeName(), err)
	}
}

func (n *node) get(path string) (int, string) {
	resp, err := http.Get("http://" + n.cfg.HTTP.Listen + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /healthz and /metrics say which node this is, its application and its
// role.
func TestHealthAndMetricsNameTheNodeAndItsRole(t *testing.T) {
	base := runtime.NumGoroutine()
	ast := aritest.NewServer(aritest.Options{})
	defer ast.Close()
	for _, tc := range []struct {
		name       string
		tweak      func(*config.Config)
		wantNode   map[string]any
		wantMetric []string
	}{
		{"primary", func(c *config.Config) { c.Node.Name = "pbx1-a"; c.ARI.App = "callflow-a" },
			map[string]any{"name": "pbx1-a", "app": "callflow-a", "role": "primary"},
			[]string{`callflow_node_info{app="callflow-a",node="pbx1-a",role="primary",standby_for=""} 1`}},
		{"standby", func(c *config.Config) {
			c.Node.Name = "pbx1-b"
			c.ARI.App = "callflow-b"
			c.ARI.StandbyFor = "callflow-a"
		},
			map[string]any{"name": "pbx1-b", "app": "callflow-b", "role": "standby", "standby_for": "callflow-a",
				"primary_alive": true, "adopted_channels": float64(0), "takeovers": float64(0)},
			[]string{`callflow_node_info{app="callflow-b",node="pbx1-b",role="standby",standby_for="callflow-a"} 1`,
				"callflow_standby_primary_alive 1", "callflow_standby_adopted_channels_total 0"}},
		{"no name: the host's", func(c *config.Config) { c.Node.Name = "" },
			map[string]any{"name": config.Default().NodeName(), "app": "callflow", "role": "primary"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, ast, Deps{}, tc.tweak)
			defer n.close()
			_, body := n.get("/healthz")
			var h struct {
				Node map[string]any `json:"node"`
			}
			if err := json.Unmarshal([]byte(body), &h); err != nil {
				t.Fatalf("healthz %s: %v", body, err)
			}
			if fmt.Sprint(h.Node) != fmt.Sprint(tc.wantNode) {
				t.Errorf("healthz node\n got %v\nwant %v", h.Node, tc.wantNode)
			}
			_, metrics := n.get("/metrics")
			for _, m := range tc.wantMetric {
				if !strings.Contains(metrics, m+"\n") {
					t.Errorf("/metrics lacks %s", m)
				}
			}
		})
	}
	ast.Close()
	waitGoroutines(t, base)
}

// One Asterisk, a primary node in a process of its own and a standby:
// callers in the middle of their flows on the primary when it is killed
// (SIGKILL) are taken by the standby, which starts their flows over;
// conversations the primary bridged go on, and are ended properly when a
// side hangs up; new calls go to the standby through the dialplan's
// second Stasis().
func TestStandbyTakesTheCallsOfAKilledPrimary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the callflow command")
	}
	base := runtime.NumGoroutine()
	// The after-hours flow's first step; Asterisk moves a channel once
	// the prompt the primary started on it is over.
	const greeting = "sound:custom/acme-hours"
	ast := aritest.NewServer(aritest.Options{MediaDurations: map[string]time.Duration{greeting: 1500 * time.Millisecond}})
	defer ast.Close()
	ast.SetAgent("PJSIP/tech1", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 100 * time.Millisecond})
	ast.SetAgent("PJSIP/tech2", aritest.AgentBehavior{Mode: aritest.AgentNoAnswer})

	primary := newProcess(t, ast)
	primary.setApp(t, "pbx1-a", "callflow-a")
	primary.dumpLogOnFailure()
	primary.start()
	standby := startNode(t, ast, Deps{StandbyPoll: 100 * time.Millisecond}, func(c *config.Config) {
		c.Node.Name, c.ARI.App, c.ARI.StandbyFor = "pbx1-b", "callflow-b", "callflow-a"
		c.ARI.TakeoverAfter = config.Default().ARI.TakeoverAfter
		c.Database = primary.db() // one database for the pair, as in production
	})

	// place is the dialplan: Stasis(callflow-a), and when that fails,
	// Stasis(callflow-b).
	place := func() (*aritest.Caller, string) {
		spec := aritest.CallSpec{App: "callflow-a", Exten: "+914430009999", From: "+15557654321"}
		c, err := ast.PlaceCall(context.Background(), spec)
		if errors.Is(err, aritest.ErrNoApplication) {
			spec.App = "callflow-b"
			c, err = ast.PlaceCall(context.Background(), spec)
		}
		if err != nil {
			t.Fatal(err)
		}
		return c, spec.App
	}
	hearing := func(c *aritest.Caller, times int) func() bool {
		return func() bool {
			n := 0
			for _, m := range c.Heard() {
				if m == greeting {
					n++
				}
			}
			return n >= times
		}
	}
	waitUntil(t, "the primary serving", func() bool {
		c, err := ast.PlaceCall(context.Background(), aritest.CallSpec{App: "callflow-a", Exten: "+15550000000"})
		if err == nil {
			c.Hangup()
			<-c.Done()
		}
		return err == nil
	})
	const calls = 6
	var callers []*aritest.Caller
	for range calls {
		c, app := place()
		if app != "callflow-a" {
			t.Fatalf("call went to %s with the primary up", app)
		}
		callers = append(callers, c)
	}
	for _, c := range callers {
		waitUntil(t, "each caller hearing the greeting", hearing(c, 1))
	}
	// Callers talking to an agent: the support line's menu, key 1.
	const conversations = 2
	bridged := func(id string) bool {
		for _, ch := range ast.Channels() {
			if ch.ID == id {
				return ch.Bridge != ""
			}
		}
		return false
	}
	var talking []*aritest.Caller
	for range conversations {
		c, err := ast.PlaceCall(context.Background(), aritest.CallSpec{App: "callflow-a", Exten: "+914430001234", From: "+15557654321"})
		if err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the menu", func() bool { return slices.Contains(c.Heard(), "sound:custom/acme-menu") })
		c.Press("1")
		waitUntil(t, "the caller talking to an agent", func() bool { return bridged(c.ID()) })
		talking = append(talking, c)
	}
	if h := standby.srv.ARI().Health(); !h.PrimaryAlive || h.AdoptedChannels != 0 {
		t.Fatalf("standby before the kill: %+v", h)
	}

	killed := time.Now()
	if err := primary.stop(syscall.SIGKILL); err == nil {
		t.Fatal("SIGKILL: exit status 0")
	}
	// A call coming in now finds no primary: the dialplan's second Stasis().
	waitUntil(t, "the primary's application unserved", func() bool {
		c, app := place()
		if app == "callflow-b" {
			callers = append(callers, c)
			return true
		}
		c.Hangup()
		return false
	})
	for _, c := range callers[:calls] {
		waitUntil(t, "each caller taken by the standby", hearing(c, 2))
	}
	took := time.Since(killed)
	channels := calls + 2*conversations // a conversation is a caller and an agent
	waitUntil(t, "every channel in the standby's application", func() bool {
		for _, ch := range ast.Channels() {
			if ch.App != "callflow-b" {
				return false
			}
		}
		return true
	})
	h := standby.srv.ARI().Health()
	if h.AdoptedChannels != channels || h.PrimaryAlive {
		t.Errorf("standby after the kill: %+v, want %d channels adopted", h, channels)
	}
	_, metrics := standby.get("/metrics")
	if want := fmt.Sprintf("callflow_standby_adopted_channels_total %d\n", channels); !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s", want)
	}
	for _, c := range talking {
		if !bridged(c.ID()) {
			t.Errorf("conversation of %s cut by the takeover", c.ID())
		}
	}
	// The dead primary's records are closed by the standby: none of its
	// calls is left in progress (the callers it resumed are its own now).
	waitUntil(t, "no call of the dead primary left in progress", func() bool {
		db := readDB(t, standby.cfg.Database)
		defer db.Close()
		var open int
		if err := db.QueryRow(`SELECT COUNT(*) FROM calls WHERE node = 'pbx1-a' AND outcome = 'in_progress'`).Scan(&open); err != nil {
			return false
		}
		return open == 0
	})
	t.Logf("killed primary: %d callers mid-flow and %d conversations (%d channels); the standby moved them all, the callers' flows started over %s after the kill (takeover_after %s), the conversations went on; a new call went to the standby",
		calls, conversations, h.AdoptedChannels, took.Round(10*time.Millisecond), standby.cfg.ARI.TakeoverAfter.D())

	// The primary started again takes new calls and leaves the calls the
	// standby took alone, though their dialplan still names callflow-a.
	primary.start()
	// Its reconcile first: a new call placed while it lists the channels
	// would be one it picks up (and runs as the new call it is), which
	// is not what this counts.
	log := filepath.Join(filepath.Dir(primary.conf), "serve.log")
	var reconciled []string
	waitUntil(t, "the restarted primary's reconcile", func() bool {
		b, _ := os.ReadFile(log)
		reconciled = nil
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `"message":"reconciled"`) {
				reconciled = append(reconciled, line)
			}
		}
		return len(reconciled) >= 2
	})
	waitUntil(t, "the restarted primary taking calls", func() bool {
		c, app := place()
		callers = append(callers, c)
		return app == "callflow-a"
	})
	if last := reconciled[len(reconciled)-1]; !strings.Contains(last, `"picked_up":0`) {
		t.Errorf("the restarted primary took the standby's calls: %s", last)
	}
	for _, ch := range ast.Channels() {
		if ch.App == "callflow-a" && slices.ContainsFunc(callers[:calls], func(c *aritest.Caller) bool { return c.ID() == ch.ID }) {
			t.Errorf("channel %s back in callflow-a", ch.ID)
		}
	}

	// A side hanging up ends an adopted conversation: the agent is hung up.
	for _, c := range talking {
		c.Hangup()
		<-c.Done()
	}
	waitUntil(t, "the agents hung up and the bridges destroyed", func() bool {
		for _, ch := range ast.Channels() {
			if !ch.Inbound {
				return false
			}
		}
		return len(ast.Bridges()) == 0
	})
	for _, c := range callers {
		c.Hangup()
		<-c.Done()
	}
	if err := primary.stop(syscall.SIGTERM); err != nil {
		t.Errorf("primary SIGTERM: %v", err)
	}
	standby.close()
	db := readDB(t, standby.cfg.Database)
	var resumed int
	db.QueryRow(`SELECT COUNT(*) FROM call_events WHERE kind = 'resumed'`).Scan(&resumed)
	if resumed != calls {
		t.Errorf("%d calls recorded as resumed by the standby, want %d", resumed, calls)
	}
	// The conversations the standby watched to their end are completed.
	for _, c := range talking {
		var outcome string
		var ended sql.NullInt64
		db.QueryRow(`SELECT outcome, ended FROM calls WHERE id = ?`, c.ID()).Scan(&outcome, &ended)
		if outcome != "completed" || !ended.Valid {
			t.Errorf("conversation %s: outcome %q, ended %v; want completed when it ended", c.ID(), outcome, ended)
		}
	}
	db.Close()
	ast.Close()
	waitGoroutines(t, base)
}

// setApp makes the process a named node on Stasis application app.
func (p *process) setApp(t *testing.T, name, app string) {
	t.Helper()
	b, err := os.ReadFile(p.conf)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "[ari]\n", fmt.Sprintf("[node]\nname = %q\n[ari]\napp = %q\n", name, app), 1)
	if err := os.WriteFile(p.conf, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A standby leaves a primary that serves its calls alone, however long
// the calls last.
func TestStandbyLeavesALivePrimarysCallsAlone(t *testing.T) {
	base := runtime.NumGoroutine()
	const greeting = "sound:custom/acme-hours"
	ast := aritest.NewServer(aritest.Options{MediaDurations: map[string]time.Duration{greeting: time.Hour}})
	defer ast.Close()
	primary := startNode(t, ast, Deps{Heartbeat: 50 * time.Millisecond}, func(c *config.Config) { c.Node.Name, c.ARI.App = "pbx1-a", "callflow-a" })
	beat := 50 * time.Millisecond
	standby := startNode(t, ast, Deps{StandbyPoll: beat / 2, Heartbeat: beat}, func(c *config.Config) {
		c.Node.Name, c.ARI.App, c.ARI.StandbyFor = "pbx1-b", "callflow-b", "callflow-a"
		c.ARI.TakeoverAfter = tomlpos.Duration(3 * beat)
	})
	var callers []*aritest.Caller
	for range 3 {
		c, err := ast.PlaceCall(context.Background(), aritest.CallSpec{App: "callflow-a", Exten: "+914430009999", From: "+15557654321"})
		if err != nil {
			t.Fatal(err)
		}
		callers = append(callers, c)
	}
	waitUntil(t, "the primary running the calls", func() bool { return primary.srv.ARI().Health().ActiveCalls == len(callers) })
	// Several takeover windows pass: the heartbeat moves, nothing is taken.
	time.Sleep(10 * standby.cfg.ARI.TakeoverAfter.D())
	if h := standby.srv.ARI().Health(); !h.PrimaryAlive || h.AdoptedChannels != 0 || h.ActiveCalls != 0 {
		t.Errorf("standby with its primary alive: %+v", h)
	}
	for _, ch := range ast.Channels() {
		if ch.App != "callflow-a" {
			t.Errorf("channel %s in %q", ch.ID, ch.App)
		}
	}
	for _, c := range callers {
		c.Hangup()
		<-c.Done()
	}
	standby.close()
	primary.close()
	ast.Close()
	waitGoroutines(t, base)
}
