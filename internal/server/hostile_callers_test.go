package server

// Hostile callers, end to end through the real serve wiring, over ARI (the
// fake Asterisk in ari/aritest) and over FastAGI (the scripted peer in
// agi/agitest): keys pressed faster than the prompts, a flood of keys, and
// callers who never hang up.
//
// What a key pressed early means (DESIGN.md, "The Call interface": Play
// barges in on a key, Gather keeps "digits typed ahead"; applets/call.go:
// "every key pressed ... stays buffered for the next Gather, so a caller who
// knows the menu can answer it during the greeting"):
//
//   - Over ARI every ChannelDtmfReceived reaches the call, whatever plays.
//     A key pressed during a greeting does not stop it (unless the greeting
//     sets barge_in) and is not dropped: it is typed ahead, and the next
//     menu takes it instead of playing its prompt. A burst of keys during a
//     menu prompt stops the prompt at the first key; the menu takes as many
//     keys as its longest choice, and the rest wait, in the order pressed,
//     for the next visits of a menu, one entry per visit.
//   - Over FastAGI Asterisk itself only hands over keys while a command
//     listens for them (agi/doc.go): a key pressed during a greeting without
//     barge_in, or during the "invalid" message, is dropped by Asterisk and
//     never reaches the flow; a barge-in key is kept for the next menu.
//
// The type-ahead is bounded on both transports (ari.maxTypeahead,
// agi.maxTypeahead; over ARI also the keys waiting in a busy call's inbox,
// ari.maxQueuedKeys): keys past the bound are dropped, the newest first, so
// the first key the caller pressed still counts, a flood of keys costs a
// call a fixed amount of memory, and the menu's own retry count or the
// step budget ends the call.

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callflow/callflow/agi/agitest"
	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/flows"
)

// keysFlow is a greeting, a one-key menu that repeats through an
// "invalid input" message, and three ways out.
func keysFlow(name, number string, bargeIn bool) string {
	return fmt.Sprintf(`
name = %q
numbers = [%q]

[[steps]]
id = "welcome"
applet = "greeting"
play = ["sound:custom/welcome"]
barge_in = %v

[[steps]]
id = "menu"
applet = "menu"
prompt = ["sound:custom/menu"]
timeout = "1s"
retries = 2
keys = { 1 = "one", 2 = "two" }
on = { timeout = "invalid", invalid = "invalid", max_retries = "bye" }

[[steps]]
id = "invalid"
applet = "greeting"
play = ["sound:custom/invalid"]
next = "menu"

[[steps]]
id = "one"
applet = "hangup"

[[steps]]
id = "two"
applet = "hangup"

[[steps]]
id = "bye"
applet = "hangup"
`, name, number, bargeIn)
}

const (
	keysNumber  = "+914430000101"
	bargeNumber = "+914430000102"
)

func keysFlowDir(t *testing.T) string {
	return writeFlowDir(t, map[string]string{
		"keys.toml":  keysFlow("Early Keys", keysNumber, false),
		"barge.toml": keysFlow("Early Keys Barge", bargeNumber, true),
	})
}

// agiHarness runs serve with FastAGI only.
func agiHarness(t *testing.T, ho harnessOptions) *harness {
	t.Helper()
	ho.tweak = append([]func(*config.Config){func(c *config.Config) {
		c.ARI.Enabled = false
		c.AGI.Listen = freePort(t)
		c.RecordingsDir = t.TempDir()
	}}, ho.tweak...)
	return startWith(t, ho)
}

var agiIDs atomic.Int64

// agiCall runs one FastAGI session to the number with script and returns
// it (closed by the server) with the call's record.
func agiCall(t *testing.T, h *harness, number string, script agitest.Script) (*agitest.Session, *flows.CallRecord) {
	t.Helper()
	id := fmt.Sprintf("1795237700.%d", agiIDs.Add(1))
	env := map[string]string{"agi_dnid": number, "agi_extension": number, "agi_uniqueid": id}
	for k, v := range script.Env {
		env[k] = v
	}
	script.Env = env
	ses, err := agitest.Dial(ctxT(t), h.cfg.AGI.Listen, script)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ses.Close() })
	// The server ends the session: the test never closes it first.
	if err := ses.Wait(ctxT(t)); err != nil {
		t.Fatalf("session: %v (commands %q)", err, ses.Commands())
	}
	return ses, h.record(id)
}

// ended waits for the fake caller's channel to be gone.
func ended(t *testing.T, c *aritest.Caller) {
	t.Helper()
	select {
	case <-c.Done():
	case <-ctxT(t).Done():
		t.Fatal("the call never ended")
	}
}

