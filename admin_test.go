package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The database-flow and user commands, and `check` seeing database flows.
func TestFlowsAndUserCommands(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "callflow.toml")
	os.WriteFile(cfgFile, []byte("database = \""+filepath.Join(dir, "cf.db")+"\"\nflows_dir = \"testdata/flows\"\ndefault_country = \"91\"\n"), 0o644)
	t.Setenv("CALLFLOW_CONFIG", cfgFile)
	must := func(want string, args ...string) string {
		t.Helper()
		out, errOut, code := runCLI(args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("%v: exit %d\n%s%s\nwant %q", args, code, out, errOut, want)
		}
		return out
	}
	must("user alice added (staff; workspaces acme)", "user", "add", "alice", "--role", "staff", "--workspace", "acme", "--password", "correct horse")
	must("alice", "user", "list")
	if tok := must("cft_", "user", "token", "alice"); len(strings.TrimSpace(tok)) < 20 {
		t.Errorf("short token %q", tok)
	}

	// A flow imported into the database conflicts with the same file.
	must("After-Hours Flow: imported (revision", "flows", "import", "testdata/flows/after-hours.toml")
	out, _, code := runCLI("check")
	if code != 1 || !strings.Contains(out, `flow name "After-Hours Flow" is also used by`) {
		t.Errorf("check did not report the file/database conflict: exit %d\n%s", code, out)
	}
	must("Copy of After-Hours Flow: duplicated", "flows", "duplicate", "After-Hours Flow")
	must("numbers assigned", "flows", "assign", "044 3000 5555", "Copy of After-Hours Flow")
	must("+914430005555", "flows", "list")
	must("unpublished", "flows", "unpublish", "After-Hours Flow")
	must("rolled back to revision 1", "flows", "rollback", "After-Hours Flow", "1")
	must("revision", "flows", "history", "After-Hours Flow")
	must(`name = "After-Hours Flow"`, "flows", "export", "After-Hours Flow")
	if _, errOut, code := runCLI("flows", "delete", "Copy of After-Hours Flow"); code == 0 {
		t.Errorf("deleted a flow with numbers without --force: %s", errOut)
	}
	must("deleted", "flows", "delete", "Copy of After-Hours Flow", "--force")
	if _, errOut, code := runCLI("flows", "import", "testdata/lint/bad-values.toml"); code == 0 || !strings.Contains(errOut, "bad-values.toml:8:1: error:") {
		t.Errorf("a broken flow was imported: %s", errOut)
	}
	must("user alice removed", "user", "rm", "alice")
}

// The load tool runs a handful of calls through the real serve path and
// reports no failure and no goroutine left over.
func TestLoadtestSmoke(t *testing.T) {
	out, errOut, code := runCLI("loadtest", "--in-process", "--concurrency", "5", "--rate", "20", "--duration", "500ms", "--talk", "200ms", "--prompt", "50ms", "--progress", "1h")
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
	bin := callflowBinary(t)
	prof := filepath.Join(dir, "pprof")
	out, errOut, code := runCLI("loadtest", "--binary", bin, "--pprof", prof, "--concurrency", "5", "--rate", "20", "--duration", "500ms", "--talk", "200ms", "--prompt", "50ms", "--progress", "1h")
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
