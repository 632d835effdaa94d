package server

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/internal/testprog"
)

// Fault tests: calls keep coming while something breaks. After each fault
// every call the fake Asterisk handed over has its record, every message it
// stored is in the inbox, no channel is left in Stasis, and a new call
// works.

const (
	menuPrompt   = "sound:custom/acme-menu"
	voicemailKey = "2" // billing is busy: the caller leaves a message
)

// load places calls on the example support flow and plays each caller's
// part: at every menu they press their key. Calls Asterisk refuses (no
// application registered during the fault: the dialplan's fallback runs)
// are counted, not placed.
type load struct {
	t       *testing.T
	ast     *aritest.Server
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every goroutine of the load
	placing sync.WaitGroup // the placing ones
	mu      sync.Mutex
	calls   []*aritest.Caller
	refused atomic.Int64
}

func newLoad(t *testing.T, ast *aritest.Server) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{t: t, ast: ast, ctx: ctx, cancel: cancel}
	t.Cleanup(func() {
		l.cancel()
		l.wg.Wait()
	})
	return l
}

// place places n calls, one every gap, in the background; key picks each
// caller's menu choice.
func (l *load) place(n int, gap time.Duration, key func(i int) string) {
	l.wg.Add(1)
	l.placing.Add(1)
	go func() {
		defer l.wg.Done()
		defer l.placing.Done()
		for i := range n {
			if l.ctx.Err() != nil {
				return
			}
			l.one(key(i))
			time.Sleep(gap)
		}
	}()
}

// one places a call now; it reports whether Asterisk took it.
func (l *load) one(key string) *aritest.Caller {
	c, err := l.ast.PlaceCall(l.ctx, aritest.CallSpec{Exten: support, From: "+15557654321", Talk: 1500 * time.Millisecond})
	if err != nil {
		l.refused.Add(1)
		return nil
	}
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for c.WaitPlayback(l.ctx, menuPrompt) == nil {
			c.Press(key)
		}
	}()
	return c
}

func (l *load) placed() []*aritest.Caller {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*aritest.Caller(nil), l.calls...)
}

// mixedKeys: agents (1, 3) and voicemail (2) by turns.
func mixedKeys(i int) string { return []string{"1", voicemailKey, "3"}[i%3] }

// faultAgents: agents answer after ring and talk for talk; billing is
// busy, so its callers leave a message.
func faultAgents(ast *aritest.Server, ring, talk time.Duration) {
	for _, ep := range []string{"PJSIP/tech1", "PJSIP/tech2", "PJSIP/sales1", "PJSIP/sales2"} {
		ast.SetAgent(ep, aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: ring, HangupAfter: talk})
	}
	ast.SetAgent("PJSIP/billing1", aritest.AgentBehavior{Mode: aritest.AgentBusy})
}

// checkNothingLost waits for every call to end and checks the database
// (read while serve may still hold it) against what Asterisk has.
func checkNothingLost(t *testing.T, ast *aritest.Server, dbPath string, calls []*aritest.Caller) {
	t.Helper()
	for _, c := range calls {
		select {
		case <-c.Done():
		case <-time.After(60 * time.Second):
			t.Fatalf("call %s never ended: left in Stasis (heard %v)", c.ID(), c.Heard())
		}
	}
	waitUntil(t, "no channel left in Asterisk", func() bool { return len(ast.Channels()) == 0 })
	var missing []string
	waitUntil(t, "every call recorded", func() bool {
		outcomes := dbOutcomes(t, dbPath)
		missing = missing[:0]
		for _, c := range calls {
			if o, ok := outcomes[c.ID()]; !ok || o == "in_progress" {
				missing = append(missing, c.ID()+"="+o)
			}
		}
		return len(missing) == 0
	})
	// Every message Asterisk stored is in the inbox.
	waitUntil(t, "every stored message in the inbox", func() bool {
		known := dbVoicemails(t, dbPath)
		for _, name := range storedMessages(t, ast) {
			if !known[name] {
				return false
			}
		}
		return true
	})
}

// storedMessages are the voicemail recordings the fake Asterisk holds
// with at least a second of audio.
func storedMessages(t *testing.T, ast *aritest.Server) []string {
	t.Helper()
	ents, err := os.ReadDir(ast.RecordingsDir())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".wav")
		if !ok || !strings.HasPrefix(name, "vm-") {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Size() >= 44+16000 {
			out = append(out, name)
		}
	}
	return out
}

func readDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func dbOutcomes(t *testing.T, path string) map[string]string {
	t.Helper()
	db := readDB(t, path)
	defer db.Close()
	rows, err := db.Query(`SELECT id, outcome FROM calls`)
	if err != nil {
		return nil // not created yet, or busy: asked again
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, o string
		if rows.Scan(&id, &o) == nil {
			out[id] = o
		}
	}
	return out
}

// dbSteps is a call's path as step:outcome pairs.
func dbSteps(t *testing.T, path, id string) string {
	t.Helper()
	db := readDB(t, path)
	defer db.Close()
	rows, err := db.Query(`SELECT step, outcome FROM call_steps WHERE call_id = ? ORDER BY seq`, id)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var st, o string
		if rows.Scan(&st, &o) == nil {
			out = append(out, st+":"+o)
		}
	}
	return strings.Join(out, " ")
}

func dbVoicemails(t *testing.T, path string) map[string]bool {
	t.Helper()
	db := readDB(t, path)
	defer db.Close()
	rows, err := db.Query(`SELECT recording FROM voicemails`)
	if err != nil {
		return nil
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			out[n] = true
		}
	}
	return out
}

// newCallWorks places a voicemail call and an agent call and checks both
// run to their end as they should.
func newCallWorks(t *testing.T, ast *aritest.Server, dbPath string) {
	t.Helper()
	l := newLoad(t, ast)
	var vm, agent *aritest.Caller
	waitUntil(t, "a call taken", func() bool {
		vm = l.one(voicemailKey)
		return vm != nil
	})
	agent = l.one("1")
	if agent == nil {
		t.Fatal("second call refused")
	}
	ctx := ctxT(t)
	if _, err := vm.WaitRecording(ctx); err != nil {
		t.Fatalf("voicemail after the fault: %v", err)
	}
	if _, err := agent.WaitBridged(ctx); err != nil {
		t.Fatalf("agent after the fault: %v", err)
	}
	checkNothingLost(t, ast, dbPath, []*aritest.Caller{vm, agent})
	outcomes := dbOutcomes(t, dbPath)
	for _, c := range []*aritest.Caller{vm, agent} {
		if o := outcomes[c.ID()]; o != "completed" && o != "hangup" {
			t.Errorf("call %s after the fault: outcome %q", c.ID(), o)
		}
	}
}

// startServe runs the whole of serve in this process.
func startServe(t *testing.T, ast *aritest.Server, tweak func(*config.Config)) (*config.Config, func()) {
	t.Helper()
	cfg := serveConfig(t, ast)
	cfg.ARI.ReconnectMin.UnmarshalTOMLValue("50ms")
	cfg.ARI.ReconnectMax.UnmarshalTOMLValue("300ms")
	cfg.Calls.ReconcileInterval.UnmarshalTOMLValue("500ms")
	if tweak != nil {
		tweak(cfg)
	}
	log := zerolog.New(io.Discard)
	if testing.Verbose() {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.InfoLevel)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, cfg, log) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return cfg, stop
}

// rig is serve in this process against a fake Asterisk, taking calls.
type rig struct {
	t    *testing.T
	base int
	ast  *aritest.Server
	cfg  *config.Config
	stop func()
	l    *load
}

func startRig(t *testing.T, opts aritest.Options) *rig {
	t.Helper()
	r := &rig{t: t, base: runtime.NumGoroutine()}
	if opts.DefaultMediaDuration == 0 {
		opts.DefaultMediaDuration = 100 * time.Millisecond
	}
	r.ast = aritest.NewServer(opts)
	t.Cleanup(r.ast.Close)
	faultAgents(r.ast, 300*time.Millisecond, 800*time.Millisecond)
	r.cfg, r.stop = startServe(t, r.ast, nil)
	r.l = newLoad(t, r.ast)
	waitUntil(t, "serving", func() bool { return r.l.one("1") != nil })
	return r
}

// finish checks that new calls work once the fault is gone, stops
// everything and checks no goroutine is left.
func (r *rig) finish() {
	r.t.Helper()
	newCallWorks(r.t, r.ast, r.cfg.Database)
	r.stop()
	r.ast.Close()
	waitGoroutines(r.t, r.base)
}

func TestFaultWebsocketDroppedDuringLoad(t *testing.T) {
	r := startRig(t, aritest.Options{})
	ast, cfg, l := r.ast, r.cfg, r.l
	l.place(40, 100*time.Millisecond, mixedKeys)
	for range 6 {
		time.Sleep(700 * time.Millisecond)
		ast.DropWebsockets()
	}
	l.wg.Wait()
	checkNothingLost(t, ast, cfg.Database, l.placed())
	t.Logf("%d calls taken, %d refused while no websocket was open", len(l.placed()), l.refused.Load())
	r.finish()
}

