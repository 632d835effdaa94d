package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callflow/callflow/agi/agitest"
	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/internal/pgtest"
	"github.com/callflow/callflow/presence"
	"github.com/callflow/callflow/store"
)

func queueFlow(number, strategy, extra string) string {
	return fmt.Sprintf(`
name = "Queue %[2]s"
numbers = [%[1]q]
[[steps]]
id = "wait"
applet = "queue"
teams = ["support"]
strategy = %[2]q
ring_timeout = "3s"
retry = "1s"
max_wait = "60s"
%[3]s
on = { exit_key = "bye", timeout = "bye" }
[[steps]]
id = "bye"
applet = "hangup"
`, number, strategy, extra)
}

// startQueueServer serves flows beside a support team of alice, bob and
// carol (each at PJSIP/NAME), made before the server starts.
func startQueueServer(t *testing.T, files map[string]string) *harness {
	t.Helper()
	return startWith(t, harnessOptions{flowsDir: writeFlowDir(t, files),
		tweak: []func(*config.Config){func(cfg *config.Config) {
			st, err := store.Open(context.Background(), cfg.Database, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			addTeam(t, st, "alice", "bob", "carol")
			cfg.Agents.WrapUp.UnmarshalTOMLValue("0s")
			cfg.HTTP.Listen = freePort(t)
		}}})
}

// 20 callers for 3 agents, with each strategy: every caller is answered,
// in the order they called, and no agent is rung by two callers at once.
func TestQueueAnswersCallersInOrderWithEachStrategy(t *testing.T) {
	strategies := []string{"ring_all", "longest_idle", "round_robin", "fewest_calls", "random", "linear"}
	files := map[string]string{}
	for i, s := range strategies {
		files[s+".toml"] = queueFlow(fmt.Sprintf("+9144300010%02d", i), s, "")
	}
	h := startQueueServer(t, files)
	defer h.stop()
	for _, a := range []string{"alice", "bob", "carol"} {
		h.ast.SetAgent("PJSIP/"+a, aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 50 * time.Millisecond, HangupAfter: 150 * time.Millisecond})
	}
	for i, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			const callers = 20
			var wg sync.WaitGroup
			ids := make([]string, callers)
			for k := range callers {
				c := h.call(aritest.CallSpec{Exten: fmt.Sprintf("+9144300010%02d", i), From: fmt.Sprintf("+1555000%04d", k)})
				ids[k] = c.ID()
				wg.Add(1)
				go func() {
					defer wg.Done()
					select {
					case <-c.Done():
					case <-time.After(60 * time.Second):
						t.Errorf("caller %d never done", k)
					}
				}()
				time.Sleep(20 * time.Millisecond) // arrival order
			}
			wg.Wait()
			type answer struct {
				k     int
				at    time.Time
				agent string
			}
			var got []answer
			perAgent := map[string]int{}
			for k, id := range ids {
				rec := h.record(id)
				if stepPath(rec) != "wait:answered" || len(rec.Dials) == 0 {
					t.Fatalf("caller %d: %s %+v", k, stepPath(rec), rec.Dials)
				}
				d := rec.Dials[len(rec.Dials)-1]
				got = append(got, answer{k, d.Answered, d.Target})
				perAgent[d.Target]++
			}
			sort.Slice(got, func(a, b int) bool { return got[a].at.Before(got[b].at) })
			// Served in arrival order: a caller answered before one who
			// called earlier is one of the callers who rang at the same
			// moment (as many as agents came free together).
			for n, a := range got {
				if a.k > n+2 {
					t.Errorf("caller %d answered %d-th (agents free together: at most 3 at once)", a.k, n+1)
				}
			}
			if len(perAgent) < 2 {
				t.Errorf("one agent took every call: %v", perAgent)
			}
			t.Logf("%s: answered per agent %v", strategy, perAgent)
		})
	}
}

