package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migration is one additive schema change. Migrations are never edited or
// removed once released: a new change is a new migration at the end.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations in order; version i+1 is migrations[i].
var migrations = []migration{
	{1, "calls", `
CREATE TABLE calls (
	id           TEXT PRIMARY KEY,
	transport    TEXT NOT NULL DEFAULT '',
	flow         TEXT NOT NULL DEFAULT '',
	flow_version TEXT NOT NULL DEFAULT '',
	workspace    TEXT NOT NULL DEFAULT '',
	called       TEXT NOT NULL DEFAULT '',
	caller       TEXT NOT NULL DEFAULT '',
	started      INTEGER NOT NULL,
	answered     INTEGER,
	ended        INTEGER,
	outcome      TEXT NOT NULL DEFAULT '',
	talk_ms      INTEGER NOT NULL DEFAULT 0,
	qualified    INTEGER NOT NULL DEFAULT 0,
	abandoned    INTEGER NOT NULL DEFAULT 0,
	last_step    TEXT NOT NULL DEFAULT '',
	tags         TEXT NOT NULL DEFAULT '[]',
	vars         TEXT NOT NULL DEFAULT '{}',
	recording    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX calls_started ON calls(started);
CREATE INDEX calls_flow_started ON calls(flow, started);
CREATE INDEX calls_workspace_started ON calls(workspace, started);
CREATE INDEX calls_called ON calls(called);
CREATE INDEX calls_caller ON calls(caller);

CREATE TABLE call_steps (
	call_id TEXT NOT NULL REFERENCES calls(id),
	seq     INTEGER NOT NULL,
	flow    TEXT NOT NULL DEFAULT '',
	step    TEXT NOT NULL DEFAULT '',
	applet  TEXT NOT NULL DEFAULT '',
	outcome TEXT NOT NULL DEFAULT '',
	started INTEGER,
	ended   INTEGER,
	details TEXT NOT NULL DEFAULT '{}',
	PRIMARY KEY (call_id, seq)
);

-- Text messages, emails, bids, HTTP look-ups: one row each, kind + JSON.
CREATE TABLE call_events (
	call_id TEXT NOT NULL REFERENCES calls(id),
	seq     INTEGER NOT NULL,
	kind    TEXT NOT NULL,
	step    TEXT NOT NULL DEFAULT '',
	at      INTEGER,
	data    TEXT NOT NULL DEFAULT '{}',
	PRIMARY KEY (call_id, seq)
);
CREATE INDEX call_events_kind ON call_events(kind, call_id);

-- Whole-call recordings. No foreign key: the recording may be saved
-- before the call's record.
CREATE TABLE recordings (
	name        TEXT PRIMARY KEY,
	call_id     TEXT NOT NULL DEFAULT '',
	path        TEXT NOT NULL DEFAULT '',
	duration_ms INTEGER NOT NULL DEFAULT 0,
	created     INTEGER NOT NULL
);
CREATE INDEX recordings_call ON recordings(call_id);
`},
	{2, "voicemails", `
-- The recording name is the voicemail's identity: saving it twice, or
-- finding it on disk later, never makes a second row.
CREATE TABLE voicemails (
	id          INTEGER PRIMARY KEY,
	recording   TEXT NOT NULL UNIQUE,
	call_id     TEXT NOT NULL DEFAULT '',
	mailbox     TEXT NOT NULL DEFAULT '',
	workspace   TEXT NOT NULL DEFAULT '',
	caller      TEXT NOT NULL DEFAULT '',
	called      TEXT NOT NULL DEFAULT '',
	flow        TEXT NOT NULL DEFAULT '',
	step        TEXT NOT NULL DEFAULT '',
	duration_ms INTEGER NOT NULL DEFAULT 0,
	path        TEXT NOT NULL DEFAULT '',
	created     INTEGER NOT NULL,
	heard       INTEGER NOT NULL DEFAULT 0,
	heard_by    TEXT NOT NULL DEFAULT '',
	heard_at    INTEGER,
	deleted     INTEGER NOT NULL DEFAULT 0,
	deleted_by  TEXT NOT NULL DEFAULT '',
	deleted_at  INTEGER,
	recovered   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX voicemails_created ON voicemails(created);
CREATE INDEX voicemails_workspace_created ON voicemails(workspace, created);
CREATE INDEX voicemails_mailbox_created ON voicemails(mailbox, created);
CREATE INDEX voicemails_flow_created ON voicemails(flow, created);
`},
	{3, "counters", `
CREATE TABLE counters (
	key      TEXT PRIMARY KEY,
	position INTEGER NOT NULL,
	updated  INTEGER NOT NULL
);
`},
	{4, "users", `
CREATE TABLE workspaces (
	name    TEXT PRIMARY KEY,
	title   TEXT NOT NULL DEFAULT '',
	created INTEGER NOT NULL
);
INSERT INTO workspaces(name, title, created) VALUES ('default', 'Default', 0);

CREATE TABLE users (
	id       INTEGER PRIMARY KEY,
	name     TEXT NOT NULL UNIQUE,
	password TEXT NOT NULL,
	role     TEXT NOT NULL CHECK (role IN ('admin', 'workspace_admin', 'staff')),
	created  INTEGER NOT NULL,
	updated  INTEGER NOT NULL
);

CREATE TABLE user_workspaces (
	user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	workspace TEXT NOT NULL REFERENCES workspaces(name),
	PRIMARY KEY (user_id, workspace)
);

-- Tokens are random, so a SHA-256 of them is enough and can be looked up.
CREATE TABLE api_tokens (
	id      INTEGER PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	label   TEXT NOT NULL DEFAULT '',
	prefix  TEXT NOT NULL,
	hash    TEXT NOT NULL UNIQUE,
	created INTEGER NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
`},
	{5, "flows", `
-- Deleted flows keep their row (deleted = 1) and their history.
CREATE TABLE flows (
	name       TEXT PRIMARY KEY,
	workspace  TEXT NOT NULL DEFAULT 'default',
	revision   INTEGER NOT NULL,
	status     TEXT NOT NULL CHECK (status IN ('draft', 'published')),
	created    INTEGER NOT NULL,
	updated    INTEGER NOT NULL,
	updated_by TEXT NOT NULL DEFAULT '',
	deleted    INTEGER NOT NULL DEFAULT 0,
	deleted_by TEXT NOT NULL DEFAULT '',
	deleted_at INTEGER
);

CREATE TABLE flow_revisions (
	flow      TEXT NOT NULL REFERENCES flows(name),
	revision  INTEGER NOT NULL,
	source    TEXT NOT NULL,
	status    TEXT NOT NULL,
	workspace TEXT NOT NULL,
	numbers   TEXT NOT NULL DEFAULT '[]',
	author    TEXT NOT NULL DEFAULT '',
	created   INTEGER NOT NULL,
	comment   TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (flow, revision)
);

-- A number belongs to exactly one flow.
CREATE TABLE numbers (
	number      TEXT PRIMARY KEY,
	flow        TEXT NOT NULL REFERENCES flows(name),
	assigned    INTEGER NOT NULL,
	assigned_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX numbers_flow ON numbers(flow);
`},
	{6, "flow identity", `
-- A flow is its id, not its name: the name may change, and an exported
-- file names the flow it came from by id. Flows made before this get
-- theirs when the database is opened (assignFlowIDs).
ALTER TABLE flows ADD COLUMN id TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX flows_id ON flows(id) WHERE id != '';
`},
	{7, "accounts", `
-- generation counts the changes that end a user's sessions (a new
-- password, a lower role, disabling): a session made at another
-- generation is no longer valid.
ALTER TABLE users ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN updated_by TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN last_used INTEGER;

-- Who changed what, and when: user administration for now.
CREATE TABLE audit (
	id      INTEGER PRIMARY KEY,
	at      INTEGER NOT NULL,
	actor   TEXT NOT NULL DEFAULT '',
	action  TEXT NOT NULL,
	subject TEXT NOT NULL DEFAULT '',
	detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_subject ON audit(subject, at);

-- The calls list says which calls left a voicemail.
CREATE INDEX voicemails_call ON voicemails(call_id);
`},
	{8, "nodes", `
-- The callflow node that handled the call, when several share a database.
ALTER TABLE calls ADD COLUMN node TEXT NOT NULL DEFAULT '';
`},
	{9, "outbox", `
-- Deliveries waiting for a retry (webhooks): they outlive a restart, and
-- any node sharing the database may make them; lease says until when the
-- node that claimed one is making it.
CREATE TABLE outbox (
	id         INTEGER PRIMARY KEY,
	target     TEXT NOT NULL,
	event      TEXT NOT NULL DEFAULT '',
	body       TEXT NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	due        INTEGER NOT NULL,
	lease      INTEGER NOT NULL DEFAULT 0,
	node       TEXT NOT NULL DEFAULT '',
	last_error TEXT NOT NULL DEFAULT '',
	created    INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox(due);
`},
	{10, "audio", `
-- Voicemail audio kept in the database (PostgreSQL: every node's inbox
-- plays every message), in chunks so that it is never whole in memory.
CREATE TABLE audio (
	name    TEXT PRIMARY KEY,
	size    INTEGER NOT NULL,
	created INTEGER NOT NULL
);
CREATE TABLE audio_chunks (
	name TEXT NOT NULL,
	seq  INTEGER NOT NULL,
	data BLOB NOT NULL,
	PRIMARY KEY (name, seq)
);
`},
	{11, "node flows", `
-- Which version of each file flow every node runs: flow files are each
-- node's own (deployed by git, say), so nodes may differ.
CREATE TABLE node_flows (
	node    TEXT NOT NULL,
	flow    TEXT NOT NULL,
	version TEXT NOT NULL,
	file    TEXT NOT NULL DEFAULT '',
	loaded  INTEGER NOT NULL,
	PRIMARY KEY (node, flow)
);
`},
	{12, "outbox kinds", `
-- The outbox holds emails too: each sender claims only its own kind.
ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook';
CREATE INDEX outbox_kind_due ON outbox(kind, due);
`},
	{13, "number inventory", `
-- Every number callflow knows, with a flow or without: a number released
-- from its flow stays here, flagged, until it is removed. numbers says
-- which flow has a number and since when; workspace here is the one of
-- its last flow (or the one it was added to).
CREATE TABLE number_inventory (
	number      TEXT PRIMARY KEY,
	workspace   TEXT NOT NULL DEFAULT 'default',
	added       INTEGER NOT NULL,
	added_by    TEXT NOT NULL DEFAULT '',
	released    INTEGER,
	released_by TEXT NOT NULL DEFAULT ''
);
INSERT INTO number_inventory (number, workspace, added, added_by)
SELECT n.number, f.workspace, n.assigned, n.assigned_by FROM numbers n JOIN flows f ON f.name = n.flow;
`},
	{14, "agents and teams", `
-- An agent is a user that takes calls at one or more endpoints (dial
-- strings), tried in position order. Portable SQL: the same text runs
-- on SQLite and PostgreSQL.
CREATE TABLE agent_endpoints (
	user_id  BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	position BIGINT NOT NULL,
	dial     TEXT NOT NULL,
	PRIMARY KEY (user_id, position)
);

-- Teams group agents per workspace; a flow dials "team:NAME".
CREATE TABLE teams (
	name      TEXT PRIMARY KEY,
	workspace TEXT NOT NULL DEFAULT 'default',
	created   BIGINT NOT NULL
);

CREATE TABLE team_members (
	team    TEXT NOT NULL REFERENCES teams(name) ON DELETE CASCADE,
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	added   BIGINT NOT NULL,
	PRIMARY KEY (team, user_id)
);
CREATE INDEX team_members_user ON team_members(user_id);

-- The last presence an agent chose (available, paused, logged_out), so
-- a restart or another node sees it. Busy and wrap-up are live states
-- the presence tracker derives from calls and device states.
CREATE TABLE agent_presence (
	user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
	state   TEXT NOT NULL,
	reason  TEXT NOT NULL DEFAULT '',
	since   BIGINT NOT NULL
);
`},
	{15, "agent claims", `
-- Which node is ringing or connecting each agent (PostgreSQL: nodes share
-- agents), so that no agent is rung by two nodes at once; until bounds a
-- claim whose node died.
CREATE TABLE agent_claims (
	agent TEXT PRIMARY KEY,
	node  TEXT NOT NULL,
	until BIGINT NOT NULL
);
`},
	{16, "queue waiting list", `
-- The callers waiting in each queue, of every node (PostgreSQL: nodes
-- share queues), in order of priority, then arrival (id). A node renews
-- seen for its callers; a row not renewed is a dead node's, ignored and
-- then swept.
CREATE TABLE queue_waiting (
	id       INTEGER PRIMARY KEY,
	queue    TEXT NOT NULL,
	call_id  TEXT NOT NULL,
	node     TEXT NOT NULL,
	number   TEXT NOT NULL DEFAULT '',
	priority INTEGER NOT NULL DEFAULT 0,
	callback INTEGER NOT NULL DEFAULT 0,
	joined   BIGINT NOT NULL,
	seen     BIGINT NOT NULL
);
CREATE INDEX queue_waiting_order ON queue_waiting(queue, priority, id);
`},
	{17, "queue callbacks any node can take over", `
-- A caller waiting for a callback: the flow and step that took the
-- request, and the number they called, so that another node can call
-- them back when the node holding their place is gone.
ALTER TABLE queue_waiting ADD COLUMN workspace TEXT NOT NULL DEFAULT '';
ALTER TABLE queue_waiting ADD COLUMN flow TEXT NOT NULL DEFAULT '';
ALTER TABLE queue_waiting ADD COLUMN step TEXT NOT NULL DEFAULT '';
ALTER TABLE queue_waiting ADD COLUMN called TEXT NOT NULL DEFAULT '';
`},
	{18, "queue figures of the day per node", `
-- Each node's figures of the day for each queue, written as they change:
-- they outlive a restart, and the nodes sharing a queue add each other's.
CREATE TABLE queue_days (
	queue       TEXT NOT NULL,
	day         TEXT NOT NULL,
	node        TEXT NOT NULL,
	answered    INTEGER NOT NULL DEFAULT 0,
	abandoned   INTEGER NOT NULL DEFAULT 0,
	timed_out   INTEGER NOT NULL DEFAULT 0,
	left_queue  INTEGER NOT NULL DEFAULT 0,
	in_level    INTEGER NOT NULL DEFAULT 0,
	wait_sum_ms BIGINT NOT NULL DEFAULT 0,
	longest_ms  BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (queue, day, node)
);
`},
	{19, "agent claims through wrap-up", `
-- A claim held after the call, through the agent's wrap-up: other nodes
-- show the agent in wrap-up rather than busy.
ALTER TABLE agent_claims ADD COLUMN wrap_up INTEGER NOT NULL DEFAULT 0;
`},
}

