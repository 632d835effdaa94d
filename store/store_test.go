package store

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

func TestMigrationsCreateSchemaAndReopenIsIdempotent(t *testing.T) {
	sqliteOnly(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cf.db")
	for i := range 3 {
		s, err := Open(ctx, path, testOptions())
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		if got := count(t, s, `SELECT COUNT(*) FROM schema_migrations`); got != SchemaVersion() {
			t.Errorf("open #%d: %d migrations recorded, want %d", i+1, got, SchemaVersion())
		}
		for _, table := range []string{"calls", "call_steps", "call_events", "recordings", "voicemails", "counters",
			"workspaces", "users", "user_workspaces", "api_tokens", "flows", "flow_revisions", "numbers"} {
			if n := count(t, s, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table); n != 1 {
				t.Errorf("table %s missing", table)
			}
		}
		var mode string
		if err := s.r.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v; want wal", mode, err)
		}
		var fk int
		if err := s.w.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	checkNoGoroutines(t)
}

func TestMigrationsUpgradeAnOlderDatabaseKeepingItsData(t *testing.T) {
	sqliteOnly(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cf.db")
	// A database an older program made: its first two migrations and a
	// voicemail (that program's statements do not know later columns).
	old, err := openDB(path, time.Second, "immediate", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, old, false, migrations[:2], time.Now); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`INSERT INTO voicemails (recording, mailbox, created) VALUES ('vm-a-1-1', 'a', 1)`); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s := openAt(t, path, testOptions())
	if v, err := schemaVersion(ctx, s.r); err != nil || v != SchemaVersion() {
		t.Fatalf("version %d, %v; want %d", v, err, SchemaVersion())
	}
	if n := count(t, s, `SELECT COUNT(*) FROM voicemails`); n != 1 {
		t.Errorf("voicemails after upgrade = %d, want 1", n)
	}
	if _, err := s.Next(ctx, "k", 2); err != nil {
		t.Errorf("counters after upgrade: %v", err)
	}
}

func TestOpenRefusesADatabaseNewerThanTheProgram(t *testing.T) {
	sqliteOnly(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cf.db")
	s, err := Open(ctx, path, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec(`INSERT INTO schema_migrations (version, name, applied) VALUES (?, 'from the future', 0)`, SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, path, testOptions())
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
	checkNoGoroutines(t)
}

func TestMigrationsAreAdditiveAndNumberedInOrder(t *testing.T) {
	destructive := regexp.MustCompile(`(?i)\b(DROP\s|DELETE\s+FROM|RENAME\s|UPDATE\s+\w+\s+SET)`)
	for i, m := range migrations {
		if m.version != i+1 {
			t.Errorf("migration %q has version %d, want %d", m.name, m.version, i+1)
		}
		if loc := destructive.FindString(m.sql); loc != "" {
			t.Errorf("migration %d (%s) is destructive: %q", m.version, m.name, loc)
		}
	}
}

func TestOpenRejectsPathsThatAreNotPlainFiles(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if _, err := Open(context.Background(), p, Options{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%q) = %v, want ErrInvalid", p, err)
		}
	}
}
