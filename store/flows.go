package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

const flowQuery = `SELECT f.name, f.workspace, f.revision, f.status, f.created, f.updated, f.updated_by, f.deleted,
	COALESCE(r.source, ''),
	COALESCE((SELECT GROUP_CONCAT(number, char(10)) FROM (SELECT number FROM numbers WHERE flow = f.name ORDER BY number)), '')
FROM flows f LEFT JOIN flow_revisions r ON r.flow = f.name AND r.revision = f.revision`

func scanFlow(sc interface{ Scan(...any) error }) (FlowRow, bool, error) {
	var (
		f                FlowRow
		created, updated sql.NullInt64
		deleted          bool
		numbers          string
	)
	if err := sc.Scan(&f.Name, &f.Workspace, &f.Revision, &f.Status, &created, &updated, &f.UpdatedBy, &deleted, &f.Source, &numbers); err != nil {
		return f, false, err
	}
	f.Created, f.Updated = ft(created), ft(updated)
	f.Numbers = []string{}
	if numbers != "" {
		f.Numbers = strings.Split(numbers, "\n")
	}
	return f, deleted, nil
}

// loadFlow returns a live (not deleted) flow.
func loadFlow(ctx context.Context, q queryer, name string) (FlowRow, error) {
	f, deleted, err := scanFlow(q.QueryRowContext(ctx, flowQuery+` WHERE f.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && deleted) {
		return FlowRow{}, fmt.Errorf("%w: flow %q", ErrNotFound, name)
	}
	return f, err
}

func validStatus(st string) bool { return st == FlowDraft || st == FlowPublished }

// addRevision records the flow's new state as its next revision and makes
// it current.
func (s *Store) addRevision(ctx context.Context, tx *sql.Tx, name, source, status, workspace, author, comment string) error {
	var rev int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(revision), 0) + 1 FROM flow_revisions WHERE flow = ?`, name).Scan(&rev); err != nil {
		return err
	}
	nums, err := flowNumbers(ctx, tx, name)
	if err != nil {
		return err
	}
	numsJSON, _ := json.Marshal(nums)
	now := s.now().UnixNano()
	if _, err := tx.ExecContext(ctx, `INSERT INTO flow_revisions (flow, revision, source, status, workspace, numbers, author, created, comment)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, name, rev, source, status, workspace, string(numsJSON), author, now, comment); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE flows SET revision = ?, status = ?, workspace = ?, updated = ?, updated_by = ? WHERE name = ?`,
		rev, status, workspace, now, author, name)
	return err
}

func flowNumbers(ctx context.Context, q queryer, name string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT number FROM numbers WHERE flow = ? ORDER BY number`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	nums := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		nums = append(nums, n)
	}
	return nums, rows.Err()
}

// CreateFlow adds a new flow at revision 1 (ErrExists if the name is
// taken). A deleted flow's name may be reused: its history goes on.
func (s *Store) CreateFlow(ctx context.Context, in FlowInput) (FlowRow, error) {
	f, _, err := s.saveFlow(ctx, in, true)
	return f, err
}

// SaveFlow creates a flow or, when its source, workspace or status
// changed, adds a revision (an import, or an edit saved on the web). It
// reports whether anything changed.
func (s *Store) SaveFlow(ctx context.Context, in FlowInput) (FlowRow, bool, error) {
	return s.saveFlow(ctx, in, false)
}

func (s *Store) saveFlow(ctx context.Context, in FlowInput, mustBeNew bool) (FlowRow, bool, error) {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		return FlowRow{}, false, fmt.Errorf("%w: flow without a name", ErrInvalid)
	}
	if in.Status != "" && !validStatus(in.Status) {
		return FlowRow{}, false, fmt.Errorf("%w: flow status %q", ErrInvalid, in.Status)
	}
	changed := false
	err := s.immediate(ctx, func(tx *sql.Tx) error {
		cur, deleted, err := scanFlow(tx.QueryRowContext(ctx, flowQuery+` WHERE f.name = ?`, in.Name))
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if exists && !deleted {
			if mustBeNew {
				return fmt.Errorf("%w: flow %q", ErrExists, in.Name)
			}
			ws, st := cur.Workspace, cur.Status
			if in.Workspace != "" {
				ws = in.Workspace
			}
			if in.Status != "" {
				st = in.Status
			}
			if in.Source == cur.Source && ws == cur.Workspace && st == cur.Status {
				return nil
			}
			changed = true
			return s.addRevision(ctx, tx, in.Name, in.Source, st, ws, in.Author, or(in.Comment, "saved"))
		}
		changed = true
		ws, st := or(in.Workspace, "default"), or(in.Status, FlowDraft)
		now := s.now().UnixNano()
		comment := or(in.Comment, "created")
		if exists { // deleted: bring the name back, history continues
			_, err = tx.ExecContext(ctx, `UPDATE flows SET deleted = 0, deleted_by = '', deleted_at = NULL, created = ? WHERE name = ?`, now, in.Name)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO flows (name, workspace, revision, status, created, updated, updated_by) VALUES (?, ?, 0, ?, ?, ?, ?)`,
				in.Name, ws, st, now, now, in.Author)
		}
		if err != nil {
			return err
		}
		return s.addRevision(ctx, tx, in.Name, in.Source, st, ws, in.Author, comment)
	})
	if err != nil {
		return FlowRow{}, false, wrapFlowErr("save flow", err)
	}
	f, err := s.GetFlow(ctx, in.Name)
	return f, changed, err
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func wrapFlowErr(what string, err error) error {
	for _, e := range []error{ErrNotFound, ErrExists, ErrInvalid, ErrNumberTaken, ErrFlowHasNumbers} {
		if errors.Is(err, e) {
			return err
		}
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

// GetFlow returns a flow at its current revision.
func (s *Store) GetFlow(ctx context.Context, name string) (FlowRow, error) {
	f, err := loadFlow(ctx, s.r, name)
	if err != nil {
		return FlowRow{}, wrapFlowErr("get flow", err)
	}
	return f, nil
}

// ListFlows lists the flows in scope by name, with their current source.
func (s *Store) ListFlows(ctx context.Context, scope Scope) ([]FlowRow, error) {
	w := &where{}
	w.add("f.deleted = 0")
	sc, args, ok := scopeClause("f.workspace", scope)
	if !ok {
		return nil, nil
	}
	if sc != "" {
		w.add(sc, args...)
	}
	rows, err := s.r.QueryContext(ctx, flowQuery+w.String()+` ORDER BY f.name`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("store: list flows: %w", err)
	}
	defer rows.Close()
	var out []FlowRow
	for rows.Next() {
		f, _, err := scanFlow(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list flows: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

const revisionColumns = `flow, revision, source, status, workspace, numbers, author, created, comment`

func scanRevision(sc interface{ Scan(...any) error }) (FlowRevision, error) {
	var (
		r       FlowRevision
		numbers string
		created sql.NullInt64
	)
	if err := sc.Scan(&r.Flow, &r.Revision, &r.Source, &r.Status, &r.Workspace, &numbers, &r.Author, &created, &r.Comment); err != nil {
		return r, err
	}
	r.Created = ft(created)
	if err := json.Unmarshal([]byte(numbers), &r.Numbers); err != nil {
		return r, err
	}
	return r, nil
}

// FlowHistory lists a flow's revisions, newest first (a deleted flow's too).
func (s *Store) FlowHistory(ctx context.Context, name string) ([]FlowRevision, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+revisionColumns+` FROM flow_revisions WHERE flow = ? ORDER BY revision DESC`, name)
	if err != nil {
		return nil, fmt.Errorf("store: flow history: %w", err)
	}
	defer rows.Close()
	var out []FlowRevision
	for rows.Next() {
		r, err := scanRevision(rows)
		if err != nil {
			return nil, fmt.Errorf("store: flow history: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: flow history: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: flow %q", ErrNotFound, name)
	}
	return out, nil
}

// GetFlowRevision returns one revision of a flow.
func (s *Store) GetFlowRevision(ctx context.Context, name string, revision int) (FlowRevision, error) {
	r, err := scanRevision(s.r.QueryRowContext(ctx, `SELECT `+revisionColumns+` FROM flow_revisions WHERE flow = ? AND revision = ?`, name, revision))
	if errors.Is(err, sql.ErrNoRows) {
		return FlowRevision{}, fmt.Errorf("%w: flow %q revision %d", ErrNotFound, name, revision)
	}
	if err != nil {
		return FlowRevision{}, fmt.Errorf("store: flow revision: %w", err)
	}
	return r, nil
}

// changeFlow runs fn on a live flow in a write transaction and returns
// the flow afterwards.
func (s *Store) changeFlow(ctx context.Context, what, name string, fn func(tx *sql.Tx, cur FlowRow) error) (FlowRow, error) {
	err := s.immediate(ctx, func(tx *sql.Tx) error {
		cur, err := loadFlow(ctx, tx, name)
		if err != nil {
			return err
		}
		return fn(tx, cur)
	})
	if err != nil {
		return FlowRow{}, wrapFlowErr(what, err)
	}
	return s.GetFlow(ctx, name)
}

// RollbackFlow makes an old revision's source current again, as a new
// revision (status and numbers stay as they are).
func (s *Store) RollbackFlow(ctx context.Context, name string, revision int, author string) (FlowRow, error) {
	return s.changeFlow(ctx, "rollback flow", name, func(tx *sql.Tx, cur FlowRow) error {
		var source string
		err := tx.QueryRowContext(ctx, `SELECT source FROM flow_revisions WHERE flow = ? AND revision = ?`, name, revision).Scan(&source)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: flow %q revision %d", ErrNotFound, name, revision)
		}
		if err != nil {
			return err
		}
		return s.addRevision(ctx, tx, name, source, cur.Status, cur.Workspace, author, fmt.Sprintf("rollback to revision %d", revision))
	})
}

// PublishFlow lets a flow take calls.
func (s *Store) PublishFlow(ctx context.Context, name, author string) (FlowRow, error) {
	return s.setFlowStatus(ctx, name, FlowPublished, author)
}

// UnpublishFlow takes a flow back to draft.
func (s *Store) UnpublishFlow(ctx context.Context, name, author string) (FlowRow, error) {
	return s.setFlowStatus(ctx, name, FlowDraft, author)
}

func (s *Store) setFlowStatus(ctx context.Context, name, status, author string) (FlowRow, error) {
	return s.changeFlow(ctx, "set flow status", name, func(tx *sql.Tx, cur FlowRow) error {
		if cur.Status == status {
			return nil
		}
		comment := "published"
		if status == FlowDraft {
			comment = "unpublished"
		}
		return s.addRevision(ctx, tx, name, cur.Source, status, cur.Workspace, author, comment)
	})
}

func cleanNumbers(numbers []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range numbers {
		n = strings.TrimSpace(n)
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// AssignNumbers gives numbers to a flow, all or none: a number that belongs
// to another flow is ErrNumberTaken (release it there first).
func (s *Store) AssignNumbers(ctx context.Context, name string, numbers []string, author string) (FlowRow, error) {
	numbers = cleanNumbers(numbers)
	return s.changeFlow(ctx, "assign numbers", name, func(tx *sql.Tx, cur FlowRow) error {
		var added []string
		for _, n := range numbers {
			var owner string
			err := tx.QueryRowContext(ctx, `SELECT flow FROM numbers WHERE number = ?`, n).Scan(&owner)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return err
			case owner == name:
				continue
			default:
				return fmt.Errorf("%w: %s is on flow %q", ErrNumberTaken, n, owner)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO numbers (number, flow, assigned, assigned_by) VALUES (?, ?, ?, ?)`,
				n, name, s.now().UnixNano(), author); err != nil {
				return err
			}
			added = append(added, n)
		}
		if len(added) == 0 {
			return nil
		}
		return s.addRevision(ctx, tx, name, cur.Source, cur.Status, cur.Workspace, author, "assigned "+strings.Join(added, ", "))
	})
}

// ReleaseNumbers takes numbers off a flow; numbers it does not have are
// ignored.
func (s *Store) ReleaseNumbers(ctx context.Context, name string, numbers []string, author string) (FlowRow, error) {
	numbers = cleanNumbers(numbers)
	return s.changeFlow(ctx, "release numbers", name, func(tx *sql.Tx, cur FlowRow) error {
		var released []string
		for _, n := range numbers {
			res, err := tx.ExecContext(ctx, `DELETE FROM numbers WHERE number = ? AND flow = ?`, n, name)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k > 0 {
				released = append(released, n)
			}
		}
		if len(released) == 0 {
			return nil
		}
		return s.addRevision(ctx, tx, name, cur.Source, cur.Status, cur.Workspace, author, "released "+strings.Join(released, ", "))
	})
}

// FlowForNumber returns the flow a number is assigned to.
func (s *Store) FlowForNumber(ctx context.Context, number string) (FlowRow, error) {
	var name string
	err := s.r.QueryRowContext(ctx, `SELECT flow FROM numbers WHERE number = ?`, number).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return FlowRow{}, fmt.Errorf("%w: number %s", ErrNotFound, number)
	}
	if err != nil {
		return FlowRow{}, fmt.Errorf("store: flow for number: %w", err)
	}
	return s.GetFlow(ctx, name)
}

// DeleteFlow deletes a flow, refusing (ErrFlowHasNumbers) while numbers
// point to it unless force, which releases them. The history is kept and
// records the deletion.
func (s *Store) DeleteFlow(ctx context.Context, name, author string, force bool) error {
	err := s.immediate(ctx, func(tx *sql.Tx) error {
		cur, err := loadFlow(ctx, tx, name)
		if err != nil {
			return err
		}
		if len(cur.Numbers) > 0 {
			if !force {
				return fmt.Errorf("%w: %q has %s", ErrFlowHasNumbers, name, strings.Join(cur.Numbers, ", "))
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM numbers WHERE flow = ?`, name); err != nil {
				return err
			}
		}
		comment := "deleted"
		if len(cur.Numbers) > 0 {
			comment = "deleted, released " + strings.Join(cur.Numbers, ", ")
		}
		if err := s.addRevision(ctx, tx, name, cur.Source, FlowDraft, cur.Workspace, author, comment); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE flows SET deleted = 1, deleted_by = ?, deleted_at = ? WHERE name = ?`, author, s.now().UnixNano(), name)
		return err
	})
	if err != nil {
		return wrapFlowErr("delete flow", err)
	}
	return nil
}

// DuplicateFlow copies a flow's current source to a new draft flow named
// "Copy of NAME" ("Copy of NAME (2)", ... when taken), without numbers.
// The source is copied as it is: a name or numbers written inside it are
// the caller's to rewrite.
func (s *Store) DuplicateFlow(ctx context.Context, name, author string) (FlowRow, error) {
	var copyName string
	err := s.immediate(ctx, func(tx *sql.Tx) error {
		cur, err := loadFlow(ctx, tx, name)
		if err != nil {
			return err
		}
		for i := 1; ; i++ {
			copyName = "Copy of " + name
			if i > 1 {
				copyName = fmt.Sprintf("Copy of %s (%d)", name, i)
			}
			var taken bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM flows WHERE name = ?)`, copyName).Scan(&taken); err != nil {
				return err
			}
			if !taken {
				break
			}
		}
		now := s.now().UnixNano()
		if _, err := tx.ExecContext(ctx, `INSERT INTO flows (name, workspace, revision, status, created, updated, updated_by) VALUES (?, ?, 0, ?, ?, ?, ?)`,
			copyName, cur.Workspace, FlowDraft, now, now, author); err != nil {
			return err
		}
		return s.addRevision(ctx, tx, copyName, cur.Source, FlowDraft, cur.Workspace, author,
			fmt.Sprintf("duplicated from %q revision %d", name, cur.Revision))
	})
	if err != nil {
		return FlowRow{}, wrapFlowErr("duplicate flow", err)
	}
	return s.GetFlow(ctx, copyName)
}
