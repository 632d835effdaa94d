package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callflow/callflow/internal/pgtest"
	"golang.org/x/crypto/bcrypt"
)

// childEnv switches the test binary into a helper process (crash and
// cross-process tests re-execute it).
const childEnv = "CALLFLOW_STORE_TEST_CHILD"

// backendEnv runs the tests on PostgreSQL (the test binary sets it when it
// runs itself again), at the server postgresEnv names.
const (
	backendEnv  = "CALLFLOW_STORE_TEST_BACKEND"
	postgresEnv = pgtest.Env
)

func onPostgres() bool { return os.Getenv(backendEnv) == "postgres" }

// TestMain runs every test on SQLite, then runs this binary again with
// the same flags to run every test on PostgreSQL (.ci/postgres.sh starts
// one). Without PostgreSQL that second run fails under CI and is skipped,
// with a line saying so, elsewhere.
func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	code := m.Run()
	if onPostgres() {
		os.Exit(code)
	}
	if os.Getenv(postgresEnv) == "" {
		if os.Getenv("CI") != "" {
			fmt.Println("store: the PostgreSQL run needs " + postgresEnv + " (.ci/postgres.sh starts a server)")
			os.Exit(1)
		}
		fmt.Println("store: PostgreSQL run skipped: " + postgresEnv + " is not set (eval \"$(.ci/postgres.sh)\" sets it)")
		os.Exit(code)
	}
	fmt.Println("store: the same tests on PostgreSQL")
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), backendEnv+"=postgres")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Println("store: PostgreSQL run:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// sqliteOnly skips a test of SQLite's own behaviour (its file, its locks)
// on the PostgreSQL run.
func sqliteOnly(t testing.TB) {
	t.Helper()
	if onPostgres() {
		t.Skip("a test of the SQLite file itself")
	}
}

// testOptions are fast: cheap bcrypt, short waits for locks.
func testOptions() Options {
	return Options{
		BcryptCost:   bcrypt.MinCost,
		BusyTimeout:  20 * time.Millisecond,
		RetryMin:     time.Millisecond,
		RetryMax:     20 * time.Millisecond,
		CloseTimeout: 30 * time.Second,
	}
}

// openTest opens a store in a fresh directory and closes it at the end
// of the test, checking that no goroutine of it is left.
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "callflow.db"), opts)
}

func openAt(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	return openChecked(t, path, opts, true)
}

// openAnother opens a second store on the database of path (another
// node), closed before the first one, whose cleanup checks goroutines.
func openAnother(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	return openChecked(t, path, opts, false)
}

func openChecked(t testing.TB, path string, opts Options, check bool) *Store {
	t.Helper()
	dsn := path
	if onPostgres() {
		dsn = pgtest.Database(t, path)
		if opts.SpoolPath == "" {
			opts.SpoolPath = path + "-spool.jsonl"
		}
	}
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if check {
			checkNoGoroutines(t)
		}
	})
	return s
}

// leakMarks are frames of goroutines a Store starts.
var leakMarks = []string{
	"callflow/store.(*writer)",
	"database/sql.(*DB).connectionOpener",
	"database/sql.(*DB).connectionCleaner",
	"go-sqlite3.(*SQLiteConn)",
	"github.com/jackc/pgx/v5",
}

func storeGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, m := range leakMarks {
			if strings.Contains(g, m) && !strings.Contains(g, "testing.tRunner") {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// checkNoGoroutines waits for goroutines that are on their way out, then
// fails on any a closed store left.
func checkNoGoroutines(t testing.TB) {
	t.Helper()
	var left []string
	for i := 0; i < 200; i++ {
		if left = storeGoroutines(); len(left) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("goroutines left after Close:\n%s", strings.Join(left, "\n\n"))
}

// lockDB holds the database's write lock from another connection, as a
// second process would, until the returned function is called.
func lockDB(t testing.TB, path string) (release func()) {
	t.Helper()
	sqliteOnly(t)
	ctx := context.Background()
	db, err := sql.Open("sqlite3", path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("taking the write lock: %v", err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			t.Errorf("releasing the write lock: %v", err)
		}
		conn.Close()
		db.Close()
	}
	t.Cleanup(release)
	return release
}

// waitFor polls cond; the limit only keeps a broken test from hanging.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func count(t testing.TB, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.r.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func flush(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

var t0 = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

// sampleCall is a call with n steps.
func sampleCall(id string, at time.Time, steps int) CallRecord {
	c := CallRecord{
		ID: id, Transport: "ari", Flow: "Acme Support", FlowVersion: "sha256:abc", Workspace: "acme",
		Called: "+914430001234", Caller: "+919800000001",
		Started: at, Answered: at.Add(2 * time.Second), Ended: at.Add(95 * time.Second),
		Outcome: "answered", TalkTime: 80 * time.Second, Qualified: true, LastStep: "tech",
		Tags: []string{"support"}, Vars: map[string]string{"zip": "600001"},
	}
	for i := range steps {
		c.Steps = append(c.Steps, StepRecord{
			Flow: c.Flow, Step: fmt.Sprintf("step%d", i), Applet: "greeting", Outcome: "done",
			Started: at.Add(time.Duration(i) * time.Second), Ended: at.Add(time.Duration(i+1) * time.Second),
			Details: map[string]any{"played": "sound:hello"},
		})
	}
	return c
}

// testClock is a clock tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
