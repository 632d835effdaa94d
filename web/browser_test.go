package web

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/callflow/callflow/store"
)

var keepShots = flag.Bool("screenshots", false, "write the browser tests' screenshots to testdata/screenshots")

func chromiumPath() string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

// poll waits for a page predicate; only the test's context bounds it.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(0), chromedp.WithPollingInterval(50*time.Millisecond))
}

// browserZone is the browsers' time zone; the server's is UTC, so pages
// must show times converted.
const browserZone = "America/Los_Angeles"

// browser is a headless Chromium driven for one test.
type browser struct {
	t     *testing.T
	f     *fixture
	ctx   context.Context
	shots string
}

// newBrowser starts Chromium with a window of w×h CSS pixels; it is
// stopped, and checked gone, when the test ends.
func newBrowser(t *testing.T, f *fixture, w, h int) *browser {
	t.Helper()
	exe := chromiumPath()
	if exe == "" {
		t.Skip("chromium is not installed")
	}
	// The deadline only keeps a stuck browser from hanging the run.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Env("TZ="+browserZone),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
	)
	bctx, bcancel := chromedp.NewContext(actx)
	b := &browser{t: t, f: f, ctx: bctx}
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(int64(w), int64(h))); err != nil { // starts the browser
		bcancel()
		acancel()
		cancel()
		t.Fatalf("starting chromium: %v", err)
	}
	proc := chromedp.FromContext(bctx).Browser.Process()
	t.Cleanup(func() {
		// The browser goes away with its context.
		bcancel()
		acancel()
		cancel()
		if proc != nil {
			if err := proc.Signal(syscall.Signal(0)); !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("chromium still running after cancel: %v", err)
			}
		}
	})
	// Every run takes the screenshots; -screenshots keeps them in
	// testdata/screenshots (committed, for people to look at).
	b.shots = t.TempDir()
	if *keepShots {
		b.shots = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(b.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	return b
}

// run does steps; each gets a bound so that a stuck one reports where the
// page was (generous: only there to avoid hanging).
func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, scancel := context.WithTimeout(b.ctx, time.Minute)
	defer scancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		dctx, dcancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer dcancel()
		loc, _ := chromedp.Run(dctx, chromedp.Location())
		body, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ""`))
		b.t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, body)
	}
}

func (b *browser) text(expr string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return s
}

func (b *browser) shoot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// login logs in through the form and lands on the inbox.
func (b *browser) login(name string) {
	b.t.Helper()
	b.run("open the login page", chromedp.Navigate(b.f.ts.URL+"/login"), chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)),
		// The page may draw itself again once, for the browser's time zone.
		poll(`document.readyState === "complete" && document.cookie.includes("callflow_tz=")`),
		chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)))
	b.run("log in as "+name,
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), name),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "pw-"+name),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#inbox-list`)),
	)
}

// follow does what navigates (a click, a submit) and waits for the new
// page.
func (b *browser) follow(what string, action chromedp.Action[chromedp.Void], wait string) {
	b.t.Helper()
	sctx, scancel := context.WithTimeout(b.ctx, time.Minute)
	defer scancel()
	if _, err := chromedp.RunResponse(sctx, action); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	b.run(what, chromedp.WaitVisible(chromedp.CSS(wait)))
}

// noSideways checks that the page does not scroll sideways.
func (b *browser) noSideways(what string) {
	b.t.Helper()
	got := b.text(`(() => { const d = document.documentElement;
		if (d.scrollWidth <= d.clientWidth) return "";
		const wide = [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > d.clientWidth + 0.5)
			.slice(0, 5).map(e => e.tagName.toLowerCase() + (e.className && typeof e.className === "string" ? "." + e.className.trim().replace(/\s+/g, ".") : "") + " right=" + Math.round(e.getBoundingClientRect().right));
		return d.scrollWidth + " > " + d.clientWidth + ": " + wide.join(", "); })()`)
	if got != "" {
		b.t.Errorf("%s scrolls sideways: %s", what, got)
	}
}

