package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

func (s *Store) writeVoicemail(ctx context.Context, st *sql.Stmt, v *Voicemail, recovered bool) error {
	created := v.Created
	if created.IsZero() {
		created = s.now()
	}
	_, err := st.ExecContext(ctx, v.Recording, v.CallID, v.Mailbox, v.Workspace, v.Caller, v.Called,
		v.Flow, v.Step, dms(v.Duration), v.Path, tn(created), b2i(recovered || v.Recovered))
	return err
}

const voicemailColumns = `id, recording, call_id, mailbox, workspace, caller, called, flow, step,
	duration_ms, path, created, heard, heard_by, heard_at, deleted, deleted_by, deleted_at, recovered`

func scanVoicemail(sc interface{ Scan(...any) error }) (Voicemail, error) {
	var (
		v                          Voicemail
		ms                         int64
		created, heardAt, deleteAt sql.NullInt64
	)
	err := sc.Scan(&v.ID, &v.Recording, &v.CallID, &v.Mailbox, &v.Workspace, &v.Caller, &v.Called, &v.Flow, &v.Step,
		&ms, &v.Path, &created, &v.Heard, &v.HeardBy, &heardAt, &v.Deleted, &v.DeletedBy, &deleteAt, &v.Recovered)
	v.Duration = fms(ms)
	v.Created, v.HeardAt, v.DeletedAt = ft(created), ft(heardAt), ft(deleteAt)
	return v, err
}

// ListVoicemails returns a page of voicemails, newest first, and the number
// matching the filter. Deleted voicemails are left out unless asked for.
func (s *Store) ListVoicemails(ctx context.Context, f VoicemailFilter) ([]Voicemail, int, error) {
	w := &where{}
	sc, args, ok := scopeClause("workspace", f.Scope)
	if !ok {
		return nil, 0, nil
	}
	if sc != "" {
		w.add(sc, args...)
	}
	switch {
	case f.OnlyDeleted:
		w.add("deleted = 1")
	case !f.IncludeDeleted:
		w.add("deleted = 0")
	}
	if f.Mailbox != "" {
		w.add("mailbox = ?", f.Mailbox)
	}
	if f.Flow != "" {
		w.add("flow = ?", f.Flow)
	}
	if c, args := numberClause(s.pg, f.Caller, "caller"); c != "" {
		w.add(c, args...)
	}
	if f.CallID != "" {
		w.add("call_id = ?", f.CallID)
	}
	if f.Heard != nil {
		w.add("heard = ?", b2i(*f.Heard))
	}
	if !f.From.IsZero() {
		w.add("created >= ?", f.From.UnixNano())
	}
	if !f.To.IsZero() {
		w.add("created < ?", f.To.UnixNano())
	}
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM voicemails`+w.String(), w.args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("store: list voicemails: %w", err)
	}
	qargs := append(append([]any(nil), w.args...), limit(f.Limit), max(f.Offset, 0))
	rows, err := s.r.QueryContext(ctx, `SELECT `+voicemailColumns+` FROM voicemails`+w.String()+
		` ORDER BY created DESC, id DESC LIMIT ? OFFSET ?`, qargs...)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list voicemails: %w", err)
	}
	defer rows.Close()
	var out []Voicemail
	for rows.Next() {
		v, err := scanVoicemail(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("store: list voicemails: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: list voicemails: %w", err)
	}
	return out, total, nil
}

// GetVoicemail returns a voicemail whose workspace is in scope; any other
// is ErrNotFound, exactly like a missing one. A deleted voicemail comes
// back with Deleted set (so an admin can restore it): hide it from others.
func (s *Store) GetVoicemail(ctx context.Context, id int64, scope Scope) (Voicemail, error) {
	v, err := scanVoicemail(s.r.QueryRowContext(ctx, `SELECT `+voicemailColumns+` FROM voicemails WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !scope.Allows(v.Workspace)) {
		return Voicemail{}, fmt.Errorf("%w: voicemail %d", ErrNotFound, id)
	}
	if err != nil {
		return Voicemail{}, fmt.Errorf("store: get voicemail: %w", err)
	}
	return v, nil
}

// GetVoicemailByRecording returns the voicemail stored under a recording name.
func (s *Store) GetVoicemailByRecording(ctx context.Context, recording string, scope Scope) (Voicemail, error) {
	v, err := scanVoicemail(s.r.QueryRowContext(ctx, `SELECT `+voicemailColumns+` FROM voicemails WHERE recording = ?`, recording))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !scope.Allows(v.Workspace)) {
		return Voicemail{}, fmt.Errorf("%w: voicemail %q", ErrNotFound, recording)
	}
	if err != nil {
		return Voicemail{}, fmt.Errorf("store: get voicemail: %w", err)
	}
	return v, nil
}

// SummarizeVoicemails counts the voicemails in scope outside the bin: all,
// unheard, and the newest ID (what an inbox polls to notice new messages).
func (s *Store) SummarizeVoicemails(ctx context.Context, scope Scope) (VoicemailSummary, error) {
	w := &where{}
	sc, args, ok := scopeClause("workspace", scope)
	if !ok {
		return VoicemailSummary{}, nil
	}
	if sc != "" {
		w.add(sc, args...)
	}
	w.add("deleted = 0")
	var sum VoicemailSummary
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN heard = 0 THEN 1 ELSE 0 END), 0), COALESCE(MAX(id), 0) FROM voicemails`+w.String(), w.args...).
		Scan(&sum.Total, &sum.Unheard, &sum.Newest)
	if err != nil {
		return VoicemailSummary{}, fmt.Errorf("store: summarize voicemails: %w", err)
	}
	return sum, nil
}

// updateVoicemail runs an UPDATE on one voicemail in scope.
func (s *Store) updateVoicemail(ctx context.Context, id int64, scope Scope, set string, args ...any) error {
	w := &where{}
	w.add("id = ?", id)
	sc, sargs, ok := scopeClause("workspace", scope)
	if !ok {
		return fmt.Errorf("%w: voicemail %d", ErrNotFound, id)
	}
	if sc != "" {
		w.add(sc, sargs...)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE voicemails SET `+set+w.String(), append(args, w.args...)...)
	if err != nil {
		return fmt.Errorf("store: update voicemail %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: voicemail %d", ErrNotFound, id)
	}
	return nil
}

