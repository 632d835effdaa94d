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
		tweak: []func(*config.Config){withTeam(t, "alice", "bob", "carol"), func(cfg *config.Config) {
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
	astA, astB := aritest.NewServer(aritest.Options{SystemName: "boxa"}), aritest.NewServer(aritest.Options{SystemName: "boxb"})
	a, b := twoNodes(t, "claims", map[string]string{"team.toml": teamFlow}, astA, astB,
		aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 1500 * time.Millisecond, HangupAfter: 500 * time.Millisecond})

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
		}, withTeam(t, "alice", "bob", "carol")}})
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

// A caller who presses the callback key hangs up keeping their place; the
// caller behind them, who stayed, is served after them. When an agent is
// free the agent's phone rings first, then the caller is called back from
// it and the two talk; the call's record holds the request and the
// callback with both legs. A caller whose phone does not answer is tried
// callback_attempts times.
func TestQueueCallbackRingsTheAgentThenCallsTheCallerBack(t *testing.T) {
	ctx := context.Background()
	h := startQueueServer(t, map[string]string{"q.toml": queueFlow("+914430004000", "linear", `callback_key = "2"
callback_dial = "PJSIP/${number}@trunk"
callback_attempts = 2
callback_retry = "10s"`)})
	defer h.stop()
	tr := h.srv.presence
	for _, a := range []string{"bob", "carol"} {
		if err := tr.Set(ctx, a, presence.LoggedOut, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Set(ctx, "alice", presence.Paused, "meeting"); err != nil {
		t.Fatal(err)
	}
	h.ast.SetAgent("PJSIP/alice", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 100 * time.Millisecond, HangupAfter: 4 * time.Second})
	h.ast.SetAgent("PJSIP/+15550000001@trunk", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 300 * time.Millisecond, HangupAfter: 1500 * time.Millisecond})

	first := h.call(aritest.CallSpec{Exten: "+914430004000", From: "+15550000001"})
	waitUntil(t, "the first caller waiting", func() bool { return h.srv.queues.Waiting("default/Queue linear/wait") == 1 })
	second := h.call(aritest.CallSpec{Exten: "+914430004000", From: "+15550000002"})
	waitUntil(t, "the second caller waiting", func() bool { return h.srv.queues.Waiting("default/Queue linear/wait") == 2 })
	first.Press("2")
	<-first.Done() // the flow goes on to bye, which hangs up
	waitUntil(t, "the callback's place kept", func() bool {
		snap := h.srv.queues.Snapshot()
		return len(snap) == 1 && len(snap[0].Waiting) == 2 && snap[0].Waiting[0].Callback && snap[0].Waiting[0].Number == "+15550000001"
	})
	if m := httpGet(t, "http://"+h.cfg.HTTP.Listen+"/metrics"); !strings.Contains(m, `callflow_queue_callbacks_waiting{queue="default/Queue linear/wait"} 1`) {
		t.Error("/metrics does not count the callback waiting")
	}

	if err := tr.Set(ctx, "alice", presence.Available, ""); err != nil {
		t.Fatal(err)
	}
	// Alice takes the callback first (it was ahead), then the caller who
	// stayed once she is free again.
	hangupWhenDone(t, second)
	rec := h.storedCall(first.ID(), func(c store.CallRecord) bool { return slices.Contains(c.Tags, "callback") })
	var path []string
	for _, st := range rec.Steps {
		path = append(path, st.Step+":"+st.Outcome)
	}
	if got := strings.Join(path, " "); got != "wait:callback bye:hangup wait:answered" {
		t.Fatalf("steps: %s %v", got, rec.Steps[len(rec.Steps)-1].Details)
	}
	cb := rec.Steps[2].Details
	legs, _ := cb["legs"].([]any)
	leg := func(i int, key string) any { return legs[i].(map[string]any)[key] }
	if len(legs) != 2 || leg(0, "leg") != "agent" || leg(0, "agent") != "alice" || leg(0, "status") != "answered" ||
		leg(1, "leg") != "caller" || leg(1, "target") != "PJSIP/+15550000001@trunk" || leg(1, "status") != "answered" {
		t.Errorf("legs: %v", legs)
	}
	if rec.TalkTime < time.Second {
		t.Errorf("talk time %v", rec.TalkTime)
	}
	if got := dialled(h.ast); got != "PJSIP/alice PJSIP/+15550000001@trunk PJSIP/alice" {
		t.Errorf("the agent is rung first, then the caller, then the next caller's agent: %s", got)
	}
	if r2 := h.record(second.ID()); stepPath(r2) != "wait:answered" {
		t.Errorf("the caller who stayed: %s", stepPath(r2))
	}
	snap := h.srv.queues.Snapshot()
	if len(snap) != 1 || snap[0].Answered != 2 || len(snap[0].Waiting) != 0 {
		t.Errorf("the day's figures: %+v", snap)
	}
	if h.srv.callbacks.Waiting() != 0 {
		t.Errorf("callbacks left: %d", h.srv.callbacks.Waiting())
	}
}

