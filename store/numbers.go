package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// NumberRow is one number of the inventory: on a database flow, or on
// none (released, or added without one).
type NumberRow struct {
	Number    string `json:"number"`
	Workspace string `json:"workspace"`
	Flow      string `json:"flow,omitempty"` // "": no database flow has it
	// Assigned is since when Flow has the number, and AssignedBy who gave
	// it.
	Assigned   time.Time `json:"assigned,omitzero"`
	AssignedBy string    `json:"assigned_by,omitempty"`
	// Added is when the inventory first knew the number.
	Added   time.Time `json:"added,omitzero"`
	AddedBy string    `json:"added_by,omitempty"`
	// Released is when the number last lost its flow (zero while it has
	// one, or when it never had one).
	Released   time.Time `json:"released,omitzero"`
	ReleasedBy string    `json:"released_by,omitempty"`
}

// Number operations (NumberChange.Op).
const (
	NumberAssign  = "assign"  // give the numbers to Flow (Move: from another flow too)
	NumberRelease = "release" // take the numbers off their flow; they stay in the inventory
	NumberAdd     = "add"     // add numbers without a flow to Workspace
	NumberRemove  = "remove"  // forget numbers that have no flow
)

// Outcomes of one number's change (NumberResult.Outcome).
const (
	NumberAssigned  = "assigned"
	NumberMoved     = "moved"
	NumberUnchanged = "unchanged"
	NumberReleased  = "released"
	NumberAdded     = "added"
	NumberRemoved   = "removed"
	NumberRefused   = "refused"
)

// NumberChange is a change made from the numbers' side, to each number on
// its own: a number refused (taken, out of scope) does not stop the
// others. Numbers are E.164 already.
type NumberChange struct {
	Op        string
	Numbers   []string
	Flow      string // NumberAssign: the database flow that gets them
	Workspace string // NumberAdd: where numbers without a flow belong
	// Move lets NumberAssign take a number from another database flow.
	Move   bool
	Author string
	// Allowed says whether the author may change numbers of a workspace
	// (nil: every workspace).
	Allowed func(workspace string) bool
	// Held names the flow that has a number outside the database (a flow
	// file), "" when none: such a number is refused.
	Held func(number string) string
}

// NumberResult is what happened to one number.
type NumberResult struct {
	Number  string `json:"number"`
	Outcome string `json:"outcome"`
	// Flow is the flow the number is on afterwards; From the flow it
	// left (moved, released).
	Flow   string `json:"flow,omitempty"`
	From   string `json:"from,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// ListNumbers lists the inventory in scope, by number: every number a
// database flow has, and every number known without a flow.
func (s *Store) ListNumbers(ctx context.Context, scope Scope) ([]NumberRow, error) {
	sc, args, ok := scopeClause("COALESCE(f.workspace, i.workspace)", scope)
	if !ok {
		return nil, nil
	}
	w := &where{}
	if sc != "" {
		w.add(sc, args...)
	}
	// Every number a flow has is in the inventory (assigning records it);
	// the UNION also shows one that a path not through this package put
	// on a flow.
	q := `SELECT u.number, COALESCE(f.workspace, i.workspace, 'default'), COALESCE(n.flow, ''), n.assigned, COALESCE(n.assigned_by, ''),
	i.added, COALESCE(i.added_by, ''), i.released, COALESCE(i.released_by, '')
FROM (SELECT number FROM numbers UNION SELECT number FROM number_inventory) u
LEFT JOIN numbers n ON n.number = u.number
LEFT JOIN flows f ON f.name = n.flow
LEFT JOIN number_inventory i ON i.number = u.number` + w.String() + ` ORDER BY u.number`
	rows, err := s.r.QueryContext(ctx, q, w.args...)
	if err != nil {
		return nil, fmt.Errorf("store: list numbers: %w", err)
	}
	defer rows.Close()
	var out []NumberRow
	for rows.Next() {
		var (
			n                         NumberRow
			assigned, added, released sql.NullInt64
		)
		if err := rows.Scan(&n.Number, &n.Workspace, &n.Flow, &assigned, &n.AssignedBy, &added, &n.AddedBy, &released, &n.ReleasedBy); err != nil {
			return nil, fmt.Errorf("store: list numbers: %w", err)
		}
		n.Assigned, n.Added, n.Released = ft(assigned), ft(added), ft(released)
		if n.Flow != "" {
			n.Released, n.ReleasedBy = time.Time{}, ""
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// NumberCalls counts the calls to each called number since from, and
// when the last one came.
func (s *Store) NumberCalls(ctx context.Context, from time.Time) (map[string]NumberCallCount, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT called, COUNT(*), MAX(started) FROM calls WHERE started >= ? AND called != '' GROUP BY called`,
		from.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: calls per number: %w", err)
	}
	defer rows.Close()
	out := map[string]NumberCallCount{}
	for rows.Next() {
		var (
			n    string
			c    NumberCallCount
			last sql.NullInt64
		)
		if err := rows.Scan(&n, &c.Calls, &last); err != nil {
			return nil, fmt.Errorf("store: calls per number: %w", err)
		}
		c.Last = ft(last)
		out[n] = c
	}
	return out, rows.Err()
}

