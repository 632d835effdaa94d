package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	// SQLite driver (cgo).
	_ "github.com/mattn/go-sqlite3"
)

// Errors returned by the store, matched with errors.Is.
var (
	ErrNotFound       = errors.New("store: not found")
	ErrExists         = errors.New("store: already exists")
	ErrClosed         = errors.New("store: closed")
	ErrInvalid        = errors.New("store: invalid")
	ErrSchemaTooNew   = errors.New("store: database schema is newer than this program")
	ErrBadCredentials = errors.New("store: bad credentials")
	ErrDisabled       = errors.New("store: user disabled")
	ErrNumberTaken    = errors.New("store: number belongs to another flow")
	ErrFlowHasNumbers = errors.New("store: flow still has numbers")
	// ErrStale: the flow changed since the revision the edit started from.
	ErrStale = errors.New("store: changed since that revision")
)

// Options tune a Store. The zero value is usable.
type Options struct {
	// QueueSize bounds the writer's in-memory queue (default 10,000);
	// records beyond it go to the spool file, never dropped.
	QueueSize int
	// MaxBatch is the most records written in one transaction (default
	// 256: big enough to amortize a commit, small enough that Next and
	// other synchronous writes never wait long behind a batch).
	MaxBatch int
	// GroupWindow is how long the writer, once a record arrives, waits for
	// more to join its transaction (default 50ms; negative: none). Each
	// commit rewrites the same table and index pages and wakes the writer,
	// so a call's records grouped with their neighbours' cost a fraction
	// of their own commits; 20ms is nothing to a record read by a person
	// and Flush does not wait for it.
	GroupWindow time.Duration
	// BusyTimeout is how long SQLite waits for a lock before a statement
	// fails with SQLITE_BUSY (default 5s). The writer then backs off and
	// retries; synchronous methods return the error.
	BusyTimeout time.Duration
	// RetryMin and RetryMax bound the writer's back-off (10ms, 2s).
	RetryMin, RetryMax time.Duration
	// CloseTimeout is how long Close keeps retrying writes before leaving
	// the rest in the spool file for the next Open (default 15s).
	CloseTimeout time.Duration
	// ReadConns is the size of the read connection pool (default 4).
	ReadConns int
	// BcryptCost for passwords (default bcrypt.DefaultCost).
	BcryptCost int
	// SpoolPath overrides the overflow file (default PATH + "-spool.jsonl";
	// required with PostgreSQL, where it is a local file of each node).
	SpoolPath string
	// PoolSize is the most connections to PostgreSQL for reads (default
	// ReadConns); the writer has one more of its own.
	PoolSize int
	// StatementTimeout bounds every statement on PostgreSQL (0: none).
	StatementTimeout time.Duration
	// Log receives the writer's warnings (overflow, retries, rejects).
	Log zerolog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.QueueSize <= 0 {
		o.QueueSize = 10000
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.GroupWindow == 0 {
		o.GroupWindow = 50 * time.Millisecond
	}

	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 10 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = 2 * time.Second
		if o.RetryMax < o.RetryMin {
			o.RetryMax = o.RetryMin
		}
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 15 * time.Second
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
	if o.PoolSize <= 0 {
		o.PoolSize = o.ReadConns
	}
	if o.BcryptCost == 0 {
		o.BcryptCost = bcrypt.DefaultCost
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Store is the database of callflow: a SQLite file, or a PostgreSQL
// database that several nodes share. It is safe for concurrent use.
type Store struct {
	path string // the SQLite file, or the PostgreSQL URL
	pg   bool
	opts Options
	log  zerolog.Logger

	// w has a single connection: writes queue in Go rather than spin in
	// SQLite's busy handler. r serves reads concurrently (WAL).
	w, r *sql.DB

	wr *writer

	nextMu sync.Mutex
	next   *sql.Stmt // Next's statement, prepared on first use

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the database at path, applies pending
// migrations and starts the writer. A postgres:// URL opens PostgreSQL
// (IsPostgres); anything else is a SQLite file.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	return openWith(ctx, path, opts, migrations)
}

func openWith(ctx context.Context, path string, opts Options, migs []migration) (*Store, error) {
	if IsPostgres(path) {
		return openPostgresStore(ctx, path, opts, migs)
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("%w: database path %q: a plain file path is required", ErrInvalid, path)
	}
	opts.defaults()
	s := &Store{path: path, opts: opts, log: opts.Log}

	var err error
	if s.w, err = openDB(path, opts.BusyTimeout, "immediate", 1); err != nil {
		return nil, err
	}
	if s.r, err = openDB(path, opts.BusyTimeout, "deferred", opts.ReadConns); err != nil {
		s.w.Close()
		return nil, err
	}
	return s.start(ctx, path, migs)
}

// openPostgresStore opens a PostgreSQL database: a pool for reads and one
// connection for the writer, as with SQLite, so records are written in
// the same batches.
func openPostgresStore(ctx context.Context, dsn string, opts Options, migs []migration) (*Store, error) {
	if opts.SpoolPath == "" {
		return nil, fmt.Errorf("%w: PostgreSQL needs a local spool file (Options.SpoolPath)", ErrInvalid)
	}
	opts.defaults()
	s := &Store{path: dsn, pg: true, opts: opts, log: opts.Log}
	var err error
	if s.w, err = openPostgres(dsn, 1, opts.StatementTimeout); err != nil {
		return nil, err
	}
	if s.r, err = openPostgres(dsn, opts.PoolSize, opts.StatementTimeout); err != nil {
		s.w.Close()
		return nil, err
	}
	return s.start(ctx, "PostgreSQL", migs)
}

// start checks the connection, migrates and starts the writer.
func (s *Store) start(ctx context.Context, what string, migs []migration) (*Store, error) {
	fail := func(err error) (*Store, error) {
		s.w.Close()
		s.r.Close()
		return nil, err
	}
	if err := s.w.PingContext(ctx); err != nil {
		if s.pg {
			err = errors.New(redactDSN(err.Error(), s.path))
		}
		return fail(fmt.Errorf("store: open %s: %w", what, err))
	}
	if err := migrate(ctx, s.w, s.pg, migs, s.now); err != nil {
		return fail(err)
	}
	if err := assignFlowIDs(ctx, s.w, s.pg); err != nil {
		return fail(err)
	}
	if _, err := newWriter(s); err != nil {
		return fail(err)
	}
	return s, nil
}

func openDB(path string, busy time.Duration, txlock string, conns int) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", fmt.Sprint(busy.Milliseconds()))
	q.Set("_foreign_keys", "on")
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", txlock)
	db, err := sql.Open("sqlite3", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close writes everything queued (retrying for up to CloseTimeout, then
// leaving the rest in the spool for the next Open), stops the writer and
// closes the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		err := s.wr.close()
		s.nextMu.Lock()
		if s.next != nil {
			s.next.Close()
		}
		s.nextMu.Unlock()
		err = errors.Join(err, s.w.Close(), s.r.Close())
		s.closeErr = err
	})
	return s.closeErr
}

func (s *Store) now() time.Time { return s.opts.Now().UTC() }

// Times are stored as UTC unix nanoseconds; zero times as NULL.
func tn(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func ft(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.Unix(0, v.Int64).UTC()
}

// Durations are stored as milliseconds.
func dms(d time.Duration) int64 { return d.Milliseconds() }

func fms(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// inClause returns "col IN (?,?)" and its arguments.
func inClause(col string, vals []string) (string, []any) {
	ph := make([]string, len(vals))
	args := make([]any, len(vals))
	for i, v := range vals {
		ph[i] = "?"
		args[i] = v
	}
	return col + " IN (" + strings.Join(ph, ",") + ")", args
}

// scopeClause restricts col to the scope; ok is false when nothing can match.
func scopeClause(col string, sc Scope) (clause string, args []any, ok bool) {
	if sc.All {
		return "", nil, true
	}
	if len(sc.Workspaces) == 0 {
		return "", nil, false
	}
	c, a := inClause(col, sc.Workspaces)
	return c, a, true
}

// where joins conditions.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// immediate runs fn in a write transaction (BEGIN IMMEDIATE).
func (s *Store) immediate(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