// storedCall waits until the store holds the call's record as ok wants it.
func (h *harness) storedCall(id string, ok func(store.CallRecord) bool) store.CallRecord {
	h.t.Helper()
	var rec store.CallRecord
	waitUntil(h.t, "the record of "+id, func() bool {
		_ = h.srv.Store().Flush(ctxT(h.t))
		r, err := h.srv.Store().GetCall(ctxT(h.t), id, store.AllWorkspaces())
		rec = r
		return err == nil && ok(r)
	})
	return rec
}

// Two nodes on one PostgreSQL serve one queue: callers are answered in
// the order they called whichever node took them. Alice talks to node-a's
// first caller while node-b's, then node-a's, then node-b's callers join;
// when she is free she takes node-b's caller (the head of the shared
// list), not node-a's next one, and so on, alternating.
func TestTwoNodesServeOneQueueInOrderOfArrival(t *testing.T) {
	var mu sync.Mutex
	var order []string // the node of each conversation alice had, in order
	leg := func(node string) func(endpoint, event string) {
		return func(endpoint, event string) {
			if endpoint == "PJSIP/alice" && event == "bridged" {
				mu.Lock()
				order = append(order, node)
				mu.Unlock()
			}
		}
	}
	astA := aritest.NewServer(aritest.Options{SystemName: "boxa", OnAgentLeg: leg("a")})
	astB := aritest.NewServer(aritest.Options{SystemName: "boxb", OnAgentLeg: leg("b")})
	a, b := twoNodes(t, "sharedqueue", map[string]string{"q.toml": queueFlow("+914430005000", "linear", "")}, astA, astB,
		aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 100 * time.Millisecond, HangupAfter: 1500 * time.Millisecond})
	const q = "default/Queue linear/wait"

	var callers []*aritest.Caller
	for i, ast := range []*aritest.Server{astA, astB, astA, astB} {
		c, err := ast.PlaceCall(ctxT(t), aritest.CallSpec{Exten: "+914430005000", From: fmt.Sprintf("+1555000%04d", i)})
		if err != nil {
			t.Fatal(err)
		}
		callers = append(callers, c)
		if i == 0 {
			waitUntil(t, "alice talking to the first caller", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 1 })
			continue
		}
		// Each node sees exactly the callers placed after the first, in
		// the order they called (the first one's place goes a moment
		// after its answer).
		want := ""
		for _, w := range callers[1:] {
			want += w.ID() + " "
		}
		waitUntil(t, "the caller in the shared list", func() bool { return waitingIDs(a, q) == want && waitingIDs(b, q) == want })
	}
	for _, c := range callers {
		hangupWhenDone(t, c)
	}
	mu.Lock()
	got := strings.Join(order, " ")
	mu.Unlock()
	if got != "a b a b" {
		t.Errorf("alice talked to callers of nodes %q, want a b a b (their order of arrival)", got)
	}
}

// twoNodes starts node-a and node-b, each on its Asterisk (closed at the
// end), on one PostgreSQL database with a support team of alice, who
// answers as behaves on both.
func twoNodes(t *testing.T, db string, flows map[string]string, astA, astB *aritest.Server, behaves aritest.AgentBehavior, tweaks ...func(*config.Config)) (a, b *node) {
	t.Helper()
	dsn := pgtest.Database(t, db)
	dir := writeFlowDir(t, flows)
	t.Cleanup(astA.Close)
	t.Cleanup(astB.Close)
	for _, ast := range []*aritest.Server{astA, astB} {
		ast.SetAgent("PJSIP/alice", behaves)
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
			for _, f := range tweaks {
				f(c)
			}
		}
	}
	return startNode(t, astA, Deps{}, onDB("node-a")), startNode(t, astB, Deps{}, onDB("node-b"))
}

