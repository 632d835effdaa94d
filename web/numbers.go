package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/store"
)

// numberView is one number as the numbers page shows it: in the inventory
// (on a database flow or on none), on a file flow, or only called.
type numberView struct {
	Number     string
	Workspace  string
	Flow       string
	Source     string // "db", "file", or "" without a flow
	FlowStatus string
	Assigned   time.Time
	AssignedBy string
	Released   time.Time
	ReleasedBy string
	Calls      int
	LastCall   time.Time
	// Flag says why no flow answers the number ("" when one does).
	Flag      string
	Known     bool // in the inventory (a number only called is not)
	CanManage bool
}

// flowOption is a database flow numbers may be given to.
type flowOption struct {
	Name, Workspace, Status string
}

// numberLine is one pasted line's result.
type numberLine struct {
	Input string
	store.NumberResult
}

type numbersData struct {
	Numbers    []numberView
	Shown      int
	Flagged    int
	Unassigned int
	Show       string // "", "flagged", "unassigned"
	Flows      []flowOption
	Workspaces []string
	CanManage  bool
	Days       int

	// The bulk form, as sent, and its results.
	Op, Input, Flow, Workspace string
	Move                       bool
	Results                    []numberLine
	Changed                    int
	Error                      string
}

const (
	flagNoFlow = "no flow: callers hear \"not in service\""
)

// collectNumbers gathers the numbers in a's scope: the inventory, the
// file flows' numbers, and (admins) numbers called without a flow.
func (s *Server) collectNumbers(ctx context.Context, a *authInfo) (numbersData, error) {
	d := numbersData{Days: statsDays}
	fd, err := s.collectFlows(ctx, a, true)
	if err != nil {
		return d, err
	}
	rows, err := s.st.ListNumbers(ctx, a.scope())
	if err != nil {
		return d, err
	}
	calls, err := s.st.NumberCalls(ctx, s.now().AddDate(0, 0, -statsDays))
	if err != nil {
		return d, err
	}
	dbFlows := map[string]flowView{}
	for _, f := range fd.Flows {
		if f.Row != nil {
			dbFlows[f.Name] = f
			if f.CanManage {
				d.Flows = append(d.Flows, flowOption{Name: f.Name, Workspace: f.Workspace, Status: f.Status})
			}
		}
	}
	byNum := map[string]*numberView{}
	add := func(v numberView) {
		c := calls[v.Number]
		v.Calls, v.LastCall = c.Calls, c.Last
		d.Numbers = append(d.Numbers, v)
	}
	for _, r := range rows {
		v := numberView{Number: r.Number, Workspace: r.Workspace, Flow: r.Flow, Assigned: r.Assigned, AssignedBy: r.AssignedBy,
			Released: r.Released, ReleasedBy: r.ReleasedBy, Known: true, CanManage: a.canManage(r.Workspace)}
		if r.Flow != "" {
			v.Source, v.FlowStatus = "db", dbFlows[r.Flow].Status
		} else {
			v.Flag = flagNoFlow
			if v.Released.IsZero() {
				v.Assigned, v.AssignedBy = r.Added, r.AddedBy
			}
		}
		add(v)
	}
	for i := range d.Numbers {
		byNum[d.Numbers[i].Number] = &d.Numbers[i]
	}
	var extra []numberView
	for _, f := range fd.Flows {
		if f.Source != "file" {
			continue
		}
		for _, n := range f.Numbers {
			if v := byNum[n]; v != nil {
				v.Flag = "file flow " + f.Name + " claims it too"
				continue
			}
			extra = append(extra, numberView{Number: n, Workspace: f.Workspace, Flow: f.Name, Source: "file", FlowStatus: f.Status})
		}
	}
	for _, u := range fd.Unanswered {
		if v := byNum[u.Number]; v != nil {
			if v.Flow != "" {
				v.Flag = u.Why
			}
			continue
		}
		if u.Flow == "" { // called, never in the inventory: admins only
			extra = append(extra, numberView{Number: u.Number, Flag: u.Why, CanManage: a.canManage("")})
		}
	}
	for _, v := range extra {
		add(v)
	}
	sort.SliceStable(d.Numbers, func(i, j int) bool { return d.Numbers[i].Number < d.Numbers[j].Number })
	for _, v := range d.Numbers {
		if v.Flag != "" {
			d.Flagged++
		}
		if v.Flow == "" {
			d.Unassigned++
		}
		d.CanManage = d.CanManage || v.CanManage
	}
	d.CanManage = d.CanManage || (a.isAdmin() && len(d.Flows) > 0)
	d.Shown = len(d.Numbers)
	d.Workspaces, err = s.manageableWorkspaces(ctx, a)
	return d, err
}