// MarkHeard marks a voicemail heard (or unheard again). HeardBy and
// HeardAt say who marked it heard and when; unheard clears them.
func (s *Store) MarkHeard(ctx context.Context, id int64, scope Scope, by string, heard bool) error {
	if heard {
		return s.updateVoicemail(ctx, id, scope, `heard = 1, heard_by = ?, heard_at = ?`, by, s.now().UnixNano())
	}
	return s.updateVoicemail(ctx, id, scope, `heard = 0, heard_by = '', heard_at = NULL`)
}

// DeleteVoicemail moves a voicemail to the bin (the row and file stay).
func (s *Store) DeleteVoicemail(ctx context.Context, id int64, scope Scope, by string) error {
	return s.updateVoicemail(ctx, id, scope, `deleted = 1, deleted_by = ?, deleted_at = ?`, by, s.now().UnixNano())
}

// RestoreVoicemail takes a voicemail out of the bin.
func (s *Store) RestoreVoicemail(ctx context.Context, id int64, scope Scope) error {
	return s.updateVoicemail(ctx, id, scope, `deleted = 0, deleted_by = '', deleted_at = NULL`)
}

// ReconcileVoicemails inserts the voicemails among found that the table
// lacks: recordings named by the voicemail convention whose database write
// was lost (a crash between the recording and the write). Details come from
// the sidecar file next to the recording when there is one, else from the
// name. It returns how many were added; existing rows are only completed.
func (s *Store) ReconcileVoicemails(ctx context.Context, found []FoundRecording) (int, error) {
	var vms []Voicemail
	for _, f := range found {
		v, ok := s.recoveredVoicemail(f)
		if ok {
			vms = append(vms, v)
		}
	}
	added := 0
	const chunk = 256 // keep each write lock short
	for len(vms) > 0 {
		n := min(len(vms), chunk)
		err := s.immediate(ctx, func(tx *sql.Tx) error {
			upsert, err := tx.PrepareContext(ctx, upsertVoicemailSQL)
			if err != nil {
				return err
			}
			defer upsert.Close()
			for i := range vms[:n] {
				var exists bool
				if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM voicemails WHERE recording = ?)`, vms[i].Recording).Scan(&exists); err != nil {
					return err
				}
				if err := s.writeVoicemail(ctx, upsert, &vms[i], true); err != nil {
					return err
				}
				if !exists {
					added++
					s.log.Warn().Str("recording", vms[i].Recording).Str("mailbox", vms[i].Mailbox).Msg("store: voicemail recovered from disk")
				}
			}
			return nil
		})
		if err != nil {
			return added, fmt.Errorf("store: reconcile voicemails: %w", err)
		}
		vms = vms[n:]
	}
	return added, nil
}

func (s *Store) recoveredVoicemail(f FoundRecording) (Voicemail, bool) {
	name := trimAudioExt(f.Name)
	mailbox, callID, at, ok := ParseVoicemailName(name)
	if !ok {
		return Voicemail{}, false
	}
	var v Voicemail
	if f.Path != "" {
		meta, err := ReadVoicemailMeta(f.Path)
		switch {
		case err == nil:
			v = meta
		case !errors.Is(err, errNoMeta):
			s.log.Warn().Err(err).Str("recording", name).Msg("store: voicemail sidecar unreadable; using the name")
		}
	}
	v.ID, v.Heard, v.HeardBy, v.HeardAt, v.Deleted, v.DeletedBy, v.DeletedAt = 0, false, "", time.Time{}, false, "", time.Time{}
	v.Recording = name
	if v.Mailbox == "" {
		v.Mailbox = mailbox
	}
	if v.CallID == "" {
		v.CallID = callID
	}
	if v.Path == "" {
		v.Path = f.Path
	}
	if v.Duration == 0 {
		v.Duration = f.Duration
	}
	if v.Created.IsZero() {
		v.Created = at
	}
	v.Recovered = true
	return v, true
}

// KnownVoicemails reports which of names are recordings of stored
// voicemails (deleted ones included: a deleted message must not return).
func (s *Store) KnownVoicemails(ctx context.Context, names []string) (map[string]bool, error) {
	known := make(map[string]bool, len(names))
	const chunk = 500
	for from := 0; from < len(names); from += chunk {
		part := names[from:min(from+chunk, len(names))]
		args := make([]any, len(part))
		for i, n := range part {
			args[i] = n
		}
		q := `SELECT recording FROM voicemails WHERE recording IN (?` + strings.Repeat(`, ?`, len(part)-1) + `)`
		rows, err := s.r.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("store: known voicemails: %w", err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: known voicemails: %w", err)
			}
			known[n] = true
		}
		err = rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			return nil, fmt.Errorf("store: known voicemails: %w", err)
		}
	}
	return known, nil
}