// SchemaVersion is the schema version this program writes.
func SchemaVersion() int { return len(migrations) }

// migrate applies the migrations the database lacks, each in its own
// IMMEDIATE transaction so that two processes opening a new file at once
// do not both apply one.
func migrate(ctx context.Context, db *sql.DB, pg bool, migs []migration, now func() time.Time) error {
	if pg {
		// Nodes starting together: one migrates, the others wait, then
		// find the versions applied. db has one connection, so the lock
		// and the statements below share a session.
		if _, err := db.ExecContext(ctx, `SELECT pg_advisory_lock(7202611)`); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		defer db.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7202611)`)
	}
	ddl := `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER NOT NULL PRIMARY KEY,
	name    TEXT NOT NULL,
	applied INTEGER NOT NULL
)`
	if pg {
		ddl = postgresSchema(ddl)
	}
	if _, err := db.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	cur, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if cur > len(migs) {
		return fmt.Errorf("%w: database is at version %d, this program knows %d", ErrSchemaTooNew, cur, len(migs))
	}
	for i, m := range migs {
		if m.version != i+1 {
			return fmt.Errorf("store: migration %q has version %d, want %d", m.name, m.version, i+1)
		}
		if m.version <= cur {
			continue
		}
		if pg {
			m.sql = postgresSchema(m.sql)
		}
		if err := applyMigration(ctx, db, m, now); err != nil {
			return err
		}
	}
	return nil
}

func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration, now func() time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migration %d (%s): %w", m.version, m.name, err)
	}
	defer tx.Rollback()
	var done int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&done); err != nil {
		return fmt.Errorf("store: migration %d (%s): %w", m.version, m.name, err)
	}
	if done > 0 { // another process got there first
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("store: migration %d (%s): %w", m.version, m.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied) VALUES (?, ?, ?)`,
		m.version, m.name, now().UTC().UnixNano()); err != nil {
		return fmt.Errorf("store: migration %d (%s): %w", m.version, m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migration %d (%s): %w", m.version, m.name, err)
	}
	return nil
}