// nothingLeft checks that the fake Asterisk has no channel or bridge left.
func nothingLeft(t *testing.T, h *harness) {
	t.Helper()
	waitUntil(t, "nothing left in Asterisk", func() bool { return len(h.ast.Channels()) == 0 && len(h.ast.Bridges()) == 0 })
}

// hungUpByUs reports whether callflow asked Asterisk to hang the channel up.
func hungUpByUs(h *harness, id string) bool {
	for _, r := range h.ast.Requests() {
		if r.Method == http.MethodDelete && r.Path == "/ari/channels/"+id {
			return true
		}
	}
	return false
}

func stoppedPlaybacks(h *harness) int {
	n := 0
	for _, r := range h.ast.Requests() {
		if r.Method == http.MethodDelete && strings.HasPrefix(r.Path, "/ari/playbacks/") {
			n++
		}
	}
	return n
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// pressEach presses each key as its own DTMF event, back to back.
func pressEach(c *aritest.Caller, keys string) {
	for _, k := range keys {
		c.Press(string(k))
	}
}

// Keys pressed before the prompt that asks for them, over ARI: typed
// ahead during the greeting, in a burst during the menu prompt, or both.
func TestHostileKeysFasterThanPromptsARI(t *testing.T) {
	cases := []struct {
		name   string
		number string
		// during the greeting, then during the first menu prompt heard
		greeting, menu string
		want           string
		menuPrompts    int // how often the menu prompt started
		stopped        int // playbacks stopped by a key
	}{
		{"key during the greeting is kept for the menu", keysNumber, "2", "",
			"welcome:done menu:2 two:hangup", 0, 0},
		{"key during a barge-in greeting stops it and answers the menu", bargeNumber, "2", "",
			"welcome:done menu:2 two:hangup", 0, 1},
		{"burst during the menu prompt answers the next visits in order", keysNumber, "", "991",
			"welcome:done menu:invalid invalid:done menu:invalid invalid:done menu:1 one:hangup", 1, 1},
		{"wrong key during the greeting, burst at the next prompt", keysNumber, "9", "2*1",
			"welcome:done menu:invalid invalid:done menu:2 two:hangup", 1, 1},
		{"keys that are no digit are wrong keys, not errors", keysNumber, "", "*#A2",
			"welcome:done menu:invalid invalid:done menu:invalid invalid:done menu:max_retries bye:hangup", 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := startWith(t, harnessOptions{flowsDir: keysFlowDir(t), ast: aritest.Options{
				// long enough that the keys land while they play
				MediaDurations: map[string]time.Duration{"sound:custom/welcome": time.Second, "sound:custom/menu": time.Second},
			}})
			caller := h.call(aritest.CallSpec{Exten: c.number})
			ctx := ctxT(t)
			if c.greeting != "" {
				if err := caller.WaitPlayback(ctx, "sound:custom/welcome"); err != nil {
					t.Fatal(err)
				}
				pressEach(caller, c.greeting)
			}
			if c.menu != "" {
				if err := caller.WaitPlayback(ctx, "sound:custom/menu"); err != nil {
					t.Fatal(err)
				}
				pressEach(caller, c.menu)
			}
			ended(t, caller)
			rec := h.record(caller.ID())
			if got := stepPath(rec); got != c.want {
				t.Errorf("path\n got  %s\n want %s", got, c.want)
			}
			if rec.Outcome != "completed" {
				t.Errorf("outcome %q (%s)", rec.Outcome, rec.Error)
			}
			heard := caller.Heard()
			if n := count(heard, "sound:custom/menu"); n != c.menuPrompts {
				t.Errorf("menu prompt started %d times, want %d (heard %v)", n, c.menuPrompts, heard)
			}
			// A prompt cut short by a key is stopped beside the call: the
			// request may land after the caller is gone.
			waitUntil(t, "the prompts' stops", func() bool { return stoppedPlaybacks(h) >= c.stopped })
			if n := stoppedPlaybacks(h); n != c.stopped {
				t.Errorf("%d playbacks stopped, want %d", n, c.stopped)
			}
			if !hungUpByUs(h, caller.ID()) {
				t.Error("the flow's hangup step did not hang up the channel")
			}
			nothingLeft(t, h)
		})
	}
}

