package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/callflow/callflow/store"
)

// Passwords set on the web, as on the command line.
const (
	minPassword = 8
	maxPassword = 1000
)

func checkPassword(pw string) string {
	switch {
	case len(pw) < minPassword:
		return "A password has at least 8 characters."
	case len(pw) > maxPassword:
		return "That password is too long."
	}
	return ""
}

// roles in the order forms offer them.
var roles = []store.Role{store.RoleStaff, store.RoleWorkspaceAdmin, store.RoleAdmin}

type usersData struct {
	Users      []store.User
	Tokens     map[string]int
	Workspaces []string
	Roles      []store.Role
	Message    string
	Error      string
	Form       newUserForm
}

type newUserForm struct {
	Name, Role, Workspaces string
}

// superAdmin answers 403 unless the user administers every workspace:
// user administration is theirs alone.
func (s *Server) superAdmin(w http.ResponseWriter, r *http.Request) (*authInfo, bool) {
	a := auth(r)
	if a.user.Role != store.RoleAdmin {
		s.fail(w, r, http.StatusForbidden, "only admins manage users")
		return a, false
	}
	return a, true
}

var userMessages = map[string]string{
	"created":  "User created.",
	"saved":    "Role and workspaces saved.",
	"password": "Password reset: their sessions ended and their API tokens were revoked.",
	"disabled": "User disabled: their sessions ended and their API tokens were revoked.",
	"enabled":  "User enabled.",
	"revoked":  "Token revoked.",
	"zone":     "Time zone saved.",
	"mine":     "Password changed: your other sessions ended and your API tokens were revoked.",
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.superAdmin(w, r); !ok {
		return
	}
	s.renderUsers(w, r, http.StatusOK, userMessages[r.URL.Query().Get("msg")], "", newUserForm{Role: string(store.RoleStaff)})
}

func (s *Server) renderUsers(w http.ResponseWriter, r *http.Request, code int, msg, errMsg string, form newUserForm) {
	users, err := s.st.ListUsers(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	toks, err := s.st.ListTokens(r.Context(), "")
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d := usersData{Users: users, Tokens: map[string]int{}, Roles: roles, Message: msg, Error: errMsg, Form: form}
	for _, t := range toks {
		d.Tokens[t.User]++
	}
	if d.Workspaces, err = s.workspaceNames(r); err != nil {
		s.internal(w, r, err)
		return
	}
	s.render(w, r, code, "users", "Users", d)
}

func (s *Server) workspaceNames(r *http.Request) ([]string, error) {
	ws, err := s.st.ListWorkspaces(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.Name)
	}
	return out, nil
}

// formWorkspaces reads workspaces typed as a list.
func formWorkspaces(v string) []string {
	out := []string{}
	for _, w := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == ';' || r == '\n' || r == '\r' || r == '\t' }) {
		out = append(out, w)
	}
	return out
}

func (s *Server) userCreateForm(w http.ResponseWriter, r *http.Request) {
	a, ok := s.superAdmin(w, r)
	if !ok {
		return
	}
	form := newUserForm{Name: strings.TrimSpace(r.PostFormValue("name")), Role: r.PostFormValue("role"), Workspaces: r.PostFormValue("workspaces")}
	pw := r.PostFormValue("password")
	fail := func(msg string) { s.renderUsers(w, r, http.StatusBadRequest, "", msg, form) }
	switch {
	case form.Name == "" || len(form.Name) > 100 || strings.ContainsAny(form.Name, "/\\\x00\r\n\t"):
		fail("A user name is 1 to 100 characters, without slashes or line breaks.")
		return
	case !store.Role(form.Role).Valid():
		fail("Choose a role.")
		return
	case checkPassword(pw) != "":
		fail(checkPassword(pw))
		return
	}
	_, err := s.st.CreateUser(r.Context(), store.NewUser{Name: form.Name, Password: pw, Role: store.Role(form.Role),
		Workspaces: formWorkspaces(form.Workspaces), By: a.user.Name})
	switch {
	case errors.Is(err, store.ErrExists):
		s.renderUsers(w, r, http.StatusConflict, "", "There is a user "+form.Name+" already.", form)
		return
	case errors.Is(err, store.ErrInvalid):
		fail(trimStore(err))
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	s.log.Info().Str("user", form.Name).Str("by", a.user.Name).Msg("web: user created")
	http.Redirect(w, r, "/users/"+url.PathEscape(form.Name)+"?msg=created", http.StatusSeeOther)
}

type userData struct {
	U          store.User
	Tokens     []store.Token
	Audit      []store.AuditEntry
	Workspaces []string
	Roles      []store.Role
	Self       bool
	Message    string
	Error      string
}

func (s *Server) userPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.superAdmin(w, r); !ok {
		return
	}
	s.renderUser(w, r, http.StatusOK, userMessages[r.URL.Query().Get("msg")], "")
}