// TestBrowser drives the inbox, a call, a flow and the stats in a real
// headless Chromium as staff of "acme" would, and saves screenshots.
func TestBrowser(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f, 1366, 860)

	b.run("open the inbox", chromedp.Navigate(f.ts.URL+"/voicemails"), chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)))
	if loc, _ := chromedp.Run(b.ctx, chromedp.Location()); !strings.Contains(loc, "/login?next=") {
		t.Errorf("not sent to the login page: %s", loc)
	}
	b.login("alice")
	text := b.text(`document.querySelector("table.inbox").innerText`)
	if !strings.Contains(text, "+14155550101") || strings.Contains(text, "+14155550105") {
		t.Errorf("inbox shows:\n%s", text)
	}
	b.shoot("inbox.png")

	// Play the newest message: the browser fetches it with range requests,
	// and playing marks it heard.
	row := `tr[data-vm="` + id(f.vm["new1"]) + `"]`
	b.run("play", chromedp.Evaluate[chromedp.Void](`document.querySelector('`+row+` audio').play().catch(e => { window.playError = String(e); })`))
	b.run("metadata", poll(`(document.querySelector('`+row+` audio').readyState >= 1) || window.playError`))
	if perr := b.text(`window.playError || ""`); perr != "" {
		t.Fatalf("play: %s", perr)
	}
	b.run("marked heard on the page", poll(`!document.querySelector('`+row+`').classList.contains('unheard')`))
	f.mu.Lock()
	ranges := append([]string(nil), f.ranges...)
	f.mu.Unlock()
	sawRange := false
	for _, r := range ranges {
		sawRange = sawRange || strings.HasPrefix(r, "bytes=")
	}
	if !sawRange {
		t.Errorf("no range request for the audio: %q", ranges)
	}
	// Playing goes on: currentTime advances (muted, as headless is).
	b.run("playing", poll(`document.querySelector('`+row+` audio').currentTime > 0`))
	vm, err := f.st.GetVoicemail(context.Background(), f.vm["new1"], store.AllWorkspaces())
	if err != nil || !vm.Heard || vm.HeardBy != "alice" {
		t.Errorf("after playing: heard=%v by %q (%v)", vm.Heard, vm.HeardBy, err)
	}
	b.run("pause", chromedp.Evaluate[chromedp.Void](`document.querySelector('`+row+` audio').pause()`))

	// The button marks a message heard too (a form post and a redirect).
	row2 := `tr[data-vm="` + id(f.vm["new2"]) + `"]`
	// The inbox redraws its rows as it polls: the button is found and
	// clicked in one step of the page's own, never by a node looked up
	// before a redraw.
	b.run("mark heard", poll(`(() => { const b = document.querySelector('`+row2+` button.mark-heard'); if (!b) return false; b.click(); return true; })()`))
	b.run("after mark heard", chromedp.WaitVisible(chromedp.CSS(`table.inbox`)),
		poll(`document.querySelector('`+row2+`') && !document.querySelector('`+row2+`').classList.contains('unheard')`))
	if vm, _ := f.st.GetVoicemail(context.Background(), f.vm["new2"], store.AllWorkspaces()); !vm.Heard {
		t.Error("the button did not mark the message heard")
	}

	// Another workspace's voicemail is a 404 page.
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(f.ts.URL+"/voicemails/"+id(f.vm["other"])))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 404 {
		t.Errorf("other workspace's voicemail: %d", resp.Status)
	}
	if h1, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(`h1`))); !strings.Contains(h1, "404") {
		t.Errorf("404 page heading %q", h1)
	}

	b.run("call", chromedp.Navigate(f.ts.URL+"/calls/call-1"), chromedp.WaitVisible(chromedp.CSS(`ol.timeline`)),
		chromedp.WaitVisible(chromedp.CSS(`svg.flow-diagram`)))
	b.shoot("call-timeline.png")
	b.run("flow", chromedp.Navigate(f.ts.URL+"/flows/Basic%20Support%20Flow"), chromedp.WaitVisible(chromedp.CSS(`svg.flow-diagram`)))
	b.shoot("flow-diagram.png")
	b.run("stats", chromedp.Navigate(f.ts.URL+"/stats"), chromedp.WaitVisible(chromedp.CSS(`svg.chart`)))
	b.shoot("stats.png")
	b.run("flows", chromedp.Navigate(f.ts.URL+"/flows"), chromedp.WaitVisible(chromedp.CSS(`table.flows`)))
	b.shoot("flows.png")
}

