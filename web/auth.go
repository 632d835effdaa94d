package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callflow/callflow/store"
)

const (
	sessionCookie = "callflow_session"
	loginCookie   = "callflow_login" // double-submit token of the login form
	csrfField     = "csrf"
	csrfHeader    = "X-CSRF-Token"
)

// authInfo is who made a request.
type authInfo struct {
	user    store.User
	session session // zero for token requests
	csrf    string  // the session's CSRF token
	token   bool    // authenticated by an API token: no CSRF applies
}

type authKey struct{}

// auth returns the request's authentication; the gate in ServeHTTP
// guarantees one on every non-public route.
func auth(r *http.Request) *authInfo {
	a, _ := r.Context().Value(authKey{}).(*authInfo)
	if a == nil {
		panic("web: route reached without authentication")
	}
	return a
}

func (a *authInfo) scope() store.Scope { return a.user.Scope() }

// isAdmin: admin or workspace admin (within their scope).
func (a *authInfo) isAdmin() bool {
	return a.user.Role == store.RoleAdmin || a.user.Role == store.RoleWorkspaceAdmin
}

// canManage reports whether the user may change things in workspace ws.
func (a *authInfo) canManage(ws string) bool {
	return a.isAdmin() && a.scope().Allows(ws)
}

// session is the signed content of the session cookie. Cookies are
// stateless so that a configured key keeps people logged in across
// restarts; logout revokes the ID in memory for the rest of its life (a
// restart forgets revocations, which the expiry then bounds).
type session struct {
	ID   string `json:"i"`
	User string `json:"u"`
	Exp  int64  `json:"e"` // unix seconds
	// Gen is the user's generation at login: a new password, a lower
	// role or disabling moves it on, and the session ends.
	Gen int64 `json:"g,omitempty"`
	// UID is the user's ID: a user removed and made again under the same
	// name is someone else.
	UID int64 `json:"n,omitempty"`
}

func (s *Server) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

func (s *Server) encodeSession(ss session) string {
	b, _ := json.Marshal(ss)
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.mac("session", p))
}

func (s *Server) decodeSession(v string) (session, bool) {
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return session{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac("session", p)) {
		return session{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return session{}, false
	}
	var ss session
	if json.Unmarshal(b, &ss) != nil || ss.ID == "" || ss.User == "" {
		return session{}, false
	}
	if s.now().Unix() >= ss.Exp || s.revoked.has(ss.ID) {
		return session{}, false
	}
	return ss, true
}

// csrfToken is bound to the session: a synchronizer token that needs no
// server-side state.
func (s *Server) csrfToken(ss session) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("csrf", ss.ID))
}

func (s *Server) csrfOK(r *http.Request, a *authInfo) bool {
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(a.csrf)) == 1
}

// authenticate finds the user behind a request: an API bearer token
// (under /api/ only), else the session cookie. The user is read from the
// store every time, so role and workspace changes apply at once, and a
// session of an earlier generation (before a new password, say) or of a
// disabled user is none.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*authInfo, int, string) {
	if h := r.Header.Get("Authorization"); h != "" && isAPI(r.URL.Path) {
		return s.bearer(r, h)
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, http.StatusUnauthorized, "login required"
	}
	ss, ok := s.decodeSession(c.Value)
	if !ok {
		s.clearCookie(w, r, sessionCookie, "/")
		return nil, http.StatusUnauthorized, "login required"
	}
	u, err := s.st.GetUser(r.Context(), ss.User)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error().Err(err).Msg("web: loading the session's user")
		return nil, http.StatusInternalServerError, "internal error"
	}
	if err != nil || u.Disabled || u.Generation != ss.Gen || (ss.UID != 0 && ss.UID != u.ID) {
		s.clearCookie(w, r, sessionCookie, "/")
		return nil, http.StatusUnauthorized, "login required"
	}
	return &authInfo{user: u, session: ss, csrf: s.csrfToken(ss)}, 0, ""
}

// bearer checks an Authorization header; the scheme's case does not
// matter (RFC 9110).
func (s *Server) bearer(r *http.Request, h string) (*authInfo, int, string) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "bearer") {
		return nil, http.StatusUnauthorized, "authorization must be a bearer token"
	}
	u, err := s.st.VerifyToken(r.Context(), strings.TrimSpace(tok))
	if err != nil {
		if !errors.Is(err, store.ErrBadCredentials) && !errors.Is(err, store.ErrNotFound) {
			s.log.Error().Err(err).Msg("web: verifying a token")
			return nil, http.StatusInternalServerError, "internal error"
		}
		return nil, http.StatusUnauthorized, "invalid token"
	}
	return &authInfo{user: u, token: true}, 0, ""
}

