package web

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/speech"
)

// soundFixture is the fixture's server with uploads in a sounds directory
// of its own (sound lengths up to 2s, files up to 300 KB) and, when
// espeak-ng is installed, the flows' text to speech.
func soundFixture(t *testing.T, change func(*SoundOptions)) *fixture {
	t.Helper()
	if _, err := exec.LookPath("sox"); err != nil {
		t.Skip("sox is not installed (.ci/run installs it)")
	}
	f := newFixture(t)
	opts := f.srv.opts
	opts.Sounds = SoundOptions{Dir: filepath.Join(f.dir, "sounds", "callflow"), MaxLength: 2 * time.Second, MaxBytes: 300 << 10}
	if _, err := exec.LookPath("espeak-ng"); err == nil {
		dir := filepath.Join(f.dir, "sounds", "tts")
		sp, err := speech.New(speech.Options{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		opts.Sounds.Speech, opts.Sounds.SpeechDir = sp, dir
	}
	if change != nil {
		change(&opts.Sounds)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.ts = httptest.NewServer(srv)
	t.Cleanup(f.ts.Close)
	return f
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sounds", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// upload posts a file as the upload form does, to path (/sounds or
// /api/sounds).
func (c *client) upload(path, filename string, content []byte, fields map[string]string) (*http.Response, string) {
	c.f.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if c.csrf != "" && !strings.HasPrefix(path, "/api/") {
		mw.WriteField("csrf", c.csrf)
	}
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if filename != "" {
		fw, _ := mw.CreateFormFile("file", filename)
		fw.Write(content)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", c.f.ts.URL+path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if strings.HasPrefix(path, "/api/") {
		req.Header.Set(csrfHeader, c.csrf)
	}
	return c.send(req)
}

// An upload is checked by its content, converted by sox to 8 kHz mono
// 16-bit WAV, or refused with the reason on the page.
func TestSoundUploadConvertsOrSaysWhyNot(t *testing.T) {
	f := soundFixture(t, nil)
	admin, wendy, alice := f.login("admin"), f.login("wendy"), f.login("alice")
	corrupt := append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), bytes.Repeat([]byte{0x17}, 200)...)
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0}, 100)...)
	cases := []struct {
		name     string
		c        *client
		file     string
		content  []byte
		fields   map[string]string
		code     int
		want     string
		wantFile string // the sound that must exist afterwards
		seconds  float64
	}{
		{"a 22 kHz WAV", admin, "hello.wav", readTestdata(t, "hello.wav"), map[string]string{"workspace": "acme"},
			200, "Saved acme/hello (0.5s). Use it in a flow as sound:callflow/acme/hello.", "acme/hello", 0.5},
		{"an MP3, named on the form", wendy, "Welcome Message.mp3", readTestdata(t, "hello.mp3"), map[string]string{"workspace": "acme", "name": "welcome"},
			200, "Saved acme/welcome", "acme/welcome", 1.08},
		{"an OGG named from its file", wendy, "Main Menu (v2).ogg", readTestdata(t, "hello.ogg"), map[string]string{"workspace": "acme"},
			200, "sound:callflow/acme/main-menu-v2", "acme/main-menu-v2", 1},
		{"a name taken", wendy, "hello.wav", readTestdata(t, "hello.wav"), map[string]string{"workspace": "acme"},
			409, "workspace acme already has a sound named hello: tick replace to overwrite it", "", 0},
		{"a name taken, replaced", wendy, "hello.ogg", readTestdata(t, "hello.ogg"), map[string]string{"workspace": "acme", "name": "hello", "replace": "1"},
			200, "Saved acme/hello (1.0s)", "acme/hello", 1},
		{"not audio", wendy, "logo.wav", png, map[string]string{"workspace": "acme"},
			415, "logo.wav is not a WAV, MP3 or OGG file (its content looks like image/png)", "", 0},
		{"text", wendy, "notes.mp3", []byte("just some words\n"), map[string]string{"workspace": "acme"},
			415, "notes.mp3 is not a WAV, MP3 or OGG file (its content looks like text/plain; charset=utf-8)", "", 0},
		{"empty", wendy, "empty.wav", nil, map[string]string{"workspace": "acme"},
			400, "the file is empty", "", 0},
		{"a WAV of no length", wendy, "silence.wav", wav(0), map[string]string{"workspace": "acme"},
			422, "silence.wav holds no sound: its length is zero", "", 0},
		{"a WAV header over garbage", wendy, "broken.wav", corrupt, map[string]string{"workspace": "acme"},
			422, "broken.wav could not be read as WAV audio: ", "", 0},
		{"too long", wendy, "speech.wav", wav(3 * time.Second), map[string]string{"workspace": "acme"},
			422, "speech.wav is 3.0s long: the longest accepted is 2.0s", "", 0},
		{"too large", wendy, "big.wav", wav(30 * time.Second), map[string]string{"workspace": "acme"},
			413, "the file is too large: the largest accepted is 300 KB", "", 0},
		{"no file", wendy, "", nil, map[string]string{"workspace": "acme"},
			400, "choose a file to upload", "", 0},
		{"a name that climbs", wendy, "hello.wav", readTestdata(t, "hello.wav"), map[string]string{"workspace": "acme", "name": "../../etc/passwd"},
			400, `name "../../etc/passwd": use lowercase letters`, "", 0},
		{"a workspace that climbs", admin, "hello.wav", readTestdata(t, "hello.wav"), map[string]string{"workspace": "../acme"},
			400, "workspace ../acme cannot hold sounds", "", 0},
		{"another workspace", wendy, "hello.wav", readTestdata(t, "hello.wav"), map[string]string{"workspace": "other"},
			403, "only admins of workspace other upload its sounds", "", 0},
		{"staff", alice, "hello.wav", readTestdata(t, "hello.wav"), map[string]string{"workspace": "acme", "name": "mine"},
			403, "only admins of workspace acme upload its sounds", "", 0},
	}
	mp3 := soxReadsMP3()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasSuffix(tc.file, ".mp3") && tc.code == 200 && !mp3 {
				t.Skip("this sox reads no MP3 (.ci/run installs libsox-fmt-mp3)")
			}
			resp, body := tc.c.upload("/sounds", tc.file, tc.content, tc.fields)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("status %d, want %d with %q in:\n%s", resp.StatusCode, tc.code, tc.want, pageText(body))
			}
			if tc.wantFile == "" {
				return
			}
			info, err := speech.CheckWAV(filepath.Join(f.srv.opts.Sounds.Dir, tc.wantFile+".wav"))
			if err != nil || !info.Telephony() || info.Duration.Seconds() < tc.seconds-0.05 || info.Duration.Seconds() > tc.seconds+0.05 {
				t.Errorf("stored %s: %v, %v; want 8 kHz mono 16-bit of %.2fs", tc.wantFile, info, err, tc.seconds)
			}
		})
	}
	// Nothing half-made is left beside the sounds.
	left, _ := filepath.Glob(filepath.Join(f.srv.opts.Sounds.Dir, ".*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	audit, err := f.st.Audit(context.Background(), "sound acme/hello", 10)
	if err != nil || len(audit) != 2 || audit[0].Action != "replace sound" || audit[0].Actor != "wendy" || audit[1].Actor != "admin" {
		t.Errorf("audit of acme/hello: %+v %v", audit, err)
	}
	// The page lists them, with the name a flow uses; staff see them too.
	_, page := alice.get("/sounds")
	for _, want := range []string{"sound:callflow/acme/hello", `src="/sounds/acme/main-menu-v2/audio"`} {
		if !strings.Contains(page, want) {
			t.Errorf("sounds page lacks %q", want)
		}
	}
	if strings.Contains(page, `action="/sounds"`) || strings.Contains(page, "/delete") {
		t.Error("staff see the upload or delete forms")
	}
	_, bobPage := f.login("bob").get("/sounds")
	if strings.Contains(bobPage, "acme/hello") {
		t.Error("another workspace's staff see acme's sounds")
	}
}

// soxReadsMP3 reports whether sox was built with MP3 support; without
// it MP3 uploads are refused (CI installs it: see .ci/run).
func soxReadsMP3() bool {
	out, _ := exec.Command("sox", "-h").CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "AUDIO FILE FORMATS:") {
			return strings.Contains(line+" ", " mp3 ") || os.Getenv("CI") != ""
		}
	}
	return os.Getenv("CI") != ""
}

