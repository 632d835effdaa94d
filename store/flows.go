package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/callflow/callflow/internal/flowhead"
)

type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

const flowQuery = `SELECT f.id, f.name, f.workspace, f.revision, f.status, f.created, f.updated, f.updated_by, f.deleted,
	COALESCE(r.source, ''),
	COALESCE((SELECT GROUP_CONCAT(number, char(10)) FROM (SELECT number FROM numbers WHERE flow = f.name ORDER BY number) AS ordered), '')
FROM flows f LEFT JOIN flow_revisions r ON r.flow = f.name AND r.revision = f.revision`

func scanFlow(sc interface{ Scan(...any) error }) (FlowRow, bool, error) {
	var (
		f                FlowRow
		created, updated sql.NullInt64
		deleted          bool
		numbers          string
	)
	if err := sc.Scan(&f.ID, &f.Name, &f.Workspace, &f.Revision, &f.Status, &created, &updated, &f.UpdatedBy, &deleted, &f.Source, &numbers); err != nil {
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
	if _, err = tx.ExecContext(ctx, `UPDATE flows SET revision = ?, status = ?, workspace = ?, updated = ?, updated_by = ? WHERE name = ?`,
		rev, status, workspace, now, author, name); err != nil {
		return err
	}
	if s.pg {
		// Every node listening hears of it when the change commits.
		_, err = tx.ExecContext(ctx, `SELECT pg_notify('`+FlowsChannel+`', '')`)
	}
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
			err = insertFlow(ctx, tx, newFlowID(), in.Name, ws, st, now, in.Author)
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
	for _, e := range []error{ErrNotFound, ErrExists, ErrInvalid, ErrNumberTaken, ErrFlowHasNumbers, ErrStale} {
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

// EditFlow saves source as a new revision of a live flow, only if its
// current revision is still revision (else ErrStale, wrapped): an edit
// made from an older revision would undo the changes saved since. The
// same source saves nothing.
func (s *Store) EditFlow(ctx context.Context, name, source string, revision int, author string) (FlowRow, error) {
	return s.changeFlow(ctx, "edit flow", name, func(tx *sql.Tx, cur FlowRow) error {
		if cur.Revision != revision {
			return fmt.Errorf("%w: flow %q is at revision %d, not %d", ErrStale, name, cur.Revision, revision)
		}
		if cur.Source == source {
			return nil
		}
		return s.addRevision(ctx, tx, name, source, cur.Status, cur.Workspace, author, "edited")
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
			if err := noteAssigned(ctx, tx, n, name, author, s.now().UnixNano()); err != nil {
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
				if err := noteReleased(ctx, tx, n, name, author, s.now().UnixNano()); err != nil {
					return err
				}
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
			for _, n := range cur.Numbers {
				if err := noteReleased(ctx, tx, n, name, author, s.now().UnixNano()); err != nil {
					return err
				}
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
func (s *Store) DuplicateFlow(ctx context.Context, name, author string) (FlowRow, error) {
	return s.CopyFlow(ctx, FlowCopy{From: name, Author: author})
}

// FlowCopy asks for a draft copy of a flow.
type FlowCopy struct {
	From string // the flow's name
	// Source and Workspace are those of a flow the database does not
	// keep (a file flow); empty Source copies the database's flow From.
	Source, Workspace string
	Author            string
	// Taken reports names in use elsewhere (file flows): the copy does
	// not take them.
	Taken func(name string) bool
}

// CopyFlow makes a draft copy of a flow, "Copy of NAME" ("Copy of NAME
// (2)", ... when taken), with an id of its own and no numbers. Its source
// says so: the copy's name, id, status = "draft" and numbers = [], so that
// it never claims the original's name or numbers, exported or not.
func (s *Store) CopyFlow(ctx context.Context, in FlowCopy) (FlowRow, error) {
	var copyName string
	err := s.immediate(ctx, func(tx *sql.Tx) error {
		src, ws, comment := in.Source, in.Workspace, fmt.Sprintf("copied from the file flow %q", in.From)
		if src == "" {
			cur, err := loadFlow(ctx, tx, in.From)
			if err != nil {
				return err
			}
			src, ws, comment = cur.Source, cur.Workspace, fmt.Sprintf("duplicated from %q revision %d", in.From, cur.Revision)
		}
		ws = or(ws, "default")
		for i := 1; ; i++ {
			copyName = "Copy of " + in.From
			if i > 1 {
				copyName = fmt.Sprintf("Copy of %s (%d)", in.From, i)
			}
			var taken bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM flows WHERE name = ?)`, copyName).Scan(&taken); err != nil {
				return err
			}
			if !taken && (in.Taken == nil || !in.Taken(copyName)) {
				break
			}
		}
		id := newFlowID()
		named, err := flowhead.Set([]byte(src), flowhead.Header{ID: id, Name: copyName, Status: FlowDraft, SetNumbers: true})
		if err != nil {
			return fmt.Errorf("%w: %q cannot be copied: %v", ErrInvalid, in.From, err)
		}
		if err := insertFlow(ctx, tx, id, copyName, ws, FlowDraft, s.now().UnixNano(), in.Author); err != nil {
			return err
		}
		return s.addRevision(ctx, tx, copyName, string(named), FlowDraft, ws, in.Author, comment)
	})
	if err != nil {
		return FlowRow{}, wrapFlowErr("copy flow", err)
	}
	return s.GetFlow(ctx, copyName)
}

func insertFlow(ctx context.Context, tx *sql.Tx, id, name, workspace, status string, now int64, author string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO flows (id, name, workspace, revision, status, created, updated, updated_by) VALUES (?, ?, ?, 0, ?, ?, ?, ?)`,
		id, name, workspace, status, now, now, author)
	return err
}

// newFlowID returns a new flow id: 16 hex digits.
func newFlowID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b[:])
}

// GetFlowByID returns a live flow by its id.
func (s *Store) GetFlowByID(ctx context.Context, id string) (FlowRow, error) {
	f, deleted, err := scanFlow(s.r.QueryRowContext(ctx, flowQuery+` WHERE f.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && deleted) {
		return FlowRow{}, fmt.Errorf("%w: flow id %q", ErrNotFound, id)
	}
	if err != nil {
		return FlowRow{}, fmt.Errorf("store: get flow: %w", err)
	}
	return f, nil
}

// FlowImport is a flow file to import. Its id says which flow it is: an
// exported file carries the id of the flow it came from.
type FlowImport struct {
	// ID is the flow the file is; "": a new flow, whose name must be free
	// (or, with Replace, the flow of that name).
	ID        string
	Name      string
	Workspace string // "": "default" for a new flow, unchanged otherwise
	Source    string // stored with the flow's id, name, status, workspace and numbers written in
	Status    string // "": draft for a new flow, unchanged otherwise
	// Numbers become the flow's numbers, all or none, when SetNumbers
	// (the file lists numbers); otherwise they stay as they are.
	Numbers    []string
	SetNumbers bool
	// Replace lets a file without an id update the flow of its name.
	Replace bool
	Author  string
	Comment string
}

// ImportFlow creates or updates the flow a file is, in one revision: a
// file with an id updates that flow (renaming it if the file's name
// changed), a file without one makes a new flow. A name another flow has
// is refused (ErrExists), never overwritten; so is a number another flow
// has (ErrNumberTaken). It reports whether anything changed.
func (s *Store) ImportFlow(ctx context.Context, in FlowImport) (FlowRow, bool, error) {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		return FlowRow{}, false, fmt.Errorf("%w: flow without a name", ErrInvalid)
	}
	if in.Status != "" && !validStatus(in.Status) {
		return FlowRow{}, false, fmt.Errorf("%w: flow status %q", ErrInvalid, in.Status)
	}
	var id string
	changed := false
	err := s.immediate(ctx, func(tx *sql.Tx) error {
		find := func(where string, arg any) (FlowRow, bool, bool, error) {
			f, deleted, err := scanFlow(tx.QueryRowContext(ctx, flowQuery+where, arg))
			if errors.Is(err, sql.ErrNoRows) {
				return FlowRow{}, false, false, nil
			}
			return f, err == nil, deleted, err
		}
		named, hasName, nameDeleted, err := find(` WHERE f.name = ?`, in.Name)
		if err != nil {
			return err
		}
		var cur FlowRow
		var exists, deleted bool
		var notes []string
		switch {
		case in.ID != "":
			byID, found, del, err := find(` WHERE f.id = ?`, in.ID)
			if err != nil {
				return err
			}
			switch {
			case found:
				cur, exists, deleted = byID, true, del
			case hasName && !nameDeleted:
				return fmt.Errorf("%w: flow %q (id %s) is another flow: this file is flow id %s, which this database does not have; rename one of them",
					ErrExists, in.Name, named.ID, in.ID)
			case hasName: // a deleted flow's name: it comes back as this flow
				cur, exists, deleted = named, true, true
				if _, err := tx.ExecContext(ctx, `UPDATE flows SET id = ? WHERE name = ?`, in.ID, in.Name); err != nil {
					return err
				}
				cur.ID = in.ID
			}
			id = in.ID
		case hasName && !nameDeleted && !in.Replace:
			return fmt.Errorf("%w: a flow named %q already exists (id %s) and this file has no id, so it may be another flow: "+
				"to update that flow, add id = %q to the file (callflow flows export writes it), or name the file's flow differently",
				ErrExists, in.Name, named.ID, named.ID)
		case hasName:
			cur, exists, deleted, id = named, true, nameDeleted, named.ID
		default:
			id = newFlowID()
		}
		if exists && cur.Name != in.Name {
			if hasName {
				what := "flow"
				if nameDeleted {
					what = "deleted flow"
				}
				return fmt.Errorf("%w: cannot rename %q to %q: the %s %q (id %s) has that name", ErrExists, cur.Name, in.Name, what, in.Name, named.ID)
			}
			if err := renameFlow(ctx, tx, s.pg, cur.Name, in.Name); err != nil {
				return err
			}
			notes = append(notes, fmt.Sprintf("renamed from %q", cur.Name))
		}
		now := s.now().UnixNano()
		ws, st := or(in.Workspace, "default"), or(in.Status, FlowDraft)
		switch {
		case !exists:
			if err := insertFlow(ctx, tx, id, in.Name, ws, st, now, in.Author); err != nil {
				return err
			}
			notes = append(notes, "created")
		case deleted:
			if _, err := tx.ExecContext(ctx, `UPDATE flows SET deleted = 0, deleted_by = '', deleted_at = NULL, created = ? WHERE id = ?`, now, id); err != nil {
				return err
			}
			notes = append(notes, "restored")
			fallthrough
		default:
			ws, st = or(in.Workspace, cur.Workspace), or(in.Status, cur.Status)
		}
		if in.SetNumbers {
			moved, err := setNumbers(ctx, tx, in.Name, cleanNumbers(in.Numbers), in.Author, now)
			if err != nil {
				return err
			}
			notes = append(notes, moved...)
		}
		// The stored source says which flow it is, as an export does: an
		// unedited export comes back unchanged.
		numbers, err := flowNumbers(ctx, tx, in.Name)
		if err != nil {
			return err
		}
		source, err := flowhead.Set([]byte(in.Source), flowhead.Header{ID: id, Name: in.Name, Status: st, Workspace: ws, Numbers: numbers, SetNumbers: true})
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if !exists || deleted || len(notes) > 0 || string(source) != cur.Source || ws != cur.Workspace || st != cur.Status {
			changed = true
			comment := or(in.Comment, "imported")
			if len(notes) > 0 {
				comment += " (" + strings.Join(notes, "; ") + ")"
			}
			return s.addRevision(ctx, tx, in.Name, string(source), st, ws, in.Author, comment)
		}
		return nil
	})
	if err != nil {
		return FlowRow{}, false, wrapFlowErr("import flow", err)
	}
	f, err := s.GetFlowByID(ctx, id)
	return f, changed, err
}

// renameFlow gives a flow, its history and its numbers a new name. The
// foreign keys are checked when the transaction commits, once all three
// agree again.
func renameFlow(ctx context.Context, tx *sql.Tx, pg bool, from, to string) error {
	deferKeys := `PRAGMA defer_foreign_keys = ON`
	if pg {
		deferKeys = `SET CONSTRAINTS ALL DEFERRED`
	}
	for _, q := range []string{
		deferKeys,
		`UPDATE flows SET name = ? WHERE name = ?`,
		`UPDATE flow_revisions SET flow = ? WHERE flow = ?`,
		`UPDATE numbers SET flow = ? WHERE flow = ?`,
	} {
		args := []any{to, from}
		if q == deferKeys {
			args = nil
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// setNumbers makes numbers the flow's, all or none, and says what moved.
func setNumbers(ctx context.Context, tx *sql.Tx, name string, numbers []string, author string, now int64) ([]string, error) {
	have, err := flowNumbers(ctx, tx, name)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	var added, released []string
	for _, n := range numbers {
		keep[n] = true
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT flow FROM numbers WHERE number = ?`, n).Scan(&owner)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, err
		case owner == name:
			continue
		default:
			return nil, fmt.Errorf("%w: %s is on flow %q", ErrNumberTaken, n, owner)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO numbers (number, flow, assigned, assigned_by) VALUES (?, ?, ?, ?)`, n, name, now, author); err != nil {
			return nil, err
		}
		if err := noteAssigned(ctx, tx, n, name, author, now); err != nil {
			return nil, err
		}
		added = append(added, n)
	}
	for _, n := range have {
		if keep[n] {
			continue
		}
		if err := noteReleased(ctx, tx, n, name, author, now); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM numbers WHERE number = ? AND flow = ?`, n, name); err != nil {
			return nil, err
		}
		released = append(released, n)
	}
	var notes []string
	if len(added) > 0 {
		notes = append(notes, "assigned "+strings.Join(added, ", "))
	}
	if len(released) > 0 {
		notes = append(notes, "released "+strings.Join(released, ", "))
	}
	return notes, nil
}

// assignFlowIDs gives an id to the flows made before flows had one. It
// writes only when there are some: opening must not wait for a lock
// another process holds.
func assignFlowIDs(ctx context.Context, db *sql.DB, pg bool) error {
	var hasIDs, missing bool
	var err error
	randomID := `lower(hex(randomblob(8)))`
	if pg {
		// PostgreSQL databases start at the current schema.
		hasIDs, randomID = true, `substr(md5(random()::text || name), 1, 16)`
	} else {
		err = db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pragma_table_info('flows') WHERE name = 'id')`).Scan(&hasIDs)
	}
	// Without the column the schema is an older one (tests of upgrades).
	if err == nil && hasIDs {
		err = db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM flows WHERE id = '')`).Scan(&missing)
	}
	if err == nil && missing {
		_, err = db.ExecContext(ctx, `UPDATE flows SET id = `+randomID+` WHERE id = ''`)
	}
	if err != nil {
		return fmt.Errorf("store: flow ids: %w", err)
	}
	return nil
}

// FlowsChanged grows with every change made to flows and their numbers,
// by any process: a server polls it to pick up what others changed. Every
// change adds a revision, and revisions are never deleted, so the newest
// revision's row id is such a counter, read from the end of one index.
func (s *Store) FlowsChanged(ctx context.Context) (int64, error) {
	var n int64
	q := `SELECT COALESCE(MAX(rowid), 0) FROM flow_revisions`
	if s.pg {
		q = `SELECT COUNT(*) FROM flow_revisions` // no rowid; revisions are never deleted either
	}
	if err := s.r.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: flows changed: %w", err)
	}
	return n, nil
}

// FlowVersionSeen is one version of a flow that took calls.
type FlowVersionSeen struct {
	Version     string    `json:"version"`
	Calls       int       `json:"calls"`
	First, Last time.Time `json:"-"`
}

// FlowVersions lists the versions of a flow (content hashes) that took
// calls, newest first: the history of a flow kept in a file.
func (s *Store) FlowVersions(ctx context.Context, flow string) ([]FlowVersionSeen, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT flow_version, COUNT(*), MIN(started), MAX(started) FROM calls
WHERE flow = ? GROUP BY flow_version ORDER BY MAX(started) DESC`, flow)
	if err != nil {
		return nil, fmt.Errorf("store: flow versions: %w", err)
	}
	defer rows.Close()
	var out []FlowVersionSeen
	for rows.Next() {
		var v FlowVersionSeen
		var first, last sql.NullInt64
		if err := rows.Scan(&v.Version, &v.Calls, &first, &last); err != nil {
			return nil, fmt.Errorf("store: flow versions: %w", err)
		}
		v.First, v.Last = ft(first), ft(last)
		out = append(out, v)
	}
	return out, rows.Err()
}
