package web

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/store"
)

// stillIn reports whether a client's session still opens a page.
func stillIn(t *testing.T, c *client) bool {
	t.Helper()
	resp, _ := c.get("/calls")
	return resp.StatusCode == http.StatusOK
}

func tokenWorks(t *testing.T, f *fixture, tok string) bool {
	t.Helper()
	resp, _ := f.anon().api("GET", "/api/me", tok, nil)
	return resp.StatusCode == http.StatusOK
}

func TestPasswordChangeEndsOtherSessionsAndRevokesTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	laptop, phone := f.login("alice"), f.login("alice")
	tok, _, _ := f.st.CreateToken(ctx, "alice", "crm")

	// Alice changes her own password on the laptop: the phone is logged
	// out, the token revoked, the laptop stays in.
	resp, body := laptop.post("/account/password", url.Values{"current": {"pw-alice"}, "password": {"a new secret"}, "again": {"a new secret"}})
	wantStatus(t, "change own password", resp, http.StatusSeeOther)
	if !stillIn(t, laptop) {
		t.Error("the session that changed the password was ended")
	}
	if stillIn(t, phone) {
		t.Error("another session survived the new password")
	}
	if tokenWorks(t, f, tok) {
		t.Error("a token survived the new password")
	}
	_, body = laptop.get("/account?msg=mine")
	if !strings.Contains(body, "your other sessions ended") {
		t.Error("no word of what the change did")
	}
	// The laptop's new CSRF token works; the wrong current password does not.
	laptop.csrf = csrfMetaRe.FindStringSubmatch(body)[1]
	resp, _ = laptop.post("/account/password", url.Values{"current": {"pw-alice"}, "password": {"another one"}, "again": {"another one"}})
	wantStatus(t, "wrong current password", resp, http.StatusForbidden)
	resp, _ = laptop.post("/account/password", url.Values{"current": {"a new secret"}, "password": {"short"}, "again": {"short"}})
	wantStatus(t, "short password", resp, http.StatusBadRequest)

	// An admin resets it: every session of alice ends.
	tok2, _, _ := f.st.CreateToken(ctx, "alice", "crm2")
	admin := f.login("admin")
	resp, _ = admin.post("/users/alice/password", url.Values{"password": {"reset by admin"}})
	wantStatus(t, "admin resets", resp, http.StatusSeeOther)
	if stillIn(t, laptop) || tokenWorks(t, f, tok2) {
		t.Error("alice's session or token survived the reset")
	}
	if !stillIn(t, admin) {
		t.Error("the admin was logged out")
	}
	if _, err := f.st.VerifyPassword(ctx, "alice", "reset by admin"); err != nil {
		t.Errorf("new password: %v", err)
	}
}