// An agent who pauses on one node's page is paused on every node at once.
func TestTwoNodesSeeAnAgentsPresence(t *testing.T) {
	a, b := twoNodes(t, "presence", map[string]string{"team.toml": teamFlow},
		aritest.NewServer(aritest.Options{SystemName: "boxa"}), aritest.NewServer(aritest.Options{SystemName: "boxb"}), answerQuick())
	if err := a.srv.presence.Set(ctxT(t), "alice", presence.Paused, "lunch"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "node-b sees alice paused", func() bool {
		st := b.srv.presence.Status("alice")
		return st.State == presence.Paused && st.Reason == "lunch"
	})
	if err := b.srv.presence.Set(ctxT(t), "alice", presence.Available, ""); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "node-a sees alice back", func() bool { return a.srv.presence.Status("alice").State == presence.Available })
}

// A node that dies holding a callback does not take it along: the place
// lapses, another node takes it over, rings the agent and calls the caller
// back, and the call's record gets the callback as on the node that took
// the request.
func TestACallbackOfANodeGoneIsCalledBackByAnother(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t, "adoptcallback")
	dir := writeFlowDir(t, map[string]string{"q.toml": queueFlow("+914430006000", "linear", `callback_key = "2"
callback_dial = "PJSIP/${number}@trunk"`)})
	// What the dead node left, a minute ago: the call's record, and the
	// caller's place with their callback request, no longer renewed.
	ago := func() time.Time { return time.Now().Add(-time.Minute) }
	st, err := store.Open(ctx, dsn, store.Options{SpoolPath: filepath.Join(t.TempDir(), "spool"), Now: ago})
	if err != nil {
		t.Fatal(err)
	}
	addTeam(t, st, "alice")
	started := ago()
	if err := st.RecordCall(store.CallRecord{ID: "dead.1", Flow: "Queue linear", Called: "+914430006000", Caller: "+15550000077",
		Started: started, Ended: started.Add(20 * time.Second), Outcome: "completed", Node: "node-dead",
		Steps: []store.StepRecord{{Flow: "Queue linear", Step: "wait", Applet: "queue", Outcome: "callback", Started: started, Ended: started.Add(15 * time.Second)}}}); err != nil {
		t.Fatal(err)
	}
	id, err := st.QueueJoin(ctx, store.QueueEntry{Queue: "default/Queue linear/wait", Call: "dead.1", Node: "node-dead", Number: "+15550000077", Joined: started})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.QueueMarkCallback(ctx, id, store.CallbackPlace{Workspace: "default", Flow: "Queue linear", Step: "wait", Called: "+914430006000"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()

	ast := aritest.NewServer(aritest.Options{SystemName: "boxb"})
	t.Cleanup(ast.Close)
	ast.SetAgent("PJSIP/alice", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 100 * time.Millisecond, HangupAfter: 3 * time.Second})
	ast.SetAgent("PJSIP/+15550000077@trunk", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 200 * time.Millisecond, HangupAfter: time.Second})
	b := startNode(t, ast, Deps{}, func(c *config.Config) {
		c.Database, c.DataDir, c.Node.Name, c.FlowsDir = dsn, t.TempDir(), "node-b", dir
		c.Agents.WrapUp.UnmarshalTOMLValue("0s")
	})
	var rec store.CallRecord
	waitUntil(t, "the callback made and recorded", func() bool {
		_ = b.srv.Store().Flush(ctxT(t))
		r, err := b.srv.Store().GetCall(ctxT(t), "dead.1", store.AllWorkspaces())
		rec = r
		return err == nil && slices.Contains(r.Tags, "callback")
	})
	var path []string
	for _, s := range rec.Steps {
		path = append(path, s.Step+":"+s.Outcome)
	}
	if got := strings.Join(path, " "); got != "wait:callback wait:answered" {
		t.Errorf("steps: %s", got)
	}
	if got := dialled(ast); got != "PJSIP/alice PJSIP/+15550000077@trunk" {
		t.Errorf("rang %s", got)
	}
}

// waitingIDs lists the calls waiting in queue q as node n sees them.
func waitingIDs(n *node, q string) string {
	out := ""
	for _, st := range n.srv.queues.Snapshot() {
		if st.Name == q {
			for _, w := range st.Waiting {
				out += w.Call + " "
			}
		}
	}
	return out
}

