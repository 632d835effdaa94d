package loadtest

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/internal/testprog"
)

// repoRoot is read once, before any test changes directory.
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Join(wd, "..", "..")
}()

// runLoad runs the load tool from the repository's root, where its
// default flows directory is.
func runLoad(t *testing.T, args ...string) (string, string, int) {
	t.Chdir(repoRoot)
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return out.String(), errb.String(), code
}

// The load tool runs a handful of calls through the real serve path and
// reports no failure and no goroutine left over.
func TestLoadtestSmoke(t *testing.T) {
	out, errOut, code := runLoad(t, "--in-process", "--concurrency", "5", "--rate", "20", "--duration", "500ms", "--talk", "200ms", "--prompt", "50ms", "--progress", "1h")
	if code != 0 || !strings.Contains(out, "failed 0, stuck 0") || !strings.Contains(out, "event-to-command latency") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

// The load tool's default mode starts `callflow serve` as a child process
// (a binary built here), writes a record per call to its database, stops
// it with SIGTERM, and collects its profiles with --pprof.
func TestLoadtestChildProcessSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the callflow binary")
	}
	dir := t.TempDir()
	bin := testprog.Callflow(t)
	prof := filepath.Join(dir, "pprof")
	out, errOut, code := runLoad(t, "--binary", bin, "--pprof", prof, "--concurrency", "5", "--rate", "20", "--duration", "500ms", "--talk", "200ms", "--prompt", "50ms", "--progress", "1h")
	t.Log(out)
	m := regexp.MustCompile(`calls placed (\d+), completed (\d+), failed 0, stuck 0 \(records (\d+) in the database\)`).FindStringSubmatch(out)
	if code != 0 || m == nil || m[1] != m[2] || m[2] != m[3] || m[1] == "0" {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"event-to-command latency at the fake Asterisk", "CPU callflow ", "peak RSS callflow ",
		"goroutines callflow: ", "callflow stopped by SIGTERM: exit status 0", "0 errors"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	for _, f := range []string{"cpu.pprof", "heap-peak.pprof", "heap-end.pprof", "goroutines-peak.txt", "goroutines-end.txt"} {
		if st, err := os.Stat(filepath.Join(prof, f)); err != nil || st.Size() == 0 {
			t.Errorf("profile %s: %v", f, err)
		}
	}
	if tmp := regexp.MustCompile(`config (\S+)/callflow\.toml`).FindStringSubmatch(out); tmp == nil {
		t.Errorf("no config path in\n%s", out)
	} else if _, err := os.Stat(tmp[1]); !os.IsNotExist(err) {
		t.Errorf("temporary directory %s left behind: %v", tmp[1], err)
	}
}

// --floor runs the raw ARI client in callflow's place: it walks the agent
// path for every caller (an agent leg asked for after each key) and stops
// on SIGTERM like callflow.
func TestLoadtestFloorClientSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the floor client")
	}
	out, errOut, code := runLoad(t, "--floor", "--voicemail", "0", "--concurrency", "5", "--rate", "20", "--duration", "500ms", "--talk", "200ms", "--prompt", "50ms", "--progress", "1h")
	t.Log(out)
	m := regexp.MustCompile(`calls placed (\d+), completed (\d+), failed 0, stuck 0`).FindStringSubmatch(out)
	if code != 0 || m == nil || m[1] != m[2] || m[1] == "0" {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	legs := regexp.MustCompile(`key-to-agent latency .*\((\d+) samples\)`).FindStringSubmatch(out)
	if legs == nil || legs[1] != m[1] {
		t.Errorf("an agent leg per call: %v for %s calls\n%s", legs, m[1], out)
	}
	if !strings.Contains(out, "raw ARI floor client") || !strings.Contains(out, "stopped by SIGTERM: exit status 0") {
		t.Errorf("report\n%s", out)
	}
}

// --nodes runs several serve processes, each beside a fake Asterisk of its
// own, on one shared database: every call is recorded once, and the
// round-robin flow's turns are shared, so its agents are rung evenly.
func TestLoadtestNodesSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the callflow binary")
	}
	bin := testprog.Callflow(t)
	out, errOut, code := runLoad(t, "--binary", bin, "--nodes", "2", "--voicemail", "0", "--concurrency", "8", "--rate", "20", "--duration", "1s", "--talk", "200ms", "--prompt", "50ms", "--progress", "1h")
	t.Log(out)
	m := regexp.MustCompile(`calls placed (\d+), completed (\d+), failed 0, stuck 0 \(records (\d+) in the shared database\)`).FindStringSubmatch(out)
	if code != 0 || m == nil || m[1] != m[2] || m[2] != m[3] || m[1] == "0" {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"node-1: ", "node-2: ", "round robin across nodes: "} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	rr := regexp.MustCompile(`most minus least: (\d+)\)`).FindStringSubmatch(out)
	if rr == nil || rr[1] != "0" && rr[1] != "1" {
		t.Errorf("round robin uneven across nodes: %v\n%s", rr, out)
	}
}

// --fault kill-primary gives node-1 a standby on its Asterisk and kills
// the primary during the calls: the standby takes over, and every call
// that reached callflow is recorded and finished.
func TestLoadtestFaultKillPrimary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the callflow binary")
	}
	bin := testprog.Callflow(t)
	out, errOut, code := runLoad(t, "--binary", bin, "--nodes", "2", "--fault", "kill-primary", "--fault-at", "1s",
		"--voicemail", "0", "--concurrency", "10", "--rate", "10", "--duration", "4s", "--talk", "1s", "--prompt", "100ms", "--progress", "1h")
	t.Log(out)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	took := regexp.MustCompile(`node-1-standby took over .* and adopted \d+ channels`).FindString(out)
	lost := regexp.MustCompile(`nothing lost\? (\d+) calls reached callflow: (\d+) recorded, 0 missing, 0 left in progress`).FindStringSubmatch(out)
	if took == "" || lost == nil || lost[1] == "0" || lost[1] != lost[2] {
		t.Errorf("no takeover or calls lost:\n%s", out)
	}
}

func TestFaultOptionsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		o       faultOptions
		wantErr bool
		lasts   time.Duration
	}{
		{faultOptions{}, false, 0},
		{faultOptions{kind: "kill-node"}, false, 2 * time.Second},
		{faultOptions{kind: "db-outage", dbStop: "x", dbStart: "y"}, false, 30 * time.Second},
		{faultOptions{kind: "db-restart"}, true, 0},
		{faultOptions{kind: "power-cut"}, true, 0},
		{faultOptions{kind: "kill-node", at: -time.Second}, true, 2 * time.Second},
	} {
		err := tc.o.check()
		if (err != nil) != tc.wantErr || tc.o.lasts != tc.lasts {
			t.Errorf("%+v: %v, lasts %s", tc.o, err, tc.o.lasts)
		}
	}
}
