package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/internal/flowhead"
	"github.com/callflow/callflow/store"
)

// flowView is one flow as the flows pages show it: a loaded flow, a
// database flow, or both (a database flow that is loaded).
type flowView struct {
	Name, Description, Workspace, Status string
	Source                               string // "file" or "db"
	File, Version                        string
	Revision                             int // current database revision
	LoadedRevision                       int // the revision serving calls
	Numbers                              []string
	Loaded                               bool
	Flow                                 *flows.Flow
	Row                                  *store.FlowRow
	Problems                             flows.Problems
	Errors, Warnings                     int
	NoNumbers                            bool // published, yet no number reaches it
	CanManage                            bool
	Calls                                int // in the last statsDays days
	Note                                 string
	Unanswered                           map[string]string // number -> why no flow answers it
}

// numberFlag is a number that no flow answers.
type numberFlag struct {
	Number string
	Flow   string // the flow it is assigned to, if any
	Why    string
	Calls  int
	Last   time.Time
}

type flowsData struct {
	Flows      []flowView
	Unanswered []numberFlag
	NoNumbers  []string
	Other      flows.Problems // problems of no visible flow (admins)
	SetVersion int64
	Loaded     time.Time
	Days       int
	Message    string
}

const statsDays = 30

// dbRevision reads the revision from a database flow's File ("db:NAME@REV").
func dbRevision(file string) int {
	i := strings.LastIndex(file, "@")
	if !strings.HasPrefix(file, "db:") || i < 0 {
		return 0
	}
	n, _ := strconv.Atoi(file[i+1:])
	return n
}