// NumberCallCount is how many calls a number took, and the last one.
type NumberCallCount struct {
	Calls int
	Last  time.Time
}

// ChangeNumbers makes a change to each number on its own and says what
// happened to each, in the order given (duplicates once). What it does
// commits together: each flow that gained or lost numbers gets one
// revision saying so, and each number an audit entry ("number +1...").
// A Flow that is not a live database flow is ErrNotFound, and nothing
// changes.
func (s *Store) ChangeNumbers(ctx context.Context, ch NumberChange) ([]NumberResult, error) {
	allowed := ch.Allowed
	if allowed == nil {
		allowed = func(string) bool { return true }
	}
	var nums []string
	seen := map[string]bool{}
	for _, n := range ch.Numbers {
		if n = strings.TrimSpace(n); n != "" && !seen[n] {
			seen[n] = true
			nums = append(nums, n)
		}
	}
	switch ch.Op {
	case NumberAssign:
		if strings.TrimSpace(ch.Flow) == "" {
			return nil, fmt.Errorf("%w: no flow to assign the numbers to", ErrInvalid)
		}
	case NumberAdd:
		if ch.Workspace == "" {
			return nil, fmt.Errorf("%w: no workspace to add the numbers to", ErrInvalid)
		}
	case NumberRelease, NumberRemove:
	default:
		return nil, fmt.Errorf("%w: number operation %q", ErrInvalid, ch.Op)
	}
	var out []NumberResult
	err := s.immediate(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		c := &numberTx{s: s, ctx: ctx, tx: tx, author: ch.Author, now: s.now().UnixNano(), flows: map[string]*FlowRow{},
			gained: map[string][]string{}, lost: map[string][]string{}}
		var target *FlowRow
		if ch.Op == NumberAssign {
			f, err := c.flow(ch.Flow)
			if err != nil {
				return err
			}
			target = f
		}
		for _, n := range nums {
			res, err := c.change(ch, target, allowed, n)
			if err != nil {
				return fmt.Errorf("number %s: %w", n, err)
			}
			out = append(out, res)
		}
		return c.revisions(target)
	})
	if err != nil {
		return nil, wrapFlowErr("change numbers", err)
	}
	return out, nil
}

// numberTx is one ChangeNumbers transaction: the flows it read and what
// each gained and lost, for their revisions.
type numberTx struct {
	s      *Store
	ctx    context.Context
	tx     *sql.Tx
	author string
	now    int64
	flows  map[string]*FlowRow
	gained map[string][]string // flow -> numbers assigned
	lost   map[string][]string // flow -> numbers released or moved away
}

func (c *numberTx) flow(name string) (*FlowRow, error) {
	if f, ok := c.flows[name]; ok {
		return f, nil
	}
	f, err := loadFlow(c.ctx, c.tx, name)
	if err != nil {
		return nil, err
	}
	c.flows[name] = &f
	return &f, nil
}

