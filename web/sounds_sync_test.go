package web

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/internal/pgtest"
	"github.com/callflow/callflow/store"
)

// sharedNode is a web server of a node whose database is PostgreSQL,
// with its own sounds directory.
func sharedNode(t *testing.T, dsn string) *fixture {
	t.Helper()
	f := &fixture{t: t, clk: &clock{t: base}, dir: t.TempDir()}
	st, err := store.Open(context.Background(), dsn, store.Options{BcryptCost: 4, Now: f.clk.Now, Log: zerolog.Nop(),
		SpoolPath: filepath.Join(f.dir, "spool.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	srv, err := New(Options{Store: st, SessionKey: []byte("0123456789abcdef0123456789abcdef"), Log: zerolog.Nop(), Now: f.clk.Now,
		Sounds: SoundOptions{Dir: filepath.Join(f.dir, "sounds", "callflow")}})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.ts = httptest.NewServer(srv)
	t.Cleanup(f.ts.Close)
	return f
}

// With PostgreSQL an upload on one node is stored in the database: the
// other node plays it at once, and its copy pass puts the file where its
// Asterisk finds it; a deletion or a new version reaches it the same way.
func TestSharedSoundsReachEveryNode(t *testing.T) {
	pgtest.Require(t)
	dsn := pgtest.Database(t, "shared")
	a := sharedNode(t, dsn)
	b := sharedNode(t, dsn)
	if _, err := a.st.CreateUser(context.Background(), store.NewUser{Name: "admin", Password: "pw-admin", Role: store.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	onA, onB := a.login("admin"), b.login("admin")
	if resp, body := onA.upload("/api/sounds", "hello.wav", readTestdata(t, "hello.wav"), map[string]string{"workspace": "acme"}); resp.StatusCode != 201 {
		t.Fatalf("upload on a: %d %s", resp.StatusCode, body)
	}
	fileA := filepath.Join(a.srv.opts.Sounds.Dir, "acme", "hello.wav")
	fileB := filepath.Join(b.srv.opts.Sounds.Dir, "acme", "hello.wav")
	// b lists it and plays it from the database before copying it.
	_, list := onB.api("GET", "/api/sounds", "", nil)
	if s, _ := list["sounds"].([]any); len(s) != 1 || s[0].(map[string]any)["pending"] != true {
		t.Fatalf("b's sounds before the copy: %v", list)
	}
	resp, body := onB.get("/sounds/acme/hello/audio")
	wantA, _ := os.ReadFile(fileA)
	if resp.StatusCode != 200 || !bytes.Equal([]byte(body), wantA) {
		t.Fatalf("b plays: %d, %d bytes, want %d", resp.StatusCode, len(body), len(wantA))
	}
	ctx := context.Background()
	steps := []struct {
		name            string
		do              func()
		copied, removed int
		wantB           []byte // nil: no file on b
	}{
		{"copied", func() {}, 1, 0, wantA},
		{"nothing more to do", func() {}, 0, 0, wantA},
		{"a new version", func() {
			if resp, body := onA.upload("/api/sounds", "hello.ogg", readTestdata(t, "hello.ogg"), map[string]string{"workspace": "acme", "name": "hello", "replace": "1"}); resp.StatusCode != 201 {
				t.Fatalf("replace on a: %d %s", resp.StatusCode, body)
			}
			wantA, _ = os.ReadFile(fileA)
		}, 1, 0, nil},
		{"deleted on a", func() {
			if resp, _ := onA.api("DELETE", "/api/sounds/acme/hello", "", nil); resp.StatusCode != 204 {
				t.Fatalf("delete on a: %d", resp.StatusCode)
			}
		}, 0, 1, nil},
	}
	for _, st := range steps {
		st.do()
		res, err := SyncSounds(ctx, b.st, b.srv.opts.Sounds.Dir)
		if err != nil || res.Copied != st.copied || res.Removed != st.removed {
			t.Errorf("%s: sync %+v, %v; want copied %d removed %d", st.name, res, err, st.copied, st.removed)
		}
		got, err := os.ReadFile(fileB)
		want := st.wantB
		if st.name == "a new version" {
			want = wantA
		}
		if want == nil && !os.IsNotExist(err) || want != nil && !bytes.Equal(got, want) {
			t.Errorf("%s: b's file %d bytes (%v), want %d", st.name, len(got), err, len(want))
		}
	}
	// A file with another name in b's directory is not touched.
	other := filepath.Join(b.srv.opts.Sounds.Dir, "acme", "Notes.txt")
	os.WriteFile(other, []byte("x"), 0o644)
	if _, err := SyncSounds(ctx, b.st, b.srv.opts.Sounds.Dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("sync removed another file: %v", err)
	}
}
