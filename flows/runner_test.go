package flows

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/rs/zerolog"
)

func mustParse(t testing.TB, name, src string) *Flow {
	t.Helper()
	f, probs := Parse(name+".toml", []byte(src), applets.Builtin(), ParseOptions{})
	if f == nil || probs.HasErrors() {
		t.Fatalf("parse %s: %v", name, probs)
	}
	return f
}

func path(rec *CallRecord) string {
	var s []string
	for _, st := range rec.Steps {
		s = append(s, st.Step+":"+st.Outcome)
	}
	return strings.Join(s, " ")
}

func runScript(t *testing.T, set *Set, flow string, script scripted.Script) *CallRecord {
	t.Helper()
	f, ok := set.ByName(flow)
	if !ok {
		t.Fatalf("no flow %q", flow)
	}
	r := &Runner{Services: &applets.Services{Counters: &MemCounters{}}, Log: zerolog.Nop()}
	return r.Run(context.Background(), scripted.New(script), set, f, CallInfo{Transport: "test"})
}

const routing = `
name = "Routing"
numbers = ["+15550001111"]

[[steps]]
id = "first"
applet = "forward"
to = "PJSIP/a"
ring_timeout = "5s"

[[steps]]
id = "second"
applet = "forward"
to = "PJSIP/b"
ring_timeout = "5s"
on = { busy = "busy-msg" }
next = "vm"

[[steps]]
id = "busy-msg"
applet = "greeting"
play = ["sound:busy"]

[[steps]]
id = "vm"
applet = "voicemail"
mailbox = "x"
`

func TestRunnerRoutesOutcomes(t *testing.T) {
	set := NewSet(1, []*Flow{mustParse(t, "routing", routing)}, nil)
	cases := []struct {
		name   string
		agents string
		want   string
		end    string
	}{
		{"fall-through to the next step in the file", "no_answer,answered", "first:no_answer second:answered", "completed"},
		{"an answered call never falls into voicemail", "answered", "first:answered", "completed"},
		{"on beats next", "busy,busy", "first:busy second:busy busy-msg:done vm:recorded", "completed"},
		{"next routes what on does not", "failed,no_answer", "first:failed second:no_answer vm:recorded", "completed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			agents, _ := scripted.ParseAgents(c.agents)
			rec := runScript(t, set, "Routing", scripted.Script{Agents: agents})
			if got := path(rec); got != c.want {
				t.Errorf("path %q, want %q", got, c.want)
			}
			if rec.Outcome != c.end {
				t.Errorf("outcome %q, want %q", rec.Outcome, c.end)
			}
		})
	}
}

func TestRunnerStepBudgetEndsALoop(t *testing.T) {
	f := mustParse(t, "loop", `
name = "Loop"
[settings]
max_steps = 7
[[steps]]
id = "a"
applet = "greeting"
play = ["sound:beep"]
next = "b"
[[steps]]
id = "b"
applet = "set"
tags = ["x"]
next = "a"
`)
	call := scripted.New(scripted.Script{})
	r := &Runner{Log: zerolog.Nop()}
	rec := r.Run(context.Background(), call, NewSet(1, []*Flow{f}, nil), f, CallInfo{})
	if len(rec.Steps) != 7 || rec.Outcome != "step_budget" {
		t.Fatalf("%d steps, outcome %q", len(rec.Steps), rec.Outcome)
	}
	if !call.HungUp() {
		t.Error("call not hung up after the budget")
	}
}

func TestRunnerTransferKeepsStateAndBudget(t *testing.T) {
	a := mustParse(t, "a", `
name = "Front"
[[steps]]
id = "tag"
applet = "set"
tags = ["vip"]
vars = { source = "ads" }
[[steps]]
id = "go"
applet = "transfer"
flow = "back"
`)
	b := mustParse(t, "b", `
name = "Back"
[[steps]]
id = "ring"
applet = "forward"
to = "PJSIP/x"
`)
	set := NewSet(1, []*Flow{a, b}, nil)
	rec := runScript(t, set, "Front", scripted.Script{Agents: []applets.DialStatus{applets.Answered}, TalkTime: 45 * time.Second})
	if got := path(rec); got != "tag:done go:transferred ring:answered" {
		t.Fatalf("path %q", got)
	}
	if rec.Steps[2].Flow != "Back" || rec.Steps[1].Next != "Back/ring" {
		t.Errorf("trace does not show the transfer: %+v", rec.Steps)
	}
	if len(rec.Tags) != 1 || rec.Tags[0] != "vip" || rec.Vars["source"] != "ads" {
		t.Errorf("state lost across transfer: tags %v vars %v", rec.Tags, rec.Vars)
	}
	if !rec.Qualified || rec.TalkTime != 45*time.Second || rec.Abandoned {
		t.Errorf("qualified %v talk %v abandoned %v", rec.Qualified, rec.TalkTime, rec.Abandoned)
	}
}

func TestRunnerTransferToMissingFlowEndsCall(t *testing.T) {
	a := mustParse(t, "a", `
name = "Front"
[[steps]]
id = "go"
applet = "transfer"
flow = "gone"
`)
	rec := runScript(t, NewSet(1, []*Flow{a}, nil), "Front", scripted.Script{})
	if rec.Outcome != "error" || !strings.Contains(rec.Error, "gone") {
		t.Fatalf("outcome %q error %q", rec.Outcome, rec.Error)
	}
}