// TestBrowserPhoneLayoutNeverScrollsSideways opens every page on a 390 px
// wide phone: none may be wider than the screen.
func TestBrowserPhoneLayoutNeverScrollsSideways(t *testing.T) {
	f := newFixture(t)
	f.addVoicemail("long", store.Voicemail{CallID: "call-9", Mailbox: "after-hours-overflow-mailbox", Workspace: "acme", Caller: "+914430009999123",
		Called: acmeNumber, Flow: "After-Hours Flow With A Rather Long Name", Step: "voicemail-after-hours", Created: base.Add(-3 * time.Minute)}, time.Second)
	b := newBrowser(t, f, 390, 844)
	for _, user := range []string{"admin", "alice"} {
		b.login(user)
		pages := []struct{ name, path, wait string }{
			{"inbox", "/voicemails", `#inbox-list`},
			{"voicemail", "/voicemails/" + id(f.vm["new1"]), `audio`},
			{"calls", "/calls", `table.calls`},
			{"call", "/calls/call-1", `ol.timeline`},
			{"recorded-call", "/calls/call-2", `#media audio`},
			{"flows", "/flows", `table.flows`},
			{"flow", "/flows/Basic%20Support%20Flow", `svg.flow-diagram`},
			{"stats", "/stats", `svg.chart`},
			{"account", "/account", `form[action="/account/zone"]`},
		}
		shared := len(pages)
		if user == "admin" {
			pages = append(pages, struct{ name, path, wait string }{"users", "/users", `table.users`},
				struct{ name, path, wait string }{"user", "/users/alice", `form[action="/users/alice/edit"]`},
				struct{ name, path, wait string }{"bin", "/voicemails?show=all", `table.inbox`})
		}
		for i, p := range pages {
			b.run(p.name, chromedp.Navigate(f.ts.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.wait)))
			b.noSideways(user + " " + p.path)
			if user == "alice" || i >= shared || p.name == "inbox" { // one picture of each page
				b.shoot(fmt.Sprintf("phone-%s-%s.png", user, p.name))
			}
		}
		b.follow("log out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), `input[name="name"]`)
	}
	// The inbox rows are cards: the player spans the card.
	b.login("alice")
	if w := b.text(`String(Math.round(document.querySelector("table.inbox audio").getBoundingClientRect().width))`); w < "300" || len(w) != 3 {
		t.Errorf("phone player %s px wide, want the card's width (over 300)", w)
	}
}