// manageableWorkspaces are the workspaces a may add numbers to.
func (s *Server) manageableWorkspaces(ctx context.Context, a *authInfo) ([]string, error) {
	if !a.isAdmin() {
		return nil, nil
	}
	if a.user.Role != store.RoleAdmin {
		return a.user.Workspaces, nil
	}
	all, err := s.st.ListWorkspaces(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, w := range all {
		out = append(out, w.Name)
	}
	return out, nil
}

func (d *numbersData) filter(show string) {
	d.Show = show
	if show != "flagged" && show != "unassigned" {
		d.Show = ""
		return
	}
	var keep []numberView
	for _, v := range d.Numbers {
		if (show == "flagged" && v.Flag != "") || (show == "unassigned" && v.Flow == "") {
			keep = append(keep, v)
		}
	}
	d.Numbers, d.Shown = keep, len(keep)
}

func (s *Server) numbersPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.collectNumbers(r.Context(), auth(r))
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d.Op = "assign"
	d.filter(r.URL.Query().Get("show"))
	s.render(w, r, http.StatusOK, "numbers", "Numbers", d)
}

// numbersRequest is a change asked for on the page or through the API.
type numbersRequest struct {
	Op        string   `json:"op"`
	Numbers   []string `json:"numbers"`
	Flow      string   `json:"flow"`
	Workspace string   `json:"workspace"`
	Move      bool     `json:"move"`
}

