package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// writerStmts are prepared once on the single write connection and used
// by the writer goroutine alone.
type writerStmts struct {
	db                                                                        *sql.DB
	call, stepsAfter, eventsAfter, event, callRecording, voicemail, recording *sql.Stmt
	// steps[k] inserts k steps in one statement: a call's trace is one
	// round trip instead of one per step.
	steps map[int]*sql.Stmt
}

// maxStepRows bounds the rows of one multi-row step insert (9 parameters
// each, far below SQLite's limit).
const maxStepRows = 16

const upsertVoicemailSQL = `INSERT INTO voicemails
	(recording, call_id, mailbox, workspace, caller, called, flow, step, duration_ms, path, created, recovered)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(recording) DO UPDATE SET
	call_id     = COALESCE(NULLIF(voicemails.call_id, ''), excluded.call_id),
	mailbox     = COALESCE(NULLIF(voicemails.mailbox, ''), excluded.mailbox),
	workspace   = COALESCE(NULLIF(voicemails.workspace, ''), excluded.workspace),
	caller      = COALESCE(NULLIF(voicemails.caller, ''), excluded.caller),
	called      = COALESCE(NULLIF(voicemails.called, ''), excluded.called),
	flow        = COALESCE(NULLIF(voicemails.flow, ''), excluded.flow),
	step        = COALESCE(NULLIF(voicemails.step, ''), excluded.step),
	duration_ms = COALESCE(NULLIF(voicemails.duration_ms, 0), excluded.duration_ms),
	path        = COALESCE(NULLIF(voicemails.path, ''), excluded.path),
	recovered   = CASE WHEN voicemails.recovered = 1 AND excluded.recovered = 1 THEN 1 ELSE 0 END`

