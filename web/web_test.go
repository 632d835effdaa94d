package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/store"
)

func TestLoginLogout(t *testing.T) {
	f := newFixture(t)
	c := f.anon()

	resp, _ := c.get("/voicemails?mailbox=tech")
	wantStatus(t, "inbox without login", resp, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/login?next="+url.QueryEscape("/voicemails?mailbox=tech") {
		t.Errorf("redirect to %q", loc)
	}

	resp, body := c.postLogin("alice", "wrong", nil)
	wantStatus(t, "wrong password", resp, http.StatusUnauthorized)
	if !strings.Contains(body, "Wrong name or password") {
		t.Errorf("no error message:\n%s", body)
	}

	_, body = c.get("/login")
	m := csrfFieldRe.FindStringSubmatch(body)
	resp, _ = c.do("POST", "/login", url.Values{"name": {"alice"}, "password": {"pw-alice"}, "csrf": {m[1]}, "next": {"/voicemails?mailbox=tech"}}, nil)
	wantStatus(t, "login", resp, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/voicemails?mailbox=tech" {
		t.Errorf("after login to %q", loc)
	}
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Path != "/" {
		t.Fatalf("session cookie %+v", sess)
	}
	if !strings.Contains(sess.Value, ".") {
		t.Errorf("session cookie is not signed: %q", sess.Value)
	}

	resp, body = c.get("/voicemails")
	wantStatus(t, "inbox", resp, http.StatusOK)
	if !strings.Contains(body, "alice") {
		t.Error("inbox does not name the user")
	}
	c.csrf = csrfMetaRe.FindStringSubmatch(body)[1]

	// A tampered cookie is no session.
	tampered := *sess
	tampered.Value = strings.Replace(sess.Value, sess.Value[:4], "AAAA", 1)
	c2 := f.anon()
	u, _ := url.Parse(f.ts.URL)
	c2.hc.Jar.SetCookies(u, []*http.Cookie{&tampered})
	resp, _ = c2.get("/voicemails")
	wantStatus(t, "tampered cookie", resp, http.StatusSeeOther)

	resp, _ = c.post("/logout", nil)
	wantStatus(t, "logout", resp, http.StatusSeeOther)
	resp, _ = c.get("/voicemails")
	wantStatus(t, "inbox after logout", resp, http.StatusSeeOther)

	// The old cookie, replayed, is refused too.
	c3 := f.anon()
	c3.hc.Jar.SetCookies(u, []*http.Cookie{sess})
	resp, _ = c3.get("/voicemails")
	wantStatus(t, "replayed cookie after logout", resp, http.StatusSeeOther)

	// Sessions expire.
	c4 := f.login("alice")
	f.clk.Add(13 * time.Hour)
	resp, _ = c4.get("/voicemails")
	wantStatus(t, "expired session", resp, http.StatusSeeOther)
}

func TestLoginNeedsItsFormToken(t *testing.T) {
	f := newFixture(t)
	c := f.anon()
	resp, _ := c.do("POST", "/login", url.Values{"name": {"alice"}, "password": {"pw-alice"}}, nil)
	wantStatus(t, "login without token", resp, http.StatusForbidden)
	_, _ = c.get("/login")
	resp, _ = c.do("POST", "/login", url.Values{"name": {"alice"}, "password": {"pw-alice"}, "csrf": {"forged"}}, nil)
	wantStatus(t, "login with a forged token", resp, http.StatusForbidden)
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "/voicemails",
		"/calls?flow=x":     "/calls?flow=x",
		"//evil.example/":   "/voicemails",
		"https://evil/":     "/voicemails",
		"/\\evil.example":   "/voicemails",
		"/login":            "/voicemails",
		"/flows/Night Line": "/flows/Night Line",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// concrete fills a route pattern's wildcards.
func concrete(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	r := strings.NewReplacer("{id}", "1", "{name}", "Night%20Line", "{action}", "publish", "{$}", "")
	path = r.Replace(path)
	if strings.HasSuffix(path, "/static/") {
		path += "style.css"
	}
	return method, path
}

func TestEveryRouteNeedsAuth(t *testing.T) {
	f := newFixture(t)
	c := f.anon()
	if len(f.srv.patterns) < 30 {
		t.Fatalf("only %d routes", len(f.srv.patterns))
	}
	for _, p := range append(f.srv.patterns, "GET /no/such/page", "GET /api/nothing", "DELETE /voicemails") {
		method, path := concrete(p)
		if public(path) {
			continue
		}
		for _, bearer := range []string{"", "cft_not-a-token"} {
			req, _ := http.NewRequest(method, f.ts.URL+path, nil)
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			resp, body := c.send(req)
			switch {
			case isAPI(path):
				if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
					t.Errorf("%s %s (token %q): %d %s", method, path, bearer, resp.StatusCode, body)
				}
			case method == "GET":
				if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
					t.Errorf("%s %s: %d to %q", method, path, resp.StatusCode, resp.Header.Get("Location"))
				}
			default:
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s %s: %d", method, path, resp.StatusCode)
				}
			}
		}
	}
	if f.reloads.Load() != 0 {
		t.Error("an unauthenticated request changed a flow")
	}
}

func TestPublicEndpoints(t *testing.T) {
	f := newFixture(t)
	c := f.anon()
	resp, body := c.get("/healthz")
	wantStatus(t, "healthz", resp, http.StatusOK)
	if !strings.Contains(body, `"ari": "connected"`) {
		t.Errorf("healthz body %s", body)
	}
	resp, body = c.get("/metrics")
	wantStatus(t, "metrics", resp, http.StatusOK)
	if !strings.Contains(body, "callflow_calls_in_progress") {
		t.Errorf("metrics body %s", body)
	}
	resp, _ = c.get(f.srv.static.url("style.css"))
	wantStatus(t, "css", resp, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Errorf("css content type %q", ct)
	}
	resp, _ = c.get("/static/")
	wantStatus(t, "static listing", resp, http.StatusNotFound)

	// Unhealthy transports make /healthz 503.
	srv, err := New(Options{Store: f.st, Health: func() map[string]any { return map[string]any{"ok": false, "ari": "disconnected"} }})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("unhealthy: %d", rec.Code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	c := f.login("alice")
	for _, p := range []string{"/voicemails", "/login", "/api/me", "/healthz"} {
		resp, _ := c.get(p)
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: headers %v", p, h)
		}
	}
	body := c.raw("/voicemails")
	if strings.Contains(body, "<script>") || strings.Contains(body, " onclick=") || strings.Contains(body, " style=") {
		t.Error("inline script or style on a page: the CSP would block it")
	}
}