// TestBrowserAdminInboxFitsALaptop: at 1280 px the admin's inbox shows the
// workspace column and does not scroll sideways.
func TestBrowserAdminInboxFitsALaptop(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f, 1280, 800)
	b.login("admin")
	b.run("all messages", chromedp.Navigate(f.ts.URL+"/voicemails?show=all"), chromedp.WaitVisible(chromedp.CSS(`table.inbox`)))
	head := b.text(`document.querySelector("table.inbox thead").innerText`)
	if !strings.Contains(strings.ToLower(head), "workspace") {
		t.Errorf("no workspace column: %q", head)
	}
	cells := b.text(`[...document.querySelectorAll("table.inbox td.workspace")].map(td => td.innerText.trim()).join(",")`)
	if !strings.Contains(cells, "acme") || !strings.Contains(cells, "other") {
		t.Errorf("workspace cells %q", cells)
	}
	b.noSideways("admin inbox at 1280 px")
	if over := b.text(`(() => { const t = document.querySelector("table.inbox"); return t.scrollWidth > t.parentElement.clientWidth ? t.scrollWidth + " > " + t.parentElement.clientWidth : ""; })()`); over != "" {
		t.Errorf("the inbox table is wider than the page: %s", over)
	}
	b.shoot("admin-inbox-1280.png")
	b.run("calls", chromedp.Navigate(f.ts.URL+"/calls"), chromedp.WaitVisible(chromedp.CSS(`table.calls`)))
	b.noSideways("admin calls at 1280 px")
	b.shoot("admin-calls-1280.png")
	b.run("users", chromedp.Navigate(f.ts.URL+"/users/alice"), chromedp.WaitVisible(chromedp.CSS(`table.audit, form[action="/users/alice/edit"]`)))
	b.shoot("admin-user-1280.png")

	// Staff of one workspace have no workspace column.
	b.follow("log out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), `input[name="name"]`)
	b.login("alice")
	if head := b.text(`document.querySelector("table.inbox thead").innerText`); strings.Contains(strings.ToLower(head), "workspace") {
		t.Errorf("staff of one workspace see a workspace column: %q", head)
	}
}

// TestBrowserUnheardCountFollowsNewVoicemail: the navigation counts unheard
// messages, and an open inbox shows a new message without a reload.
func TestBrowserUnheardCountFollowsNewVoicemail(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f, 1366, 860)
	b.login("alice")
	count := `document.querySelector("[data-unheard-count]")`
	if got := b.text(count + `.hidden ? "hidden" : ` + count + `.innerText`); got != "2" {
		t.Fatalf("unheard count %q, want 2", got)
	}
	if title := b.text(`document.title`); !strings.HasPrefix(title, "(2) ") {
		t.Errorf("title %q", title)
	}
	b.run("mark this page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))

	n := f.addVoicemail("fresh", store.Voicemail{CallID: "call-fresh", Mailbox: "tech", Workspace: "acme", Caller: "+14155550177", Called: acmeNumber,
		Flow: "Basic Support Flow", Step: "tech-vm", Created: base.Add(-time.Minute)}, 2*time.Second)
	b.run("count goes up", poll(count+`.innerText === "3"`))
	b.run("the list shows the new message", poll(`!!document.querySelector('tr[data-vm="`+id(n)+`"].unheard')`))
	if b.text(`window.notReloaded ? "same page" : "reloaded"`) != "same page" {
		t.Error("the page reloaded instead of redrawing its list")
	}
	if !strings.HasPrefix(b.text(`document.title`), "(3) ") {
		t.Errorf("title %q", b.text(`document.title`))
	}
	b.shoot("inbox-new-message.png")

	// Another workspace's message is not counted.
	f.addVoicemail("elsewhere", store.Voicemail{Mailbox: "front", Workspace: "other", Caller: "+14155550178", Created: base.Add(-30 * time.Second)}, time.Second)
	// Listening brings the count down.
	row := `tr[data-vm="` + id(n) + `"]`
	b.run("play the new one", chromedp.Evaluate[chromedp.Void](`document.querySelector('`+row+` audio').play()`),
		poll(`!document.querySelector('`+row+`').classList.contains('unheard')`),
		poll(count+`.innerText === "2"`))
	// Other pages count too.
	b.run("calls page", chromedp.Navigate(f.ts.URL+"/calls"), chromedp.WaitVisible(chromedp.CSS(`table.calls`)))
	if got := b.text(count + `.innerText`); got != "2" {
		t.Errorf("count on the calls page %q", got)
	}
	f.addVoicemail("later", store.Voicemail{Mailbox: "tech", Workspace: "acme", Caller: "+14155550179", Created: base.Add(-10 * time.Second)}, time.Second)
	b.run("count on another page", poll(count+`.innerText === "3"`))
}

