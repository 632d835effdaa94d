package web

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/store"
)

func TestNumberSearchAcceptsNumbersAsTyped(t *testing.T) {
	f := newFixture(t)
	alice := f.login("alice")
	ids := func(m map[string]any, key string) []string {
		var out []string
		for _, it := range items(t, m) {
			out = append(out, fmt.Sprint(it[key]))
		}
		return out
	}
	new1 := id(f.vm["new1"])
	for _, typed := range []string{"415-555-0101", "4155550101", "(415) 555-0101", "+1 415 555 0101", "5550101", "+14155550101"} {
		q := url.QueryEscape(typed)
		resp, m := alice.api("GET", "/api/calls?number="+q, "", nil)
		wantStatus(t, "calls "+typed, resp, http.StatusOK)
		if got := ids(m, "id"); !slices.Equal(got, []string{"call-1"}) {
			t.Errorf("calls for %q: %v", typed, got)
		}
		resp, m = alice.api("GET", "/api/voicemails?caller="+q, "", nil)
		wantStatus(t, "voicemails "+typed, resp, http.StatusOK)
		if got := ids(m, "id"); !slices.Equal(got, []string{new1}) {
			t.Errorf("voicemails for %q: %v", typed, got)
		}
		_, body := alice.get("/voicemails?caller=" + q)
		if !strings.Contains(body, `data-vm="`+new1+`"`) || strings.Contains(body, "+14155550102") {
			t.Errorf("inbox page for %q", typed)
		}
		_, body = alice.get("/calls?number=" + q)
		if !strings.Contains(body, `data-call="call-1"`) || strings.Contains(body, `data-call="call-2"`) {
			t.Errorf("calls page for %q", typed)
		}
	}
	// The called number finds calls too.
	if _, m := alice.api("GET", "/api/calls?number="+url.QueryEscape("+91 44 3000 1234"), "", nil); m["total"].(float64) != 3 {
		t.Errorf("by called number: %v", m["total"])
	}
	for _, bad := range []string{"+", "()", strings.Repeat("5", 65)} {
		resp, m := alice.api("GET", "/api/calls?number="+url.QueryEscape(bad), "", nil)
		if resp.StatusCode != http.StatusBadRequest || m["error"] == nil {
			t.Errorf("number %q: %d %v", bad, resp.StatusCode, m)
		}
		resp, _ = alice.api("GET", "/api/voicemails?caller="+url.QueryEscape(bad), "", nil)
		wantStatus(t, "caller "+bad, resp, http.StatusBadRequest)
	}
}

func TestCallAndStatsFiltersAreValidated(t *testing.T) {
	f := newFixture(t)
	alice := f.login("alice")
	for _, tc := range []struct {
		query string
		code  int
	}{
		{"/api/calls?outcome=completed", http.StatusOK},
		{"/api/calls?outcome=interrupted", http.StatusOK},
		{"/api/calls?outcome=answered", http.StatusBadRequest},
		{"/api/calls?transport=agi", http.StatusOK},
		{"/api/calls?transport=sip", http.StatusBadRequest},
		{"/api/calls?transport=ARI", http.StatusBadRequest},
		{"/api/voicemails?heard=perhaps", http.StatusBadRequest},
		{"/api/calls?from=0001-01-01", http.StatusBadRequest},
		{"/api/voicemails?to=9999-12-31", http.StatusBadRequest},
		{"/api/stats?from=2026-01-01&to=2026-03-10", http.StatusOK},
		{"/api/stats?from=2025-03-01&to=2026-03-10", http.StatusOK}, // 375 days
		{"/api/stats?from=2020-01-01&to=2026-03-10", http.StatusBadRequest},
		{"/api/stats?from=0001-01-01&to=2026-03-10", http.StatusBadRequest},
		{"/api/stats?from=2026-01-01&to=9999-12-31", http.StatusBadRequest},
		{"/api/stats?from=1969-12-31T23:00:00Z", http.StatusBadRequest},
		{"/api/stats?from=2262-04-12", http.StatusBadRequest},
		{"/api/stats?from=2026-03-01", http.StatusOK},
		{"/api/stats?from=2027-01-01", http.StatusBadRequest},
		{"/api/stats?to=2026-03-10", http.StatusOK},
	} {
		resp, m := alice.api("GET", tc.query, "", nil)
		if resp.StatusCode != tc.code || (tc.code != http.StatusOK && m["error"] == nil) {
			t.Errorf("%s: %d %v, want %d", tc.query, resp.StatusCode, m, tc.code)
		}
	}
	// An open range is counted, not silently empty: from alone runs to today.
	_, m := alice.api("GET", "/api/stats?from=2026-03-01", "", nil)
	total := m["total"].(map[string]any)
	if total["calls"].(float64) != 4 || len(total["per_day"].([]any)) != 10 {
		t.Errorf("from the 1st: %v calls, %d days", total["calls"], len(total["per_day"].([]any)))
	}
	_, m = alice.api("GET", "/api/stats?to=2026-03-10", "", nil)
	if total := m["total"].(map[string]any); len(total["per_day"].([]any)) != 30 {
		t.Errorf("to alone: %d days", len(total["per_day"].([]any)))
	}
	resp, _ := alice.get("/calls?transport=sip")
	wantStatus(t, "calls page with a bad transport", resp, http.StatusBadRequest)
}

