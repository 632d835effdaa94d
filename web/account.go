package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/callflow/callflow/store"
)

type accountData struct {
	U          store.User
	Tokens     []store.Token
	Zone       string // in use now
	ZoneSource string
	Message    string
	Error      string
}

// accountPage is everyone's own settings: time zone, password, tokens.
func (s *Server) accountPage(w http.ResponseWriter, r *http.Request) {
	s.renderAccount(w, r, http.StatusOK, userMessages[r.URL.Query().Get("msg")], "")
}

func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, code int, msg, errMsg string) {
	a := auth(r)
	toks, err := s.st.UserTokens(r.Context(), a.user.Name)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	loc, src := s.zone(r)
	s.render(w, r, code, "account", "Your account", accountData{U: a.user, Tokens: toks, Zone: loc.String(), ZoneSource: src, Message: msg, Error: errMsg})
}

func (s *Server) accountInvalid(w http.ResponseWriter, r *http.Request) func(string) {
	return func(msg string) { s.renderAccount(w, r, http.StatusBadRequest, "", msg) }
}

func (s *Server) accountForm(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	switch r.PathValue("action") {
	case "zone":
		tz := strings.TrimSpace(r.PostFormValue("time_zone"))
		if tz != "" && s.zones.load(tz) == nil {
			s.renderAccount(w, r, http.StatusBadRequest, "", "Unknown time zone "+tz+": use a name like Europe/Paris or America/New_York.")
			return
		}
		if !s.changeUser(w, r, a, a.user.Name, store.UserChange{TimeZone: &tz}, s.accountInvalid(w, r)) {
			return
		}
		http.Redirect(w, r, "/account?msg=zone", http.StatusSeeOther)
	case "password":
		s.changeOwnPassword(w, r, a)
	case "revoke":
		s.revokeToken(w, r, a, a.user.Name, "/account")
	default:
		s.fail(w, r, http.StatusNotFound, "not found")
	}
}

// changeOwnPassword needs the current password, so that a session left
// open somewhere cannot take the account over; guesses of it count
// against the login limits.
func (s *Server) changeOwnPassword(w http.ResponseWriter, r *http.Request, a *authInfo) {
	current, pw := r.PostFormValue("current"), r.PostFormValue("password")
	if m := checkPassword(pw); m != "" {
		s.renderAccount(w, r, http.StatusBadRequest, "", m)
		return
	}
	if pw != r.PostFormValue("again") {
		s.renderAccount(w, r, http.StatusBadRequest, "", "The new passwords differ.")
		return
	}
	done, wait := s.limiter.begin(loginKeys(a.user.Name, s.opts.ClientIP(r))...)
	if wait > 0 {
		s.renderAccount(w, r, http.StatusTooManyRequests, "", "Too many attempts. Try again later.")
		return
	}
	_, err := s.st.VerifyPassword(r.Context(), a.user.Name, current)
	if errors.Is(err, store.ErrBadCredentials) {
		done(false, true)
		s.renderAccount(w, r, http.StatusForbidden, "", "Your current password is not that.")
		return
	}
	if err != nil {
		done(false, false)
		s.internal(w, r, err)
		return
	}
	done(true, false)
	if !s.changeUser(w, r, a, a.user.Name, store.UserChange{Password: &pw}, s.accountInvalid(w, r)) {
		return
	}
	http.Redirect(w, r, "/account?msg=mine", http.StatusSeeOther)
}