// TestBrowserCallerSearchFindsTypedNumbers types numbers as staff do.
func TestBrowserCallerSearchFindsTypedNumbers(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f, 1366, 860)
	b.login("alice")
	rows := `[...document.querySelectorAll("table.inbox tbody tr")].map(r => r.getAttribute("data-vm")).join(",")`
	for _, typed := range []string{"(415) 555-0101", "+1 415 555 0101", "5550101"} {
		b.run("search "+typed, chromedp.Navigate(f.ts.URL+"/voicemails"), chromedp.WaitVisible(chromedp.CSS(`input[name="caller"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="caller"]`), typed))
		b.follow("search "+typed, chromedp.Submit(chromedp.CSS(`input[name="caller"]`)), `table.inbox`)
		if got := b.text(rows); got != id(f.vm["new1"]) {
			t.Errorf("inbox for %q: %s", typed, got)
		}
		if v := b.text(`document.querySelector('input[name="caller"]').value`); v != typed {
			t.Errorf("the search field lost %q: %q", typed, v)
		}
	}
	b.shoot("inbox-caller-search.png")
	calls := `[...document.querySelectorAll("table.calls tbody tr")].map(r => r.getAttribute("data-call")).join(",")`
	for _, typed := range []string{"415-555-0101", "4155550101"} {
		b.run("call search "+typed, chromedp.Navigate(f.ts.URL+"/calls"), chromedp.WaitVisible(chromedp.CSS(`input[name="number"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="number"]`), typed))
		b.follow("call search "+typed, chromedp.Submit(chromedp.CSS(`input[name="number"]`)), `table.calls`)
		if got := b.text(calls); got != "call-1" {
			t.Errorf("calls for %q: %s", typed, got)
		}
	}
}

// TestBrowserCallRecordingPlaysAndDownloads: the calls list marks the
// recorded call and the one that left a voicemail; the call page plays
// the recording like a voicemail.
func TestBrowserCallRecordingPlaysAndDownloads(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f, 1366, 860)
	b.login("alice")
	b.run("calls", chromedp.Navigate(f.ts.URL+"/calls"), chromedp.WaitVisible(chromedp.CSS(`table.calls`)))
	badges := b.text(`[...document.querySelectorAll("table.calls [data-has]")].map(a => a.closest("tr").getAttribute("data-call") + ":" + a.getAttribute("data-has")).join(",")`)
	if badges != "call-1:voicemail,call-2:recording,call-6:voicemail" {
		t.Errorf("calls list badges %q", badges)
	}
	b.shoot("calls-badges.png")
	b.follow("open the recorded call", chromedp.Click(chromedp.CSS(`tr[data-call="call-2"] a[data-has="recording"]`)), `#media audio`)
	b.run("play the recording", chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-recording] audio').play().catch(e => { window.playError = String(e); })`),
		poll(`document.querySelector('[data-recording] audio').currentTime > 0 || window.playError`))
	if perr := b.text(`window.playError || ""`); perr != "" {
		t.Fatalf("play: %s", perr)
	}
	b.shoot("call-recording.png")
	href := b.text(`document.querySelector('[data-recording] a[download]').getAttribute("href")`)
	if href != "/calls/call-2/recordings/"+callRecording+"/download" {
		t.Errorf("download link %q", href)
	}
	alice := f.login("alice")
	resp, body := alice.get(href)
	wantStatus(t, "download the recording", resp, 200)
	if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename="+callRecording+".wav" || !strings.HasPrefix(body, "RIFF") {
		t.Errorf("download: %q, %d bytes", cd, len(body))
	}
	// The call that left a voicemail plays it on its page too.
	b.run("call with a voicemail", chromedp.Navigate(f.ts.URL+"/calls/call-1"), chromedp.WaitVisible(chromedp.CSS(`#media audio[data-vm]`)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#media audio[data-vm]').play()`),
		poll(`document.querySelector('#media audio[data-vm]').currentTime > 0`))
}