func TestBearerSchemeIsAcceptedInAnyCase(t *testing.T) {
	f := newFixture(t)
	tok, _, err := f.st.CreateToken(context.Background(), "alice", "script")
	if err != nil {
		t.Fatal(err)
	}
	c := f.anon()
	for _, tc := range []struct {
		header string
		code   int
	}{
		{"Bearer " + tok, http.StatusOK},
		{"bearer " + tok, http.StatusOK},
		{"BEARER " + tok, http.StatusOK},
		{"bEaReR   " + tok, http.StatusOK},
		{"Token " + tok, http.StatusUnauthorized},
		{"Bearer", http.StatusUnauthorized},
		{tok, http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest("GET", f.ts.URL+"/api/me", nil)
		req.Header.Set("Authorization", tc.header)
		resp, body := c.send(req)
		if resp.StatusCode != tc.code {
			t.Errorf("%q: %d %s", strings.Replace(tc.header, tok, "TOKEN", 1), resp.StatusCode, body)
		}
	}
}

func TestVoicemailSummaryCountsUnheardForTheNavigation(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		user                   string
		total, unheard, newest int64
	}{
		{"alice", 3, 2, f.vm["heard"]}, // the highest ID, not the latest message
		{"bob", 1, 1, f.vm["other"]},
		{"admin", 4, 3, f.vm["other"]},
	} {
		c := f.login(tc.user)
		resp, m := c.api("GET", "/api/voicemails/summary", "", nil)
		wantStatus(t, tc.user, resp, http.StatusOK)
		if m["total"].(float64) != float64(tc.total) || m["unheard"].(float64) != float64(tc.unheard) || m["newest"].(float64) != float64(tc.newest) {
			t.Errorf("%s: %v", tc.user, m)
		}
		_, body := c.get("/calls")
		if want := fmt.Sprintf(`data-unheard-count title="unheard">%d<`, tc.unheard); !strings.Contains(body, want) {
			t.Errorf("%s: the navigation lacks %s", tc.user, want)
		}
		if want := fmt.Sprintf("<title>(%d) Calls", tc.unheard); !strings.Contains(body, want) {
			t.Errorf("%s: the title lacks %s", tc.user, want)
		}
	}
	// Nothing unheard: no count shown.
	alice := f.login("alice")
	for _, n := range []string{"new1", "new2"} {
		alice.api("POST", "/api/voicemails/"+id(f.vm[n])+"/heard", "", nil)
	}
	_, body := alice.get("/calls")
	if !strings.Contains(body, `data-unheard-count title="unheard" hidden>0<`) || strings.Contains(body, "<title>(") {
		t.Error("a zero count is shown")
	}
}

func TestCallsListShowsVoicemailsAndRecordings(t *testing.T) {
	f := newFixture(t)
	alice := f.login("alice")
	_, m := alice.api("GET", "/api/calls", "", nil)
	got := map[string]string{}
	for _, c := range items(t, m) {
		got[c["id"].(string)] = fmt.Sprintf("vm=%v rec=%v", c["voicemails"], c["recorded"])
	}
	for call, want := range map[string]string{"call-1": "vm=1 rec=false", "call-2": "vm=0 rec=true", "call-3": "vm=0 rec=false"} {
		if got[call] != want {
			t.Errorf("%s: %s, want %s", call, got[call], want)
		}
	}
	_, m = alice.api("GET", "/api/calls/call-2", "", nil)
	recs, _ := m["recordings"].([]any)
	if len(recs) != 1 {
		t.Fatalf("recordings %v", m["recordings"])
	}
	rec := recs[0].(map[string]any)
	audio := "/api/calls/call-2/recordings/" + callRecording + "/audio"
	if rec["name"] != callRecording || rec["audio_url"] != audio || rec["download_url"] != audio+"?download=1" || rec["duration_seconds"].(float64) != 4 {
		t.Errorf("recording %v", rec)
	}
	_, m = alice.api("GET", "/api/voicemails?call_id=call-1", "", nil)
	if m["total"].(float64) != 1 {
		t.Errorf("voicemails of call-1: %v", m["total"])
	}

	_, body := alice.get("/calls")
	for _, want := range []string{`data-has="voicemail" href="/calls/call-1#media"`, `data-has="recording" href="/calls/call-2#media"`} {
		if !strings.Contains(body, want) {
			t.Errorf("calls page lacks %s", want)
		}
	}
	_, body = alice.get("/calls/call-2")
	if !strings.Contains(body, `src="/calls/call-2/recordings/`+callRecording+`/audio"`) ||
		!strings.Contains(body, `href="/calls/call-2/recordings/`+callRecording+`/download" download`) {
		t.Error("call page has no player or download for its recording")
	}
	_, body = alice.get("/calls/call-1")
	if !strings.Contains(body, `src="/voicemails/`+id(f.vm["new1"])+`/audio"`) {
		t.Error("call page has no player for its voicemail")
	}
}