// owner returns the database flow that has n, or nil, and the workspace
// the inventory gives n ("" when it does not know it).
func (c *numberTx) owner(n string) (*FlowRow, string, error) {
	var flow string
	err := c.tx.QueryRowContext(c.ctx, `SELECT flow FROM numbers WHERE number = ?`, n).Scan(&flow)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, "", err
	}
	var ws string
	if err := c.tx.QueryRowContext(c.ctx, `SELECT workspace FROM number_inventory WHERE number = ?`, n).Scan(&ws); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, "", err
	}
	if flow == "" {
		return nil, ws, nil
	}
	f, err := c.flow(flow)
	if err != nil {
		return nil, "", err
	}
	return f, f.Workspace, nil
}

func refused(n, why string) NumberResult {
	return NumberResult{Number: n, Outcome: NumberRefused, Detail: why}
}

func (c *numberTx) change(ch NumberChange, target *FlowRow, allowed func(string) bool, n string) (NumberResult, error) {
	if ch.Held != nil {
		if file := ch.Held(n); file != "" {
			return refused(n, fmt.Sprintf("on file flow %q: change its file", file)), nil
		}
	}
	owner, ws, err := c.owner(n)
	if err != nil {
		return NumberResult{}, err
	}
	if ws != "" && !allowed(ws) {
		return refused(n, "belongs to a workspace you cannot change"), nil
	}
	subject := "number " + n
	switch ch.Op {
	case NumberAssign:
		if !allowed(target.Workspace) {
			return refused(n, "flow "+target.Name+" is in a workspace you cannot change"), nil
		}
		switch {
		case owner != nil && owner.Name == target.Name:
			return NumberResult{Number: n, Outcome: NumberUnchanged, Flow: target.Name, Detail: "already on " + target.Name}, nil
		case owner != nil && !ch.Move:
			return refused(n, fmt.Sprintf("on flow %q: tick move to take it", owner.Name)), nil
		}
		res := NumberResult{Number: n, Outcome: NumberAssigned, Flow: target.Name}
		action, detail := "assign number", "to flow "+target.Name
		if owner != nil {
			if _, err := c.tx.ExecContext(c.ctx, `DELETE FROM numbers WHERE number = ?`, n); err != nil {
				return res, err
			}
			c.lost[owner.Name] = append(c.lost[owner.Name], n)
			res.Outcome, res.From = NumberMoved, owner.Name
			action, detail = "move number", fmt.Sprintf("from flow %s to flow %s", owner.Name, target.Name)
		}
		if _, err := c.tx.ExecContext(c.ctx, `INSERT INTO numbers (number, flow, assigned, assigned_by) VALUES (?, ?, ?, ?)`,
			n, target.Name, c.now, c.author); err != nil {
			return res, err
		}
		if err := rememberNumber(c.ctx, c.tx, n, target.Name, c.author, c.now); err != nil {
			return res, err
		}
		c.gained[target.Name] = append(c.gained[target.Name], n)
		return res, c.s.audit(c.ctx, c.tx, c.author, action, subject, detail)
	case NumberRelease:
		if owner == nil {
			return NumberResult{Number: n, Outcome: NumberUnchanged, Detail: "has no flow"}, nil
		}
		if err := markReleased(c.ctx, c.tx, n, owner.Name, c.author, c.now); err != nil {
			return NumberResult{}, err
		}
		if _, err := c.tx.ExecContext(c.ctx, `DELETE FROM numbers WHERE number = ?`, n); err != nil {
			return NumberResult{}, err
		}
		c.lost[owner.Name] = append(c.lost[owner.Name], n)
		return NumberResult{Number: n, Outcome: NumberReleased, From: owner.Name},
			c.s.audit(c.ctx, c.tx, c.author, "release number", subject, "from flow "+owner.Name)
	case NumberAdd:
		if !allowed(ch.Workspace) {
			return refused(n, "workspace "+ch.Workspace+" is not yours to change"), nil
		}
		if owner != nil || ws != "" {
			why := "already in the inventory"
			if owner != nil {
				why = "already on flow " + owner.Name
			}
			return NumberResult{Number: n, Outcome: NumberUnchanged, Detail: why}, nil
		}
		if _, err := c.tx.ExecContext(c.ctx, `INSERT INTO number_inventory (number, workspace, added, added_by) VALUES (?, ?, ?, ?)`,
			n, ch.Workspace, c.now, c.author); err != nil {
			return NumberResult{}, err
		}
		return NumberResult{Number: n, Outcome: NumberAdded, Detail: "without a flow, in " + ch.Workspace},
			c.s.audit(c.ctx, c.tx, c.author, "add number", subject, "to workspace "+ch.Workspace)
	default: // NumberRemove
		switch {
		case owner != nil:
			return refused(n, fmt.Sprintf("on flow %q: release it first", owner.Name)), nil
		case ws == "":
			return NumberResult{Number: n, Outcome: NumberUnchanged, Detail: "not in the inventory"}, nil
		}
		if _, err := c.tx.ExecContext(c.ctx, `DELETE FROM number_inventory WHERE number = ?`, n); err != nil {
			return NumberResult{}, err
		}
		return NumberResult{Number: n, Outcome: NumberRemoved},
			c.s.audit(c.ctx, c.tx, c.author, "remove number", subject, "from workspace "+ws)
	}
}