// The same callers over FastAGI, where Asterisk drops the keys that no
// command listens for. Keys are the agitest peer's: one entry per playing
// or listening command, in order.
func TestHostileKeysFasterThanPromptsAGI(t *testing.T) {
	cases := []struct {
		name   string
		number string
		keys   []string
		want   string
		// the menu prompt was streamed this often
		menuPrompts int
	}{
		// welcome (no escape digits: the 2 is dropped), menu prompt, wait
		{"key during the greeting is dropped by Asterisk", keysNumber, []string{"2", "", "1"},
			"welcome:done menu:1 one:hangup", 1},
		// welcome with every key as escape digit: the 2 stops it
		{"key during a barge-in greeting stops it and answers the menu", bargeNumber, []string{"2"},
			"welcome:done menu:2 two:hangup", 0},
		// welcome, menu prompt (9 barges in), invalid (9 dropped), menu prompt, wait
		{"burst: the key during the invalid message is dropped", keysNumber, []string{"", "9", "9", "", "1"},
			"welcome:done menu:invalid invalid:done menu:1 one:hangup", 2},
		{"keys that are no digit are wrong keys, not errors", keysNumber, []string{"", "*", "", "#", "", "", "A"},
			"welcome:done menu:invalid invalid:done menu:invalid invalid:done menu:max_retries bye:hangup", 3},
	}
	h := agiHarness(t, harnessOptions{flowsDir: keysFlowDir(t)})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ses, rec := agiCall(t, h, c.number, agitest.Script{Keys: c.keys})
			if got := stepPath(rec); got != c.want {
				t.Errorf("path\n got  %s\n want %s", got, c.want)
			}
			if rec.Outcome != "completed" || rec.Transport != "agi" {
				t.Errorf("outcome %q transport %q (%s)", rec.Outcome, rec.Transport, rec.Error)
			}
			cmds := ses.Commands()
			n := 0
			for _, cmd := range cmds {
				if strings.HasPrefix(cmd, "STREAM FILE custom/menu ") {
					n++
				}
			}
			if n != c.menuPrompts {
				t.Errorf("menu prompt streamed %d times, want %d: %q", n, c.menuPrompts, cmds)
			}
			if len(cmds) == 0 || cmds[len(cmds)-1] != "EXEC Hangup 16" {
				t.Errorf("the flow did not end with Hangup(16): %q", cmds)
			}
		})
	}
}

// stormFlow is a menu that repeats itself on every wrong key.
func stormFlow(name, number string, retries, maxSteps int) string {
	return fmt.Sprintf(`
name = %q
numbers = [%q]

[settings]
max_steps = %d

[[steps]]
id = "lookup"
applet = "passthru"
url = "{{URL}}"
timeout = "10s"
on = { success = "menu", failed = "menu" }

[[steps]]
id = "menu"
applet = "menu"
prompt = ["sound:custom/storm-menu"]
timeout = "1s"
retries = %d
keys = { 1 = "one" }
on = { timeout = "menu", invalid = "menu", max_retries = "bye" }

[[steps]]
id = "one"
applet = "hangup"

[[steps]]
id = "bye"
applet = "hangup"
`, name, number, maxSteps, retries)
}

const keyStorm = 1000