// changeNumbers runs a change for a, a result per number typed (in the
// order typed, a number that is not one refused on its line), then asks
// for a reload if anything changed.
func (s *Server) changeNumbers(ctx context.Context, a *authInfo, req numbersRequest) ([]numberLine, int, error) {
	if !a.isAdmin() {
		return nil, 0, &actionError{http.StatusForbidden, "only admins change numbers"}
	}
	switch req.Op {
	case store.NumberAssign, store.NumberRelease, store.NumberAdd, store.NumberRemove:
	default:
		return nil, 0, &actionError{http.StatusBadRequest, "op must be assign, release, add or remove"}
	}
	if req.Op == store.NumberAssign {
		row, err := s.st.GetFlow(ctx, req.Flow)
		switch {
		case req.Flow == "":
			return nil, 0, &actionError{http.StatusBadRequest, "choose a flow"}
		case errors.Is(err, store.ErrNotFound) || (err == nil && !a.scope().Allows(row.Workspace)):
			if f, ok := s.set().ByName(req.Flow); ok && f.Source == "file" && a.scope().Allows(f.Workspace) {
				return nil, 0, &actionError{http.StatusConflict, "flow " + f.Name + " is a file flow: list numbers in its file instead"}
			}
			return nil, 0, &actionError{http.StatusNotFound, "flow not found"}
		case err != nil:
			return nil, 0, err
		case !a.canManage(row.Workspace):
			return nil, 0, &actionError{http.StatusForbidden, "only admins of workspace " + row.Workspace + " change its flows"}
		}
	}
	if req.Op == store.NumberAdd {
		if req.Workspace == "" {
			return nil, 0, &actionError{http.StatusBadRequest, "choose a workspace"}
		}
		if !a.canManage(req.Workspace) {
			return nil, 0, &actionError{http.StatusForbidden, "only admins of workspace " + req.Workspace + " add numbers to it"}
		}
	}
	var lines []numberLine
	var nums []string
	for _, in := range req.Numbers {
		in = strings.TrimSpace(in)
		if in == "" {
			continue
		}
		n, err := flows.NormalizeNumber(in, s.opts.Country)
		if err != nil {
			lines = append(lines, numberLine{Input: in, NumberResult: store.NumberResult{Outcome: store.NumberRefused, Detail: "not a number: " + strings.TrimPrefix(err.Error(), "number ")}})
			continue
		}
		lines = append(lines, numberLine{Input: in, NumberResult: store.NumberResult{Number: n}})
		nums = append(nums, n)
	}
	if len(lines) == 0 {
		return nil, 0, &actionError{http.StatusBadRequest, "enter one or more numbers"}
	}
	if len(lines) > maxNumbersAtOnce {
		return nil, 0, &actionError{http.StatusBadRequest, fmt.Sprintf("at most %d numbers at once", maxNumbersAtOnce)}
	}
	set := s.set()
	held := func(n string) string {
		if f, ok := set.ByNumber(n); ok && f.Source == "file" {
			return f.Name
		}
		for _, f := range set.Flows() {
			if f.Source == "file" && contains(f.Numbers, n) {
				return f.Name
			}
		}
		return ""
	}
	results, err := s.st.ChangeNumbers(ctx, store.NumberChange{Op: req.Op, Numbers: nums, Flow: req.Flow, Workspace: req.Workspace,
		Move: req.Move, Author: a.user.Name, Allowed: a.canManage, Held: held})
	if err != nil {
		return nil, 0, err
	}
	byNum := map[string]store.NumberResult{}
	changed := 0
	for _, res := range results {
		byNum[res.Number] = res
		if res.Outcome != store.NumberRefused && res.Outcome != store.NumberUnchanged {
			changed++
		}
	}
	seen := map[string]bool{}
	for i := range lines {
		n := lines[i].Number
		if n == "" {
			continue
		}
		if seen[n] {
			lines[i].NumberResult = store.NumberResult{Number: n, Outcome: store.NumberUnchanged, Detail: "given twice: see above"}
			continue
		}
		seen[n] = true
		lines[i].NumberResult = byNum[n]
	}
	if changed > 0 {
		s.log.Info().Str("op", req.Op).Str("flow", req.Flow).Int("numbers", changed).Str("user", a.user.Name).Msg("web: numbers changed")
		s.reload()
	}
	return lines, changed, nil
}

// maxNumbersAtOnce bounds one bulk change.
const maxNumbersAtOnce = 1000

// numbersForm handles the page's forms: a number's own buttons and the
// bulk form send the same fields.
func (s *Server) numbersForm(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	req := numbersRequest{Op: r.PostFormValue("op"), Flow: r.PostFormValue("flow"), Workspace: r.PostFormValue("workspace"),
		Move: r.PostFormValue("move") != ""}
	input := r.PostFormValue("numbers")
	req.Numbers = splitList(input)
	lines, changed, err := s.changeNumbers(r.Context(), a, req)
	code := http.StatusOK
	var ae *actionError
	switch {
	case errors.As(err, &ae) && ae.code == http.StatusForbidden:
		s.fail(w, r, ae.code, ae.msg)
		return
	case errors.As(err, &ae):
		code = ae.code
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
		code, ae = http.StatusBadRequest, &actionError{http.StatusBadRequest, trimStore(err)}
	case err != nil:
		s.internal(w, r, err)
		return
	}
	d, err := s.collectNumbers(r.Context(), a)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d.Op, d.Input, d.Flow, d.Workspace, d.Move = req.Op, input, req.Flow, req.Workspace, req.Move
	d.Results, d.Changed = lines, changed
	if ae != nil {
		d.Error = ae.msg
	}
	d.filter(r.URL.Query().Get("show"))
	s.render(w, r, code, "numbers", "Numbers", d)
}