func TestRunnerCallerHangupAtEveryMoment(t *testing.T) {
	set := NewSet(1, []*Flow{mustParse(t, "routing", routing)}, nil)
	for at := 1; at <= 5; at++ {
		t.Run(fmt.Sprint("action ", at), func(t *testing.T) {
			rec := runScript(t, set, "Routing", scripted.Script{HangupAt: at, Agents: []applets.DialStatus{applets.NoAnswer, applets.NoAnswer}})
			if rec.Outcome != "hangup" && rec.Outcome != "completed" {
				t.Errorf("outcome %q", rec.Outcome)
			}
			if rec.Ended.IsZero() || len(rec.Steps) == 0 {
				t.Errorf("record incomplete: %+v", rec)
			}
		})
	}
}

func TestAbandonedWhenCallerLeavesBeforeAnAgent(t *testing.T) {
	set := NewSet(1, []*Flow{mustParse(t, "routing", routing)}, nil)
	rec := runScript(t, set, "Routing", scripted.Script{HangupAt: 1})
	if !rec.Abandoned || rec.LastStep != "first" {
		t.Errorf("abandoned %v last step %q", rec.Abandoned, rec.LastStep)
	}
	rec = runScript(t, set, "Routing", scripted.Script{Agents: []applets.DialStatus{applets.NoAnswer, applets.NoAnswer}, HangupAt: 5, Messages: []time.Duration{5 * time.Second}})
	if rec.Abandoned || len(rec.Voicemails) != 1 {
		t.Errorf("a caller who left a message is not abandoned: %v, %d voicemails", rec.Abandoned, len(rec.Voicemails))
	}
}

// blockingCall holds the first Play until released, so a reload can
// happen while the call is in progress.
type blockingCall struct {
	*scripted.Call
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingCall) Play(ctx context.Context, spec applets.PlaySpec) (string, error) {
	b.once.Do(func() {
		close(b.entered)
		<-b.release
	})
	return b.Call.Play(ctx, spec)
}

func writeFile(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

const reloadV1 = `
name = "Main"
numbers = ["+15550002222"]
[[steps]]
id = "hello-v1"
applet = "greeting"
play = ["sound:one"]
[[steps]]
id = "bye"
applet = "hangup"
`

func TestReloadKeepsLastGoodVersionAndCallsFinishOnTheirVersion(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "main.toml", reloadV1)
	reg := NewRegistry()
	w := &Watcher{Loader: &Loader{Dir: dir, Applets: applets.Builtin()}, Registry: reg, Log: zerolog.Nop(), Poll: 20 * time.Millisecond, Debounce: 10 * time.Millisecond}
	w.Load()
	v1 := reg.Current()
	if f, ok := v1.ByNumber("+15550002222"); !ok || f.Steps[0].ID != "hello-v1" {
		t.Fatalf("v1 not loaded: %+v", v1.Flows())
	}

	// A call starts on v1 and is held in its first prompt.
	flow, _ := v1.ByNumber("+15550002222")
	bc := &blockingCall{Call: scripted.New(scripted.Script{}), entered: make(chan struct{}), release: make(chan struct{})}
	done := make(chan *CallRecord)
	go func() {
		r := &Runner{Log: zerolog.Nop()}
		done <- r.Run(context.Background(), bc, v1, flow, CallInfo{})
	}()
	<-bc.entered

	ctx, cancel := context.WithCancel(context.Background())
	watchDone := make(chan error)
	go func() { watchDone <- w.Run(ctx) }()
	defer func() { cancel(); <-watchDone }()

	// A broken edit: the old version keeps serving.
	writeFile(t, dir, "main.toml", strings.Replace(reloadV1, `applet = "hangup"`, `applet = "hangup"`+"\nbogus = 1", 1))
	waitFor(t, func() bool { return reg.Current().Version > v1.Version })
	if f, ok := reg.Current().ByNumber("+15550002222"); !ok || f.Version != flow.Version {
		t.Fatalf("a broken edit replaced the running version")
	}
	if !strings.Contains(fmt.Sprint(reg.Current().Problems), "unknown hangup parameter") {
		t.Errorf("problem not reported: %v", reg.Current().Problems)
	}

	// A good edit replaces it for new calls.
	writeFile(t, dir, "main.toml", strings.ReplaceAll(reloadV1, "hello-v1", "hello-v2"))
	waitFor(t, func() bool {
		f, ok := reg.Current().ByNumber("+15550002222")
		return ok && f.Steps[0].ID == "hello-v2"
	})

	// The call in progress finishes on v1.
	close(bc.release)
	rec := <-done
	if got := path(rec); got != "hello-v1:done bye:hangup" || rec.FlowVersion != flow.Version {
		t.Errorf("call in progress ran %q on %s", got, rec.FlowVersion)
	}

	// Deleting the file takes the flow away.
	os.Remove(filepath.Join(dir, "main.toml"))
	waitFor(t, func() bool { _, ok := reg.Current().ByNumber("+15550002222"); return !ok })
}

func TestLoaderRefusesANewFileThatStealsANumber(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.toml", reloadV1)
	l := &Loader{Dir: dir, Applets: applets.Builtin()}
	l.Load()
	writeFile(t, dir, "b.toml", strings.Replace(reloadV1, `"Main"`, `"Thief"`, 1))
	set, probs := l.Load()
	f, ok := set.ByNumber("+15550002222")
	if !ok || f.Name != "Main" {
		t.Fatalf("number now served by %v", f)
	}
	if _, ok := set.ByName("Thief"); ok {
		t.Error("conflicting new flow was installed")
	}
	if !strings.Contains(fmt.Sprint(probs), "also claimed") {
		t.Errorf("conflict not reported: %v", probs)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met")
}