func TestHTMLIsEscaped(t *testing.T) {
	f := newFixture(t)
	f.addVoicemail("xss", store.Voicemail{Mailbox: "tech", Workspace: "acme", Caller: `<script>alert(1)</script>`, Called: acmeNumber,
		Flow: `Basic Support Flow"><b>`, Created: base.Add(-time.Minute)}, time.Second)
	c := f.login("alice")
	body := c.raw("/voicemails")
	if strings.Contains(body, "<script>alert(1)") || strings.Contains(body, `"><b>`) {
		t.Error("caller or flow not escaped")
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("escaped caller missing")
	}
}

func TestVoicemailScope(t *testing.T) {
	f := newFixture(t)
	alice := f.login("alice")
	resp, body := alice.get("/voicemails")
	wantStatus(t, "inbox", resp, http.StatusOK)
	for _, want := range []string{"+14155550101", "+14155550102", "+14155550103"} {
		if !strings.Contains(body, want) {
			t.Errorf("alice's inbox lacks %s", want)
		}
	}
	for _, not := range []string{"+14155550105", "+14155550104"} { // other workspace; deleted
		if strings.Contains(body, not) {
			t.Errorf("alice's inbox shows %s", not)
		}
	}
	other := id(f.vm["other"])
	for _, p := range []string{"/voicemails/" + other, "/voicemails/" + other + "/audio", "/voicemails/" + other + "/download", "/voicemails/999999", "/voicemails/abc"} {
		resp, _ := alice.get(p)
		wantStatus(t, "alice GET "+p, resp, http.StatusNotFound)
	}
	resp, body = alice.get("/voicemails/" + other)
	if !strings.Contains(body, "404") || strings.Contains(body, "+14155550105") {
		t.Error("404 page leaks or is not one")
	}
	for _, p := range []string{"/api/voicemails/" + other, "/api/voicemails/" + other + "/audio"} {
		resp, m := alice.api("GET", p, "", nil)
		wantStatus(t, "alice API "+p, resp, http.StatusNotFound)
		if m["error"] == nil {
			t.Errorf("%s: no JSON error", p)
		}
	}
	for _, p := range []string{"/voicemails/" + other + "/heard", "/voicemails/" + other + "/delete"} {
		resp, _ := alice.post(p, url.Values{"heard": {"1"}})
		wantStatus(t, "alice POST "+p, resp, http.StatusNotFound)
	}
	resp, _ = alice.api("POST", "/api/voicemails/"+other+"/heard", "", nil)
	wantStatus(t, "alice API heard on other", resp, http.StatusNotFound)
	vm, _ := f.st.GetVoicemail(context.Background(), f.vm["other"], store.AllWorkspaces())
	if vm.Heard || vm.Deleted {
		t.Error("alice changed another workspace's voicemail")
	}

	bob := f.login("bob")
	_, body = bob.get("/voicemails")
	if !strings.Contains(body, "+14155550105") || strings.Contains(body, "+14155550101") {
		t.Error("bob sees the wrong inbox")
	}
	admin := f.login("admin")
	_, m := admin.api("GET", "/api/voicemails", "", nil)
	if got := m["total"].(float64); got != 4 {
		t.Errorf("admin sees %v voicemails, want 4 (the deleted one hidden by default)", got)
	}
}

func TestDeletedVoicemails(t *testing.T) {
	f := newFixture(t)
	del := id(f.vm["deleted"])
	alice := f.login("alice")
	resp, _ := alice.get("/voicemails/" + del)
	wantStatus(t, "staff GET deleted", resp, http.StatusNotFound)
	resp, _ = alice.api("GET", "/api/voicemails?deleted=only", "", nil)
	wantStatus(t, "staff lists the bin", resp, http.StatusForbidden)
	_, body := alice.get("/voicemails?show=bin")
	if strings.Contains(body, "+14155550104") {
		t.Error("staff sees the bin")
	}
	resp, _ = alice.post("/voicemails/"+del+"/restore", nil)
	wantStatus(t, "staff restores", resp, http.StatusForbidden)
	resp, _ = alice.api("POST", "/api/voicemails/"+del+"/restore", "", nil)
	wantStatus(t, "staff restores by API", resp, http.StatusForbidden)

	admin := f.login("admin")
	_, body = admin.get("/voicemails?show=bin")
	if !strings.Contains(body, "+14155550104") || !strings.Contains(body, "Restore") {
		t.Error("admin's bin lacks the deleted voicemail")
	}
	resp, _ = admin.get("/voicemails/" + del)
	wantStatus(t, "admin GET deleted", resp, http.StatusOK)
	resp, _ = admin.post("/voicemails/"+del+"/restore", url.Values{"back": {"/voicemails?show=bin"}})
	wantStatus(t, "admin restores", resp, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/voicemails?show=bin" {
		t.Errorf("back to %q", loc)
	}
	resp, _ = alice.get("/voicemails/" + del)
	wantStatus(t, "staff GET restored", resp, http.StatusOK)

	// Staff delete (soft); a workspace admin restores in their workspace.
	resp, _ = alice.post("/voicemails/"+del+"/delete", nil)
	wantStatus(t, "staff deletes", resp, http.StatusSeeOther)
	vm, _ := f.st.GetVoicemail(context.Background(), f.vm["deleted"], store.AllWorkspaces())
	if !vm.Deleted || vm.DeletedBy != "alice" {
		t.Fatalf("after delete: %+v", vm)
	}
	wendy := f.login("wendy")
	resp, m := wendy.api("POST", "/api/voicemails/"+del+"/restore", "", nil)
	wantStatus(t, "workspace admin restores", resp, http.StatusOK)
	if m["deleted"] != false {
		t.Errorf("restored: %v", m)
	}
	// ... but not in another workspace (which is out of sight: 404).
	if err := f.st.DeleteVoicemail(context.Background(), f.vm["other"], store.AllWorkspaces(), "bob"); err != nil {
		t.Fatal(err)
	}
	resp, _ = wendy.api("POST", "/api/voicemails/"+id(f.vm["other"])+"/restore", "", nil)
	wantStatus(t, "workspace admin restores elsewhere", resp, http.StatusNotFound)

	// The API deletes too.
	resp, _ = alice.api("DELETE", "/api/voicemails/"+id(f.vm["new2"]), "", nil)
	wantStatus(t, "API delete", resp, http.StatusNoContent)
	resp, _ = alice.api("GET", "/api/voicemails/"+id(f.vm["new2"]), "", nil)
	wantStatus(t, "deleted by API", resp, http.StatusNotFound)
}

