package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Agents and teams from the command line: endpoints, membership and the
// presence an agent chose, as `agent list` and `team list` show them.
func TestAgentAndTeamCommands(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "callflow.toml")
	os.WriteFile(cfgFile, []byte("database = \""+filepath.Join(dir, "cf.db")+"\"\nflows_dir = \"testdata/flows\"\n"), 0o644)
	t.Setenv("CALLFLOW_CONFIG", cfgFile)
	must := func(want string, args ...string) {
		t.Helper()
		out, errOut, code := runCLI(t, args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("%v: exit %d\n%s%s\nwant %q", args, code, out, errOut, want)
		}
	}
	must("user alice added", "user", "add", "alice", "--password", "correct horse")
	must("agent alice rings at PJSIP/1001, PJSIP/+15550001@trunk", "agent", "set", "alice", "PJSIP/1001", "PJSIP/+15550001@trunk")
	must("team support added", "team", "add", "support")
	must("team support: alice joined", "team", "join", "support", "alice")
	must("alice is paused", "agent", "pause", "alice", "at", "lunch")
	must("alice  PJSIP/1001, PJSIP/+15550001@trunk  paused (at lunch)", "agent", "list")
	must("support  default    alice", "team", "list")
	must("alice is available", "agent", "login", "alice")

	for _, bad := range [][]string{
		{"agent", "set", "alice", "1001"},
		{"agent", "login", "bob"},
		{"team", "join", "sales", "alice"},
	} {
		if _, _, code := runCLI(t, bad...); code != 1 {
			t.Errorf("%v: exit %d, want 1", bad, code)
		}
	}
}
