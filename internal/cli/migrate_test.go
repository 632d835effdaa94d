package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callflow/callflow/store"
)

// migrate --dry-run lists what a new database lacks and changes nothing;
// migrate applies it; then there is nothing to do.
func TestMigrateDryRunThenApply(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "callflow.toml")
	db := filepath.Join(dir, "callflow.db")
	if err := os.WriteFile(cfg, []byte("database = "+`"`+db+`"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		var out, errOut bytes.Buffer
		if code := Run(args, nil, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		return out.String()
	}
	last := fmt.Sprintf("migration %d ", store.SchemaVersion())
	if out := run("migrate", "--config", cfg, "--dry-run"); !strings.Contains(out, "would apply migration 1 calls") || !strings.Contains(out, "would apply "+last) {
		t.Errorf("dry run:\n%s", out)
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("a dry run made the database")
	}
	if out := run("migrate", "--config", cfg); !strings.Contains(out, "applied "+last) {
		t.Errorf("migrate:\n%s", out)
	}
	if out := run("migrate", "--config", cfg, "--dry-run"); !strings.Contains(out, "nothing to do") {
		t.Errorf("after migrating:\n%s", out)
	}
}