func TestAudioRangeAndDownload(t *testing.T) {
	f := newFixture(t)
	alice := f.login("alice")
	n := id(f.vm["new1"])
	vm, _ := f.st.GetVoicemail(context.Background(), f.vm["new1"], store.AllWorkspaces())
	full := f.audio[vm.Recording]

	req, _ := http.NewRequest("GET", f.ts.URL+"/voicemails/"+n+"/audio", nil)
	req.Header.Set("Range", "bytes=100-1099")
	resp, body := alice.send(req)
	wantStatus(t, "range", resp, http.StatusPartialContent)
	if body != string(full[100:1100]) {
		t.Errorf("range body: %d bytes, not bytes 100-1099", len(body))
	}
	if cr := resp.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes 100-1099/%d", len(full)) {
		t.Errorf("Content-Range %q", cr)
	}
	if resp.Header.Get("Content-Type") != "audio/wav" || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("headers %v", resp.Header)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "inline") {
		t.Errorf("inline audio: Content-Disposition %q", cd)
	}

	resp, body = alice.get("/voicemails/" + n + "/download")
	wantStatus(t, "download", resp, http.StatusOK)
	if body != string(full) {
		t.Error("download is not the WAV")
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename=`+vm.Recording+`.wav` {
		t.Errorf("Content-Disposition %q", cd)
	}

	// Same by API, with a token.
	tok, _, err := f.st.CreateToken(context.Background(), "alice", "test")
	if err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest("GET", f.ts.URL+"/api/voicemails/"+n+"/audio?download=1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Range", "bytes=0-43")
	resp, body = alice.send(req)
	wantStatus(t, "API range", resp, http.StatusPartialContent)
	if body != string(full[:44]) || !strings.HasPrefix(body, "RIFF") {
		t.Error("API range is not the header")
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") {
		t.Errorf("API download: %q", cd)
	}

	// Odd names are sanitized; paths in names are refused before Audio runs.
	odd := f.addVoicemail("odd", store.Voicemail{Mailbox: "tech", Workspace: "acme", Recording: "odd name\";x=1 é", Created: base}, time.Second)
	resp, _ = alice.get("/voicemails/" + id(odd) + "/download")
	wantStatus(t, "odd download", resp, http.StatusOK)
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename=odd_name__x_1__.wav` {
		t.Errorf("odd Content-Disposition %q", cd)
	}
	for i, bad := range []string{"../../etc/passwd", "a/b", "x\x00y", ".."} {
		n := f.addVoicemail(fmt.Sprint("bad", i), store.Voicemail{Mailbox: "tech", Workspace: "acme", Recording: bad, Created: base}, 0)
		f.mu.Lock()
		before := f.audioCalls
		f.mu.Unlock()
		resp, _ := alice.get("/voicemails/" + id(n) + "/audio")
		wantStatus(t, fmt.Sprintf("recording %q", bad), resp, http.StatusBadRequest)
		f.mu.Lock()
		after := f.audioCalls
		f.mu.Unlock()
		if after != before {
			t.Errorf("Audio was asked for %q", bad)
		}
	}
	// A missing file is 404.
	missing := f.addVoicemail("missing", store.Voicemail{Mailbox: "tech", Workspace: "acme", Created: base}, 0)
	resp, _ = alice.get("/voicemails/" + id(missing) + "/audio")
	wantStatus(t, "missing recording", resp, http.StatusNotFound)
}