func TestCallRecordingPlaysAndDownloadsLikeAVoicemail(t *testing.T) {
	f := newFixture(t)
	alice := f.login("alice")
	full := string(f.audio[callRecording])
	page := "/calls/call-2/recordings/" + callRecording
	req, _ := http.NewRequest("GET", f.ts.URL+page+"/audio", nil)
	req.Header.Set("Range", "bytes=0-43")
	resp, body := alice.send(req)
	wantStatus(t, "range", resp, http.StatusPartialContent)
	if body != full[:44] || resp.Header.Get("Content-Type") != "audio/wav" || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "inline") {
		t.Errorf("inline range: %d bytes, %v", len(body), resp.Header)
	}
	resp, body = alice.get(page + "/download")
	wantStatus(t, "download", resp, http.StatusOK)
	if body != full || resp.Header.Get("Content-Disposition") != "attachment; filename="+callRecording+".wav" {
		t.Errorf("download: %d bytes, %q", len(body), resp.Header.Get("Content-Disposition"))
	}
	tok, _, _ := f.st.CreateToken(context.Background(), "alice", "t")
	resp, _ = f.anon().api("GET", "/api/calls/call-2/recordings/"+callRecording+"/audio?download=1", tok, nil)
	wantStatus(t, "API download", resp, http.StatusOK)

	// Another call's name, another workspace's call, no such recording.
	f.st.RecordCall(store.CallRecord{ID: "call-x", Workspace: "other", Started: base, Recording: "call-x-1"})
	f.st.Flush(context.Background())
	for _, p := range []string{"/calls/call-1/recordings/" + callRecording + "/audio", "/calls/call-x/recordings/call-x-1/audio", "/calls/call-2/recordings/nope/audio"} {
		resp, body := alice.get(p)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
}