// numberJSON is a number as the API shows it.
type numberJSON struct {
	Number     string    `json:"number"`
	Workspace  string    `json:"workspace,omitempty"`
	Flow       string    `json:"flow,omitempty"`
	FlowSource string    `json:"flow_source,omitempty"` // "database" or "file"
	FlowStatus string    `json:"flow_status,omitempty"`
	Assigned   time.Time `json:"assigned,omitzero"`
	AssignedBy string    `json:"assigned_by,omitempty"`
	Released   time.Time `json:"released,omitzero"`
	ReleasedBy string    `json:"released_by,omitempty"`
	Calls      int       `json:"calls_30d"`
	LastCall   time.Time `json:"last_call,omitzero"`
	Flag       string    `json:"flag,omitempty"`
	InStore    bool      `json:"in_inventory"`
	CanManage  bool      `json:"can_manage"`
}

func toNumberJSON(v numberView) numberJSON {
	src := map[string]string{"db": "database", "file": "file"}[v.Source]
	return numberJSON{Number: v.Number, Workspace: v.Workspace, Flow: v.Flow, FlowSource: src, FlowStatus: v.FlowStatus,
		Assigned: v.Assigned, AssignedBy: v.AssignedBy, Released: v.Released, ReleasedBy: v.ReleasedBy, Calls: v.Calls,
		LastCall: v.LastCall, Flag: v.Flag, InStore: v.Known, CanManage: v.CanManage}
}

func (s *Server) apiNumbers(w http.ResponseWriter, r *http.Request) {
	d, err := s.collectNumbers(r.Context(), auth(r))
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d.filter(r.URL.Query().Get("show"))
	out := struct {
		Numbers []numberJSON `json:"numbers"`
		Flagged int          `json:"flagged"`
		Days    int          `json:"days"`
	}{Numbers: []numberJSON{}, Flagged: d.Flagged, Days: d.Days}
	for _, v := range d.Numbers {
		out.Numbers = append(out.Numbers, toNumberJSON(v))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiNumber(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	n, err := flows.NormalizeNumber(r.PathValue("number"), s.opts.Country)
	if err != nil {
		writeError(w, http.StatusBadRequest, "not a number: "+err.Error())
		return
	}
	d, err := s.collectNumbers(r.Context(), a)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	for _, v := range d.Numbers {
		if v.Number != n {
			continue
		}
		hist, err := s.st.Audit(r.Context(), "number "+n, 100)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		if hist == nil {
			hist = []store.AuditEntry{}
		}
		writeJSON(w, http.StatusOK, struct {
			numberJSON
			History []store.AuditEntry `json:"history"`
		}{toNumberJSON(v), hist})
		return
	}
	writeError(w, http.StatusNotFound, "number not found")
}

func (s *Server) apiNumbersChange(w http.ResponseWriter, r *http.Request) {
	var req numbersRequest
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
			return
		}
	} else {
		req = numbersRequest{Op: r.FormValue("op"), Numbers: splitList(r.FormValue("numbers")), Flow: r.FormValue("flow"),
			Workspace: r.FormValue("workspace"), Move: truthy(r.FormValue("move"))}
	}
	lines, changed, err := s.changeNumbers(r.Context(), auth(r), req)
	if err != nil {
		if ae := (*actionError)(nil); errors.As(err, &ae) {
			writeError(w, ae.code, ae.msg)
		} else {
			s.storeError(w, r, err)
		}
		return
	}
	type resultJSON struct {
		Input string `json:"input"`
		store.NumberResult
	}
	out := struct {
		Changed int          `json:"changed"`
		Results []resultJSON `json:"results"`
	}{Changed: changed}
	for _, l := range lines {
		out.Results = append(out.Results, resultJSON(l))
	}
	writeJSON(w, http.StatusOK, out)
}

// inventoryRoutes are the numbers and sounds pages and their API.
func (s *Server) inventoryRoutes() {
	s.handle("GET /numbers", s.numbersPage)
	s.handle("POST /numbers", s.numbersForm)
	s.handle("GET /api/numbers", s.apiNumbers)
	s.handle("POST /api/numbers", s.apiNumbersChange)
	s.handle("GET /api/numbers/{number}", s.apiNumber)
	s.soundRoutes()
}
