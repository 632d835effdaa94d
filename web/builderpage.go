package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/callflow/callflow/store"
)

// builderData fills the builder page.
type builderData struct {
	Name      string
	Workspace string
	Status    string
	Revision  int
	Source    string
	Editable  bool
	FileFlow  bool   // a file flow: read-only, offered a copy in the database
	Why       string // why the flow cannot be edited here
}

// builderPage is the visual editor of one flow. Everything it changes
// goes through the JSON API; the page itself only carries the source.
func (s *Server) builderPage(w http.ResponseWriter, r *http.Request) {
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
	d := builderData{Name: v.Name, Workspace: v.Workspace, Status: v.Status}
	switch {
	case v.Row != nil:
		d.Source, d.Revision, d.Editable = v.Row.Source, v.Row.Revision, v.CanManage
		if !d.Editable {
			d.Why = "Only admins of workspace " + v.Workspace + " change its flows: you may look and simulate."
		}
	case v.Flow != nil:
		d.Source, d.FileFlow = string(v.Flow.Raw), true
		d.Why = "This flow is a file (" + v.File + "): duplicate it into the database to edit it here."
	}
	s.render(w, r, http.StatusOK, "builder", "Edit "+v.Name, d)
}

// newFlowData fills the page that starts a flow.
type newFlowData struct {
	Templates  []flowTemplateInfo
	Workspaces []string // those the user may add flows to; nil: any (admins)
	Name       string
	Workspace  string
	Template   string
	Error      string
}

func (s *Server) newFlowPage(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	if !a.isAdmin() {
		s.fail(w, r, http.StatusForbidden, "only admins add flows")
		return
	}
	s.render(w, r, http.StatusOK, "newflow", "New flow", s.newFlowData(a, "", "", "support", ""))
}

func (s *Server) newFlowData(a *authInfo, name, ws, tmpl, msg string) newFlowData {
	d := newFlowData{Templates: flowTemplates(), Name: name, Workspace: ws, Template: tmpl, Error: msg}
	if a.user.Role != store.RoleAdmin {
		d.Workspaces = a.user.Workspaces
	}
	if d.Workspace == "" {
		d.Workspace = a.defaultWorkspace()
	}
	return d
}

// newFlowForm creates a flow from a template and opens it in the builder.
func (s *Server) newFlowForm(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	name, ws, tmpl := strings.TrimSpace(r.PostFormValue("name")), strings.TrimSpace(r.PostFormValue("workspace")), r.PostFormValue("template")
	row, _, err := s.createFlow(r.Context(), a, sourceBody{Name: name, Workspace: ws, Template: tmpl})
	var ae *actionError
	switch {
	case errors.As(err, &ae):
		s.render(w, r, ae.code, "newflow", "New flow", s.newFlowData(a, name, ws, tmpl, ae.msg))
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/flows/"+pathEscape(row.Name)+"/edit", http.StatusSeeOther)
}

// copyFileFlow puts a copy of a file flow into the database, as a draft
// without numbers, and opens it in the builder.
func (s *Server) copyFileFlow(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	f, ok := s.set().ByName(r.PathValue("name"))
	if !ok || f.Source != "file" || !a.scope().Allows(f.Workspace) {
		s.fail(w, r, http.StatusNotFound, "no file flow of that name")
		return
	}
	name := "Copy of " + f.Name
	src, _ := retitle(string(f.Raw), name)
	row, _, err := s.createFlow(r.Context(), a, sourceBody{TOML: src, Name: name, Workspace: f.Workspace})
	var ae *actionError
	switch {
	case errors.As(err, &ae):
		s.fail(w, r, ae.code, ae.msg)
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/flows/"+pathEscape(row.Name)+"/edit", http.StatusSeeOther)
}