// While no agent is free, callers hold with music and hear their place;
// the exit key leaves; a caller who hangs up is recorded abandoned with
// the wait; an agent who becomes available takes the caller at once; a
// paused agent and one whose phone is in use are not rung.
func TestQueueWaitAnnounceLeaveAbandonAndPresence(t *testing.T) {
	ctx := context.Background()
	h := startQueueServer(t, map[string]string{"q.toml": queueFlow("+914430002000", "linear", `announce_every = "1s"
exit_keys = "9"`)})
	defer h.stop()
	for _, a := range []string{"alice", "bob", "carol"} {
		h.ast.SetAgent("PJSIP/"+a, answerQuick())
	}
	tr := h.srv.presence
	if err := tr.Set(ctx, "alice", presence.Paused, "lunch"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Set(ctx, "bob", presence.LoggedOut, ""); err != nil {
		t.Fatal(err)
	}
	h.ast.SetDeviceState("PJSIP/carol", "INUSE") // on a call callflow did not place
	waitState(t, tr, "carol", presence.Busy)

	first := h.call(aritest.CallSpec{Exten: "+914430002000", From: "+15550000001"})
	if err := first.WaitPlayback(ctxT(t), "sound:queue-youarenext"); err != nil {
		t.Fatal(err)
	}
	second := h.call(aritest.CallSpec{Exten: "+914430002000", From: "+15550000002"})
	waitUntil(t, "the second caller in the queue", func() bool { return slices.Contains(second.Heard(), "number:2") })
	third := h.call(aritest.CallSpec{Exten: "+914430002000", From: "+15550000003"})
	waitUntil(t, "the third caller told their place", func() bool {
		return slices.Contains(third.Heard(), "number:3")
	})
	if snap := h.srv.queues.Snapshot(); len(snap) != 1 || len(snap[0].Waiting) != 3 {
		t.Fatalf("queues: %+v", snap)
	}
	metrics := httpGet(t, "http://"+h.cfg.HTTP.Listen+"/metrics")
	for _, want := range []string{`callflow_queue_waiting{queue="default/Queue linear/wait"} 3`, `callflow_agents{state="paused"} 1`, `callflow_agents{state="logged_out"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	first.Press("9") // leaves with the exit key
	hangupWhenDone(t, first)
	if rec := h.record(first.ID()); stepPath(rec) != "wait:exit_key bye:hangup" {
		t.Errorf("exit key: %s", stepPath(rec))
	}
	waitUntil(t, "the second caller first now", func() bool {
		n := 0
		for _, m := range second.Heard() {
			if m == "sound:queue-youarenext" {
				n++
			}
		}
		return n >= 1
	})
	time.Sleep(1500 * time.Millisecond)
	second.Hangup() // gives up
	<-second.Done()
	rec := h.record(second.ID())
	if stepPath(rec) != "wait:hangup" || !rec.Abandoned || waitedOf(rec) < 1 {
		t.Errorf("abandoned: %s abandoned=%v waited %v", stepPath(rec), rec.Abandoned, waitedOf(rec))
	}

	if err := tr.Set(ctx, "alice", presence.Available, ""); err != nil { // back from lunch
		t.Fatal(err)
	}
	hangupWhenDone(t, third)
	rec = h.record(third.ID())
	if stepPath(rec) != "wait:answered" || len(rec.Dials) != 1 || rec.Dials[0].Target != "PJSIP/alice" {
		t.Errorf("after alice came back: %s %+v", stepPath(rec), rec.Dials)
	}
	for _, ch := range h.ast.History() {
		if ch.Endpoint == "PJSIP/bob" || ch.Endpoint == "PJSIP/carol" {
			t.Errorf("%s was rung (logged out, or in use)", ch.Endpoint)
		}
	}
	snap := h.srv.queues.Snapshot()
	if len(snap) != 1 || snap[0].Answered != 1 || snap[0].Abandoned != 1 || snap[0].Left != 1 || len(snap[0].Waiting) != 0 {
		t.Errorf("the day's figures: %+v", snap)
	}
}

// waitedOf is the queue step's recorded wait, in seconds.
func waitedOf(rec *flows.CallRecord) float64 {
	for _, st := range rec.Steps {
		if w, ok := st.Details["waited_s"].(float64); ok {
			return w
		}
	}
	return -1
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Two nodes on one PostgreSQL, each with an Asterisk of its own, share the
// support team: while alice rings for a caller on one node, a caller on the
// other does not ring her too; once her call ends she takes the next.
func TestTwoNodesNeverRingOneAgentAtOnce(t *testing.T) {
	dsn := pgtest.Database(t, "claims")
	dir := writeFlowDir(t, map[string]string{"team.toml": teamFlow})
	astA, astB := aritest.NewServer(aritest.Options{SystemName: "boxa"}), aritest.NewServer(aritest.Options{SystemName: "boxb"})
	defer astA.Close()
	defer astB.Close()
	for _, ast := range []*aritest.Server{astA, astB} {
		ast.SetAgent("PJSIP/alice", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 1500 * time.Millisecond, HangupAfter: 500 * time.Millisecond})
	}
	st, err := store.Open(context.Background(), dsn, store.Options{SpoolPath: filepath.Join(t.TempDir(), "spool")})
	if err != nil {
		t.Fatal(err)
	}
	addTeam(t, st, "alice")
	st.Close()
	onDB := func(name string) func(*config.Config) {
		return func(c *config.Config) {
			c.Database, c.DataDir, c.Node.Name, c.FlowsDir = dsn, t.TempDir(), name, dir
			c.Agents.WrapUp.UnmarshalTOMLValue("0s")
		}
	}
	a := startNode(t, astA, Deps{}, onDB("node-a"))
	b := startNode(t, astB, Deps{}, onDB("node-b"))

	first, err := astA.PlaceCall(ctxT(t), aritest.CallSpec{Exten: "+914430000009"})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "alice ringing for node-a's caller", func() bool {
		for _, ch := range astA.Channels() {
			if ch.Endpoint == "PJSIP/alice" {
				return true
			}
		}
		return false
	})
	second, err := astB.PlaceCall(ctxT(t), aritest.CallSpec{Exten: "+914430000009"})
	if err != nil {
		t.Fatal(err)
	}
	hangupWhenDone(t, second)
	hangupWhenDone(t, first)
	for _, ch := range astB.History() {
		if ch.Endpoint == "PJSIP/alice" {
			t.Errorf("node-b rang alice while node-a had her")
		}
	}
	recA, errA := a.srv.Store().GetCall(ctxT(t), first.ID(), store.AllWorkspaces())
	waitUntil(t, "both calls recorded", func() bool {
		recA, errA = a.srv.Store().GetCall(ctxT(t), first.ID(), store.AllWorkspaces())
		_, errB := b.srv.Store().GetCall(ctxT(t), second.ID(), store.AllWorkspaces())
		return errA == nil && errB == nil && recA.Outcome != store.OutcomeInProgress
	})
	third, err := astB.PlaceCall(ctxT(t), aritest.CallSpec{Exten: "+914430000009"})
	if err != nil {
		t.Fatal(err)
	}
	hangupWhenDone(t, third)
	rang := false
	for _, ch := range astB.History() {
		rang = rang || ch.Endpoint == "PJSIP/alice"
	}
	if !rang {
		t.Error("node-b never rang alice once node-a's call was over")
	}
}

// Over FastAGI too: the caller holds with music on hold (StartMusicOnHold,
// WAIT FOR DIGIT slices) while no agent is free, and is put through (Dial)
// as soon as one is.
func TestQueueOverAGI(t *testing.T) {
	ctx := context.Background()
	h := startWith(t, harnessOptions{flowsDir: writeFlowDir(t, map[string]string{"q.toml": queueFlow("+914430002001", "linear", "")}),
		tweak: []func(*config.Config){func(cfg *config.Config) {
			cfg.ARI.Enabled = false
			cfg.AGI.Listen = freePort(t)
			st, err := store.Open(ctx, cfg.Database, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			addTeam(t, st, "alice", "bob", "carol")
		}}})
	defer h.stop()
	tr := h.srv.presence
	for _, a := range []string{"alice", "bob", "carol"} {
		if err := tr.Set(ctx, a, presence.Paused, "meeting"); err != nil {
			t.Fatal(err)
		}
	}
	ses, err := agitest.Dial(ctxT(t), h.cfg.AGI.Listen, agitest.Script{
		Env:           map[string]string{"agi_dnid": "+914430002001", "agi_uniqueid": "agi-q.1"},
		Agents:        []agitest.Agent{{Status: "ANSWER", Talk: time.Second}},
		WaitsTakeTime: true, // the hold is slices of WAIT FOR DIGIT
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ses.Close()
	waitUntil(t, "the caller holding", func() bool { return h.srv.queues.Waiting("default/Queue linear/wait") == 1 })
	time.Sleep(700 * time.Millisecond) // a slice or two of waiting
	if err := tr.Set(ctx, "bob", presence.Available, ""); err != nil {
		t.Fatal(err)
	}
	ses.Wait(ctxT(t))
	rec := h.record("agi-q.1")
	if stepPath(rec) != "wait:answered" || len(rec.Dials) != 1 || rec.Dials[0].Target != "PJSIP/bob" {
		t.Errorf("%s %+v", stepPath(rec), rec.Dials)
	}
	cmds := strings.Join(ses.Commands(), "\n")
	for _, want := range []string{"EXEC StartMusicOnHold", "WAIT FOR DIGIT", "EXEC StopMusicOnHold", "EXEC Dial"} {
		if !strings.Contains(cmds, want) {
			t.Errorf("no %q in the commands:\n%s", want, cmds)
		}
	}
}