// TestBrowserUnplayableMessageSaysWhy: a message whose audio cannot be
// fetched says why next to its player.
func TestBrowserUnplayableMessageSaysWhy(t *testing.T) {
	f := newFixture(t)
	down := f.addVoicemail("down", store.Voicemail{CallID: "call-down", Mailbox: "tech", Workspace: "acme", Caller: "+14155550160",
		Called: acmeNumber, Created: base.Add(-5 * time.Minute)}, time.Second)
	gone := f.addVoicemail("gone", store.Voicemail{CallID: "call-gone", Mailbox: "tech", Workspace: "acme", Caller: "+14155550161",
		Called: acmeNumber, Created: base.Add(-6 * time.Minute)}, 0)
	vm, _ := f.st.GetVoicemail(context.Background(), down, store.AllWorkspaces())
	f.mu.Lock()
	f.audioErr[vm.Recording] = fmt.Errorf("fetching from Asterisk: dial tcp 127.0.0.1:8088: connection refused: %w", ErrAudioUnavailable)
	f.mu.Unlock()
	b := newBrowser(t, f, 1366, 860)
	b.login("alice")
	for _, tc := range []struct {
		id   int64
		want string
	}{
		{down, "Asterisk cannot be reached"},
		{gone, "its file is gone"},
	} {
		b.run("open the message", chromedp.Navigate(f.ts.URL+"/voicemails/"+id(tc.id)),
			poll(`!document.querySelector(".vm-detail .audio-problem").hidden`))
		if got := b.text(`document.querySelector(".vm-detail .audio-problem").innerText`); !strings.Contains(got, tc.want) {
			t.Errorf("voicemail %d says %q, want %q", tc.id, got, tc.want)
		}
		if strings.Contains(b.text(`document.body.innerText`), "connection refused") {
			t.Error("the page shows the opener's error text")
		}
	}
	b.shoot("voicemail-unavailable.png")
	// In the list, trying to play says why in the row.
	b.run("inbox", chromedp.Navigate(f.ts.URL+"/voicemails"), chromedp.WaitVisible(chromedp.CSS(`table.inbox`)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('tr[data-vm="`+id(down)+`"] audio').play().catch(() => {})`),
		poll(`!document.querySelector('tr[data-vm="`+id(down)+`"] .audio-problem').hidden`))
	if v, _ := f.st.GetVoicemail(context.Background(), down, store.AllWorkspaces()); v.Heard {
		t.Error("a message that could not play was marked heard")
	}
}

// TestBrowserShowsTimesInTheViewersTimeZone: times are in the browser's
// zone until the user picks one.
func TestBrowserShowsTimesInTheViewersTimeZone(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f, 1366, 860)
	b.login("alice")
	when := `document.querySelector('tr[data-vm="` + id(f.vm["new1"]) + `"] td.when').innerText`
	// new1 came at 14:00 UTC: 07:00 in Los Angeles (summer time since 8 March).
	if got := b.text(when); got != "Today 07:00" {
		t.Errorf("in the browser's zone: %q", got)
	}
	b.run("choose Tokyo", chromedp.Navigate(f.ts.URL+"/account"), chromedp.WaitVisible(chromedp.CSS(`input[name="time_zone"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="time_zone"]`), "Asia/Tokyo"))
	b.follow("save the zone", chromedp.Submit(chromedp.CSS(`input[name="time_zone"]`)), `.flash.ok`)
	b.shoot("account.png")
	b.run("inbox", chromedp.Navigate(f.ts.URL+"/voicemails"), chromedp.WaitVisible(chromedp.CSS(`table.inbox`)))
	// It is past midnight in Tokyo: 14:00 UTC was yesterday there.
	if got := b.text(when); got != "Yesterday 23:00" {
		t.Errorf("in the chosen zone: %q", got)
	}
}