func TestASessionDoesNotOutliveItsUser(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.login("alice")
	if err := f.st.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.CreateUser(ctx, store.NewUser{Name: "alice", Password: "someone else", Role: store.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	if stillIn(t, alice) {
		t.Error("the old alice's session opens the new alice's account")
	}
}

func TestLoweringARoleEndsSessionsRaisingDoesNot(t *testing.T) {
	f := newFixture(t)
	admin := f.login("admin")
	wendy := f.login("wendy")
	tok, _, _ := f.st.CreateToken(context.Background(), "wendy", "crm")
	resp, _ := admin.post("/users/wendy/edit", url.Values{"role": {"workspace_admin"}, "workspaces": {"acme, globex"}})
	wantStatus(t, "more workspaces", resp, http.StatusSeeOther)
	if !stillIn(t, wendy) || !tokenWorks(t, f, tok) {
		t.Error("adding a workspace ended wendy's session or token")
	}
	resp, _ = admin.post("/users/wendy/edit", url.Values{"role": {"staff"}, "workspaces": {"acme"}})
	wantStatus(t, "lower role", resp, http.StatusSeeOther)
	if stillIn(t, wendy) || tokenWorks(t, f, tok) {
		t.Error("wendy's session or token survived a lower role")
	}
	u, _ := f.st.GetUser(context.Background(), "wendy")
	if u.Role != store.RoleStaff || strings.Join(u.Workspaces, ",") != "acme" || u.UpdatedBy != "admin" {
		t.Errorf("wendy now %+v", u)
	}
	wendy = f.login("wendy")
	resp, _ = admin.post("/users/wendy/edit", url.Values{"role": {"admin"}, "workspaces": {""}})
	wantStatus(t, "higher role", resp, http.StatusSeeOther)
	if !stillIn(t, wendy) {
		t.Error("a higher role ended the session")
	}
}

func TestUserAdministrationForAdmins(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.login("admin")

	// Only admins of every workspace manage users.
	for _, who := range []string{"wendy", "alice"} {
		c := f.login(who)
		for _, p := range []string{"/users", "/users/alice"} {
			resp, _ := c.get(p)
			wantStatus(t, who+" GET "+p, resp, http.StatusForbidden)
		}
		resp, _ := c.post("/users", url.Values{"name": {"mallory"}, "password": {"12345678"}, "role": {"admin"}})
		wantStatus(t, who+" creates a user", resp, http.StatusForbidden)
		resp, _ = c.post("/users/alice/disable", nil)
		wantStatus(t, who+" disables a user", resp, http.StatusForbidden)
		_, body := c.get("/calls")
		if strings.Contains(body, `href="/users"`) {
			t.Errorf("%s sees the Users link", who)
		}
	}
	// CSRF guards every form.
	resp, _ := admin.do("POST", "/users", url.Values{"name": {"mallory"}, "password": {"12345678"}, "role": {"admin"}}, nil)
	wantStatus(t, "create without CSRF", resp, http.StatusForbidden)
	resp, _ = admin.do("POST", "/users/alice/disable", url.Values{"csrf": {"forged"}}, nil)
	wantStatus(t, "disable with a forged token", resp, http.StatusForbidden)
	if _, err := f.st.GetUser(ctx, "mallory"); err == nil {
		t.Fatal("a user was created without CSRF")
	}

	for _, tc := range []struct {
		name string
		form url.Values
		code int
	}{
		{"short password", url.Values{"name": {"carol"}, "password": {"short"}, "role": {"staff"}}, http.StatusBadRequest},
		{"no role", url.Values{"name": {"carol"}, "password": {"long enough"}, "role": {"root"}}, http.StatusBadRequest},
		{"slash in the name", url.Values{"name": {"a/b"}, "password": {"long enough"}, "role": {"staff"}}, http.StatusBadRequest},
		{"taken name", url.Values{"name": {"alice"}, "password": {"long enough"}, "role": {"staff"}}, http.StatusConflict},
		{"created", url.Values{"name": {"carol"}, "password": {"long enough"}, "role": {"staff"}, "workspaces": {"acme, globex"}}, http.StatusSeeOther},
	} {
		resp, _ := admin.post("/users", tc.form)
		wantStatus(t, tc.name, resp, tc.code)
	}
	carol, err := f.st.GetUser(ctx, "carol")
	if err != nil || carol.Role != store.RoleStaff || strings.Join(carol.Workspaces, ",") != "acme,globex" || carol.UpdatedBy != "admin" {
		t.Fatalf("carol %+v, %v", carol, err)
	}
	resp, _ = admin.post("/users/carol/password", url.Values{"password": {"pw-carol"}})
	wantStatus(t, "reset", resp, http.StatusSeeOther)
	carolWeb := f.login("carol")

	// Disable: logged out, cannot log in, told so only with the right password.
	resp, _ = admin.post("/users/carol/disable", nil)
	wantStatus(t, "disable", resp, http.StatusSeeOther)
	if stillIn(t, carolWeb) {
		t.Error("a disabled user's session goes on")
	}
	resp, body := f.anon().postLogin("carol", "pw-carol", nil)
	wantStatus(t, "disabled login", resp, http.StatusForbidden)
	if !strings.Contains(body, "disabled") {
		t.Error("a disabled user is not told why")
	}
	resp, body = f.anon().postLogin("carol", "wrong", nil)
	wantStatus(t, "disabled, wrong password", resp, http.StatusUnauthorized)
	if strings.Contains(body, "disabled") {
		t.Error("a wrong password learns the account is disabled")
	}
	resp, _ = admin.post("/users/carol/enable", nil)
	wantStatus(t, "enable", resp, http.StatusSeeOther)
	resp, _ = f.anon().postLogin("carol", "pw-carol", nil)
	wantStatus(t, "enabled login", resp, http.StatusSeeOther)

	// Admins cannot lock themselves out.
	resp, _ = admin.post("/users/admin/disable", nil)
	wantStatus(t, "disable yourself", resp, http.StatusBadRequest)
	resp, _ = admin.post("/users/admin/edit", url.Values{"role": {"staff"}})
	wantStatus(t, "demote yourself", resp, http.StatusBadRequest)
	resp, _ = admin.post("/users/nobody/disable", nil)
	wantStatus(t, "no such user", resp, http.StatusNotFound)

	// Who did what, when, is on the user's page.
	resp, body = admin.get("/users/carol")
	wantStatus(t, "user page", resp, http.StatusOK)
	for _, want := range []string{"create user", "password changed", "disabled", "enabled", "admin"} {
		if !strings.Contains(body, want) {
			t.Errorf("user page history lacks %q", want)
		}
	}
	_, body = admin.get("/users")
	if !strings.Contains(body, `data-user="carol"`) || !strings.Contains(body, `href="/users/carol"`) {
		t.Error("users list lacks carol")
	}
}

func TestAdminsListAndRevokeAUsersTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	crm, crmTok, _ := f.st.CreateToken(ctx, "alice", "crm")
	script, _, _ := f.st.CreateToken(ctx, "alice", "script")
	f.clk.Add(2 * time.Hour)
	if !tokenWorks(t, f, crm) {
		t.Fatal("token refused")
	}
	admin := f.login("admin")
	_, body := admin.get("/users/alice")
	for _, want := range []string{"crm", "script", crmTok.Prefix, "never", "Today 17:00"} {
		if !strings.Contains(body, want) {
			t.Errorf("token list lacks %q", want)
		}
	}
	resp, _ := admin.post("/users/alice/revoke", url.Values{"token": {id(crmTok.ID)}})
	wantStatus(t, "revoke", resp, http.StatusSeeOther)
	if tokenWorks(t, f, crm) || !tokenWorks(t, f, script) {
		t.Error("revoked the wrong token")
	}
	resp, _ = admin.post("/users/bob/revoke", url.Values{"token": {id(crmTok.ID)}})
	wantStatus(t, "another user's token", resp, http.StatusNotFound)
	// Users see and revoke their own.
	alice := f.login("alice")
	_, body = alice.get("/account")
	if !strings.Contains(body, "script") || strings.Contains(body, crmTok.Prefix) {
		t.Error("alice's token list")
	}
	toks, _ := f.st.UserTokens(ctx, "alice")
	resp, _ = alice.post("/account/revoke", url.Values{"token": {id(toks[0].ID)}})
	wantStatus(t, "revoke own", resp, http.StatusSeeOther)
	if tokenWorks(t, f, script) {
		t.Error("own token still works")
	}
}

func TestSessionCookieIsSecureWhenTheRequestCameOverTLS(t *testing.T) {
	f := newFixture(t)
	newSrv := func(proxies []string) *Server {
		srv, err := New(Options{Store: f.st, SessionKey: []byte("0123456789abcdef0123456789abcdef"), Log: zerolog.Nop(), Now: f.clk.Now, TrustedProxies: proxies})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	for _, tc := range []struct {
		name    string
		proxies []string
		remote  string
		tls     bool
		proto   string
		secure  bool
	}{
		{"plain HTTP", nil, "192.0.2.7:5000", false, "", false},
		{"direct TLS", nil, "192.0.2.7:5000", true, "", true},
		{"loopback proxy says https", nil, "127.0.0.1:5000", false, "https", true},
		{"loopback proxy says http", nil, "127.0.0.1:5000", false, "http", false},
		{"IPv6 loopback proxy", nil, "[::1]:5000", false, "HTTPS", true},
		{"untrusted client says https", nil, "192.0.2.7:5000", false, "https", false},
		{"configured proxy network", []string{"10.0.0.0/8"}, "10.1.2.3:5000", false, "https", true},
		{"loopback no longer trusted", []string{"10.0.0.0/8"}, "127.0.0.1:5000", false, "https", false},
		{"no proxy trusted", []string{}, "127.0.0.1:5000", false, "https", false},
	} {
		srv := newSrv(tc.proxies)
		// The login page sets its form cookie the same way as the session.
		get := httptest.NewRequest("GET", "/login", nil)
		get.RemoteAddr = tc.remote
		if tc.tls {
			get.TLS = &tls.ConnectionState{}
		}
		if tc.proto != "" {
			get.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, get)
		var form *http.Cookie
		for _, c := range rec.Result().Cookies() {
			form = c
		}
		m := csrfFieldRe.FindStringSubmatch(rec.Body.String())
		post := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"name": {"alice"}, "password": {"pw-alice"}, "csrf": {m[1]}}.Encode()))
		post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		post.RemoteAddr, post.TLS = get.RemoteAddr, get.TLS
		if tc.proto != "" {
			post.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		post.AddCookie(form)
		rec = httptest.NewRecorder()
		srv.ServeHTTP(rec, post)
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("%s: login %d", tc.name, rec.Code)
		}
		for _, c := range rec.Result().Cookies() {
			if c.Name == sessionCookie && c.Secure != tc.secure {
				t.Errorf("%s: session cookie Secure=%v, want %v", tc.name, c.Secure, tc.secure)
			}
		}
	}
	if _, err := New(Options{Store: f.st, TrustedProxies: []string{"not an address"}}); err == nil {
		t.Error("a bad trusted proxy was accepted")
	}
}

