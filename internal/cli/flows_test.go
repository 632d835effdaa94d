package cli

import (
	"os"
	"path/filepath"
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
		out, errOut, code := runCLI(t, args...)
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
	out, _, code := runCLI(t, "check")
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
	if _, errOut, code := runCLI(t, "flows", "delete", "Copy of After-Hours Flow"); code == 0 {
		t.Errorf("deleted a flow with numbers without --force: %s", errOut)
	}
	must("deleted", "flows", "delete", "Copy of After-Hours Flow", "--force")
	if _, errOut, code := runCLI(t, "flows", "import", "testdata/lint/bad-values.toml"); code == 0 || !strings.Contains(errOut, "bad-values.toml:8:1: error:") {
		t.Errorf("a broken flow was imported: %s", errOut)
	}
	must("api", "user", "tokens", "alice")
	must("revoked", "user", "revoke", "alice", "api")
	if out := must("last used", "user", "tokens", "alice"); strings.Contains(out, "cft_") {
		t.Errorf("a revoked token is still listed:\n%s", out)
	}
	must("user alice removed", "user", "rm", "alice")
}