// revisions gives each flow whose numbers changed one revision saying how.
func (c *numberTx) revisions(target *FlowRow) error {
	names := map[string]bool{}
	for f := range c.gained {
		names[f] = true
	}
	for f := range c.lost {
		names[f] = true
	}
	sorted := make([]string, 0, len(names))
	for f := range names {
		sorted = append(sorted, f)
	}
	sort.Strings(sorted)
	for _, name := range sorted {
		f := c.flows[name]
		var notes []string
		if g := c.gained[name]; len(g) > 0 {
			notes = append(notes, "assigned "+strings.Join(g, ", "))
		}
		if l := c.lost[name]; len(l) > 0 {
			note := "released " + strings.Join(l, ", ")
			if target != nil && target.Name != name {
				note += " (moved to " + target.Name + ")"
			}
			notes = append(notes, note)
		}
		if err := c.s.addRevision(c.ctx, c.tx, name, f.Source, f.Status, f.Workspace, c.author, strings.Join(notes, "; ")+" on the numbers page"); err != nil {
			return err
		}
	}
	return nil
}

// rememberNumber records that a number is (again) on flow: the inventory
// keeps it after it leaves the flow.
func rememberNumber(ctx context.Context, tx *sql.Tx, number, flow, author string, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO number_inventory (number, workspace, added, added_by)
SELECT ?, workspace, ?, ? FROM flows WHERE name = ?
ON CONFLICT (number) DO UPDATE SET workspace = excluded.workspace, released = NULL, released_by = ''`, number, now, author, flow)
	return err
}

// markReleased records that a number leaves flow and stays in the
// inventory, in the flow's workspace.
func markReleased(ctx context.Context, tx *sql.Tx, number, flow, author string, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO number_inventory (number, workspace, added, added_by, released, released_by)
SELECT ?, workspace, ?, '', ?, ? FROM flows WHERE name = ?
ON CONFLICT (number) DO UPDATE SET workspace = excluded.workspace, released = excluded.released, released_by = excluded.released_by`,
		number, now, now, author, flow)
	return err
}

// noteAssigned and noteReleased keep the inventory and each number's
// audit up to date when a flow's numbers change elsewhere (a flow's page,
// an import, a deletion).
func noteAssigned(ctx context.Context, tx *sql.Tx, number, flow, author string, now int64) error {
	if err := rememberNumber(ctx, tx, number, flow, author, now); err != nil {
		return err
	}
	return auditAt(ctx, tx, now, author, "assign number", "number "+number, "to flow "+flow)
}

func noteReleased(ctx context.Context, tx *sql.Tx, number, flow, author string, now int64) error {
	if err := markReleased(ctx, tx, number, flow, author, now); err != nil {
		return err
	}
	return auditAt(ctx, tx, now, author, "release number", "number "+number, "from flow "+flow)
}

func auditAt(ctx context.Context, tx *sql.Tx, at int64, actor, action, subject, detail string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)`,
		at, actor, action, subject, detail)
	return err
}

// AddAudit records a change made outside a store transaction (a sound
// file written, say): who did what to which subject.
func (s *Store) AddAudit(ctx context.Context, actor, action, subject, detail string) error {
	return s.immediate(ctx, func(tx *sql.Tx) error { return s.audit(ctx, tx, actor, action, subject, detail) })
}
