package web

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/store"
)

// vmForm is the inbox filter as the user set it.
type vmForm struct {
	Mailbox, Flow, Caller, From, To, Heard, Show string
}

// voicemailFilter reads the inbox filter; days are in loc. Only admins
// may look in the bin (show=bin) or at everything (show=all); for others
// those are refused in the API and ignored on pages.
func (s *Server) voicemailFilter(a *authInfo, q url.Values, api bool, loc *time.Location) (store.VoicemailFilter, vmForm, error) {
	form := vmForm{Mailbox: strings.TrimSpace(q.Get("mailbox")), Flow: strings.TrimSpace(q.Get("flow")), Caller: strings.TrimSpace(q.Get("caller")),
		From: q.Get("from"), To: q.Get("to"), Heard: q.Get("heard"), Show: q.Get("show")}
	f := store.VoicemailFilter{Scope: a.scope(), Mailbox: form.Mailbox, Flow: form.Flow}
	if api {
		f.CallID = strings.TrimSpace(q.Get("call_id"))
	}
	var err error
	if f.Caller, err = numberParam(q, "caller"); err != nil {
		return f, form, err
	}
	if f.From, f.To, err = dateRange(q, loc); err != nil {
		return f, form, err
	}
	switch form.Heard {
	case "":
	case "yes", "true", "1":
		t := true
		f.Heard = &t
	case "no", "false", "0":
		t := false
		f.Heard = &t
	default:
		return f, form, errors.New("heard must be yes or no")
	}
	if api {
		// The API names it `deleted`: include or only.
		switch q.Get("deleted") {
		case "":
		case "include":
			form.Show = "all"
		case "only":
			form.Show = "bin"
		default:
			return f, form, errors.New("deleted must be include or only")
		}
	}
	switch form.Show {
	case "":
	case "bin", "all":
		if !a.isAdmin() {
			if api {
				return f, form, errForbidden
			}
			form.Show = ""
			break
		}
		f.OnlyDeleted = form.Show == "bin"
		f.IncludeDeleted = form.Show == "all"
	default:
		form.Show = ""
	}
	return f, form, nil
}

var errForbidden = errors.New("only admins may see deleted voicemails")

type voicemailsData struct {
	Items     []store.Voicemail
	Pager     pager
	Form      vmForm
	Mailboxes []string
	Flows     []string
	Admin     bool
	Back      string
	// Workspaces: the user sees more than one, so rows say whose.
	Workspaces bool
}

// manyWorkspaces reports whether the user sees more than one workspace.
func manyWorkspaces(a *authInfo) bool {
	sc := a.scope()
	return sc.All || len(sc.Workspaces) > 1
}

