package store

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pgConnEnv name what .ci/postgres.sh sets up beside the tests' server: a
// role that must give a password over TCP, the password, and the CA of the
// server's TLS certificate.
const (
	pgPasswordURLEnv = "POSTGRES_TEST_PASSWORD_URL"
	pgPasswordEnv    = "POSTGRES_TEST_PASSWORD"
	pgCAEnv          = "POSTGRES_TEST_CA"
)

// The password comes from the environment (PGPASSWORD), never the config
// file; a wrong one is refused without being shown; TLS with
// sslmode=verify-full checks the server's certificate against the CA
// given, and the connection is encrypted.
func TestPostgresPasswordFromTheEnvironmentAndVerifiedTLS(t *testing.T) {
	admin, password, ca := os.Getenv(pgPasswordURLEnv), os.Getenv(pgPasswordEnv), os.Getenv(pgCAEnv)
	if admin == "" || password == "" || ca == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s, %s and %s are needed (.ci/postgres.sh sets them)", pgPasswordURLEnv, pgPasswordEnv, pgCAEnv)
		}
		t.Skipf("%s, %s and %s not set (eval \"$(.ci/postgres.sh)\" sets them)", pgPasswordURLEnv, pgPasswordEnv, pgCAEnv)
	}
	if onPostgres() {
		t.Skip("runs once, in the first pass")
	}
	ctx := context.Background()
	opts := testOptions()
	opts.SpoolPath = filepath.Join(t.TempDir(), "spool")

	t.Setenv("PGPASSWORD", "not-the-password")
	if s, err := Open(ctx, admin, opts); err == nil {
		s.Close()
		t.Fatal("a wrong password was taken")
	} else if strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("the error shows the password: %v", err)
	}

	t.Setenv("PGPASSWORD", password)
	name := "callflow_pw_" + strconv.Itoa(os.Getpid())
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatal(err)
	}
	defer db.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name

	// Without the CA the certificate is not trusted: verify-full refuses.
	u.RawQuery = url.Values{"sslmode": {"verify-full"}}.Encode()
	if s, err := Open(ctx, u.String(), opts); err == nil {
		s.Close()
		t.Fatal("verify-full took a certificate nobody vouched for")
	}

	u.RawQuery = url.Values{"sslmode": {"verify-full"}, "sslrootcert": {ca}}.Encode()
	s, err := Open(ctx, u.String(), opts)
	if err != nil {
		t.Fatalf("with the password from PGPASSWORD and the CA: %v", err)
	}
	defer s.Close()
	var encrypted bool
	if err := s.r.QueryRowContext(ctx, `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&encrypted); err != nil || !encrypted {
		t.Errorf("connection encrypted: %v, %v", encrypted, err)
	}
	if err := s.RecordCall(sampleCall("tls-1", t0, 2)); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	if c, err := s.GetCall(ctx, "tls-1", AllWorkspaces()); err != nil || len(c.Steps) != 2 {
		t.Errorf("a call written and read over TLS: %+v, %v", c, err)
	}
}
