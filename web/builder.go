package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/internal/flowhead"
	"github.com/callflow/callflow/internal/tomlpos"
	"github.com/callflow/callflow/store"
)

// The flow builder's API: lint a source without saving it, create and
// edit database flows from their TOML, simulate them, and describe the
// applets so that the builder's forms come from the applets themselves.

//go:embed templates/flows/*.toml
var flowTemplateFS embed.FS

// builderProblem is a lint finding placed on the builder's step.
type builderProblem struct {
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Step     string `json:"step,omitempty"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// linted is a source checked the way a reload checks a database flow.
type linted struct {
	Flow     *flows.Flow // nil when the source cannot be used at all
	Problems []builderProblem
	Steps    []flows.StepBlock // nil when the source does not parse
	Errors   bool
	// Outcomes are each step's outcomes and how each is routed ("" falls
	// through, "(end)" ends the call), as far as the source could be read.
	Outcomes map[string][]stepOutcome
}

// stepOutcome is one outcome of a step and where it goes.
type stepOutcome struct {
	Outcome string `json:"outcome"`
	Next    string `json:"next"`   // a step id; "" the next step; "(end)" the call ends
	Routed  bool   `json:"routed"` // written in the step's on (or keys)
}

// lintSource parses and lints src as a reload would a database flow of
// row's status and numbers (a new flow: a draft without numbers).
func (s *Server) lintSource(file, src string, row *store.FlowRow) linted {
	reg := applets.Builtin()
	f, probs := flows.Parse(file, []byte(src), reg, flows.ParseOptions{Country: s.opts.Country, Source: "db", Partial: true})
	if f != nil {
		dbFields(f, row)
		probs = append(probs, flows.LintFlow(f, s.opts.Lint)...)
	}
	probs.Sort()
	out := linted{Problems: []builderProblem{}, Errors: probs.HasErrors(), Outcomes: stepOutcomes(f)}
	out.Steps, _ = flows.Outline([]byte(src))
	for _, p := range probs {
		out.Problems = append(out.Problems, builderProblem{Line: p.Line, Col: p.Col, Step: flows.StepAtLine(out.Steps, p.Line),
			Severity: string(p.Severity), Message: p.Msg})
	}
	if !out.Errors {
		// Partial keeps broken flows for reporting only: parse again for
		// one that may run.
		if out.Flow, _ = flows.Parse(file, []byte(src), reg, flows.ParseOptions{Country: s.opts.Country, Source: "db"}); out.Flow != nil {
			dbFields(out.Flow, row)
		}
	}
	return out
}

// dbFields gives f what the database keeps for a flow instead of its
// source: name, status, workspace and numbers.
func dbFields(f *flows.Flow, row *store.FlowRow) {
	if row == nil {
		f.Status, f.Numbers = flows.Draft, nil
		return
	}
	f.ID, f.Name, f.Status, f.Workspace, f.Numbers = row.ID, row.Name, row.Status, row.Workspace, nil
	for _, n := range row.Numbers {
		if e164, err := flows.NormalizeNumber(n, ""); err == nil {
			f.Numbers = append(f.Numbers, e164)
		}
	}
}

// decodeJSON reads a JSON body into dst.
func decodeJSON(r *http.Request, dst any) error {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "" && ct != "application/json" {
		return errors.New("send JSON (Content-Type: application/json)")
	}
	if err := json.NewDecoder(r.Body).Decode(dst); err != nil {
		return fmt.Errorf("bad JSON body: %v", err)
	}
	return nil
}

type sourceBody struct {
	TOML      string `json:"toml"`
	Revision  int    `json:"revision"`
	Workspace string `json:"workspace"`
	Name      string `json:"name"`
	Template  string `json:"template"`
}

// apiFlowValidate lints a source and saves nothing.
func (s *Server) apiFlowValidate(w http.ResponseWriter, r *http.Request) {
	var body sourceBody
	if err := decodeJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The flow being edited, if named, gives its status and numbers.
	var row *store.FlowRow
	if body.Name != "" {
		if r, err := s.manageableRow(r.Context(), auth(r), body.Name); err == nil {
			row = &r
		}
	}
	l := s.lintSource("builder", body.TOML, row)
	writeJSON(w, http.StatusOK, map[string]any{"problems": l.Problems, "steps": l.Steps, "errors": l.Errors, "outcomes": l.Outcomes})
}

// flowWithProblems is a database row and what the linter says of its
// source.
type flowWithProblems struct {
	store.FlowRow
	Problems []builderProblem `json:"problems"`
}

// apiFlowCreate makes a database flow, a draft, from a source or from one
// of the templates.
func (s *Server) apiFlowCreate(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	var body sourceBody
	if err := decodeJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	row, l, err := s.createFlow(r.Context(), a, body)
	var ae *actionError
	switch {
	case errors.As(err, &ae):
		writeError(w, ae.code, ae.msg)
		return
	case err != nil:
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, flowWithProblems{row, l.Problems})
}

func (s *Server) createFlow(ctx context.Context, a *authInfo, body sourceBody) (store.FlowRow, linted, error) {
	src := body.TOML
	if body.Template != "" {
		t, ok := flowTemplate(body.Template)
		if !ok {
			return store.FlowRow{}, linted{}, &actionError{http.StatusBadRequest, "no template " + body.Template}
		}
		src = t.Source
	}
	head := readHead([]byte(src))
	name := strings.TrimSpace(body.Name)
	if name == "" {
		name = strings.TrimSpace(head.Name)
	}
	if name == "" {
		return store.FlowRow{}, linted{}, &actionError{http.StatusBadRequest, "the flow needs a name"}
	}
	if name != head.Name {
		out, err := flowhead.Set([]byte(src), flowhead.Header{Name: name})
		if err != nil {
			return store.FlowRow{}, linted{}, &actionError{http.StatusBadRequest, "cannot name the flow: " + err.Error()}
		}
		src = string(out)
	}
	ws := strings.TrimSpace(body.Workspace)
	if ws == "" {
		ws = head.Workspace
	}
	if ws == "" {
		ws = a.defaultWorkspace()
	}
	if !a.canManage(ws) {
		return store.FlowRow{}, linted{}, &actionError{http.StatusForbidden, "only admins of workspace " + ws + " add flows to it"}
	}
	if f, ok := s.set().ByName(name); ok && f.Source == "file" {
		return store.FlowRow{}, linted{}, &actionError{http.StatusConflict, "flow " + f.Name + " is a file flow: choose another name"}
	}
	row, err := s.st.CreateFlow(ctx, store.FlowInput{Name: name, Workspace: ws, Source: src, Status: store.FlowDraft,
		Author: a.user.Name, Comment: "created in the builder"})
	if errors.Is(err, store.ErrExists) {
		return row, linted{}, &actionError{http.StatusConflict, "a flow named " + name + " exists already"}
	}
	if err != nil {
		return row, linted{}, err
	}
	s.log.Info().Str("flow", row.Name).Str("action", "create").Str("user", a.user.Name).Msg("web: flow changed")
	s.reload()
	return row, s.lintSource(fmt.Sprintf("db:%s@%d", row.Name, row.Revision), row.Source, &row), nil
}

// defaultWorkspace is where a new flow goes when nothing says: the user's
// first workspace, or "default" for admins of every workspace.
func (a *authInfo) defaultWorkspace() string {
	if ws := a.user.Workspaces; len(ws) > 0 && a.user.Role != store.RoleAdmin {
		return ws[0]
	}
	return "default"
}

// manageableRow is the database flow name names, if a may change it.
func (s *Server) manageableRow(ctx context.Context, a *authInfo, name string) (store.FlowRow, error) {
	row, err := s.st.GetFlow(ctx, name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !a.scope().Allows(row.Workspace)) {
		if f, ok := s.set().ByName(name); ok && f.Source == "file" && a.scope().Allows(f.Workspace) {
			return row, &actionError{http.StatusConflict, "flow " + f.Name + " is a file flow: duplicate it into the database to edit it"}
		}
		return row, &actionError{http.StatusNotFound, "flow not found"}
	}
	if err != nil {
		return row, err
	}
	if !a.canManage(row.Workspace) {
		return row, &actionError{http.StatusForbidden, "only admins of workspace " + row.Workspace + " change its flows"}
	}
	return row, nil
}

// apiFlowSave saves a new revision of a database flow's source, if nobody
// saved another since the revision the editor started from.
func (s *Server) apiFlowSave(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	var body sourceBody
	if err := decodeJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if body.Revision <= 0 {
		writeError(w, http.StatusBadRequest, "revision is required: the revision the edit started from")
		return
	}
	row, err := s.manageableRow(r.Context(), a, r.PathValue("name"))
	var ae *actionError
	if errors.As(err, &ae) {
		writeError(w, ae.code, ae.msg)
		return
	} else if err != nil {
		s.storeError(w, r, err)
		return
	}
	name := row.Name
	row, err = s.st.EditFlow(r.Context(), name, body.TOML, body.Revision, a.user.Name)
	if errors.Is(err, store.ErrStale) {
		cur, gerr := s.st.GetFlow(r.Context(), name)
		if gerr != nil {
			s.storeError(w, r, gerr)
			return
		}
		writeJSON(w, http.StatusConflict, map[string]any{"error": "changed since you opened it", "current": cur.Revision,
			"toml": cur.Source, "updated_by": cur.UpdatedBy, "updated": cur.Updated})
		return
	}
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	s.log.Info().Str("flow", row.Name).Str("action", "edit").Int("revision", row.Revision).Str("user", a.user.Name).Msg("web: flow changed")
	s.reload()
	writeJSON(w, http.StatusOK, flowWithProblems{row, s.lintSource(fmt.Sprintf("db:%s@%d", row.Name, row.Revision), row.Source, &row).Problems})
}

// publishProblems refuses to publish a source with errors: they are
// returned with the refusal.
func (s *Server) publishProblems(row store.FlowRow) error {
	l := s.lintSource(fmt.Sprintf("db:%s@%d", row.Name, row.Revision), row.Source, &row)
	if !l.Errors {
		return nil
	}
	var errs []builderProblem
	for _, p := range l.Problems {
		if p.Severity == string(flows.Error) {
			errs = append(errs, p)
		}
	}
	return &publishError{msg: fmt.Sprintf("flow %s has %s: fix them before publishing", row.Name, plural(len(errs), "error")), problems: errs}
}

// publishError refuses to publish a flow with errors (409), listing them.
type publishError struct {
	msg      string
	problems []builderProblem
}

func (e *publishError) Error() string { return e.msg }

type simBody struct {
	Input  string `json:"input"`
	Agents string `json:"agents"`
	At     string `json:"at"`
	From   string `json:"from"`
	// TOML simulates this source (unsaved edits) instead of the saved one.
	TOML string `json:"toml"`
}

// apiFlowSimulate runs a flow (a draft too) against a scripted caller,
// as `callflow simulate` does: nothing is sent, no HTTP request leaves.
func (s *Server) apiFlowSimulate(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	var body simBody
	if err := decodeJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	v, _, ok, err := s.findFlow(r.Context(), a, r.PathValue("name"), false)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, "flow not found")
		return
	}
	src := body.TOML
	switch {
	case src != "":
	case v.Row != nil:
		src = v.Row.Source
	case v.Flow != nil:
		src = string(v.Flow.Raw)
	}
	l := s.lintSource("db:"+v.Name+"@simulated", src, v.Row)
	if l.Flow == nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": "the flow has errors: fix them to simulate it", "problems": l.Problems})
		return
	}
	f := l.Flow
	f.Name, f.Workspace = v.Name, v.Workspace
	script := scripted.Script{From: body.From}
	if script.Inputs, err = scripted.ParseInputs(body.Input); err != nil {
		writeError(w, http.StatusBadRequest, "input: "+err.Error())
		return
	}
	if script.Agents, script.AgentsFreeAfter, err = scripted.ParseAgentScript(body.Agents); err != nil {
		writeError(w, http.StatusBadRequest, "agents: "+err.Error())
		return
	}
	if body.At != "" {
		loc, ok := flows.ScheduleLocation(f)
		if !ok {
			loc = s.loc
		}
		if script.Start, err = flows.ParseAt(body.At, loc); err != nil {
			writeError(w, http.StatusBadRequest, "at "+err.Error())
			return
		}
	}
	// The flow beside the others, which it may transfer to.
	var others []*flows.Flow
	for _, o := range s.set().Flows() {
		if !strings.EqualFold(o.Name, f.Name) {
			others = append(others, o)
		}
	}
	set := flows.NewSet(0, append(others, f), nil)
	// Bounded: a simulated call runs on a virtual clock, but a stuck one
	// must not hold the request forever.
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	sim, err := flows.Simulate(ctx, set, f.Name, flows.SimOptions{Script: script, Country: s.opts.Country, Log: zerolog.Nop(), Outbox: &flows.Outbox{}})
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var sent []string
	for _, m := range sim.Call.Sent() {
		sent = append(sent, "text to "+m.To)
	}
	for _, m := range sim.Mail {
		sent = append(sent, "email to "+strings.Join(m.To, ", ")+": "+m.Subject)
	}
	writeJSON(w, http.StatusOK, map[string]any{"steps": flows.TraceSteps(sim.Record), "outcome": sim.Record.Outcome,
		"last_step": sim.Record.LastStep, "error": sim.Record.Error, "would_send": sent})
}

// apiApplets describes every applet and its parameters, for the builder.
func (s *Server) apiApplets(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"applets": applets.Describe(applets.Builtin())})
}

// flowTemplateInfo is a starting point for a new flow.
type flowTemplateInfo struct {
	Name        string `json:"name"` // the file's base name
	Title       string `json:"title"`
	Description string `json:"description"`
	Source      string `json:"toml"`
}

func flowTemplates() []flowTemplateInfo {
	names, _ := fs.Glob(flowTemplateFS, "templates/flows/*.toml")
	sort.Strings(names)
	var out []flowTemplateInfo
	for _, n := range names {
		b, err := flowTemplateFS.ReadFile(n)
		if err != nil {
			continue
		}
		head := readHead(b)
		out = append(out, flowTemplateInfo{Name: strings.TrimSuffix(path.Base(n), ".toml"), Title: head.Name, Description: head.Description, Source: string(b)})
	}
	return out
}

func flowTemplate(name string) (flowTemplateInfo, bool) {
	for _, t := range flowTemplates() {
		if t.Name == name {
			return t, true
		}
	}
	return flowTemplateInfo{}, false
}

// flowHead is the top of a flow's source.
type flowHead struct{ Name, Description, Workspace string }

// readHead reads the name, description and workspace of src, if it
// parses.
func readHead(src []byte) flowHead {
	doc, err := tomlpos.Parse(src)
	if err != nil {
		return flowHead{}
	}
	str := func(k string) string { v, _ := doc.Root[k].(string); return strings.TrimSpace(v) }
	return flowHead{Name: str("name"), Description: str("description"), Workspace: str("workspace")}
}