func (s *Server) voicemailsPage(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	q := r.URL.Query()
	loc, _ := s.zone(r)
	f, form, err := s.voicemailFilter(a, q, false, loc)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	page := pageOf(q)
	f.Limit, f.Offset = pageSize, (page-1)*pageSize
	items, total, err := s.st.ListVoicemails(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	fl := s.scopedFlows(a)
	d := voicemailsData{Items: items, Pager: makePager(r, page, total), Form: form,
		Mailboxes: mailboxes(fl), Flows: flowNames(fl), Admin: a.isAdmin(), Back: r.URL.RequestURI(), Workspaces: manyWorkspaces(a)}
	title := "Voicemail"
	if form.Show == "bin" {
		title = "Deleted voicemail"
	}
	s.render(w, r, http.StatusOK, "voicemails", title, d)
}

// scopedFlows are the loaded flows the user may see.
func (s *Server) scopedFlows(a *authInfo) []*flows.Flow {
	sc := a.scope()
	var out []*flows.Flow
	for _, f := range s.set().Flows() {
		if sc.Allows(f.Workspace) {
			out = append(out, f)
		}
	}
	return out
}

func flowNames(fl []*flows.Flow) []string {
	out := make([]string, 0, len(fl))
	for _, f := range fl {
		out = append(out, f.Name)
	}
	return out
}

func mailboxes(fl []*flows.Flow) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range fl {
		for _, st := range f.Steps {
			for _, m := range st.Facts.Mailboxes {
				if !seen[m] {
					seen[m] = true
					out = append(out, m)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// loadVoicemail finds the voicemail of the {id} path value in the user's
// scope. Another workspace's voicemail is 404, exactly like a missing one,
// and so is a deleted one for staff.
func (s *Server) loadVoicemail(w http.ResponseWriter, r *http.Request) (store.Voicemail, bool) {
	a := auth(r)
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.fail(w, r, http.StatusNotFound, "voicemail not found")
		return store.Voicemail{}, false
	}
	vm, err := s.st.GetVoicemail(r.Context(), id, a.scope())
	if errors.Is(err, store.ErrNotFound) || (err == nil && vm.Deleted && !a.isAdmin()) {
		s.fail(w, r, http.StatusNotFound, "voicemail not found")
		return store.Voicemail{}, false
	}
	if err != nil {
		s.internal(w, r, err)
		return store.Voicemail{}, false
	}
	return vm, true
}

type voicemailData struct {
	VM    store.Voicemail
	Admin bool
	Back  string
}

func (s *Server) voicemailPage(w http.ResponseWriter, r *http.Request) {
	vm, ok := s.loadVoicemail(w, r)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "voicemail", "Voicemail from "+or(vm.Caller, "unknown caller"),
		voicemailData{VM: vm, Admin: auth(r).isAdmin(), Back: r.URL.RequestURI()})
}

func (s *Server) voicemailHeardForm(w http.ResponseWriter, r *http.Request) {
	vm, ok := s.loadVoicemail(w, r)
	if !ok {
		return
	}
	a := auth(r)
	heard := r.PostFormValue("heard") != "0"
	if err := s.st.MarkHeard(r.Context(), vm.ID, a.scope(), a.user.Name, heard); err != nil {
		s.storeError(w, r, err)
		return
	}
	http.Redirect(w, r, backTo(r, "/voicemails"), http.StatusSeeOther)
}

func (s *Server) voicemailDeleteForm(w http.ResponseWriter, r *http.Request) {
	vm, ok := s.deleteVoicemail(w, r)
	if !ok {
		return
	}
	a := auth(r)
	back := backTo(r, "/voicemails")
	if strings.HasPrefix(back, "/voicemails/"+strconv.FormatInt(vm.ID, 10)) && !a.isAdmin() {
		back = "/voicemails" // staff no longer see it
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (s *Server) voicemailRestoreForm(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	if !a.isAdmin() {
		s.fail(w, r, http.StatusForbidden, "only admins restore voicemails")
		return
	}
	vm, ok := s.loadVoicemail(w, r)
	if !ok {
		return
	}
	if err := s.st.RestoreVoicemail(r.Context(), vm.ID, a.scope()); err != nil {
		s.storeError(w, r, err)
		return
	}
	s.log.Info().Int64("voicemail", vm.ID).Str("user", a.user.Name).Msg("web: voicemail restored")
	http.Redirect(w, r, backTo(r, "/voicemails"), http.StatusSeeOther)
}

// storeError maps the store's errors to statuses.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, trimStore(err))
	case errors.Is(err, store.ErrNumberTaken), errors.Is(err, store.ErrFlowHasNumbers), errors.Is(err, store.ErrExists):
		s.fail(w, r, http.StatusConflict, trimStore(err))
	case errors.Is(err, store.ErrInvalid):
		s.fail(w, r, http.StatusBadRequest, trimStore(err))
	default:
		s.internal(w, r, err)
	}
}

// trimStore drops the package prefix from a store error for people.
func trimStore(err error) string {
	return strings.ReplaceAll(err.Error(), "store: ", "")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// voicemailJSON is a voicemail as the API shows it (no server paths).
type voicemailJSON struct {
	ID              int64     `json:"id"`
	CallID          string    `json:"call_id,omitempty"`
	Mailbox         string    `json:"mailbox"`
	Workspace       string    `json:"workspace"`
	Caller          string    `json:"caller"`
	Called          string    `json:"called"`
	Flow            string    `json:"flow"`
	Step            string    `json:"step"`
	DurationSeconds float64   `json:"duration_seconds"`
	Recording       string    `json:"recording"`
	Created         time.Time `json:"created"`
	Heard           bool      `json:"heard"`
	HeardBy         string    `json:"heard_by,omitempty"`
	HeardAt         time.Time `json:"heard_at,omitzero"`
	Deleted         bool      `json:"deleted"`
	DeletedBy       string    `json:"deleted_by,omitempty"`
	DeletedAt       time.Time `json:"deleted_at,omitzero"`
	Recovered       bool      `json:"recovered,omitempty"`
	AudioURL        string    `json:"audio_url"`
	DownloadURL     string    `json:"download_url"`
}

func (s *Server) voicemailJSON(v store.Voicemail) voicemailJSON {
	audio := s.opts.BaseURL + "/api/voicemails/" + strconv.FormatInt(v.ID, 10) + "/audio"
	return voicemailJSON{
		ID: v.ID, CallID: v.CallID, Mailbox: v.Mailbox, Workspace: v.Workspace, Caller: v.Caller, Called: v.Called,
		Flow: v.Flow, Step: v.Step, DurationSeconds: v.Duration.Seconds(), Recording: v.Recording, Created: v.Created,
		Heard: v.Heard, HeardBy: v.HeardBy, HeardAt: v.HeardAt, Deleted: v.Deleted, DeletedBy: v.DeletedBy, DeletedAt: v.DeletedAt,
		Recovered: v.Recovered, AudioURL: audio, DownloadURL: audio + "?download=1",
	}
}

type listJSON[T any] struct {
	Items  []T `json:"items"`
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

func (s *Server) apiVoicemails(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	q := r.URL.Query()
	f, _, err := s.voicemailFilter(a, q, true, s.loc)
	if errors.Is(err, errForbidden) {
		writeError(w, http.StatusForbidden, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if f.Limit, f.Offset, err = limitOffset(q); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	items, total, err := s.st.ListVoicemails(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := listJSON[voicemailJSON]{Items: []voicemailJSON{}, Total: total, Limit: f.Limit, Offset: f.Offset}
	for _, v := range items {
		out.Items = append(out.Items, s.voicemailJSON(v))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiVoicemail(w http.ResponseWriter, r *http.Request) {
	vm, ok := s.loadVoicemail(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.voicemailJSON(vm))
}

// reloadVoicemail answers the voicemail as it is after a change.
func (s *Server) reloadVoicemail(w http.ResponseWriter, r *http.Request, id int64, code int) {
	vm, err := s.st.GetVoicemail(r.Context(), id, auth(r).scope())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, code, s.voicemailJSON(vm))
}

func (s *Server) apiVoicemailHeard(w http.ResponseWriter, r *http.Request) {
	vm, ok := s.loadVoicemail(w, r)
	if !ok {
		return
	}
	a := auth(r)
	if err := s.st.MarkHeard(r.Context(), vm.ID, a.scope(), a.user.Name, r.Method == http.MethodPost); err != nil {
		s.storeError(w, r, err)
		return
	}
	s.reloadVoicemail(w, r, vm.ID, http.StatusOK)
}

func (s *Server) apiVoicemailDelete(w http.ResponseWriter, r *http.Request) {
	vm, ok := s.deleteVoicemail(w, r)
	if !ok {
		return
	}
	a := auth(r)
	if !a.isAdmin() {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.reloadVoicemail(w, r, vm.ID, http.StatusOK)
}

func (s *Server) apiVoicemailRestore(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	if !a.isAdmin() {
		writeError(w, http.StatusForbidden, "only admins restore voicemails")
		return
	}
	vm, ok := s.loadVoicemail(w, r)
	if !ok {
		return
	}
	if err := s.st.RestoreVoicemail(r.Context(), vm.ID, a.scope()); err != nil {
		s.storeError(w, r, err)
		return
	}
	s.log.Info().Int64("voicemail", vm.ID).Str("user", a.user.Name).Msg("web: voicemail restored")
	s.reloadVoicemail(w, r, vm.ID, http.StatusOK)
}

// apiVoicemailSummary is what open pages poll: how many messages, how
// many unheard, the newest.
func (s *Server) apiVoicemailSummary(w http.ResponseWriter, r *http.Request) {
	sum, err := s.st.SummarizeVoicemails(r.Context(), auth(r).scope())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sum)
}

func (s *Server) apiMe(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	u := a.user
	writeJSON(w, http.StatusOK, map[string]any{
		"name": u.Name, "role": u.Role, "workspaces": u.Workspaces, "all_workspaces": u.Role == store.RoleAdmin,
		"auth": map[bool]string{true: "token", false: "session"}[a.token],
	})
}

// deleteVoicemail deletes the voicemail the request names (the form and the
// API alike); false means the response is written.
func (s *Server) deleteVoicemail(w http.ResponseWriter, r *http.Request) (store.Voicemail, bool) {
	vm, ok := s.loadVoicemail(w, r)
	if !ok {
		return vm, false
	}
	a := auth(r)
	if err := s.st.DeleteVoicemail(r.Context(), vm.ID, a.scope(), a.user.Name); err != nil {
		s.storeError(w, r, err)
		return vm, false
	}
	s.log.Info().Int64("voicemail", vm.ID).Str("user", a.user.Name).Msg("web: voicemail deleted")
	return vm, true
}