// pageText is a page's main content, for failure messages.
func pageText(body string) string {
	if i := strings.Index(body, "<main>"); i >= 0 {
		body = body[i:]
	}
	return body[:min(len(body), 3000)]
}

// Sounds are played only from inside the sounds directory, and only in
// the listener's workspaces.
func TestSoundAudioIsServedOnlyFromTheSoundsDirectory(t *testing.T) {
	f := soundFixture(t, nil)
	wendy := f.login("wendy")
	if resp, body := wendy.upload("/sounds", "hello.wav", readTestdata(t, "hello.wav"), map[string]string{"workspace": "acme"}); resp.StatusCode != 200 {
		t.Fatalf("upload: %d %s", resp.StatusCode, pageText(body))
	}
	dir := f.srv.opts.Sounds.Dir
	secret := filepath.Join(f.dir, "secret.wav")
	f.writeFile(secret, string(wav(time.Second)))
	if err := os.Symlink(secret, filepath.Join(dir, "acme", "linked.wav")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.writeFile(filepath.Join(dir, "other", "theirs.wav"), string(wav(time.Second)))
	alice := f.login("alice")
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/sounds/acme/hello/audio", 200},
		{"/api/sounds/acme/hello/audio", 200},
		{"/sounds/acme/linked/audio", 404},
		{"/sounds/other/theirs/audio", 404},
		{"/sounds/acme/..%2f..%2fsecret/audio", 404},
		{"/sounds/acme/HELLO/audio", 404},
		{"/sounds/acme/nothing/audio", 404},
	} {
		resp, body := alice.get(tc.path)
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", tc.path, resp.StatusCode, tc.code)
			continue
		}
		if tc.code == 200 && (resp.Header.Get("Content-Type") != "audio/wav" || !strings.HasPrefix(body, "RIFF")) {
			t.Errorf("%s: %s, %.4q", tc.path, resp.Header.Get("Content-Type"), body)
		}
	}
	// The API lists what the page lists.
	resp, out := alice.api("GET", "/api/sounds", "", nil)
	wantStatus(t, "list sounds", resp, 200)
	list, _ := out["sounds"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["use_as"] != "sound:callflow/acme/hello" {
		t.Errorf("api sounds: %v", out)
	}
}