// collectFlows merges the loaded set with the database flows in the
// user's scope and finds the red flags.
func (s *Server) collectFlows(ctx context.Context, a *authInfo, withCalls bool) (flowsData, error) {
	set := s.set()
	sc := a.scope()
	d := flowsData{SetVersion: set.Version, Loaded: set.Loaded, Days: statsDays}
	type key struct{ source, name string }
	idx := map[key]int{}
	for _, f := range set.Flows() {
		if !sc.Allows(f.Workspace) {
			continue
		}
		v := flowView{Name: f.Name, Description: f.Description, Workspace: f.Workspace, Status: f.Status, Source: f.Source,
			File: f.File, Version: f.Version, Numbers: f.Numbers, Loaded: true, Flow: f}
		if f.Source == "db" {
			v.LoadedRevision = dbRevision(f.File)
			v.Revision = v.LoadedRevision
		}
		idx[key{f.Source, f.Name}] = len(d.Flows)
		d.Flows = append(d.Flows, v)
	}
	rows, err := s.st.ListFlows(ctx, sc)
	if err != nil {
		return d, err
	}
	for i := range rows {
		row := &rows[i]
		j, ok := idx[key{"db", row.Name}]
		if !ok {
			d.Flows = append(d.Flows, flowView{Name: row.Name, Workspace: row.Workspace, Status: row.Status, Source: "db",
				File: fmt.Sprintf("db:%s@%d", row.Name, row.Revision), Revision: row.Revision, Numbers: row.Numbers,
				Note: "not loaded: it does not serve calls (see its problems)"})
			j = len(d.Flows) - 1
		}
		v := &d.Flows[j]
		v.Row = row
		v.Revision = row.Revision
		v.Numbers = row.Numbers
		if v.Loaded && v.LoadedRevision != row.Revision {
			v.Note = fmt.Sprintf("revision %d is saved; revision %d serves calls until a reload takes the new one", row.Revision, v.LoadedRevision)
		}
	}
	// Problems beside their flows; the rest (files that do not parse at
	// all) only for admins, who see every workspace.
	for _, p := range set.Problems {
		matched := false
		for i := range d.Flows {
			v := &d.Flows[i]
			if p.File == v.File || (v.Source == "db" && strings.HasPrefix(p.File, "db:"+v.Name+"@")) {
				v.Problems = append(v.Problems, p)
				matched = true
				break
			}
		}
		if !matched && a.user.Role == store.RoleAdmin {
			d.Other = append(d.Other, p)
		}
	}
	for i := range d.Flows {
		v := &d.Flows[i]
		if !v.Loaded && len(v.Problems) == 0 {
			// Nothing wrong with it that a reload found: it came after the
			// last one (the server reloads within a second of a change).
			v.Note = "saved after the flows were last loaded: it serves calls once they reload"
		}
		for _, p := range v.Problems {
			if p.Severity == flows.Error {
				v.Errors++
			} else {
				v.Warnings++
			}
		}
		v.CanManage = v.Row != nil && a.canManage(v.Workspace)
		if v.Status == flows.Published && len(v.Numbers) == 0 {
			v.NoNumbers = true
			d.NoNumbers = append(d.NoNumbers, v.Name)
		}
		// Numbers assigned in the database that no published flow answers.
		if v.Row != nil {
			for _, n := range v.Row.Numbers {
				why := ""
				owner, ok := set.ByNumber(n)
				switch {
				case !ok && !v.Loaded:
					why = "its flow is not loaded"
				case !ok:
					why = "its flow is a draft"
				case owner.Name != v.Name:
					why = "flow " + owner.Name + " answers it instead"
				default:
					continue
				}
				d.Unanswered = append(d.Unanswered, numberFlag{Number: n, Flow: v.Name, Why: why})
				if v.Unanswered == nil {
					v.Unanswered = map[string]string{}
				}
				v.Unanswered[n] = why
			}
		}
	}
	sort.SliceStable(d.Flows, func(i, j int) bool {
		if !strings.EqualFold(d.Flows[i].Name, d.Flows[j].Name) {
			return strings.ToLower(d.Flows[i].Name) < strings.ToLower(d.Flows[j].Name)
		}
		return d.Flows[i].Source < d.Flows[j].Source
	})
	if !withCalls {
		return d, nil
	}
	to := s.now()
	from := to.AddDate(0, 0, -statsDays)
	stats, err := s.st.Stats(ctx, store.StatsFilter{Scope: sc, From: from, To: to, Location: s.loc})
	if err != nil {
		return d, err
	}
	calls := map[string]int{}
	for _, st := range stats {
		calls[st.Flow] = st.Calls
	}
	for i := range d.Flows {
		d.Flows[i].Calls = calls[d.Flows[i].Name]
	}
	// Calls that reached a number without a flow: they heard "not in
	// service". Such calls belong to no workspace, so only admins see them.
	if a.user.Role == store.RoleAdmin {
		lost, _, err := s.st.ListCalls(ctx, store.CallFilter{Scope: sc, Outcome: "not_in_service", From: from, To: to, Limit: 1000})
		if err != nil {
			return d, err
		}
		byNum := map[string]*numberFlag{}
		var order []string
		for _, c := range lost {
			nf := byNum[c.Called]
			if nf == nil {
				nf = &numberFlag{Number: c.Called, Why: "called, but no flow has this number"}
				byNum[c.Called] = nf
				order = append(order, c.Called)
			}
			nf.Calls++
			if c.Started.After(nf.Last) {
				nf.Last = c.Started
			}
		}
		for _, n := range order {
			d.Unanswered = append(d.Unanswered, *byNum[n])
		}
	}
	return d, nil
}

var flowMessages = map[string]string{
	"published":   "Published: the flow takes calls once the reload finishes.",
	"unpublished": "Unpublished: the flow is a draft now.",
	"duplicated":  "Duplicated: this copy is a draft without numbers.",
	"rolledback":  "Rolled back: the old source is the current revision.",
	"assigned":    "Numbers assigned.",
	"released":    "Numbers released.",
	"deleted":     "Flow deleted.",
}

func (s *Server) flowsPage(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	d, err := s.collectFlows(r.Context(), a, true)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d.Message = flowMessages[r.URL.Query().Get("msg")]
	s.render(w, r, http.StatusOK, "flows", "Flows", d)
}