func TestFaultAsteriskRestartedDuringLoad(t *testing.T) {
	r := startRig(t, aritest.Options{})
	ast, cfg, l := r.ast, r.cfg, r.l
	l.place(30, 100*time.Millisecond, mixedKeys)
	time.Sleep(1500 * time.Millisecond)
	ast.Restart() // every channel of the old Asterisk is gone
	l.wg.Wait()
	checkNothingLost(t, ast, cfg.Database, l.placed())
	outcomes := dbOutcomes(t, cfg.Database)
	cut := 0
	for _, c := range l.placed() {
		if c.HangupCause() == 0 { // vanished in the restart
			cut++
			// mid-flow: the caller is gone; mid-conversation: it is over
			if o := outcomes[c.ID()]; o != "hangup" && o != "completed" {
				t.Errorf("call %s cut by the restart: outcome %q (%s)", c.ID(), o, dbSteps(t, cfg.Database, c.ID()))
			}
		}
	}
	if cut == 0 {
		t.Error("the restart cut no call: the test proves nothing")
	}
	r.finish()
}

func TestFaultDatabaseLockedTenSecondsDuringLoad(t *testing.T) {
	r := startRig(t, aritest.Options{})
	ast, cfg, l := r.ast, r.cfg, r.l

	// Another process holds the write lock for 10 s, longer than the busy
	// timeout, while calls come and go.
	lock, err := sql.Open("sqlite3", "file:"+cfg.Database+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	conn, err := lock.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	l.place(30, 250*time.Millisecond, mixedKeys)
	time.Sleep(10 * time.Second)
	ended := 0
	for _, c := range l.placed() {
		select {
		case <-c.Done():
			ended++
		default:
		}
	}
	if ended == 0 {
		t.Error("no call ended while the database was locked: the test proves nothing")
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	lock.Close()
	l.wg.Wait()
	checkNothingLost(t, ast, cfg.Database, l.placed())
	if n := len(storedMessages(t, ast)); n < 5 {
		t.Errorf("only %d messages left: the test proves little", n)
	}
	r.finish()
}

// The recordings directory is a small tmpfs filled to the brim: messages
// cannot be written. Callers still get to the end of the flow, no empty
// message reaches the inbox, and once space is freed messages work again.
func TestFaultRecordingsDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("a full disk is made with a small tmpfs, which needs root: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			break // ENOSPC
		}
	}
	f.Close()
	if r := diskReport(dir); r["low"] != true {
		t.Errorf("/healthz on a full disk: %v", r)
	}

	r := startRig(t, aritest.Options{RecordingsDir: dir})
	ast, cfg, l := r.ast, r.cfg, r.l
	l.place(8, 200*time.Millisecond, func(int) string { return voicemailKey })
	l.wg.Wait()
	checkNothingLost(t, ast, cfg.Database, l.placed())
	if n := len(dbVoicemails(t, cfg.Database)); n != 0 {
		t.Errorf("%d voicemails in the inbox with a full disk", n)
	}
	outcomes := dbOutcomes(t, cfg.Database)
	for _, c := range l.placed() {
		if o := outcomes[c.ID()]; o != "completed" {
			t.Errorf("call %s with the disk full: outcome %q", c.ID(), o)
		}
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	r.finish()
	if n := len(dbVoicemails(t, cfg.Database)); n != 1 {
		t.Errorf("%d voicemails after space was freed, want 1", n)
	}
}

// process is callflow serve in a process of its own, on one database.
type process struct {
	t    *testing.T
	bin  string
	conf string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
	// exited is set once done was read
	exited bool
}

func newProcess(t *testing.T, ast *aritest.Server) *process {
	t.Helper()
	bin := testprog.Callflow(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "callflow.toml")
	body := fmt.Sprintf(`flows_dir = %q
database = %q
recordings_dir = %q
default_country = "91"
[ari]
url = %q
password = "secret"
reconnect_min = "50ms"
reconnect_max = "300ms"
[http]
listen = ""
[log]
level = "info"
[calls]
drain_timeout = "2s"
reconcile_interval = "500ms"
`, exampleFlows(t), filepath.Join(dir, "callflow.db"), filepath.Join(dir, "recordings"), ast.URL())
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return &process{t: t, bin: bin, conf: conf}
}

func (p *process) db() string { return filepath.Join(filepath.Dir(p.conf), "callflow.db") }

func (p *process) start() {
	p.t.Helper()
	log, err := os.OpenFile(filepath.Join(filepath.Dir(p.conf), "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	p.log = log
	p.cmd = exec.Command(p.bin, "serve", "--config", p.conf)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	p.cmd.Env = append(os.Environ(), "CALLFLOW_CONFIG=")
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan error, 1)
	p.exited = false
	cmd, done := p.cmd, p.done
	go func() { done <- cmd.Wait() }()
	p.t.Cleanup(func() {
		if p.cmd == cmd && !p.exited {
			cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
}

// stop signals the process and waits for it to exit.
func (p *process) stop(sig syscall.Signal) error {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.exited = true
		return err
	case <-time.After(60 * time.Second):
		p.t.Fatalf("callflow did not exit on %v", sig)
		return nil
	}
}

func (p *process) dumpLogOnFailure() {
	p.t.Cleanup(func() {
		if p.t.Failed() {
			b, _ := os.ReadFile(filepath.Join(filepath.Dir(p.conf), "serve.log"))
			p.t.Logf("serve log:\n%s", b)
		}
	})
}

// processUnderLoad starts callflow in a process of its own and, two
// seconds into a stream of calls, returns. Agents talk for talk.
func processUnderLoad(t *testing.T, talk time.Duration) (*aritest.Server, *process, *load) {
	t.Helper()
	ast := aritest.NewServer(aritest.Options{DefaultMediaDuration: 300 * time.Millisecond})
	t.Cleanup(ast.Close)
	faultAgents(ast, 200*time.Millisecond, talk)
	p := newProcess(t, ast)
	p.dumpLogOnFailure()
	p.start()
	l := newLoad(t, ast)
	waitUntil(t, "serving", func() bool { return l.one("1") != nil })
	l.place(24, 120*time.Millisecond, mixedKeys)
	time.Sleep(2 * time.Second)
	return ast, p, l
}

// Killed with SIGKILL in the middle of calls: nothing of the dead
// process's is left in memory. The next start marks what it left in
// progress, starts over the callers it finds mid-flow, lets the
// conversations it finds go on and ends them, and recovers the messages.
func TestFaultKilledDuringLoadThenRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the callflow command")
	}
	// Long enough talk that conversations outlive the kill.
	ast, p, l := processUnderLoad(t, 4*time.Second)
	if err := p.stop(syscall.SIGKILL); err == nil {
		t.Fatal("SIGKILL: exit status 0")
	}
	alive := len(ast.Channels())
	l.placing.Wait() // the rest of the calls are refused: no application
	time.Sleep(500 * time.Millisecond)
	p.start()
	checkNothingLost(t, ast, p.db(), l.placed())
	if alive == 0 {
		t.Error("no call was in progress at the kill: the test proves nothing")
	}
	outcomes := dbOutcomes(t, p.db())
	var interrupted, resumed int
	for _, c := range l.placed() {
		switch outcomes[c.ID()] {
		case "interrupted":
			interrupted++
		}
	}
	db := readDB(t, p.db())
	db.QueryRow(`SELECT COUNT(*) FROM call_events WHERE kind = 'resumed'`).Scan(&resumed)
	db.Close()
	t.Logf("%d channels alive at the kill; %d calls interrupted (conversations left to end), %d started over, %d refused while down",
		alive, interrupted, resumed, l.refused.Load())
	newCallWorks(t, ast, p.db())
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM after the restart: %v", err)
	}
}

// SIGTERM in the middle of calls: no new calls (sent back to the
// dialplan), calls in progress drain and the rest are hung up at the end
// of the drain time, every call is recorded; the next start takes calls.
func TestFaultTerminatedDuringLoadThenRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the callflow command")
	}
	ast, p, l := processUnderLoad(t, 10*time.Second)
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	l.placing.Wait()
	// Nothing is left for a next start to find: the drain ended every call.
	var continued []*aritest.Caller
	var ours []*aritest.Caller
	for _, c := range l.placed() {
		waitUntil(t, "each call ended or handed back", func() bool {
			select {
			case <-c.Done():
				return true
			default:
			}
			_, ok := c.Continued()
			return ok
		})
		if _, ok := c.Continued(); ok {
			continued = append(continued, c)
			c.Hangup() // the dialplan's fallback ran
		} else {
			ours = append(ours, c)
		}
	}
	outcomes := dbOutcomes(t, p.db())
	for _, c := range ours {
		if o, ok := outcomes[c.ID()]; !ok || o == "in_progress" || o == "interrupted" {
			t.Errorf("call %s: outcome %q after a clean stop", c.ID(), o)
		}
	}
	t.Logf("%d calls recorded, %d sent back to the dialplan while draining, %d refused", len(ours), len(continued), l.refused.Load())
	p.start()
	newCallWorks(t, ast, p.db())
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM after the restart: %v", err)
	}
}