func (s *Server) renderUser(w http.ResponseWriter, r *http.Request, code int, msg, errMsg string) {
	name := r.PathValue("name")
	u, err := s.st.GetUser(r.Context(), name)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	d := userData{U: u, Roles: roles, Self: u.Name == auth(r).user.Name, Message: msg, Error: errMsg}
	if d.Tokens, err = s.st.UserTokens(r.Context(), name); err == nil {
		if d.Audit, err = s.st.Audit(r.Context(), name, 50); err == nil {
			d.Workspaces, err = s.workspaceNames(r)
		}
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	s.render(w, r, code, "user", "User "+u.Name, d)
}

// userForm applies the admin forms of one user's page.
func (s *Server) userForm(w http.ResponseWriter, r *http.Request) {
	a, ok := s.superAdmin(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	self := name == a.user.Name
	var (
		ch  store.UserChange
		msg string
	)
	switch r.PathValue("action") {
	case "edit":
		role := store.Role(r.PostFormValue("role"))
		ws := formWorkspaces(r.PostFormValue("workspaces"))
		if self && role != a.user.Role {
			s.renderUser(w, r, http.StatusBadRequest, "", "You cannot change your own role: ask another admin.")
			return
		}
		ch, msg = store.UserChange{Role: &role, Workspaces: &ws}, "saved"
	case "password":
		pw := r.PostFormValue("password")
		if m := checkPassword(pw); m != "" {
			s.renderUser(w, r, http.StatusBadRequest, "", m)
			return
		}
		ch, msg = store.UserChange{Password: &pw}, "password"
	case "disable", "enable":
		off := r.PathValue("action") == "disable"
		if self && off {
			s.renderUser(w, r, http.StatusBadRequest, "", "You cannot disable yourself.")
			return
		}
		ch, msg = store.UserChange{Disabled: &off}, r.PathValue("action")+"d"
	case "revoke":
		s.revokeToken(w, r, a, name, "/users/"+url.PathEscape(name))
		return
	default:
		s.fail(w, r, http.StatusNotFound, "not found")
		return
	}
	invalid := func(msg string) { s.renderUser(w, r, http.StatusBadRequest, "", msg) }
	if !s.changeUser(w, r, a, name, ch, invalid) {
		return
	}
	http.Redirect(w, r, "/users/"+url.PathEscape(name)+"?msg="+msg, http.StatusSeeOther)
}

// changeUser applies ch to name as a, answering the errors (a refused
// change by invalid). When a changes their own password the other
// sessions end but this one goes on, at the new generation.
func (s *Server) changeUser(w http.ResponseWriter, r *http.Request, a *authInfo, name string, ch store.UserChange, invalid func(msg string)) bool {
	up, err := s.st.UpdateUser(r.Context(), name, ch, a.user.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, "user not found")
		return false
	case errors.Is(err, store.ErrInvalid):
		invalid(trimStore(err))
		return false
	case err != nil:
		s.internal(w, r, err)
		return false
	}
	if up.SessionsEnded {
		s.log.Info().Str("user", name).Str("by", a.user.Name).Int("tokens_revoked", up.TokensRevoked).Msg("web: user's sessions ended")
		if name == a.user.Name && !a.token {
			s.startSession(w, r, up.User) // the old one is of the old generation
		}
	}
	return true
}

// revokeToken revokes the token named by the form's `token` (its ID) of
// user name, then goes back.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, a *authInfo, name, back string) {
	id, err := strconv.ParseInt(r.PostFormValue("token"), 10, 64)
	if err != nil || id <= 0 {
		s.fail(w, r, http.StatusBadRequest, "which token?")
		return
	}
	if _, err = s.st.RevokeUserToken(r.Context(), name, strconv.FormatInt(id, 10), a.user.Name); err != nil {
		s.storeError(w, r, err)
		return
	}
	s.log.Info().Str("user", name).Int64("token", id).Str("by", a.user.Name).Msg("web: token revoked")
	http.Redirect(w, r, back+"?msg=revoked", http.StatusSeeOther)
}