func TestSoundDeleteNeedsAnAdminOfItsWorkspace(t *testing.T) {
	f := soundFixture(t, nil)
	wendy := f.login("wendy")
	wendy.upload("/sounds", "hello.wav", readTestdata(t, "hello.wav"), map[string]string{"workspace": "acme"})
	file := filepath.Join(f.srv.opts.Sounds.Dir, "acme", "hello.wav")
	for _, tc := range []struct {
		who  string
		form bool
		code int
	}{
		{"alice", true, 403},
		{"bob", true, 404},
		{"wendy", false, 403}, // no CSRF token
		{"wendy", true, 303},
		{"wendy", true, 404}, // gone
	} {
		c := f.login(tc.who)
		var resp *http.Response
		if tc.form {
			resp, _ = c.post("/sounds/acme/hello/delete", nil)
		} else {
			resp, _ = c.do("POST", "/sounds/acme/hello/delete", nil, nil)
		}
		if resp.StatusCode != tc.code {
			t.Errorf("%s deletes: %d, want %d", tc.who, resp.StatusCode, tc.code)
		}
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("file still there: %v", err)
	}
	if a, _ := f.st.Audit(context.Background(), "sound acme/hello", 1); len(a) != 1 || a[0].Action != "delete sound" || a[0].Actor != "wendy" {
		t.Errorf("audit: %+v", a)
	}
	// The API deletes too, and uploads.
	admin := f.login("admin")
	resp, body := admin.upload("/api/sounds", "hello.ogg", readTestdata(t, "hello.ogg"), map[string]string{"workspace": "other", "name": "front"})
	if resp.StatusCode != 201 || !strings.Contains(body, `"use_as": "sound:callflow/other/front"`) {
		t.Fatalf("api upload: %d %s", resp.StatusCode, body)
	}
	if resp, _ := admin.api("DELETE", "/api/sounds/other/front", "", nil); resp.StatusCode != 204 {
		t.Errorf("api delete: %d", resp.StatusCode)
	}
}

