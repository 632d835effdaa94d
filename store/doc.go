// Package store keeps callflow's state: calls with their step traces,
// voicemails, round-robin counters, users with an audit of their changes,
// and flows edited on the web. Call-time writes never block a call.
//
// One API, two backends: a SQLite file (WAL) for one box, or PostgreSQL
// (pgx through database/sql) shared by several nodes. Both run the same
// statements, written in the SQL they share; postgres.go holds the few
// differences (placeholders, two function names, the schema's types,
// error classes). PostgreSQL features relied on: INSERT ... ON CONFLICT
// with excluded, RETURNING, identity columns, partial unique indexes,
// string_agg, strpos, deferrable foreign keys, pg_advisory_lock.
package store