func (ws *writerStmts) prepare(db *sql.DB) error {
	ws.db = db
	ws.steps = map[int]*sql.Stmt{}
	var err error
	p := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = db.Prepare(q)
		return st
	}
	ws.call = p(`INSERT INTO calls
	(id, transport, flow, flow_version, workspace, called, caller, started, answered, ended,
	 outcome, talk_ms, qualified, abandoned, last_step, tags, vars, recording, node)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET
	transport = excluded.transport, flow = excluded.flow, flow_version = excluded.flow_version,
	workspace = excluded.workspace, called = excluded.called, caller = excluded.caller,
	started = excluded.started, answered = excluded.answered, ended = excluded.ended,
	outcome = excluded.outcome, talk_ms = excluded.talk_ms, qualified = excluded.qualified,
	abandoned = excluded.abandoned, last_step = excluded.last_step, tags = excluded.tags,
	vars = excluded.vars, recording = excluded.recording, node = excluded.node`)
	// A call recorded again with fewer steps must not keep the old tail.
	ws.stepsAfter = p(`DELETE FROM call_steps WHERE call_id = ? AND seq > ?`)
	ws.eventsAfter = p(`DELETE FROM call_events WHERE call_id = ? AND seq > ?`)
	ws.event = p(`INSERT INTO call_events (call_id, seq, kind, step, at, data) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(call_id, seq) DO UPDATE SET kind = excluded.kind, step = excluded.step, at = excluded.at, data = excluded.data`)
	ws.callRecording = p(`INSERT INTO recordings (name, call_id, created) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING`)
	ws.voicemail = p(upsertVoicemailSQL)
	ws.recording = p(`INSERT INTO recordings (name, call_id, path, duration_ms, created) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(name) DO UPDATE SET
	call_id     = COALESCE(NULLIF(excluded.call_id, ''), recordings.call_id),
	path        = COALESCE(NULLIF(excluded.path, ''), recordings.path),
	duration_ms = COALESCE(NULLIF(excluded.duration_ms, 0), recordings.duration_ms)`)
	// Prepared up front: the writer holds the only connection inside its
	// transaction, so it cannot prepare then.
	for k := 1; k <= maxStepRows; k++ {
		ws.steps[k] = p(`INSERT INTO call_steps (call_id, seq, flow, step, applet, outcome, started, ended, details) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?),", k), ",") + `
ON CONFLICT(call_id, seq) DO UPDATE SET flow = excluded.flow, step = excluded.step, applet = excluded.applet,
	outcome = excluded.outcome, started = excluded.started, ended = excluded.ended, details = excluded.details`)
	}
	if err != nil {
		ws.close()
		return fmt.Errorf("store: prepare: %w", err)
	}
	return nil
}

func (ws *writerStmts) close() {
	for _, st := range []*sql.Stmt{ws.call, ws.stepsAfter, ws.eventsAfter, ws.event, ws.callRecording, ws.voicemail, ws.recording} {
		if st != nil {
			st.Close()
		}
	}
	for _, st := range ws.steps {
		if st != nil {
			st.Close()
		}
	}
}

// txStmts binds the writer's statements to one transaction, each once.
type txStmts struct {
	ctx   context.Context
	tx    *sql.Tx
	ws    *writerStmts
	bound map[*sql.Stmt]*sql.Stmt
}

func (t *txStmts) get(st *sql.Stmt) *sql.Stmt {
	if b := t.bound[st]; b != nil {
		return b
	}
	b := t.tx.StmtContext(t.ctx, st)
	t.bound[st] = b
	return b
}

// applyBatch writes ops in one transaction.
func (s *Store) applyBatch(ctx context.Context, ops []op) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	ts := &txStmts{ctx: ctx, tx: tx, ws: &s.wr.stmts, bound: map[*sql.Stmt]*sql.Stmt{}}
	for _, o := range ops {
		switch o.Kind {
		case opCall:
			err = s.writeCall(ctx, ts, o.Call)
		case opVoicemail:
			err = s.writeVoicemail(ctx, ts.get(ts.ws.voicemail), o.Voicemail, false)
		case opRecording:
			r := o.Recording
			_, err = ts.get(ts.ws.recording).ExecContext(ctx, r.Name, r.CallID, r.Path, dms(r.Duration), tn(r.Created))
		case opOver:
			err = s.closeOver(ctx, tx, o.Over)
		default:
			err = permanentError{fmt.Errorf("unknown record kind %q", o.Kind)}
		}
		if err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

func marshal(v any, empty string) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", permanentError{err}
	}
	if string(b) == "null" {
		return empty, nil
	}
	return string(b), nil
}

func (s *Store) writeCall(ctx context.Context, ts *txStmts, c *CallRecord) error {
	tags, err := marshal(c.Tags, "[]")
	if err != nil {
		return err
	}
	vars, err := marshal(c.Vars, "{}")
	if err != nil {
		return err
	}
	if _, err := ts.get(ts.ws.call).ExecContext(ctx,
		c.ID, c.Transport, c.Flow, c.FlowVersion, c.Workspace, c.Called, c.Caller,
		tn(c.Started), tn(c.Answered), tn(c.Ended), c.Outcome, dms(c.TalkTime),
		b2i(c.Qualified), b2i(c.Abandoned), c.LastStep, tags, vars, c.Recording, c.Node); err != nil {
		return err
	}
	if _, err := ts.get(ts.ws.stepsAfter).ExecContext(ctx, c.ID, len(c.Steps)); err != nil {
		return err
	}
	args := make([]any, 0, 9*min(len(c.Steps), maxStepRows))
	for from := 0; from < len(c.Steps); from += maxStepRows {
		chunk := c.Steps[from:min(from+maxStepRows, len(c.Steps))]
		args = args[:0]
		for i, sr := range chunk {
			details, err := marshal(sr.Details, "{}")
			if err != nil {
				return err
			}
			args = append(args, c.ID, from+i+1, sr.Flow, sr.Step, sr.Applet, sr.Outcome, tn(sr.Started), tn(sr.Ended), details)
		}
		if _, err := ts.get(ts.ws.steps[len(chunk)]).ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	if _, err := ts.get(ts.ws.eventsAfter).ExecContext(ctx, c.ID, len(c.Events)); err != nil {
		return err
	}
	for i, e := range c.Events {
		data, err := marshal(e.Data, "{}")
		if err != nil {
			return err
		}
		if _, err := ts.get(ts.ws.event).ExecContext(ctx, c.ID, i+1, e.Kind, e.Step, tn(e.At), data); err != nil {
			return err
		}
	}
	if c.Recording != "" {
		at := c.Ended
		if at.IsZero() {
			at = c.Started
		}
		if _, err := ts.get(ts.ws.callRecording).ExecContext(ctx, c.Recording, c.ID, tn(at)); err != nil {
			return err
		}
	}
	return nil
}

const callColumns = `id, transport, flow, flow_version, workspace, called, caller, started, answered, ended,
	outcome, talk_ms, qualified, abandoned, last_step, tags, vars, recording, node,
	(SELECT COUNT(*) FROM voicemails v WHERE v.call_id = calls.id AND v.deleted = 0)`

func scanCall(sc interface{ Scan(...any) error }) (CallRecord, error) {
	var (
		c                        CallRecord
		started, answered, ended sql.NullInt64
		talk                     int64
		qualified, abandoned     bool
		tags, vars               string
	)
	if err := sc.Scan(&c.ID, &c.Transport, &c.Flow, &c.FlowVersion, &c.Workspace, &c.Called, &c.Caller,
		&started, &answered, &ended, &c.Outcome, &talk, &qualified, &abandoned, &c.LastStep, &tags, &vars, &c.Recording, &c.Node, &c.Voicemails); err != nil {
		return c, err
	}
	c.Started, c.Answered, c.Ended = ft(started), ft(answered), ft(ended)
	c.TalkTime = fms(talk)
	c.Qualified, c.Abandoned = qualified, abandoned
	if err := json.Unmarshal([]byte(tags), &c.Tags); err != nil {
		return c, fmt.Errorf("store: call %s tags: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(vars), &c.Vars); err != nil {
		return c, fmt.Errorf("store: call %s vars: %w", c.ID, err)
	}
	return c, nil
}

func (f CallFilter) where(pg bool) (*where, bool) {
	w := &where{}
	sc, args, ok := scopeClause("workspace", f.Scope)
	if !ok {
		return nil, false
	}
	if sc != "" {
		w.add(sc, args...)
	}
	if f.Flow != "" {
		w.add("flow = ?", f.Flow)
	}
	if c, args := numberClause(pg, f.Number, "caller", "called"); c != "" {
		w.add(c, args...)
	}
	if f.Outcome != "" {
		w.add("outcome = ?", f.Outcome)
	}
	if f.Transport != "" {
		w.add("transport = ?", f.Transport)
	}
	if !f.From.IsZero() {
		w.add("started >= ?", f.From.UnixNano())
	}
	if !f.To.IsZero() {
		w.add("started < ?", f.To.UnixNano())
	}
	return w, true
}

func limit(n int) int {
	if n <= 0 {
		return 100
	}
	return n
}

// ListCalls returns a page of calls, newest first (without steps), and the
// number of calls matching the filter.
func (s *Store) ListCalls(ctx context.Context, f CallFilter) ([]CallRecord, int, error) {
	w, ok := f.where(s.pg)
	if !ok {
		return nil, 0, nil
	}
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM calls`+w.String(), w.args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("store: list calls: %w", err)
	}
	args := append(append([]any(nil), w.args...), limit(f.Limit), max(f.Offset, 0))
	rows, err := s.r.QueryContext(ctx, `SELECT `+callColumns+` FROM calls`+w.String()+
		` ORDER BY started DESC, id DESC LIMIT ? OFFSET ?`, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list calls: %w", err)
	}
	defer rows.Close()
	var out []CallRecord
	for rows.Next() {
		c, err := scanCall(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: list calls: %w", err)
	}
	return out, total, nil
}

// GetCall returns one call with its steps and events, if its workspace is
// in scope (ErrNotFound otherwise).
func (s *Store) GetCall(ctx context.Context, id string, scope Scope) (CallRecord, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return CallRecord{}, fmt.Errorf("store: get call: %w", err)
	}
	defer tx.Rollback()
	c, err := scanCall(tx.QueryRowContext(ctx, `SELECT `+callColumns+` FROM calls WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !scope.Allows(c.Workspace)) {
		return CallRecord{}, fmt.Errorf("%w: call %s", ErrNotFound, id)
	}
	if err != nil {
		return CallRecord{}, fmt.Errorf("store: get call: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, flow, step, applet, outcome, started, ended, details
FROM call_steps WHERE call_id = ? ORDER BY seq`, id)
	if err != nil {
		return CallRecord{}, fmt.Errorf("store: get call steps: %w", err)
	}
	for rows.Next() {
		var (
			sr             StepRecord
			started, ended sql.NullInt64
			details        string
		)
		if err := rows.Scan(&sr.Seq, &sr.Flow, &sr.Step, &sr.Applet, &sr.Outcome, &started, &ended, &details); err != nil {
			rows.Close()
			return CallRecord{}, fmt.Errorf("store: get call steps: %w", err)
		}
		sr.Started, sr.Ended = ft(started), ft(ended)
		if err := json.Unmarshal([]byte(details), &sr.Details); err != nil {
			rows.Close()
			return CallRecord{}, fmt.Errorf("store: call %s step %d details: %w", id, sr.Seq, err)
		}
		c.Steps = append(c.Steps, sr)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return CallRecord{}, fmt.Errorf("store: get call steps: %w", err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT seq, kind, step, at, data FROM call_events WHERE call_id = ? ORDER BY seq`, id)
	if err != nil {
		return CallRecord{}, fmt.Errorf("store: get call events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e    CallEvent
			at   sql.NullInt64
			data string
		)
		if err := rows.Scan(&e.Seq, &e.Kind, &e.Step, &at, &data); err != nil {
			return CallRecord{}, fmt.Errorf("store: get call events: %w", err)
		}
		e.At = ft(at)
		if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
			return CallRecord{}, fmt.Errorf("store: call %s event %d: %w", id, e.Seq, err)
		}
		c.Events = append(c.Events, e)
	}
	if err := rows.Err(); err != nil {
		return CallRecord{}, fmt.Errorf("store: get call events: %w", err)
	}
	return c, nil
}

// CallRecordings lists a call's whole-call recordings.
func (s *Store) CallRecordings(ctx context.Context, callID string) ([]Recording, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, call_id, path, duration_ms, created FROM recordings WHERE call_id = ? ORDER BY created, name`, callID)
	if err != nil {
		return nil, fmt.Errorf("store: recordings: %w", err)
	}
	defer rows.Close()
	var out []Recording
	for rows.Next() {
		var (
			r       Recording
			ms      int64
			created sql.NullInt64
		)
		if err := rows.Scan(&r.Name, &r.CallID, &r.Path, &ms, &created); err != nil {
			return nil, fmt.Errorf("store: recordings: %w", err)
		}
		r.Duration, r.Created = fms(ms), ft(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// CallRecording returns a whole-call recording of a call in scope
// (ErrNotFound for another call's, or a call out of scope).
func (s *Store) CallRecording(ctx context.Context, callID, name string, scope Scope) (Recording, error) {
	var (
		r         Recording
		ms        int64
		created   sql.NullInt64
		workspace string
	)
	err := s.r.QueryRowContext(ctx, `SELECT r.name, r.call_id, r.path, r.duration_ms, r.created, c.workspace
FROM recordings r JOIN calls c ON c.id = r.call_id WHERE r.call_id = ? AND r.name = ?`, callID, name).
		Scan(&r.Name, &r.CallID, &r.Path, &ms, &created, &workspace)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !scope.Allows(workspace)) {
		return Recording{}, fmt.Errorf("%w: recording %q of call %s", ErrNotFound, name, callID)
	}
	if err != nil {
		return Recording{}, fmt.Errorf("store: call recording: %w", err)
	}
	r.Duration, r.Created = fms(ms), ft(created)
	return r, nil
}

// Outcomes the store itself gives a call.
const (
	// OutcomeInProgress marks a call stored as it starts.
	OutcomeInProgress = "in_progress"
	// OutcomeInterrupted marks a call that was still in progress when the
	// process that ran it stopped without finishing it (a crash or a kill).
	OutcomeInterrupted = "interrupted"
	// OutcomeCompleted is the outcome of a call whose flow ran to its end
	// (the runner's word), given by the store to a conversation that went
	// on after its process stopped and ended normally.
	OutcomeCompleted = "completed"
)

// closeOver ends the records of an adopted conversation's calls.
func (s *Store) closeOver(ctx context.Context, tx *sql.Tx, o *callsOver) error {
	if o == nil {
		return permanentError{errors.New("conversation over without calls")}
	}
	args := []any{o.Ended.UnixNano(), OutcomeCompleted}
	marks := make([]string, len(o.IDs))
	for i, id := range o.IDs {
		marks[i] = "?"
		args = append(args, id)
	}
	args = append(args, OutcomeInProgress, OutcomeInterrupted)
	_, err := tx.ExecContext(ctx, `UPDATE calls SET ended = ?, outcome = ? WHERE id IN (`+strings.Join(marks, ", ")+`) AND outcome IN (?, ?)`, args...)
	return err
}

// MarkInterrupted gives every call node left in progress the outcome
// interrupted (and those of no node: records older than nodes). It is for
// start-up, before the node takes a call: such calls belong to its earlier
// process, which died. Other nodes sharing the database are running their
// own calls, so theirs are left alone. A call picked up again afterwards
// (a standby, a restart's orphan) is simply recorded over.
func (s *Store) MarkInterrupted(ctx context.Context, node string) (int, error) {
	var n int64
	err := s.immediate(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE calls SET outcome = ? WHERE outcome = ? AND ended IS NULL AND (node = ? OR node IS NULL OR node = '')`,
			OutcomeInterrupted, OutcomeInProgress, node)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: mark interrupted calls: %w", err)
	}
	return int(n), nil
}