// findFlow returns the view of the flow named in the path, within scope.
// A loaded flow wins over a database row of the same name.
func (s *Server) findFlow(ctx context.Context, a *authInfo, name string, withCalls bool) (flowView, flowsData, bool, error) {
	d, err := s.collectFlows(ctx, a, withCalls)
	if err != nil {
		return flowView{}, d, false, err
	}
	for _, exact := range []bool{true, false} {
		for _, v := range d.Flows {
			if (exact && v.Name == name) || (!exact && strings.EqualFold(v.Name, name)) {
				return v, d, true, nil
			}
		}
	}
	return flowView{}, d, false, nil
}

type flowData struct {
	F       flowView
	Diagram template.HTML
	Source  string
	Stats   *store.Stats
	Days    int
	Message string
	Error   string
	Numbers string // the bulk form's text after an error
	// Nodes are the versions of this file flow the callflow nodes sharing
	// the database run (one node: its own).
	Nodes []store.NodeFlow
}

func (s *Server) flowPage(w http.ResponseWriter, r *http.Request) {
	s.renderFlow(w, r, http.StatusOK, flowMessages[r.URL.Query().Get("msg")], "", "")
}

func (s *Server) renderFlow(w http.ResponseWriter, r *http.Request, code int, msg, errMsg, numbers string) {
	a := auth(r)
	v, _, ok, err := s.findFlow(r.Context(), a, r.PathValue("name"), false)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if !ok {
		s.fail(w, r, http.StatusNotFound, "flow not found")
		return
	}
	d := flowData{F: v, Days: statsDays, Message: msg, Error: errMsg, Numbers: numbers}
	if v.Flow != nil {
		d.Diagram = drawFlow(v.Flow, nil)
		d.Source = string(v.Flow.Raw)
	}
	if v.Row != nil {
		d.Source = v.Row.Source
	}
	if v.Source == "file" {
		nodes, err := s.st.NodeFlows(r.Context(), v.Name)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		d.Nodes = nodes
	}
	to := s.now()
	stats, err := s.st.Stats(r.Context(), store.StatsFilter{Scope: a.scope(), Flow: v.Name, From: to.AddDate(0, 0, -statsDays), To: to, Location: s.loc})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d.Stats = &store.Stats{Flow: v.Name}
	if len(stats) > 0 {
		d.Stats = &stats[0]
	}
	s.render(w, r, code, "flow", v.Name, d)
}

func (s *Server) flowDiagramSVG(w http.ResponseWriter, r *http.Request) {
	v, _, ok, err := s.findFlow(r.Context(), auth(r), r.PathValue("name"), false)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if !ok || v.Flow == nil {
		s.fail(w, r, http.StatusNotFound, "flow not found or not loaded")
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + string(drawFlow(v.Flow, nil))))
}

type historyData struct {
	F         flowView
	Revisions []store.FlowRevision
	// A comparison of two revisions' sources (?a=3&b=5), when asked for.
	From, To int
	Diff     []diffLine
	Changes  int
}

func (s *Server) flowHistoryPage(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	v, _, ok, err := s.findFlow(r.Context(), a, r.PathValue("name"), false)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if !ok || v.Row == nil {
		s.fail(w, r, http.StatusNotFound, "no database flow of that name: file flows keep their history in the files")
		return
	}
	revs, err := s.st.FlowHistory(r.Context(), v.Row.Name)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	d := historyData{F: v, Revisions: revs}
	if q := r.URL.Query(); q.Get("a") != "" && q.Get("b") != "" {
		d.From, _ = strconv.Atoi(q.Get("a"))
		d.To, _ = strconv.Atoi(q.Get("b"))
		var from, to *store.FlowRevision
		for i := range revs {
			switch revs[i].Revision {
			case d.From:
				from = &revs[i]
			case d.To:
				to = &revs[i]
			}
		}
		if from == nil || to == nil {
			s.fail(w, r, http.StatusNotFound, "no such revision of this flow")
			return
		}
		d.Diff = lineDiff(from.Source, to.Source)
		for _, l := range d.Diff {
			if l.Op != " " {
				d.Changes++
			}
		}
	}
	s.render(w, r, http.StatusOK, "history", "History of "+v.Name, d)
}