// A callback waiting when its node stops (SQLite: one node) keeps its
// place in the database, and the node calls the caller back once it is up
// again.
func TestACallbackOutlivesARestart(t *testing.T) {
	ctx := context.Background()
	dir := writeFlowDir(t, map[string]string{"q.toml": queueFlow("+914430007000", "linear", `callback_key = "2"
callback_dial = "PJSIP/${number}@trunk"`)})
	db := filepath.Join(t.TempDir(), "callflow.db")
	boot := func(team bool) *harness {
		tweaks := []func(*config.Config){func(cfg *config.Config) {
			cfg.Database, cfg.Node.Name = db, "box"
			cfg.Agents.WrapUp.UnmarshalTOMLValue("0s")
		}}
		if team {
			tweaks = append(tweaks, withTeam(t, "alice"))
		}
		return startWith(t, harnessOptions{flowsDir: dir, tweak: tweaks})
	}
	first := boot(true)
	if err := first.srv.presence.Set(ctx, "alice", presence.Paused, "meeting"); err != nil {
		t.Fatal(err)
	}
	caller := first.call(aritest.CallSpec{Exten: "+914430007000", From: "+15550000088"})
	waitUntil(t, "the caller waiting", func() bool { return first.srv.queues.Waiting("default/Queue linear/wait") == 1 })
	caller.Press("2")
	<-caller.Done()
	waitUntil(t, "the callback's place kept", onlyCallbackWaiting(first.srv))
	first.stop()

	second := boot(false)
	second.ast.SetAgent("PJSIP/alice", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 100 * time.Millisecond, HangupAfter: 2 * time.Second})
	second.ast.SetAgent("PJSIP/+15550000088@trunk", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 200 * time.Millisecond, HangupAfter: time.Second})
	if err := second.srv.presence.Set(ctx, "alice", presence.Available, ""); err != nil {
		t.Fatal(err)
	}
	rec := second.storedCall(caller.ID(), func(c store.CallRecord) bool {
		return len(c.Steps) > 0 && c.Steps[len(c.Steps)-1].Outcome == "answered"
	})
	if got := storedPath(rec); got != "wait:callback bye:hangup wait:interrupted wait:answered" {
		t.Errorf("steps: %s", got)
	}
	if !slices.Equal(rec.Tags, []string{"callback"}) {
		t.Errorf("tags: %v", rec.Tags)
	}
	if got := dialled(second.ast); got != "PJSIP/alice PJSIP/+15550000088@trunk" {
		t.Errorf("rang %s", got)
	}
	waitUntil(t, "the callback done leaving the database", func() bool {
		kept, err := second.srv.Store().QueueKeptCallbacks(ctx, "box")
		return err == nil && len(kept) == 0
	})
}

// A node that stops with a callback waiting lets it go at once: another
// node on the database calls the caller back, without waiting for the
// stopped node's place to lapse.
func TestACallbackOfANodeStoppingIsCalledBackByAnother(t *testing.T) {
	flow := queueFlow("+914430008000", "linear", `callback_key = "2"
callback_dial = "PJSIP/${number}@trunk"`)
	astA, astB := aritest.NewServer(aritest.Options{SystemName: "boxa"}), aritest.NewServer(aritest.Options{SystemName: "boxb"})
	a, b := twoNodes(t, "stopcallback", map[string]string{"q.toml": flow}, astA, astB,
		aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 100 * time.Millisecond, HangupAfter: 2 * time.Second})
	astB.SetAgent("PJSIP/+15550000099@trunk", aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 200 * time.Millisecond, HangupAfter: time.Second})
	ctx := ctxT(t)
	if err := a.srv.presence.Set(ctx, "alice", presence.Paused, "meeting"); err != nil {
		t.Fatal(err)
	}
	caller, err := astA.PlaceCall(ctx, aritest.CallSpec{Exten: "+914430008000", From: "+15550000099"})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the caller waiting", func() bool { return waitingIDs(a, "default/Queue linear/wait") == caller.ID()+" " })
	caller.Press("2")
	<-caller.Done()
	waitUntil(t, "the callback's place kept", onlyCallbackWaiting(a.srv))
	a.close()
	stopped := time.Now()
	if err := b.srv.presence.Set(ctx, "alice", presence.Available, ""); err != nil {
		t.Fatal(err)
	}
	var rec store.CallRecord
	waitUntil(t, "the callback made from node b and recorded", func() bool {
		_ = b.srv.Store().Flush(ctx)
		r, err := b.srv.Store().GetCall(ctx, caller.ID(), store.AllWorkspaces())
		rec = r
		return err == nil && len(r.Steps) > 0 && r.Steps[len(r.Steps)-1].Outcome == "answered"
	})
	t.Logf("called back from node b %s after node a stopped (the place lapses only after %s)", time.Since(stopped).Round(100*time.Millisecond), 30*time.Second)
	if got := storedPath(rec); got != "wait:callback bye:hangup wait:interrupted wait:answered" {
		t.Errorf("steps: %s", got)
	}
	if got := dialled(astB); got != "PJSIP/alice PJSIP/+15550000099@trunk" {
		t.Errorf("node b rang %s", got)
	}
}

