package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// The PostgreSQL backend runs the same SQL as SQLite through pgx's
// database/sql driver. The store's statements are written in the SQL both
// share (UPSERT with ON CONFLICT, RETURNING, COALESCE, CASE, partial
// indexes); this file holds the few places they differ: "?" placeholders
// become "$1, $2...", GROUP_CONCAT string_agg, Go booleans are sent as 0/1 (the schema keeps
// SQLite's integer flags), the schema's types are widened, and errors are
// classified by SQLSTATE.

// IsPostgres reports whether a database setting names a PostgreSQL
// server rather than a SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// openPostgres opens a pool of at most conns connections; every statement
// runs under timeout (0: none).
func openPostgres(dsn string, conns int, timeout time.Duration) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the URL, password and all.
		return nil, fmt.Errorf("%w: database URL: %s", ErrInvalid, redactDSN(err.Error(), dsn))
	}
	if timeout > 0 {
		if cfg.RuntimeParams == nil {
			cfg.RuntimeParams = map[string]string{}
		}
		cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(timeout.Milliseconds(), 10)
	}
	db := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg)})
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// redactDSN removes the password of dsn from msg.
func redactDSN(msg, dsn string) string {
	if cfg, err := pgconn.ParseConfig(dsn); err == nil && cfg.Password != "" {
		msg = strings.ReplaceAll(msg, cfg.Password, "xxxxx")
	}
	return msg
}

// rebindConnector hands out connections that rewrite placeholders.
type rebindConnector struct{ driver.Connector }

func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &rebindConn{conn}, nil
}

// rebindConn is pgx's connection with "?" placeholders numbered. It
// passes on the optional interfaces database/sql looks for; pgx's
// connection has all of them but Validator and SessionResetter, which
// default to what database/sql assumes without them.
type rebindConn struct{ driver.Conn }

var (
	_ driver.ExecerContext      = (*rebindConn)(nil)
	_ driver.QueryerContext     = (*rebindConn)(nil)
	_ driver.ConnPrepareContext = (*rebindConn)(nil)
	_ driver.ConnBeginTx        = (*rebindConn)(nil)
	_ driver.NamedValueChecker  = (*rebindConn)(nil)
	_ driver.Pinger             = (*rebindConn)(nil)
	_ driver.SessionResetter    = (*rebindConn)(nil)
	_ driver.Validator          = (*rebindConn)(nil)
)

func (c *rebindConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, toPostgres(q), args)
}

func (c *rebindConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, toPostgres(q), args)
}

func (c *rebindConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, toPostgres(q))
}

// sqliteFunctions are the SQLite functions the store's queries use, as
// PostgreSQL spells them.
var sqliteFunctions = strings.NewReplacer(
	"GROUP_CONCAT(", "string_agg(",
	"char(10)", "chr(10)",
)

// toPostgres is q with its placeholders numbered and SQLite's function
// names replaced.
func toPostgres(q string) string {
	return rebind(sqliteFunctions.Replace(q))
}

func (c *rebindConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

// CheckNamedValue sends booleans as the integers the schema stores.
func (c *rebindConn) CheckNamedValue(v *driver.NamedValue) error {
	if b, ok := v.Value.(bool); ok {
		v.Value = int64(0)
		if b {
			v.Value = int64(1)
		}
		return nil
	}
	return c.Conn.(driver.NamedValueChecker).CheckNamedValue(v)
}

func (c *rebindConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *rebindConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *rebindConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// rebind numbers the "?" placeholders of q, leaving quoted text alone.
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		ch := q[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '\'' || ch == '"':
			quote = ch
		case ch == '-' && i+1 < len(q) && q[i+1] == '-': // a comment, to the line's end
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				end = len(q) - i
			}
			b.WriteString(q[i : i+end])
			i += end - 1
			continue
		case ch == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}

var (
	pgRowid      = regexp.MustCompile(`\bINTEGER PRIMARY KEY\b`)
	pgInteger    = regexp.MustCompile(`\bINTEGER\b`)
	pgBlob       = regexp.MustCompile(`\bBLOB\b`)
	pgReferences = regexp.MustCompile(`(REFERENCES \w+\(\w+\)( ON DELETE CASCADE)?)`)
)

// postgresSchema turns a migration written for SQLite into PostgreSQL's:
// an INTEGER PRIMARY KEY (SQLite's rowid) becomes an identity column,
// other integers (nanosecond times among them) 64-bit, BLOB BYTEA, and
// foreign keys deferrable, so a transaction may rename a flow and its
// rows together (SQLite's defer_foreign_keys).
func postgresSchema(ddl string) string {
	ddl = pgRowid.ReplaceAllString(ddl, "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
	ddl = pgInteger.ReplaceAllString(ddl, "BIGINT")
	ddl = pgBlob.ReplaceAllString(ddl, "BYTEA")
	return pgReferences.ReplaceAllString(ddl, "$1 DEFERRABLE INITIALLY IMMEDIATE")
}

// pgCode is the SQLSTATE of a PostgreSQL error, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