// actionInput is what a flow action needs besides its name.
type actionInput struct {
	Revision int
	Numbers  []string
	Move     bool // take numbers from the other database flows that have them
	Force    bool // delete even with numbers
}

// actionError carries a status for a refused action.
type actionError struct {
	code int
	msg  string
}

func (e *actionError) Error() string { return e.msg }

// flowAction runs one database flow action for a, then asks for a reload.
// It returns the flow to show afterwards ("" after a delete).
func (s *Server) flowAction(ctx context.Context, a *authInfo, name, action string, in actionInput) (string, error) {
	row, err := s.st.GetFlow(ctx, name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !a.scope().Allows(row.Workspace)) {
		if f, ok := s.set().ByName(name); ok && err != nil && f.Source == "file" && a.scope().Allows(f.Workspace) {
			return "", &actionError{http.StatusConflict, "flow " + f.Name + " is a file flow: change its file instead"}
		}
		return "", &actionError{http.StatusNotFound, "flow not found"}
	}
	if err != nil {
		return "", err
	}
	if !a.canManage(row.Workspace) {
		return "", &actionError{http.StatusForbidden, "only admins of workspace " + row.Workspace + " change its flows"}
	}
	author := a.user.Name
	result := row.Name
	switch action {
	case "publish":
		if err = s.publishProblems(row); err == nil {
			_, err = s.st.PublishFlow(ctx, row.Name, author)
		}
	case "unpublish":
		_, err = s.st.UnpublishFlow(ctx, row.Name, author)
	case "duplicate":
		var cp store.FlowRow
		if cp, err = s.st.DuplicateFlow(ctx, row.Name, author); err == nil {
			result = cp.Name
			// The copy's source should name itself and claim no numbers,
			// or it would clash with the original when loaded.
			if src, ok := retitle(cp.Source, cp.Name); ok && src != cp.Source {
				_, _, err = s.st.SaveFlow(ctx, store.FlowInput{Name: cp.Name, Source: src, Author: author, Comment: "renamed the copy"})
			}
		}
	case "rollback":
		if in.Revision <= 0 {
			return "", &actionError{http.StatusBadRequest, "revision is required"}
		}
		_, err = s.st.RollbackFlow(ctx, row.Name, in.Revision, author)
	case "assign", "release":
		nums, bad := s.normalizeNumbers(in.Numbers)
		if len(bad) > 0 {
			return "", &actionError{http.StatusBadRequest, strings.Join(bad, "; ")}
		}
		if len(nums) == 0 {
			return "", &actionError{http.StatusBadRequest, "enter one or more numbers"}
		}
		if action == "release" {
			_, err = s.st.ReleaseNumbers(ctx, row.Name, nums, author)
			break
		}
		if err = s.takeNumbers(ctx, a, row.Name, nums, in.Move); err == nil {
			_, err = s.st.AssignNumbers(ctx, row.Name, nums, author)
		}
	case "delete":
		err = s.st.DeleteFlow(ctx, row.Name, author, in.Force)
		result = ""
	default:
		return "", &actionError{http.StatusNotFound, "no such action"}
	}
	if err != nil {
		return "", err
	}
	s.log.Info().Str("flow", row.Name).Str("action", action).Str("user", author).Msg("web: flow changed")
	s.reload()
	return result, nil
}

func (s *Server) normalizeNumbers(raw []string) (nums, bad []string) {
	for _, r := range raw {
		if strings.TrimSpace(r) == "" {
			continue
		}
		n, err := flows.NormalizeNumber(r, s.opts.Country)
		if err == nil {
			nums = append(nums, n)
			continue
		}
		// "+15550001 +15550002": numbers separated by spaces.
		var each []string
		for _, field := range strings.Fields(r) {
			n, ferr := flows.NormalizeNumber(field, s.opts.Country)
			if ferr != nil {
				each = nil
				break
			}
			each = append(each, n)
		}
		if len(each) < 2 {
			bad = append(bad, err.Error())
			continue
		}
		nums = append(nums, each...)
	}
	return nums, bad
}

