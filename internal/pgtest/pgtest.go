// Package pgtest gives tests a database of their own on the PostgreSQL
// server that POSTGRES_TEST_URL names (.ci/postgres.sh starts one).
// Tests only: the product never links it.
package pgtest

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the admin connection
)

// Env names the server: a URL of a database the tests may connect to and
// create databases from.
const Env = "POSTGRES_TEST_URL"

// Available reports whether a server is named. Without one, Require
// fails under CI and skips elsewhere.
func Available() bool { return os.Getenv(Env) != "" }

// Require skips the test (or fails it under CI) without a server.
func Require(t testing.TB) {
	t.Helper()
	if Available() {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("PostgreSQL needed: %s is not set (.ci/postgres.sh starts a server)", Env)
	}
	t.Skipf("PostgreSQL not available: %s is not set (eval \"$(.ci/postgres.sh)\" sets it)", Env)
}

// Database returns the URL of a database standing for key (the same key,
// the same database within a test), made on first use and dropped when
// the test ends.
func Database(t testing.TB, key string) string {
	t.Helper()
	Require(t)
	admin := os.Getenv(Env)
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s: %v", Env, err)
	}
	// Named for the test, the key and this process: two test runs at once
	// never share (or drop) each other's database.
	sum := sha256.Sum256([]byte(t.Name() + "\x00" + key + "\x00" + strconv.Itoa(os.Getpid())))
	name := "callflow_test_" + hex.EncodeToString(sum[:8])
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var exists bool
	if err := db.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatalf("PostgreSQL at %s: %v", Env, err)
	}
	if !exists {
		if _, err := db.Exec(`CREATE DATABASE ` + name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			db, err := sql.Open("pgx", admin)
			if err != nil {
				return
			}
			defer db.Close()
			if _, err := db.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
				t.Errorf("dropping %s: %v", name, err)
			}
		})
	}
	u.Path = "/" + name
	return u.String()
}