func TestDownloadName(t *testing.T) {
	for in, want := range map[string]string{
		"vm-tech-abc-1700000000000": "vm-tech-abc-1700000000000.wav",
		"":                          "voicemail.wav",
		"...":                       "voicemail.wav",
		"a b/c":                     "a_b_c.wav",
	} {
		if got := downloadName(in); got != want {
			t.Errorf("downloadName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	alice := f.login("alice")
	n := id(f.vm["new1"])
	for _, token := range []string{"", "bad-token"} {
		resp, _ := alice.do("POST", "/voicemails/"+n+"/heard", url.Values{"heard": {"1"}, "csrf": {token}}, nil)
		wantStatus(t, fmt.Sprintf("form with token %q", token), resp, http.StatusForbidden)
		req, _ := http.NewRequest("POST", f.ts.URL+"/api/voicemails/"+n+"/heard", nil)
		if token != "" {
			req.Header.Set(csrfHeader, token)
		}
		resp, _ = alice.send(req)
		wantStatus(t, fmt.Sprintf("API with token %q", token), resp, http.StatusForbidden)
	}
	resp, _ := alice.post("/logout", url.Values{"csrf": {"nope"}})
	wantStatus(t, "logout without token", resp, http.StatusForbidden)
	vm, _ := f.st.GetVoicemail(context.Background(), f.vm["new1"], store.AllWorkspaces())
	if vm.Heard {
		t.Fatal("marked heard without a CSRF token")
	}
	// Another user's token is no good either.
	bob := f.login("bob")
	resp, _ = alice.do("POST", "/voicemails/"+n+"/heard", url.Values{"heard": {"1"}, "csrf": {bob.csrf}}, nil)
	wantStatus(t, "another session's token", resp, http.StatusForbidden)

	resp, _ = alice.post("/voicemails/"+n+"/heard", url.Values{"heard": {"1"}})
	wantStatus(t, "with token", resp, http.StatusSeeOther)
	vm, _ = f.st.GetVoicemail(context.Background(), f.vm["new1"], store.AllWorkspaces())
	if !vm.Heard || vm.HeardBy != "alice" {
		t.Errorf("after marking heard: %+v", vm)
	}
	resp, _ = alice.post("/voicemails/"+n+"/heard", url.Values{"heard": {"0"}})
	wantStatus(t, "unheard", resp, http.StatusSeeOther)
	vm, _ = f.st.GetVoicemail(context.Background(), f.vm["new1"], store.AllWorkspaces())
	if vm.Heard {
		t.Error("still heard")
	}
	resp, m := alice.api("POST", "/api/voicemails/"+n+"/heard", "", nil)
	wantStatus(t, "API heard with header", resp, http.StatusOK)
	if m["heard"] != true || m["heard_by"] != "alice" {
		t.Errorf("API heard: %v", m)
	}
	resp, m = alice.api("DELETE", "/api/voicemails/"+n+"/heard", "", nil)
	wantStatus(t, "API unheard", resp, http.StatusOK)
	if m["heard"] != false {
		t.Errorf("API unheard: %v", m)
	}
}

func TestBruteForceSlowsDown(t *testing.T) {
	f := newFixture(t)
	c := f.anon()
	ip := http.Header{"X-Test-Ip": {"192.0.2.1"}}
	for i := 0; i < userFree; i++ {
		resp, _ := c.postLogin("alice", fmt.Sprint("guess", i), ip)
		wantStatus(t, fmt.Sprint("failure ", i+1), resp, http.StatusUnauthorized)
	}
	resp, body := c.postLogin("alice", "pw-alice", ip)
	wantStatus(t, "attempt during the wait", resp, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, "Too many attempts") {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	// Other users are not slowed.
	resp, _ = f.anon().postLogin("bob", "pw-bob", http.Header{"X-Test-Ip": {"192.0.2.3"}})
	wantStatus(t, "another user", resp, http.StatusSeeOther)

	// Each failure doubles the wait.
	f.clk.Add(time.Second)
	resp, _ = c.postLogin("alice", "guess-again", ip)
	wantStatus(t, "failure after the wait", resp, http.StatusUnauthorized)
	resp, _ = c.postLogin("alice", "pw-alice", ip)
	wantStatus(t, "doubled wait", resp, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After %q, want 2", resp.Header.Get("Retry-After"))
	}
	f.clk.Add(2 * time.Second)
	resp, _ = c.postLogin("alice", "pw-alice", ip)
	wantStatus(t, "right password after the wait", resp, http.StatusSeeOther)
	// Success clears the user's count.
	resp, _ = f.anon().postLogin("alice", "wrong", ip)
	wantStatus(t, "fresh failure", resp, http.StatusUnauthorized)

	// One address guessing many users is slowed after ipFree failures.
	c2 := f.anon()
	bad := http.Header{"X-Test-Ip": {"198.51.100.7"}}
	for i := 0; i < ipFree; i++ {
		resp, _ := c2.postLogin(fmt.Sprint("user", i), "x", bad)
		wantStatus(t, fmt.Sprint("spray ", i), resp, http.StatusUnauthorized)
	}
	resp, _ = c2.postLogin("wendy", "pw-wendy", bad)
	wantStatus(t, "spraying address", resp, http.StatusTooManyRequests)
}

// Someone guessing alice's password from one address slows that address
// down, not alice logging in from hers, until the guesses for her name
// from every address together pass userAnyFree.
func TestCorrectPasswordFromAnotherAddressIsNotLockedOut(t *testing.T) {
	f := newFixture(t)
	attacker := f.anon()
	guess := func(ip string, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			resp, _ := attacker.postLogin("alice", fmt.Sprint("guess", i), http.Header{"X-Test-Ip": {ip}})
			wantStatus(t, fmt.Sprintf("guess %d from %s", i+1, ip), resp, http.StatusUnauthorized)
		}
	}
	guess("203.0.113.9", userFree)
	resp, _ := attacker.postLogin("alice", "guess-more", http.Header{"X-Test-Ip": {"203.0.113.9"}})
	wantStatus(t, "the guessing address during its wait", resp, http.StatusTooManyRequests)
	alice := f.anon()
	resp, _ = alice.postLogin("alice", "pw-alice", http.Header{"X-Test-Ip": {"192.0.2.50"}})
	wantStatus(t, "alice from her own address", resp, http.StatusSeeOther)
	// Her own typo does not hold her back either.
	resp, _ = f.anon().postLogin("alice", "pw-alicf", http.Header{"X-Test-Ip": {"192.0.2.50"}})
	wantStatus(t, "alice's typo", resp, http.StatusUnauthorized)
	resp, _ = f.anon().postLogin("alice", "pw-alice", http.Header{"X-Test-Ip": {"192.0.2.50"}})
	wantStatus(t, "alice after her typo", resp, http.StatusSeeOther)

	// Guesses from many addresses add up for the name: past userAnyFree
	// every address waits, alice's too, as documented.
	for n := userFree + 1; n < userAnyFree; n += userFree {
		guess(fmt.Sprintf("198.51.100.%d", n), min(userFree, userAnyFree-n))
	}
	resp, _ = f.anon().postLogin("alice", "pw-alice", http.Header{"X-Test-Ip": {"192.0.2.51"}})
	wantStatus(t, "alice after the name's limit", resp, http.StatusTooManyRequests)
	f.clk.Add(limitMax)
	resp, _ = f.anon().postLogin("alice", "pw-alice", http.Header{"X-Test-Ip": {"192.0.2.51"}})
	wantStatus(t, "alice after the wait", resp, http.StatusSeeOther)
}

func TestLimiterHoldsOneAttemptPerKey(t *testing.T) {
	clk := &clock{t: base}
	l := newLimiter(clk.Now)
	done, wait := l.begin(limitKey{"user:a", 5, true}, limitKey{"ip:1", 20, true})
	if wait != 0 {
		t.Fatal("first attempt refused")
	}
	if _, wait := l.begin(limitKey{"user:a", 5, true}, limitKey{"ip:2", 20, true}); wait == 0 {
		t.Error("a second parallel attempt for the same user was allowed")
	}
	done(false, false)
	if d, wait := l.begin(limitKey{"user:a", 5, true}, limitKey{"ip:2", 20, true}); wait != 0 {
		t.Error("released attempt still held")
	} else {
		d(true, false)
	}
	l.mu.Lock()
	n := len(l.m)
	l.mu.Unlock()
	if n != 0 {
		t.Errorf("%d entries kept without failures", n)
	}
	// The wait is capped.
	for i := 0; i < 40; i++ {
		clk.Add(limitMax)
		d, wait := l.begin(limitKey{"user:b", 5, true})
		if wait != 0 {
			t.Fatalf("attempt %d refused after the longest wait", i)
		}
		d(false, true)
	}
	if _, wait := l.begin(limitKey{"user:b", 5, true}); wait > limitMax {
		t.Errorf("wait %v beyond the cap", wait)
	}
}

func TestTokenAuth(t *testing.T) {
	f := newFixture(t)
	tok, _, err := f.st.CreateToken(context.Background(), "alice", "script")
	if err != nil {
		t.Fatal(err)
	}
	c := f.anon()
	resp, m := c.api("GET", "/api/me", tok, nil)
	wantStatus(t, "me", resp, http.StatusOK)
	if m["name"] != "alice" || m["role"] != "staff" || m["auth"] != "token" {
		t.Errorf("me: %v", m)
	}
	resp, m = c.api("GET", "/api/me", "cft_wrong", nil)
	wantStatus(t, "bad token", resp, http.StatusUnauthorized)
	if m["error"] == nil || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("bad token answer: %v %v", m, resp.Header)
	}
	req, _ := http.NewRequest("GET", f.ts.URL+"/api/me", nil)
	req.Header.Set("Authorization", "Basic YWxpY2U6cHctYWxpY2U=")
	resp, _ = c.send(req)
	wantStatus(t, "basic auth", resp, http.StatusUnauthorized)

	// No CSRF with a token.
	resp, m = c.api("POST", "/api/voicemails/"+id(f.vm["new1"])+"/heard", tok, nil)
	wantStatus(t, "heard by token", resp, http.StatusOK)
	if m["heard"] != true {
		t.Errorf("heard: %v", m)
	}
	// Tokens open the API only, never the pages.
	req, _ = http.NewRequest("GET", f.ts.URL+"/voicemails", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, _ = c.send(req)
	wantStatus(t, "page with a token", resp, http.StatusSeeOther)

	// A session works on the API too.
	alice := f.login("alice")
	resp, m = alice.api("GET", "/api/me", "", nil)
	wantStatus(t, "me by session", resp, http.StatusOK)
	if m["auth"] != "session" {
		t.Errorf("me: %v", m)
	}
}

func TestAPIErrorsAreJSON(t *testing.T) {
	f := newFixture(t)
	alice := f.login("alice")
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/api/nothing", http.StatusNotFound},
		{"PUT", "/api/voicemails", http.StatusMethodNotAllowed},
		{"GET", "/api/voicemails?from=yesterday", http.StatusBadRequest},
		{"GET", "/api/voicemails?limit=100000", http.StatusBadRequest},
		{"GET", "/api/voicemails?heard=maybe", http.StatusBadRequest},
		{"GET", "/api/calls?from=2026-03-10&to=2026-03-01", http.StatusBadRequest},
		{"GET", "/api/calls/nope", http.StatusNotFound},
		{"GET", "/api/flows/No%20Such%20Flow", http.StatusNotFound},
		{"POST", "/api/flows/Night%20Line/publish", http.StatusForbidden},
	} {
		resp, m := alice.api(tc.method, tc.path, "", nil)
		if resp.StatusCode != tc.code || m["error"] == nil {
			t.Errorf("%s %s: %d %v, want %d with an error", tc.method, tc.path, resp.StatusCode, m, tc.code)
		}
	}
	resp, body := alice.get("/no/such/page")
	wantStatus(t, "unknown page", resp, http.StatusNotFound)
	if !strings.Contains(body, "404") {
		t.Error("404 page")
	}
}

func TestVoicemailFiltersAndPaging(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 60; i++ {
		f.addVoicemail(fmt.Sprint("bulk", i), store.Voicemail{Mailbox: "sales", Workspace: "acme", Caller: fmt.Sprintf("+1555000%04d", i),
			Called: acmeNumber, Flow: "Basic Support Flow", Step: "sales-vm", Created: base.Add(-10*24*time.Hour + time.Duration(i)*time.Minute)}, 0)
	}
	alice := f.login("alice")
	get := func(q string) (float64, []map[string]any) {
		t.Helper()
		resp, m := alice.api("GET", "/api/voicemails?"+q, "", nil)
		wantStatus(t, q, resp, http.StatusOK)
		return m["total"].(float64), items(t, m)
	}
	total, list := get("")
	if total != 63 || len(list) != 50 {
		t.Errorf("all: total %v, %d items", total, len(list))
	}
	if list[0]["id"].(float64) != float64(f.vm["new1"]) {
		t.Errorf("newest first: %v", list[0])
	}
	if _, list = get("limit=10&offset=60"); len(list) != 3 {
		t.Errorf("last page: %d items", len(list))
	}
	if total, _ = get("mailbox=tech"); total != 1 {
		t.Errorf("mailbox=tech: %v", total)
	}
	if total, _ = get("flow=After-Hours+Flow"); total != 1 {
		t.Errorf("flow: %v", total)
	}
	if total, _ = get("from=2026-03-09&to=2026-03-10"); total != 2 {
		t.Errorf("two days: %v", total)
	}
	if total, _ = get("to=2026-03-05"); total != 60 {
		t.Errorf("until the 5th: %v", total)
	}
	if total, _ = get("heard=no&mailbox=sales"); total != 60 {
		t.Errorf("unheard sales: %v", total)
	}
	if total, _ = get("heard=yes"); total != 1 {
		t.Errorf("heard: %v", total)
	}
	first := list[0]
	if first["audio_url"] == nil || first["path"] != nil {
		t.Errorf("voicemail JSON: %v", first)
	}

	_, body := alice.get("/voicemails")
	if !strings.Contains(body, "1–50 of 63") || !strings.Contains(body, "page=2") {
		t.Error("page 1 pager")
	}
	_, body = alice.get("/voicemails?page=2")
	if !strings.Contains(body, "51–63 of 63") || strings.Contains(body, "Older") {
		t.Error("page 2 pager")
	}
	_, body = alice.get("/voicemails?mailbox=billing")
	if !strings.Contains(body, "+14155550102") || strings.Contains(body, "+14155550101") {
		t.Error("mailbox filter on the page")
	}
	_, body = alice.get("/voicemails?heard=no&mailbox=tech")
	if !strings.Contains(body, `class="vm unheard"`) {
		t.Error("unheard voicemails are not marked")
	}
	resp, _ := alice.get("/voicemails?from=junk")
	wantStatus(t, "bad date", resp, http.StatusBadRequest)
}

func TestCalls(t *testing.T) {
	f := newFixture(t)
	alice := f.login("alice")
	get := func(q string) (float64, []map[string]any) {
		t.Helper()
		resp, m := alice.api("GET", "/api/calls?"+q, "", nil)
		wantStatus(t, q, resp, http.StatusOK)
		return m["total"].(float64), items(t, m)
	}
	total, list := get("")
	if total != 4 { // acme's: 1, 2, 3, 6
		t.Errorf("alice sees %v calls", total)
	}
	if list[0]["id"] != "call-1" {
		t.Errorf("newest first: %v", list[0]["id"])
	}
	for q, want := range map[string]float64{
		"flow=Basic+Support+Flow":       3,
		"number=%2B14155550110":         1,
		"number=%2B91+443+000+1234":     3,
		"outcome=hangup":                1,
		"from=2026-03-08&to=2026-03-08": 1,
		"limit=2&offset=2":              4,
	} {
		if got, _ := get(q); got != want {
			t.Errorf("%s: %v calls, want %v", q, got, want)
		}
	}
	if _, l := get("limit=2&offset=2"); len(l) != 2 {
		t.Errorf("paging: %d", len(l))
	}
	resp, _ := alice.api("GET", "/api/calls/call-4", "", nil)
	wantStatus(t, "other workspace's call", resp, http.StatusNotFound)
	resp, _ = alice.get("/calls/call-4")
	wantStatus(t, "other workspace's call page", resp, http.StatusNotFound)

	resp, m := alice.api("GET", "/api/calls/call-1", "", nil)
	wantStatus(t, "call", resp, http.StatusOK)
	steps := m["steps"].([]any)
	if len(steps) != 6 {
		t.Fatalf("%d steps", len(steps))
	}
	s2 := steps[1].(map[string]any)
	if s2["step"] != "menu" || s2["outcome"] != "1" || s2["next"] != "tech" || s2["duration_ms"].(float64) != 3100 {
		t.Errorf("step 2: %v", s2)
	}

	resp, body := alice.get("/calls/call-1")
	wantStatus(t, "call page", resp, http.StatusOK)
	for _, want := range []string{"welcome", "caller pressed 1", "tech-vm", "+0:07.3", "20s", "<svg", `class="timeline"`, "support@acme.example", `data-step="tech-vm"`} {
		if !strings.Contains(body, want) {
			t.Errorf("call page lacks %q", want)
		}
	}
	if !strings.Contains(body, `stroke="#2563eb"`) {
		t.Error("the call's path is not highlighted")
	}
	_, body = alice.get("/calls?outcome=hangup")
	if !strings.Contains(body, "call-3") || strings.Contains(body, "call-1\"") {
		t.Error("calls page filter")
	}
	// not-in-service calls belong to no workspace: admins only.
	admin := f.login("admin")
	_, m = admin.api("GET", "/api/calls?outcome=not_in_service", "", nil)
	if m["total"].(float64) != 1 {
		t.Errorf("admin not_in_service: %v", m["total"])
	}
}

func TestFlowsPage(t *testing.T) {
	f := newFixture(t)
	admin := f.login("admin")
	resp, body := admin.get("/flows")
	wantStatus(t, "flows", resp, http.StatusOK)
	for _, want := range []string{
		"Basic Support Flow", "After-Hours Flow", "Other Line", "Night Line", "Draft Line", "Ghost Line", "Lonely Flow",
		"Numbers without a flow", "+15550003333", "its flow is a draft", // a draft's number
		"+15550004444", "its flow is not loaded", // a flow that does not parse
		"+15550009999", "no flow has this number", // a number that was called
		"Published flows without numbers", "Other problems", "broken.toml",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("flows page lacks %q", want)
		}
	}
	_, m := admin.api("GET", "/api/flows", "", nil)
	if nn := m["published_without_numbers"].([]any); len(nn) != 1 || nn[0] != "Lonely Flow" {
		t.Errorf("published without numbers: %v", nn)
	}
	unanswered := map[string]string{}
	for _, x := range m["numbers_without_flow"].([]any) {
		n := x.(map[string]any)
		unanswered[n["number"].(string)] = n["why"].(string)
	}
	if len(unanswered) != 3 || unanswered["+15550002222"] != "" {
		t.Errorf("numbers without flow: %v", unanswered)
	}
	byName := map[string]map[string]any{}
	for _, x := range m["flows"].([]any) {
		fl := x.(map[string]any)
		byName[fl["name"].(string)] = fl
	}
	if fl := byName["Lonely Flow"]; fl["warnings"].(float64) < 2 || fl["source"] != "file" {
		t.Errorf("Lonely Flow: %v", fl)
	}
	if fl := byName["Night Line"]; fl["source"] != "db" || fl["revision"].(float64) != 2 || fl["loaded"] != true || fl["can_manage"] != true {
		t.Errorf("Night Line: %v", fl)
	}
	if fl := byName["Ghost Line"]; fl["loaded"] != false || fl["errors"].(float64) == 0 {
		t.Errorf("Ghost Line: %v", fl)
	}
	if fl := byName["Basic Support Flow"]; fl["calls_30d"].(float64) != 3 {
		t.Errorf("Basic Support Flow calls: %v", fl["calls_30d"])
	}

	// Staff see their workspace only, read-only, and no other problems.
	alice := f.login("alice")
	_, body = alice.get("/flows")
	if strings.Contains(body, "Other Line") || strings.Contains(body, "Ghost Line") || strings.Contains(body, "broken.toml") || strings.Contains(body, "+15550009999") {
		t.Error("alice sees other workspaces on the flows page")
	}
	if !strings.Contains(body, "+15550003333") || !strings.Contains(body, "Lonely Flow") {
		t.Error("alice misses her workspace's flags")
	}
	resp, body = alice.get("/flows/Night%20Line")
	wantStatus(t, "db flow page", resp, http.StatusOK)
	if strings.Contains(body, "Unpublish") || !strings.Contains(body, "<svg") {
		t.Error("staff get manage buttons, or no diagram")
	}
	resp, _ = alice.get("/flows/Other%20Line")
	wantStatus(t, "other workspace's flow", resp, http.StatusNotFound)

	// Two nodes run the file flow: one the version loaded here, one another.
	lonely, _ := f.set.Load().ByName("Lonely Flow")
	if err := f.st.ReportNodeFlows(context.Background(), "node-a", []store.NodeFlow{{Flow: "Lonely Flow", Version: lonely.Version}}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.ReportNodeFlows(context.Background(), "node-b", []store.NodeFlow{{Flow: "Lonely Flow", Version: "sha256:0123456789abcdef"}}); err != nil {
		t.Fatal(err)
	}
	resp, body = alice.get("/flows/Lonely%20Flow")
	wantStatus(t, "lonely flow", resp, http.StatusOK)
	if !strings.Contains(body, "node-b: <code>0123456789ab</code> differs") || strings.Contains(body, "node-a: <code>"+strings.TrimPrefix(lonely.Version, "sha256:")[:12]+"</code> differs") || !strings.Contains(body, "node-a: ") {
		t.Error("the flow page does not say which node runs another version")
	}
	for _, want := range []string{"dead end", "unreachable", "published but has no numbers", "lonely.toml:", `stroke="#dc2626"`, `stroke-dasharray="5 4"`} {
		if !strings.Contains(body, want) {
			t.Errorf("Lonely Flow page lacks %q", want)
		}
	}
	resp, _ = alice.get("/flows/Lonely%20Flow/diagram.svg")
	wantStatus(t, "diagram.svg", resp, http.StatusOK)
	resp, m = alice.api("GET", "/api/flows/basic%20support%20flow", "", nil)
	wantStatus(t, "flow by name, any case", resp, http.StatusOK)
	if len(m["steps"].([]any)) != 11 || m["toml"] == nil {
		t.Errorf("flow detail: %d steps", len(m["steps"].([]any)))
	}
	req, _ := http.NewRequest("GET", f.ts.URL+"/api/flows/Basic%20Support%20Flow/dot", nil)
	resp, dot := alice.send(req)
	wantStatus(t, "dot", resp, http.StatusOK)
	if !strings.HasPrefix(dot, "digraph") {
		t.Errorf("dot: %.40s", dot)
	}
}

func TestDatabaseFlowActions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.login("admin")
	reloads := func() int32 { return f.reloads.Load() }

	resp, _ := admin.post("/flows/Draft%20Line/publish", nil)
	wantStatus(t, "publish", resp, http.StatusSeeOther)
	if row, _ := f.st.GetFlow(ctx, "Draft Line"); row.Status != store.FlowPublished || reloads() != 1 {
		t.Errorf("after publish: %s, %d reloads", row.Status, reloads())
	}
	_, body := admin.get("/flows")
	if strings.Contains(body, "its flow is a draft") {
		t.Error("published flow's number still flagged")
	}
	resp, m := admin.api("POST", "/api/flows/Draft%20Line/unpublish", "", nil)
	wantStatus(t, "unpublish", resp, http.StatusOK)
	if m["status"] != "draft" || reloads() != 2 {
		t.Errorf("unpublish: %v, %d reloads", m, reloads())
	}

	// Duplicate: a draft copy without numbers that names itself.
	resp, _ = admin.post("/flows/Night%20Line/duplicate", nil)
	wantStatus(t, "duplicate", resp, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/flows/Copy%20of%20Night%20Line?msg=duplicated" {
		t.Errorf("duplicate to %q", loc)
	}
	cp, err := f.st.GetFlow(ctx, "Copy of Night Line")
	if err != nil || cp.Status != store.FlowDraft || len(cp.Numbers) != 0 || !strings.Contains(cp.Source, `name = "Copy of Night Line"`) {
		t.Fatalf("copy: %+v %v", cp, err)
	}
	if _, ok := f.set.Load().ByName("Copy of Night Line"); !ok {
		t.Error("the copy did not load")
	}

	// Numbers: bulk assign, conflicts, move, release.
	resp, body = admin.post("/flows/Copy%20of%20Night%20Line/numbers", url.Values{"numbers": {"+15550005555, +1 555 000 6666\n+15550002222"}, "op": {"assign"}})
	wantStatus(t, "assign a taken number", resp, http.StatusConflict)
	if !strings.Contains(body, "belongs to flow") {
		t.Errorf("conflict message missing")
	}
	resp, _ = admin.post("/flows/Copy%20of%20Night%20Line/numbers", url.Values{"numbers": {"+15550005555, +1 555 000 6666\n+15550002222"}, "op": {"assign"}, "move": {"1"}})
	wantStatus(t, "assign with move", resp, http.StatusSeeOther)
	cp, _ = f.st.GetFlow(ctx, "Copy of Night Line")
	night, _ := f.st.GetFlow(ctx, "Night Line")
	if strings.Join(cp.Numbers, " ") != "+15550002222 +15550005555 +15550006666" || len(night.Numbers) != 0 {
		t.Errorf("after move: copy %v, night %v", cp.Numbers, night.Numbers)
	}
	resp, _ = admin.post("/flows/Copy%20of%20Night%20Line/numbers", url.Values{"numbers": {acmeNumber}, "op": {"assign"}, "move": {"1"}})
	wantStatus(t, "a file flow's number", resp, http.StatusConflict)
	resp, _ = admin.post("/flows/Copy%20of%20Night%20Line/numbers", url.Values{"numbers": {"CALL-NOW"}, "op": {"assign"}})
	wantStatus(t, "a bad number", resp, http.StatusBadRequest)
	resp, m = admin.api("DELETE", "/api/flows/Copy%20of%20Night%20Line/numbers", "", map[string]any{"numbers": []string{"+15550006666"}})
	wantStatus(t, "release", resp, http.StatusOK)
	if fmt.Sprint(m["numbers"]) != "[+15550002222 +15550005555]" {
		t.Errorf("after release: %v", m["numbers"])
	}

	// History and rollback.
	resp, body = admin.get("/flows/Copy%20of%20Night%20Line/history")
	wantStatus(t, "history", resp, http.StatusOK)
	if !strings.Contains(body, "Roll back to this") || !strings.Contains(body, "duplicated from") {
		t.Error("history page")
	}
	resp, m = admin.api("GET", "/api/flows/Copy%20of%20Night%20Line/history", "", nil)
	wantStatus(t, "history API", resp, http.StatusOK)
	revs := m["revisions"].([]any)
	before := reloads()
	resp, _ = admin.post("/flows/Copy%20of%20Night%20Line/rollback", url.Values{"revision": {"1"}})
	wantStatus(t, "rollback", resp, http.StatusSeeOther)
	cp, _ = f.st.GetFlow(ctx, "Copy of Night Line")
	// The copy's first revision already names it: the store writes the copy's own header.
	if cp.Revision != len(revs)+1 || !strings.Contains(cp.Source, `name = "Copy of Night Line"`) || reloads() != before+1 {
		t.Errorf("after rollback: rev %d (had %d), reloads %d", cp.Revision, len(revs), reloads())
	}

	// Delete: refused while numbers point at it, unless forced.
	resp, body = admin.post("/flows/Copy%20of%20Night%20Line/delete", nil)
	wantStatus(t, "delete with numbers", resp, http.StatusConflict)
	if !strings.Contains(body, "still has numbers") {
		t.Error("refusal message")
	}
	resp, _ = admin.api("DELETE", "/api/flows/Copy%20of%20Night%20Line", "", nil)
	wantStatus(t, "API delete with numbers", resp, http.StatusConflict)
	resp, _ = admin.api("DELETE", "/api/flows/Copy%20of%20Night%20Line?force=true", "", nil)
	wantStatus(t, "forced delete", resp, http.StatusNoContent)
	if _, err := f.st.GetFlow(ctx, "Copy of Night Line"); err == nil {
		t.Error("flow still there")
	}

	// File flows are not the database's.
	resp, m = admin.api("POST", "/api/flows/Basic%20Support%20Flow/publish", "", nil)
	wantStatus(t, "file flow action", resp, http.StatusConflict)

	// Roles: staff may not; a workspace admin may in their workspace only.
	alice := f.login("alice")
	resp, _ = alice.post("/flows/Night%20Line/unpublish", nil)
	wantStatus(t, "staff unpublish", resp, http.StatusForbidden)
	wendy := f.login("wendy")
	resp, _ = wendy.post("/flows/Night%20Line/unpublish", nil)
	wantStatus(t, "workspace admin unpublish", resp, http.StatusSeeOther)
	resp, _ = wendy.post("/flows/Ghost%20Line/unpublish", nil)
	wantStatus(t, "workspace admin elsewhere", resp, http.StatusNotFound)
	if row, _ := f.st.GetFlow(ctx, "Ghost Line"); row.Status != store.FlowPublished {
		t.Error("wendy changed another workspace's flow")
	}
	// Names may hold a slash: it travels escaped in one path segment.
	if _, err := f.st.CreateFlow(ctx, store.FlowInput{Name: "Sales/East", Workspace: "acme", Source: dbFlowTOML("Sales/East")}); err != nil {
		t.Fatal(err)
	}
	f.rebuild()
	resp, _ = admin.get("/flows/Sales%2FEast")
	wantStatus(t, "flow with a slash", resp, http.StatusOK)
	resp, m = admin.api("POST", "/api/flows/Sales%2FEast/publish", "", nil)
	wantStatus(t, "publish a flow with a slash", resp, http.StatusOK)
	if m["name"] != "Sales/East" || m["status"] != "published" {
		t.Errorf("publish Sales/East: %v", m)
	}
	resp, _ = admin.api("DELETE", "/api/flows/Sales%2FEast", "", nil)
	wantStatus(t, "delete a flow with a slash", resp, http.StatusNoContent)

	// Token callers need no CSRF.
	tok, _, _ := f.st.CreateToken(ctx, "admin", "ci")
	resp, _ = f.anon().api("POST", "/api/flows/Night%20Line/publish", tok, nil)
	wantStatus(t, "publish by token", resp, http.StatusOK)
}

func TestRetitle(t *testing.T) {
	src := "# a flow\nname = \"Old\"   # the name\nnumbers = [\n  \"+15550001\", # main\n  \"+15550002\",\n]\nstatus = \"published\"\n\n[[steps]]\nname = \"keep me\"\nid = \"a\"\napplet = \"hangup\"\n"
	got, ok := retitle(src, `New "one"`)
	if !ok {
		t.Fatal("not retitled")
	}
	want := "# a flow\nname = \"New \\\"one\\\"\"   # the name\nnumbers = []\nstatus = \"published\"\n\n[[steps]]\nname = \"keep me\"\nid = \"a\"\napplet = \"hangup\"\n"
	if got != want {
		t.Errorf("retitle:\n%s\nwant:\n%s", got, want)
	}
	got, _ = retitle("[[steps]]\nid = \"a\"\n", "X")
	if !strings.HasPrefix(got, "name = \"X\"\n") {
		t.Errorf("no name line: %q", got)
	}
}

func TestStats(t *testing.T) {
	f := newFixture(t)
	alice := f.login("alice")
	resp, m := alice.api("GET", "/api/stats", "", nil)
	wantStatus(t, "stats", resp, http.StatusOK)
	byFlow := map[string]map[string]any{}
	for _, x := range m["flows"].([]any) {
		st := x.(map[string]any)
		byFlow[st["flow"].(string)] = st
	}
	bs := byFlow["Basic Support Flow"]
	for k, want := range map[string]float64{"calls": 3, "qualified": 1, "abandoned": 1, "voicemails": 2, "texts": 1} {
		if bs[k].(float64) != want {
			t.Errorf("Basic Support Flow %s = %v, want %v", k, bs[k], want)
		}
	}
	if ah := byFlow["After-Hours Flow"]; ah["calls"].(float64) != 1 || ah["voicemails"].(float64) != 1 {
		t.Errorf("After-Hours Flow: %v", ah)
	}
	if _, ok := byFlow["Other Line"]; ok {
		t.Error("alice sees another workspace's stats")
	}
	if _, ok := byFlow["Lonely Flow"]; !ok {
		t.Error("flows without calls are not listed")
	}
	total := m["total"].(map[string]any)
	if total["calls"].(float64) != 4 || len(total["per_day"].([]any)) != 30 {
		t.Errorf("total: calls %v, %d days", total["calls"], len(total["per_day"].([]any)))
	}
	_, m = alice.api("GET", "/api/stats?flow=Basic+Support+Flow&from=2026-03-08&to=2026-03-10", "", nil)
	fl := m["flows"].([]any)
	if len(fl) != 1 || fl[0].(map[string]any)["calls"].(float64) != 2 {
		t.Errorf("filtered stats: %v", fl)
	}

	resp, body := alice.get("/stats")
	wantStatus(t, "stats page", resp, http.StatusOK)
	for _, want := range []string{`class="chart"`, "Basic Support Flow", "33%", "9 Feb 2026 – 10 Mar 2026", "Tue 10 Mar 2026: 1 call"} {
		if !strings.Contains(body, want) {
			t.Errorf("stats page lacks %q", want)
		}
	}
	resp, _ = alice.get("/stats?from=bad")
	wantStatus(t, "bad date", resp, http.StatusBadRequest)
}