// takeNumbers checks that the numbers are free for flow name: a file flow's
// number cannot be taken; another database flow's only with move, and
// then it is released there first.
func (s *Server) takeNumbers(ctx context.Context, a *authInfo, name string, nums []string, move bool) error {
	for _, n := range nums {
		for _, f := range s.set().Flows() {
			if f.Source == "file" && contains(f.Numbers, n) {
				return &actionError{http.StatusConflict, fmt.Sprintf("%s belongs to file flow %q: change its file first", n, f.Name)}
			}
		}
	}
	release := map[string][]string{}
	for _, n := range nums {
		owner, err := s.st.FlowForNumber(ctx, n)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if owner.Name == name {
			continue
		}
		if !move {
			return &actionError{http.StatusConflict, fmt.Sprintf("%s belongs to flow %q: tick \"move\" to take it", n, owner.Name)}
		}
		if !a.canManage(owner.Workspace) {
			return &actionError{http.StatusForbidden, fmt.Sprintf("%s belongs to a flow you cannot change", n)}
		}
		release[owner.Name] = append(release[owner.Name], n)
	}
	for owner, ns := range release {
		if _, err := s.st.ReleaseNumbers(ctx, owner, ns, a.user.Name); err != nil {
			return err
		}
	}
	return nil
}

// retitle rewrites a flow source's top-level name and empties its numbers,
// keeping the rest of the file as written; false when src cannot be read.
func retitle(src, name string) (string, bool) {
	out, err := flowhead.Set([]byte(src), flowhead.Header{Name: name, SetNumbers: true})
	if err != nil {
		return src, false
	}
	return string(out), true
}