func TestAudioErrorsSayWhy(t *testing.T) {
	f := newFixture(t)
	alice := f.login("alice")
	vm, _ := f.st.GetVoicemail(context.Background(), f.vm["new1"], store.AllWorkspaces())
	for _, tc := range []struct {
		name       string
		err        error
		code       int
		want       string
		retryAfter bool
	}{
		{"file gone", fmt.Errorf("open /x.wav: %w", fs.ErrNotExist), http.StatusNotFound, "its file is gone", false},
		{"Asterisk has no such recording", fmt.Errorf("ari: 404: %w", ErrAudioNotFound), http.StatusNotFound, "its file is gone", false},
		{"Asterisk down", fmt.Errorf("ari: dial tcp: connection refused: %w", ErrAudioUnavailable), http.StatusServiceUnavailable, "Asterisk cannot be reached", true},
		{"Asterisk slow", fmt.Errorf("ari: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, "took too long", true},
		{"anything else", errors.New("disk on fire"), http.StatusInternalServerError, "could not be read", false},
	} {
		f.mu.Lock()
		f.audioErr[vm.Recording] = tc.err
		f.audioErr[callRecording] = tc.err
		f.mu.Unlock()
		for _, p := range []string{"/api/voicemails/" + id(vm.ID) + "/audio", "/voicemails/" + id(vm.ID) + "/audio", "/calls/call-2/recordings/" + callRecording + "/audio"} {
			resp, m := alice.api("GET", p, "", nil)
			msg, _ := m["error"].(string)
			if resp.StatusCode != tc.code || !strings.Contains(msg, tc.want) || msg == "internal error" {
				t.Errorf("%s, %s: %d %q, want %d %q", tc.name, p, resp.StatusCode, msg, tc.code, tc.want)
			}
			if got := resp.Header.Get("Retry-After") != ""; got != tc.retryAfter {
				t.Errorf("%s, %s: Retry-After %q", tc.name, p, resp.Header.Get("Retry-After"))
			}
			if strings.Contains(msg, "refused") || strings.Contains(msg, "fire") {
				t.Errorf("%s: the opener's error reached the client: %q", tc.name, msg)
			}
		}
	}
}

func TestAudioPathStaysInsideTheAudioDirs(t *testing.T) {
	f := newFixture(t)
	alice := f.login("alice")
	dir := filepath.Join(f.dir, "recordings")
	inside := filepath.Join(dir, "vm-in.wav")
	outside := filepath.Join(f.dir, "secret.wav")
	link := filepath.Join(dir, "vm-link.wav")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{inside, outside} {
		f.writeFile(p, "RIFF")
	}
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"inside", inside, inside},
		{"outside", outside, ""},
		{"climbing out", dir + "/../secret.wav", ""},
		{"a symlink out", link, ""},
		{"relative", "recordings/vm-in.wav", ""},
		{"the directory itself", dir, ""},
		{"gone", filepath.Join(dir, "vm-gone.wav"), ""},
	} {
		n := f.addVoicemail(tc.name, store.Voicemail{Mailbox: "tech", Workspace: "acme", Recording: "vm-" + strings.ReplaceAll(tc.name, " ", "-"),
			Path: tc.path, Created: base}, time.Second)
		f.mu.Lock()
		f.audioPaths = nil
		f.mu.Unlock()
		resp, _ := alice.get("/voicemails/" + id(n) + "/audio")
		wantStatus(t, tc.name, resp, http.StatusOK) // found by its name
		f.mu.Lock()
		got := f.audioPaths
		f.mu.Unlock()
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: the opener was given %q, want %q", tc.name, got, tc.want)
		}
	}
	// Without audio directories no stored path is trusted, and the
	// default opener serves nothing outside them.
	srv, err := New(Options{Store: f.st, SessionKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.confine(inside, "vm-in"); got != "" {
		t.Errorf("no audio dirs: %q trusted", got)
	}
}

func TestTimesAreShownInTheViewersTimeZone(t *testing.T) {
	f := newFixture(t)
	alice := f.login("alice")
	u, _ := url.Parse(f.ts.URL)
	when := func() string {
		t.Helper()
		_, body := alice.get("/voicemails")
		i := strings.Index(body, `data-vm="`+id(f.vm["new1"])+`"`)
		j := strings.Index(body[i:], `class="when"`)
		k := strings.Index(body[i+j:], "</a>")
		s := body[i+j : i+j+k]
		return s[strings.LastIndex(s, ">")+1:]
	}
	if got := when(); got != "Today 14:00" {
		t.Errorf("without a zone (the server's, UTC): %q", got)
	}
	for _, tc := range []struct{ cookie, want string }{
		{"America/New_York", "Today 10:00"},
		{"Asia/Kolkata", "Today 19:30"},
		{"Not/AZone", "Today 14:00"},
	} {
		alice.hc.Jar.SetCookies(u, []*http.Cookie{{Name: tzCookie, Value: tc.cookie, Path: "/"}})
		if got := when(); got != tc.want {
			t.Errorf("browser in %s: %q, want %q", tc.cookie, got, tc.want)
		}
	}
	// The user's own choice wins over the browser's.
	resp, _ := alice.post("/account/zone", url.Values{"time_zone": {"Asia/Tokyo"}})
	wantStatus(t, "choose a zone", resp, http.StatusSeeOther)
	if got := when(); got != "Yesterday 23:00" {
		t.Errorf("user's zone: %q", got)
	}
	resp, body := alice.post("/account/zone", url.Values{"time_zone": {"Mars/Olympus"}})
	wantStatus(t, "unknown zone", resp, http.StatusBadRequest)
	if !strings.Contains(body, "Unknown time zone") {
		t.Error("no reason for the refused zone")
	}
	resp, _ = alice.post("/account/zone", url.Values{"time_zone": {""}})
	wantStatus(t, "back to the browser's", resp, http.StatusSeeOther)
	if got := when(); got != "Today 14:00" { // the last cookie was not a zone
		t.Errorf("after clearing: %q", got)
	}
	// Day filters on pages are days where the viewer is.
	alice.hc.Jar.SetCookies(u, []*http.Cookie{{Name: tzCookie, Value: "Pacific/Kiritimati", Path: "/"}}) // UTC+14
	_, body = alice.get("/voicemails?from=2026-03-11&to=2026-03-11")
	if !strings.Contains(body, `data-vm="`+id(f.vm["new1"])+`"`) {
		t.Error("14:00 UTC on the 10th is the 11th in Kiritimati")
	}
}