// A thousand keys as fast as the caller can press them, into a menu that
// repeats on a wrong key: the call ends by the flow's own rules, the
// menu's retries or the step budget, and the keys pressed while the call
// was busy elsewhere (an HTTP look-up) cost no more than the type-ahead
// bound.
func TestHostileKeysThousandInARow(t *testing.T) {
	cases := []struct {
		name   string
		number string
		// "menu": during the menu prompt; "lookup": while the call waits
		// for HTTP; "lookup first": the same, the first key being 1
		when    string
		want    string
		outcome string
	}{
		{"retries exhausted", "+914430000111", "menu",
			"lookup:success menu:invalid menu:invalid menu:invalid menu:max_retries bye:hangup", "completed"},
		{"step budget", "+914430000112", "menu",
			"lookup:success" + strings.Repeat(" menu:invalid", 11), "step_budget"},
		{"while the call is busy elsewhere", "+914430000111", "lookup",
			"lookup:success menu:invalid menu:invalid menu:invalid menu:max_retries bye:hangup", "completed"},
		// The keys typed ahead are bounded by dropping the newest: the
		// first key pressed still counts after 999 more.
		{"the first key counts after a flood while busy", "+914430000111", "lookup first",
			"lookup:success menu:1 one:hangup", "completed"},
	}

	for _, transport := range []string{"ari", "agi"} {
		for _, c := range cases {
			if transport == "agi" && c.when != "menu" {
				continue // Asterisk hands keys over only while a command listens
			}
			t.Run(transport+"/"+c.name, func(t *testing.T) {
				hold := make(chan struct{})
				var asked atomic.Int32
				web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					if asked.Add(1) == 1 && c.when != "menu" {
						select {
						case <-hold:
						case <-r.Context().Done():
						}
					}
				}))
				defer web.Close()
				released := false
				release := func() {
					if !released {
						released = true
						close(hold)
					}
				}
				defer release()
				r := strings.NewReplacer("{{URL}}", web.URL)
				dir := writeFlowDir(t, map[string]string{
					"retries.toml": r.Replace(stormFlow("Storm Retries", "+914430000111", 3, 100)),
					"budget.toml":  r.Replace(stormFlow("Storm Budget", "+914430000112", 20, 12)),
				})
				svc := func(*harness) applets.Services { return applets.Services{HTTP: &http.Client{}} }

				var rec *flows.CallRecord
				if transport == "ari" {
					h := startWith(t, harnessOptions{flowsDir: dir, services: svc, ast: aritest.Options{
						MediaDurations: map[string]time.Duration{"sound:custom/storm-menu": time.Second},
					}})
					caller := h.call(aritest.CallSpec{Exten: c.number})
					if c.when == "menu" {
						if err := caller.WaitPlayback(ctxT(t), "sound:custom/storm-menu"); err != nil {
							t.Fatal(err)
						}
					} else {
						waitUntil(t, "the look-up", func() bool { return asked.Load() > 0 })
					}
					for i := range keyStorm {
						if i == 0 && c.when == "lookup first" {
							caller.Press("1")
							continue
						}
						caller.Press("9")
					}
					release()
					ended(t, caller)
					rec = h.record(caller.ID())
					if !hungUpByUs(h, caller.ID()) {
						t.Error("channel not hung up by callflow")
					}
					nothingLeft(t, h)
				} else {
					h := agiHarness(t, harnessOptions{flowsDir: dir, services: svc})
					keys := make([]string, keyStorm)
					for i := range keys {
						keys[i] = "9"
					}
					var ses *agitest.Session
					ses, rec = agiCall(t, h, c.number, agitest.Script{Keys: keys})
					cmds := ses.Commands()
					if len(cmds) == 0 || cmds[len(cmds)-1] != "EXEC Hangup 16" {
						t.Errorf("not hung up by callflow: %q", cmds)
					}
				}
				if got := stepPath(rec); got != c.want {
					t.Errorf("path\n got  %s\n want %s", got, c.want)
				}
				if rec.Outcome != c.outcome {
					t.Errorf("outcome %q, want %q (%s)", rec.Outcome, c.outcome, rec.Error)
				}
				if c.outcome == "step_budget" && !strings.Contains(rec.Error, "step budget") {
					t.Errorf("the record does not say why: %q", rec.Error)
				}
			})
		}
	}
}

// neverFlows are flows a silent caller who never hangs up could stay in
// forever, but for the step budget or the maximum call duration.
func neverFlows(t *testing.T, lookupURL string) string {
	return writeFlowDir(t, map[string]string{
		// greeting -> menu -> greeting ... whatever the menu says
		"endless.toml": `
name = "Endless"
numbers = ["+914430000121"]

[settings]
max_steps = 9

[[steps]]
id = "hello"
applet = "greeting"
play = ["sound:custom/hello"]

[[steps]]
id = "menu"
applet = "menu"
prompt = ["sound:custom/endless-menu"]
timeout = "100ms"
retries = 1
keys = { 1 = "bye" }
on = { timeout = "hello", invalid = "hello", max_retries = "hello" }

[[steps]]
id = "bye"
applet = "hangup"
`,
		"lecture.toml": `
name = "Lecture"
numbers = ["+914430000131"]

[settings]
max_duration = "2s"

[[steps]]
id = "lecture"
applet = "greeting"
play = ["sound:custom/hour-long"]

[[steps]]
id = "bye"
applet = "hangup"
`,
		// max_duration from [calls] in the config
		"ring.toml": `
name = "Ring Forever"
numbers = ["+914430000132"]

[[steps]]
id = "ring"
applet = "forward"
to = "PJSIP/nobody"
ring_timeout = "10m"
on = { no_answer = "bye", busy = "bye", failed = "bye" }

[[steps]]
id = "bye"
applet = "hangup"
`,
		"lookup.toml": `
name = "Slow Lookup"
numbers = ["+914430000133"]

[[steps]]
id = "lookup"
applet = "passthru"
url = "` + lookupURL + `"
timeout = "10s"
on = { success = "bye", failed = "bye" }

[[steps]]
id = "bye"
applet = "hangup"
`,
	})
}

const endlessPath = "hello:done menu:timeout hello:done menu:max_retries hello:done menu:max_retries hello:done menu:max_retries hello:done"

type neverCase struct {
	name    string
	number  string
	maxDur  bool // [calls] max_duration = 2s
	want    string
	outcome string
	// agiBlocksOn is the FastAGI command that never ends ("": none)
	agiBlocksOn string
}

