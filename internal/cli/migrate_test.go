package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/internal/pgtest"
	"github.com/callflow/callflow/internal/server"
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

// copy-db moves a box onto PostgreSQL: every row, and the voicemails'
// audio from the local copies into the database; run again, it adds
// nothing and says what it could not find.
func TestCopyDBMovesRowsAndVoicemailAudio(t *testing.T) {
	dst := pgtest.Database(t, "copy")
	dir := t.TempDir()
	from := filepath.Join(dir, "callflow.db")
	ctx := context.Background()
	src, err := store.Open(ctx, from, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vm-sales-c1-1", "vm-sales-c2-2"} {
		if err := src.SaveVoicemail(store.Voicemail{Recording: name, CallID: "c", Mailbox: "sales", Workspace: "acme"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "voicemail"), 0o755); err != nil {
		t.Fatal(err)
	}
	audio := bytes.Repeat([]byte("RIFF-ish audio "), 40000)
	if err := os.WriteFile(filepath.Join(dir, "voicemail", "vm-sales-c1-1.wav"), audio, 0o644); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		var out, errOut bytes.Buffer
		code := Run([]string{"copy-db", "--from", from, "--to", dst, "--data-dir", t.TempDir()}, nil, &out, &errOut)
		if code != 0 || !strings.Contains(out.String(), "voicemails              2 rows ->        2") || !strings.Contains(out.String(), "no audio for vm-sales-c2-2") {
			t.Fatalf("round %d: exit %d\n%s%s", round, code, out.String(), errOut.String())
		}
		if want := []string{"1 copied", "0 copied"}[round]; !strings.Contains(out.String(), want) {
			t.Errorf("round %d: want %q in\n%s", round, want, out.String())
		}
	}
	cfg := config.Default()
	cfg.Database, cfg.DataDir = dst, t.TempDir()
	st, err := store.Open(ctx, dst, server.StoreOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := st.OpenAudio(ctx, "vm-sales-c1-1")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(a); !bytes.Equal(got, audio) {
		t.Errorf("audio in the database: %d bytes, want %d", len(got), len(audio))
	}
}