func TestHealthzDetailsNeedALoginOrALocalRequest(t *testing.T) {
	f := newFixture(t)
	health := map[string]any{"ok": false, "calls_in_progress": 2,
		"ari":   map[string]any{"connected": false, "url": "http://asterisk.internal:8088", "last_error": "dial tcp: refused"},
		"disk":  map[string]any{"recordings": map[string]any{"free_bytes": 1 << 30, "low": false, "path": "/var/spool/asterisk/recording"}},
		"flows": map[string]any{"loaded": 3}}
	srv, err := New(Options{Store: f.st, SessionKey: []byte("0123456789abcdef0123456789abcdef"), Log: zerolog.Nop(), Now: f.clk.Now,
		Health: func() map[string]any { return health }})
	if err != nil {
		t.Fatal(err)
	}
	alice := f.login("alice")
	u, _ := url.Parse(f.ts.URL)
	tok, _, _ := f.st.CreateToken(context.Background(), "alice", "monitor")
	for _, tc := range []struct {
		name    string
		remote  string
		headers map[string]string
		session bool
		full    bool
	}{
		{"anonymous from afar", "203.0.113.5:4000", nil, false, false},
		{"logged in from afar", "203.0.113.5:4000", nil, true, true},
		{"token from afar", "203.0.113.5:4000", map[string]string{"Authorization": "Bearer " + tok}, false, true},
		{"bad token from afar", "203.0.113.5:4000", map[string]string{"Authorization": "Bearer cft_nope"}, false, false},
		{"on this host", "127.0.0.1:4000", nil, false, true},
		{"on this host over IPv6", "[::1]:4000", nil, false, true},
		{"through the local proxy from afar", "127.0.0.1:4000", map[string]string{"X-Forwarded-For": "203.0.113.5"}, false, false},
		{"through the local proxy, forged local", "127.0.0.1:4000", map[string]string{"X-Forwarded-For": "127.0.0.1, 203.0.113.5"}, false, false},
		{"through the local proxy from this host", "127.0.0.1:4000", map[string]string{"X-Forwarded-For": "127.0.0.1"}, false, true},
		{"a proxy that does not say for whom", "127.0.0.1:4000", map[string]string{"X-Real-Ip": "203.0.113.5"}, false, false},
		{"a client claiming to be local", "203.0.113.5:4000", map[string]string{"X-Forwarded-For": "127.0.0.1"}, false, false},
	} {
		req := httptest.NewRequest("GET", "/healthz", nil)
		req.RemoteAddr = tc.remote
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		if tc.session {
			for _, c := range alice.hc.Jar.Cookies(u) {
				req.AddCookie(c)
			}
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s: %d", tc.name, rec.Code)
		}
		detailed := strings.Contains(body, "asterisk.internal") && strings.Contains(body, "refused") && strings.Contains(body, "free_bytes")
		if detailed != tc.full {
			t.Errorf("%s: details shown %v, want %v:\n%s", tc.name, detailed, tc.full, body)
		}
		if !tc.full {
			for _, want := range []string{`"ok": false`, `"ari": "not ok"`, `"disk": "ok"`, `"flows": "ok"`} {
				if !strings.Contains(body, want) {
					t.Errorf("%s: summary lacks %s:\n%s", tc.name, want, body)
				}
			}
			if strings.Contains(body, "calls_in_progress") || strings.Contains(body, "/var/spool") {
				t.Errorf("%s: summary leaks details:\n%s", tc.name, body)
			}
		}
	}
}

func TestHealthSummaryPartStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		part map[string]any
		ok   bool
	}{
		{"its own ok", map[string]any{"ok": true, "connected": false}, true},
		{"its own not ok", map[string]any{"ok": false}, false},
		{"connected", map[string]any{"connected": true, "reconnects": 3}, true},
		{"disconnected", map[string]any{"connected": false}, false},
		{"replaced", map[string]any{"connected": true, "replaced": true}, false},
		{"draining", map[string]any{"connected": true, "draining": true}, false},
		{"a low disk inside", map[string]any{"database": map[string]any{"low": true}}, false},
		{"plain figures", map[string]any{"loaded": 3, "problems": 1}, true},
	} {
		if got := partOK(tc.part); got != tc.ok {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestLoginRateLimitsSeeTheClientBehindTheLocalProxy(t *testing.T) {
	f := newFixture(t)
	srv, err := New(Options{Store: f.st, SessionKey: []byte("0123456789abcdef0123456789abcdef"), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		remote, xff, want string
	}{
		{"127.0.0.1:1", "203.0.113.5", "203.0.113.5"},
		{"127.0.0.1:1", "198.51.100.1, 203.0.113.5", "203.0.113.5"}, // the left one was written by the client
		{"127.0.0.1:1", "203.0.113.5, 127.0.0.1", "203.0.113.5"},    // through two local proxies
		{"127.0.0.1:1", "", "127.0.0.1"},
		{"203.0.113.9:1", "198.51.100.1", "203.0.113.9"}, // not a proxy: its header is ignored
		{"127.0.0.1:1", "garbage", "127.0.0.1"},
	} {
		req := httptest.NewRequest("GET", "/login", nil)
		req.RemoteAddr = tc.remote
		if tc.xff != "" {
			req.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := srv.opts.ClientIP(req); got != tc.want {
			t.Errorf("%s via %s: %s, want %s", tc.xff, tc.remote, got, tc.want)
		}
	}
}