// Typed text is rendered by the flows' own text to speech and played from
// its directory.
func TestSoundSayPreviewsTextToSpeech(t *testing.T) {
	f := soundFixture(t, nil)
	if f.srv.opts.Sounds.Speech == nil {
		t.Skip("espeak-ng is not installed (.ci/run installs it)")
	}
	admin := f.login("wendy")
	resp, body := admin.post("/sounds/say", map[string][]string{"text": {"Thanks for calling Acme."}})
	wantStatus(t, "say", resp, 200)
	m := regexpAudio.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, `say = "Thanks for calling Acme."`) {
		t.Fatalf("no preview player:\n%s", pageText(body))
	}
	resp, wavBody := admin.get(m[1])
	wantStatus(t, "preview audio", resp, 200)
	if !strings.HasPrefix(wavBody, "RIFF") {
		t.Errorf("preview is %.8q", wavBody)
	}
	// Only the engine's files, by key.
	for _, p := range []string{"/sounds/say/..%2f..%2fsecret/audio", "/sounds/say/0123456789abcdef/audio"} {
		if resp, _ := admin.get(p); resp.StatusCode != 404 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	if resp, _ := f.login("alice").post("/sounds/say", map[string][]string{"text": {"hi"}}); resp.StatusCode != 403 {
		t.Errorf("staff preview: %d", resp.StatusCode)
	}
	if resp, body := admin.post("/sounds/say", map[string][]string{"text": {"  "}}); resp.StatusCode != 400 || !strings.Contains(body, "type some text") {
		t.Errorf("empty text: %d", resp.StatusCode)
	}
}

// Without sounds_dir the page says uploads are off, and uploads are
// refused with that reason.
func TestSoundsOffWithoutASoundsDirectory(t *testing.T) {
	f := soundFixture(t, func(o *SoundOptions) { o.Dir = "" })
	admin := f.login("admin")
	_, page := admin.get("/sounds")
	if !strings.Contains(page, "Uploads are off") {
		t.Errorf("page:\n%s", pageText(page))
	}
	resp, body := admin.upload("/api/sounds", "hello.wav", readTestdata(t, "hello.wav"), map[string]string{"workspace": "acme"})
	if resp.StatusCode != 404 || !strings.Contains(body, "set sounds_dir") {
		t.Errorf("upload: %d %s", resp.StatusCode, body)
	}
}

func TestSniffAudioKnowsFilesByTheirFirstBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		head []byte
		want string
	}{
		{"wav", readTestdata(t, "hello.wav")[:16], "wav"},
		{"mp3 frame", readTestdata(t, "hello.mp3")[:16], "mp3"},
		{"mp3 with a tag", []byte("ID3\x04\x00\x00\x00\x00"), "mp3"},
		{"ogg", readTestdata(t, "hello.ogg")[:16], "ogg"},
		{"riff but not wave", []byte("RIFF\x00\x00\x00\x00AVI LIST"), ""},
		{"html", []byte("<html><body>"), ""},
		{"short", []byte("R"), ""},
		{"0xFF alone", []byte{0xFF, 0x00, 0x00}, ""},
	} {
		if got := sniffAudio(tc.head); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	for in, want := range map[string]string{"Welcome Message.mp3": "welcome-message", "../x.wav": "x", "ÉTÉ.ogg": "t", "__.wav": ""} {
		if got := nameFromFile(in); got != want {
			t.Errorf("nameFromFile(%q) = %q, want %q", in, got, want)
		}
	}
}

var regexpAudio = regexp.MustCompile(`<audio class="wide" controls preload="auto" src="([^"]+)"`)