// flowActionForm handles the flow page's forms.
func (s *Server) flowActionForm(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	action := r.PathValue("action")
	in := actionInput{Move: r.PostFormValue("move") != "", Force: r.PostFormValue("force") != ""}
	numbersText := r.PostFormValue("numbers")
	switch action {
	case "numbers":
		action = "assign"
		if r.PostFormValue("op") == "release" {
			action = "release"
		}
		in.Numbers = splitList(numbersText)
	case "rollback":
		in.Revision, _ = strconv.Atoi(r.PostFormValue("revision"))
	}
	result, err := s.flowAction(r.Context(), a, r.PathValue("name"), action, in)
	var ae *actionError
	var unpublishable *publishError
	switch {
	case errors.As(err, &ae) && (ae.code == http.StatusNotFound || ae.code == http.StatusForbidden):
		s.fail(w, r, ae.code, ae.msg)
		return
	case errors.As(err, &ae):
		s.renderFlow(w, r, ae.code, "", ae.msg, numbersText)
		return
	case errors.As(err, &unpublishable):
		s.renderFlow(w, r, http.StatusConflict, "", unpublishable.msg, numbersText)
		return
	case errors.Is(err, store.ErrNumberTaken), errors.Is(err, store.ErrFlowHasNumbers), errors.Is(err, store.ErrExists):
		s.renderFlow(w, r, http.StatusConflict, "", trimStore(err), numbersText)
		return
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
		s.renderFlow(w, r, http.StatusBadRequest, "", trimStore(err), numbersText)
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	msg := map[string]string{"publish": "published", "unpublish": "unpublished", "duplicate": "duplicated",
		"rollback": "rolledback", "assign": "assigned", "release": "released", "delete": "deleted"}[action]
	if result == "" {
		http.Redirect(w, r, "/flows?msg="+msg, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/flows/"+pathEscape(result)+"?msg="+msg, http.StatusSeeOther)
}

// pathEscape escapes a flow name for a path segment ("/" included).
func pathEscape(s string) string { return url.PathEscape(s) }

// problemJSON is a lint finding.
type problemJSON struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

type routeJSON struct {
	Outcome string `json:"outcome"`
	Target  string `json:"target,omitempty"`
	Kind    string `json:"kind"` // step, fall_through, end, dead_end
}

type stepInfoJSON struct {
	ID     string      `json:"id"`
	Applet string      `json:"applet"`
	Routes []routeJSON `json:"routes"`
}

type flowJSON struct {
	Name                    string         `json:"name"`
	Description             string         `json:"description,omitempty"`
	Workspace               string         `json:"workspace"`
	Status                  string         `json:"status"`
	Source                  string         `json:"source"`
	File                    string         `json:"file"`
	Version                 string         `json:"version,omitempty"`
	Revision                int            `json:"revision,omitempty"`
	LoadedRevision          int            `json:"loaded_revision,omitempty"`
	Numbers                 []string       `json:"numbers"`
	Loaded                  bool           `json:"loaded"`
	PublishedWithoutNumbers bool           `json:"published_without_numbers,omitempty"`
	CanManage               bool           `json:"can_manage"`
	Errors                  int            `json:"errors"`
	Warnings                int            `json:"warnings"`
	Problems                []problemJSON  `json:"problems"`
	Note                    string         `json:"note,omitempty"`
	Calls                   *int           `json:"calls_30d,omitempty"`
	Steps                   []stepInfoJSON `json:"steps,omitempty"`
	TOML                    string         `json:"toml,omitempty"`
}

func problemsJSON(ps flows.Problems) []problemJSON {
	out := []problemJSON{}
	for _, p := range ps {
		out = append(out, problemJSON{File: p.File, Line: p.Line, Col: p.Col, Severity: string(p.Severity), Message: p.Msg})
	}
	return out
}

func toFlowJSON(v flowView, detail bool) flowJSON {
	numbers := v.Numbers
	if numbers == nil {
		numbers = []string{}
	}
	out := flowJSON{Name: v.Name, Description: v.Description, Workspace: v.Workspace, Status: v.Status, Source: v.Source,
		File: v.File, Version: v.Version, Revision: v.Revision, LoadedRevision: v.LoadedRevision, Numbers: numbers, Loaded: v.Loaded,
		PublishedWithoutNumbers: v.NoNumbers, CanManage: v.CanManage, Errors: v.Errors, Warnings: v.Warnings,
		Problems: problemsJSON(v.Problems), Note: v.Note}
	if !detail {
		calls := v.Calls
		out.Calls = &calls
		return out
	}
	if v.Flow != nil {
		out.TOML = string(v.Flow.Raw)
		for _, st := range v.Flow.Steps {
			si := stepInfoJSON{ID: st.ID, Applet: st.Applet, Routes: []routeJSON{}}
			if st.Facts.Ends {
				k := "end"
				if st.Facts.Transfer != "" {
					si.Routes = append(si.Routes, routeJSON{Outcome: "transfer", Target: "flow:" + st.Facts.Transfer, Kind: "transfer"})
				} else {
					si.Routes = append(si.Routes, routeJSON{Kind: k})
				}
			} else {
				for _, o := range st.Facts.Outcomes {
					t, k := v.Flow.Route(st, o)
					si.Routes = append(si.Routes, routeJSON{Outcome: o, Target: t, Kind: routeKindName(k)})
				}
			}
			out.Steps = append(out.Steps, si)
		}
	}
	if v.Row != nil {
		out.TOML = v.Row.Source
	}
	return out
}

func routeKindName(k flows.RouteKind) string {
	switch k {
	case flows.RouteTo:
		return "step"
	case flows.RouteFallThrough:
		return "fall_through"
	case flows.RouteEnd:
		return "end"
	}
	return "dead_end"
}

type numberFlagJSON struct {
	Number string    `json:"number"`
	Flow   string    `json:"flow,omitempty"`
	Why    string    `json:"why"`
	Calls  int       `json:"calls,omitempty"`
	Last   time.Time `json:"last_call,omitzero"`
}

func (s *Server) apiFlows(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	d, err := s.collectFlows(r.Context(), a, true)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := struct {
		SetVersion  int64            `json:"set_version"`
		Loaded      time.Time        `json:"loaded,omitzero"`
		Flows       []flowJSON       `json:"flows"`
		Unanswered  []numberFlagJSON `json:"numbers_without_flow"`
		NoNumbers   []string         `json:"published_without_numbers"`
		OtherIssues []problemJSON    `json:"other_problems,omitempty"`
	}{SetVersion: d.SetVersion, Loaded: d.Loaded, Flows: []flowJSON{}, Unanswered: []numberFlagJSON{}, NoNumbers: []string{}}
	for _, v := range d.Flows {
		out.Flows = append(out.Flows, toFlowJSON(v, false))
	}
	for _, n := range d.Unanswered {
		out.Unanswered = append(out.Unanswered, numberFlagJSON(n))
	}
	out.NoNumbers = append(out.NoNumbers, d.NoNumbers...)
	if len(d.Other) > 0 {
		out.OtherIssues = problemsJSON(d.Other)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiFlow(w http.ResponseWriter, r *http.Request) {
	v, _, ok, err := s.findFlow(r.Context(), auth(r), r.PathValue("name"), false)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, "flow not found")
		return
	}
	writeJSON(w, http.StatusOK, toFlowJSON(v, true))
}

func (s *Server) apiFlowDOT(w http.ResponseWriter, r *http.Request) {
	v, _, ok, err := s.findFlow(r.Context(), auth(r), r.PathValue("name"), false)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if !ok || v.Flow == nil {
		writeError(w, http.StatusNotFound, "flow not found or not loaded")
		return
	}
	var b bytes.Buffer
	if err := flows.WriteDOT(&b, v.Flow); err != nil {
		s.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/vnd.graphviz; charset=utf-8")
	w.Write(b.Bytes())
}

func (s *Server) apiFlowHistory(w http.ResponseWriter, r *http.Request) {
	v, _, ok, err := s.findFlow(r.Context(), auth(r), r.PathValue("name"), false)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if !ok || v.Row == nil {
		writeError(w, http.StatusNotFound, "no database flow of that name")
		return
	}
	revs, err := s.st.FlowHistory(r.Context(), v.Row.Name)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"flow": v.Row.Name, "revisions": revs})
}

// apiBody reads an action's parameters from JSON or a form.
func apiBody(r *http.Request) (actionInput, error) {
	var body struct {
		Revision int      `json:"revision"`
		Numbers  []string `json:"numbers"`
		Move     bool     `json:"move"`
		Force    bool     `json:"force"`
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return actionInput{}, fmt.Errorf("bad JSON body: %v", err)
		}
	} else {
		body.Revision, _ = strconv.Atoi(r.FormValue("revision"))
		body.Numbers = splitList(r.FormValue("numbers"))
		body.Move = truthy(r.FormValue("move"))
		body.Force = truthy(r.FormValue("force"))
	}
	if truthy(r.URL.Query().Get("force")) {
		body.Force = true
	}
	return actionInput(body), nil
}

func truthy(v string) bool { return v == "1" || v == "true" || v == "yes" || v == "on" }

func (s *Server) apiFlowAction(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	in, err := apiBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The route's pattern names the action (flow names may hold '/').
	action := r.Pattern[strings.LastIndex(r.Pattern, "/")+1:]
	switch {
	case action == "{name}":
		action = "delete"
	case action == "numbers" && r.Method == http.MethodDelete:
		action = "release"
	case action == "numbers":
		action = "assign"
	}
	result, err := s.flowAction(r.Context(), a, r.PathValue("name"), action, in)
	var ae *actionError
	var unpublishable *publishError
	switch {
	case errors.As(err, &unpublishable):
		writeJSON(w, http.StatusConflict, map[string]any{"error": unpublishable.msg, "problems": unpublishable.problems})
		return
	case errors.As(err, &ae):
		writeError(w, ae.code, ae.msg)
		return
	case err != nil:
		s.storeError(w, r, err)
		return
	}
	if result == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	row, err := s.st.GetFlow(r.Context(), result)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	code := http.StatusOK
	if action == "duplicate" {
		code = http.StatusCreated
	}
	writeJSON(w, code, row)
}

func (s *Server) apiFlowDelete(w http.ResponseWriter, r *http.Request) { s.apiFlowAction(w, r) }