// storedPath is a stored record's steps as "step:outcome ...".
func storedPath(r store.CallRecord) string {
	var path []string
	for _, s := range r.Steps {
		path = append(path, s.Step+":"+s.Outcome)
	}
	return strings.Join(path, " ")
}

// dialled is the endpoints ast was asked to call, in order.
func dialled(ast *aritest.Server) string {
	var order []string
	for _, ch := range ast.History() {
		if ch.Endpoint != "" {
			order = append(order, ch.Endpoint)
		}
	}
	return strings.Join(order, " ")
}

// onlyCallbackWaiting: srv's one queue has one caller waiting, a callback.
func onlyCallbackWaiting(srv *Server) func() bool {
	return func() bool {
		snap := srv.queues.Snapshot()
		return len(snap) == 1 && len(snap[0].Waiting) == 1 && snap[0].Waiting[0].Callback
	}
}

// An agent in wrap-up after a call on one node is not rung by another
// node until the wrap-up is over; each node's queue page then counts the
// calls both answered today.
func TestWrapUpOnOneNodeHoldsTheAgentOnEvery(t *testing.T) {
	const wrap = 2 * time.Second
	astA, astB := aritest.NewServer(aritest.Options{SystemName: "boxa"}), aritest.NewServer(aritest.Options{SystemName: "boxb"})
	a, b := twoNodes(t, "wrapup", map[string]string{"q.toml": queueFlow("+914430005000", "linear", "")}, astA, astB,
		aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 50 * time.Millisecond, HangupAfter: 300 * time.Millisecond},
		func(c *config.Config) { c.Agents.WrapUp.UnmarshalTOMLValue(wrap.String()) })
	ctx := ctxT(t)
	first, err := astA.PlaceCall(ctx, aritest.CallSpec{Exten: "+914430005000", From: "+15550000101"})
	if err != nil {
		t.Fatal(err)
	}
	<-first.Done()
	ended := time.Now()
	second, err := astB.PlaceCall(ctx, aritest.CallSpec{Exten: "+914430005000", From: "+15550000102"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(wrap / 2)
	if got := dialled(astB); got != "" {
		t.Errorf("node b rang %s half way through alice's wrap-up on node a", got)
	}
	shown := presence.State("not at all")
	for _, st := range b.srv.presence.Snapshot() {
		if st.Agent == "alice" {
			shown = st.State
		}
	}
	if shown != presence.WrapUp {
		t.Errorf("node b shows alice %s during her wrap-up on node a", shown)
	}
	<-second.Done()
	if got := dialled(astB); got != "PJSIP/alice" {
		t.Errorf("node b rang %q, want alice once her wrap-up was over", got)
	}
	t.Logf("node b rang alice %s after her call on node a ended (wrap-up %s)", time.Since(ended).Round(100*time.Millisecond), wrap)
	var rec store.CallRecord
	waitUntil(t, "node b's call recorded", func() bool {
		_ = b.srv.Store().Flush(ctx)
		rec, err = b.srv.Store().GetCall(ctx, second.ID(), store.AllWorkspaces())
		return err == nil && rec.Outcome != "in_progress"
	})
	if got := storedPath(rec); !strings.HasPrefix(got, "wait:answered") {
		t.Errorf("node b's caller: %s", got)
	}
	for _, n := range []*node{a, b} {
		waitUntil(t, n.cfg.NodeName()+" counting both nodes' answered calls", func() bool {
			snap := n.srv.queues.Snapshot()
			return len(snap) == 1 && snap[0].Answered == 2
		})
	}
}