// signedIn reports whether a request on a public path carries a valid
// session or API token.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request) bool {
	if h := r.Header.Get("Authorization"); h != "" {
		a, _, _ := s.bearer(r, h)
		return a != nil
	}
	if _, err := r.Cookie(sessionCookie); err != nil {
		return false
	}
	a, _, _ := s.authenticate(w, r)
	return a != nil
}

// startSession logs u in on this browser: a fresh session at the user's
// current generation.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u store.User) session {
	ss := session{ID: randomToken(), User: u.Name, Exp: s.now().Add(s.opts.SessionTTL).Unix(), Gen: u.Generation, UID: u.ID}
	s.setCookie(w, r, sessionCookie, s.encodeSession(ss), "/", s.opts.SessionTTL, http.SameSiteLaxMode)
	return ss
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge time.Duration, mode http.SameSite) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, Secure: s.secure(r), SameSite: mode,
	})
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request, name, path string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1, HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
}

func randomToken() string {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// loginData fills the login form.
type loginData struct {
	Name  string
	Next  string
	CSRF  string
	Error string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if c, err := r.Cookie(sessionCookie); err == nil {
		if _, ok := s.decodeSession(c.Value); ok {
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
	}
	s.renderLogin(w, r, http.StatusOK, loginData{Next: next})
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, code int, d loginData) {
	// Keep the token of an earlier login page: a second tab (or the
	// browser fetching something else through the login redirect) must
	// not invalidate the form already shown.
	tok := ""
	if c, err := r.Cookie(loginCookie); err == nil && len(c.Value) == 24 {
		tok = c.Value
	}
	if tok == "" {
		tok = randomToken()
	}
	s.setCookie(w, r, loginCookie, tok, "/login", time.Hour, http.SameSiteStrictMode)
	d.CSRF = tok
	s.render(w, r, code, "login", "Log in", d)
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	password := r.PostFormValue("password")
	d := loginData{Name: name, Next: safeNext(r.PostFormValue("next"))}

	// Double-submit check: a login forged from another site cannot read
	// or set our cookie.
	c, err := r.Cookie(loginCookie)
	if form := r.PostFormValue(csrfField); err != nil || form == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) != 1 {
		d.Error = "The form expired. Please try again."
		s.renderLogin(w, r, http.StatusForbidden, d)
		return
	}
	if name == "" || password == "" || len(name) > 200 || len(password) > 1000 {
		d.Error = "Enter your name and password."
		s.renderLogin(w, r, http.StatusUnauthorized, d)
		return
	}

	ip := s.opts.ClientIP(r)
	done, wait := s.limiter.begin(loginKeys(name, ip)...)
	if wait > 0 {
		s.tooMany(w, r, wait, d)
		return
	}
	select {
	case s.verifying <- struct{}{}:
	default:
		done(false, false)
		s.tooMany(w, r, time.Second, d)
		return
	}
	u, err := s.st.VerifyPassword(r.Context(), name, password)
	<-s.verifying
	switch {
	case errors.Is(err, store.ErrBadCredentials):
		done(false, true)
		s.log.Warn().Str("user", name).Str("ip", ip).Msg("web: failed login")
		d.Error = "Wrong name or password."
		s.renderLogin(w, r, http.StatusUnauthorized, d)
		return
	case errors.Is(err, store.ErrDisabled):
		done(true, false) // the password was right: no guessing here
		s.log.Warn().Str("user", name).Str("ip", ip).Msg("web: login of a disabled user")
		d.Error = "This account is disabled. Ask an admin."
		s.renderLogin(w, r, http.StatusForbidden, d)
		return
	case err != nil:
		done(false, false)
		s.internal(w, r, err)
		return
	}
	done(true, false)
	s.startSession(w, r, u)
	s.clearCookie(w, r, loginCookie, "/login")
	s.log.Info().Str("user", u.Name).Str("ip", ip).Msg("web: login")
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, d loginData) {
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	d.Error = fmt.Sprintf("Too many attempts. Try again in %s.", plural(secs, "second"))
	s.renderLogin(w, r, http.StatusTooManyRequests, d)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	if !a.token {
		s.revoked.add(a.session.ID, time.Unix(a.session.Exp, 0), s.now())
	}
	s.clearCookie(w, r, sessionCookie, "/")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps redirects after login on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(next, "/login") {
		return "/voicemails"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/voicemails"
	}
	return next
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// revocations remembers logged-out session IDs until they expire.
type revocations struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (rv *revocations) add(id string, exp, now time.Time) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	for k, e := range rv.m {
		if now.After(e) {
			delete(rv.m, k)
		}
	}
	rv.m[id] = exp
}

func (rv *revocations) has(id string) bool {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	_, ok := rv.m[id]
	return ok
}