var neverCases = []neverCase{
	{"step budget ends a loop the caller never leaves", "+914430000121", false, endlessPath, "step_budget", ""},
	{"max duration ends an endless prompt", "+914430000131", false, "lecture:max_duration", "max_duration", "STREAM FILE custom/hour-long "},
	{"max duration ends endless ringing", "+914430000132", true, "ring:max_duration", "max_duration", "EXEC Dial "},
	{"max duration ends a look-up that never answers", "+914430000133", true, "lookup:max_duration", "max_duration", ""},
}

// slowLookup is a web app that never answers (until the request is
// given up).
func slowLookup(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices the client gone only once the body is read.
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func neverHarnessOptions(t *testing.T, c neverCase) harnessOptions {
	ho := harnessOptions{
		flowsDir: neverFlows(t, slowLookup(t)),
		services: func(*harness) applets.Services { return applets.Services{HTTP: &http.Client{}} },
		ast:      aritest.Options{MediaDurations: map[string]time.Duration{"sound:custom/hour-long": time.Hour}},
	}
	if c.maxDur {
		ho.tweak = append(ho.tweak, func(cfg *config.Config) { cfg.Calls.MaxDuration.UnmarshalTOMLValue("2s") })
	}
	return ho
}

func checkNeverRecord(t *testing.T, c neverCase, rec *flows.CallRecord) {
	t.Helper()
	if got := stepPath(rec); got != c.want {
		t.Errorf("path\n got  %s\n want %s", got, c.want)
	}
	if rec.Outcome != c.outcome {
		t.Errorf("outcome %q, want %q (%s)", rec.Outcome, c.outcome, rec.Error)
	}
	why := map[string]string{"step_budget": "step budget", "max_duration": "maximum call duration"}[c.outcome]
	if !strings.Contains(rec.Error, why) {
		t.Errorf("the record does not say why the call ended: %q", rec.Error)
	}
}

// A caller who never presses a key and never hangs up, over ARI: the
// step budget or the maximum duration ends the call, callflow hangs the
// channel up, and nothing is left in Asterisk (the cleanup checks that no
// goroutine is left either).
func TestNeverHangsUpARI(t *testing.T) {
	for _, c := range neverCases {
		t.Run(c.name, func(t *testing.T) {
			h := startWith(t, neverHarnessOptions(t, c))
			h.ast.SetAgent("PJSIP/nobody", aritest.AgentBehavior{Mode: aritest.AgentNoAnswer})
			caller := h.call(aritest.CallSpec{Exten: c.number})
			ended(t, caller)
			rec := h.record(caller.ID())
			checkNeverRecord(t, c, rec)
			if !hungUpByUs(h, caller.ID()) || caller.HangupCause() != 16 {
				t.Errorf("channel not hung up by callflow (cause %d)", caller.HangupCause())
			}
			if c.number == "+914430000131" && stoppedPlaybacks(h) != 1 {
				t.Errorf("the endless prompt was not stopped")
			}
			nothingLeft(t, h)
		})
	}
}

// The same over FastAGI. The agitest peer answers every command at once,
// so an endless prompt or ring is a command it never answers (SilentAt):
// an AGI command cannot be taken back, so callflow closes the session and
// Asterisk's dialplan hangs up after AGI() (asterisk/extensions.conf).
// Between commands callflow hangs up itself (EXEC Hangup 16).
func TestNeverHangsUpAGI(t *testing.T) {
	for _, c := range neverCases {
		t.Run(c.name, func(t *testing.T) {
			h := agiHarness(t, neverHarnessOptions(t, c))
			script := agitest.Script{}
			blocking := c.agiBlocksOn
			if blocking != "" {
				// A first run, answered at once, finds the command.
				dry, _ := agiCall(t, h, c.number, agitest.Script{})
				for i, cmd := range dry.Commands() {
					if strings.HasPrefix(cmd, blocking) {
						script.SilentAt = i + 1
					}
				}
				if script.SilentAt == 0 {
					t.Fatalf("no %q in %q", blocking, dry.Commands())
				}
			}
			ses, rec := agiCall(t, h, c.number, script)
			checkNeverRecord(t, c, rec)
			cmds := ses.Commands()
			if blocking != "" {
				if len(cmds) != script.SilentAt {
					t.Errorf("commands after the one in flight: %q", cmds)
				}
			} else if len(cmds) == 0 || cmds[len(cmds)-1] != "EXEC Hangup 16" {
				t.Errorf("not hung up by callflow: %q", cmds)
			}
		})
	}
}
