package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Pending lists the migrations the database at dsn lacks ("version name"),
// without applying them: a database that does not exist yet lacks them all.
func Pending(ctx context.Context, dsn string, opts Options) ([]string, error) {
	var db *sql.DB
	var err error
	if _, statErr := os.Stat(dsn); !IsPostgres(dsn) && errors.Is(statErr, fs.ErrNotExist) {
		return migrationNames(migrations), nil // and leave no file behind
	}
	if IsPostgres(dsn) {
		db, err = openPostgres(dsn, 1, opts.StatementTimeout)
	} else {
		db, err = openDB(dsn, opts.BusyTimeout, "deferred", 1)
	}
	if err != nil {
		return nil, err
	}
	defer db.Close()
	cur, err := schemaVersion(ctx, db)
	if err != nil {
		cur = 0 // no schema_migrations table: a new database
	}
	if cur > len(migrations) {
		return nil, fmt.Errorf("%w: database is at version %d, this program knows %d", ErrSchemaTooNew, cur, len(migrations))
	}
	return migrationNames(migrations[cur:]), nil
}

func migrationNames(migs []migration) []string {
	var out []string
	for _, m := range migs {
		out = append(out, fmt.Sprintf("%d %s", m.version, m.name))
	}
	return out
}

// copyTables in an order that keeps foreign keys satisfied, and the
// identity column of those that have one.
var copyTables = []struct{ name, identity string }{
	{"workspaces", ""}, {"users", "id"}, {"user_workspaces", ""}, {"api_tokens", "id"},
	{"flows", ""}, {"flow_revisions", ""}, {"numbers", ""},
	{"calls", ""}, {"call_steps", ""}, {"call_events", ""}, {"recordings", ""},
	{"voicemails", "id"}, {"counters", ""}, {"audit", "id"}, {"number_inventory", ""},
	{"outbox", "id"}, // deliveries still waiting for a retry
	{"agent_endpoints", ""}, {"teams", ""}, {"team_members", ""}, {"agent_presence", ""},
	{"queue_waiting", "id"}, // on SQLite, the callbacks kept to be made
	{"queue_days", ""},
}

// TableCount is one table's rows after a copy, on each side.
type TableCount struct {
	Table    string
	From, To int
}

// CopyTo copies every row of s into dst, table by table, each in one
// transaction. A row dst already has (the same key) is kept as it is, so
// a copy that stopped half way can run again. It returns each table's row
// count on both sides; dst has at least as many as s when all is copied.
// Voicemail audio stays where the rows point (files on this machine).
func (s *Store) CopyTo(ctx context.Context, dst *Store) ([]TableCount, error) {
	if err := s.Flush(ctx); err != nil {
		return nil, err
	}
	var out []TableCount
	for _, t := range copyTables {
		if err := copyTable(ctx, s.r, dst, t.name); err != nil {
			return out, fmt.Errorf("store: copy %s: %w", t.name, err)
		}
		if t.identity != "" && dst.pg {
			// Rows came with their ids: new rows must be numbered after them.
			q := fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', '%s'), COALESCE((SELECT MAX(%s) FROM %s), 0) + 1, false)`, t.name, t.identity, t.identity, t.name)
			if _, err := dst.w.ExecContext(ctx, q); err != nil {
				return out, fmt.Errorf("store: copy %s: %w", t.name, err)
			}
		}
		tc := TableCount{Table: t.name}
		for _, side := range []struct {
			db *sql.DB
			n  *int
		}{{s.r, &tc.From}, {dst.r, &tc.To}} {
			if err := side.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t.name).Scan(side.n); err != nil {
				return out, fmt.Errorf("store: count %s: %w", t.name, err)
			}
		}
		out = append(out, tc)
	}
	return out, nil
}

func copyTable(ctx context.Context, from *sql.DB, dst *Store, table string) error {
	rows, err := from.QueryContext(ctx, `SELECT * FROM `+table)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	insert := fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s) ON CONFLICT DO NOTHING`,
		table, strings.Join(cols, ", "), strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", "))
	tx, err := dst.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if dst.pg {
		// Rows arrive in key order, not in the order foreign keys want.
		if _, err := tx.ExecContext(ctx, `SET CONSTRAINTS ALL DEFERRED`); err != nil {
			return err
		}
	}
	stmt, err := tx.PrepareContext(ctx, insert)
	if err != nil {
		return err
	}
	defer stmt.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b) // the schema has text, never blobs
			}
		}
		if _, err := stmt.ExecContext(ctx, vals...); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return tx.Commit()
}
