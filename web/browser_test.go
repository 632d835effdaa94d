package web

import (
	"context"
	"errors"
	"flag"
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

// TestBrowser drives the inbox, a call, a flow and the stats in a real
// headless Chromium as staff of "acme" would, and saves screenshots.
func TestBrowser(t *testing.T) {
	exe := chromiumPath()
	if exe == "" {
		t.Skip("chromium is not installed")
	}
	f := newFixture(t)
	// The deadline only keeps a stuck browser from hanging the run.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
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
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 860),
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	if err := chromedp.Do(bctx); err != nil { // start the browser
		t.Fatalf("starting chromium: %v", err)
	}
	// Each step gets a bound so that a stuck one reports where the page
	// was; the bound is generous and only there to avoid hanging.
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(bctx, time.Minute)
		defer scancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			dctx, dcancel := context.WithTimeout(bctx, 10*time.Second)
			defer dcancel()
			loc, _ := chromedp.Run(dctx, chromedp.Location())
			body, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ""`))
			t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, body)
		}
	}
	// Every run takes the screenshots; -screenshots keeps them in
	// testdata/screenshots (committed, for people to look at).
	shots := t.TempDir()
	if *keepShots {
		shots = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	shoot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	run("open the inbox", chromedp.EmulateViewport(1366, 860), chromedp.Navigate(f.ts.URL+"/voicemails"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)))
	proc := chromedp.FromContext(bctx).Browser.Process()
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); !strings.Contains(loc, "/login?next=") {
		t.Errorf("not sent to the login page: %s", loc)
	}
	run("log in",
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "pw-alice"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.inbox`)),
	)
	text, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`table.inbox`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "+14155550101") || strings.Contains(text, "+14155550105") {
		t.Errorf("inbox shows:\n%s", text)
	}
	shoot("inbox.png")

	// Play the newest message: the browser fetches it with range requests,
	// and playing marks it heard.
	row := `tr[data-vm="` + id(f.vm["new1"]) + `"]`
	run("play", chromedp.Evaluate[chromedp.Void](`document.querySelector('`+row+` audio').play().catch(e => { window.playError = String(e); })`))
	run("metadata", poll(`(document.querySelector('`+row+` audio').readyState >= 1) || window.playError`))
	if perr, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`window.playError || ""`)); perr != "" {
		t.Fatalf("play: %s", perr)
	}
	run("marked heard on the page", poll(`!document.querySelector('`+row+`').classList.contains('unheard')`))
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
	run("playing", poll(`document.querySelector('`+row+` audio').currentTime > 0`))
	vm, err := f.st.GetVoicemail(context.Background(), f.vm["new1"], store.AllWorkspaces())
	if err != nil || !vm.Heard || vm.HeardBy != "alice" {
		t.Errorf("after playing: heard=%v by %q (%v)", vm.Heard, vm.HeardBy, err)
	}

	// The button marks a message heard too (a form post and a redirect).
	row2 := `tr[data-vm="` + id(f.vm["new2"]) + `"]`
	if _, err := chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(row2+` button.mark-heard`))); err != nil {
		t.Fatalf("mark heard: %v", err)
	}
	run("after mark heard", chromedp.WaitVisible(chromedp.CSS(`table.inbox`)),
		poll(`document.querySelector('`+row2+`') && !document.querySelector('`+row2+`').classList.contains('unheard')`))
	if vm, _ := f.st.GetVoicemail(context.Background(), f.vm["new2"], store.AllWorkspaces()); !vm.Heard {
		t.Error("the button did not mark the message heard")
	}

	// Another workspace's voicemail is a 404 page.
	resp, err := chromedp.Run(bctx, chromedp.NavigateResponse(f.ts.URL+"/voicemails/"+id(f.vm["other"])))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 404 {
		t.Errorf("other workspace's voicemail: %d", resp.Status)
	}
	if h1, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`h1`))); !strings.Contains(h1, "404") {
		t.Errorf("404 page heading %q", h1)
	}

	run("call", chromedp.Navigate(f.ts.URL+"/calls/call-1"), chromedp.WaitVisible(chromedp.CSS(`ol.timeline`)),
		chromedp.WaitVisible(chromedp.CSS(`svg.flow-diagram`)))
	shoot("call-timeline.png")
	run("flow", chromedp.Navigate(f.ts.URL+"/flows/Basic%20Support%20Flow"), chromedp.WaitVisible(chromedp.CSS(`svg.flow-diagram`)))
	shoot("flow-diagram.png")
	run("stats", chromedp.Navigate(f.ts.URL+"/stats"), chromedp.WaitVisible(chromedp.CSS(`svg.chart`)))
	shoot("stats.png")
	run("flows", chromedp.Navigate(f.ts.URL+"/flows"), chromedp.WaitVisible(chromedp.CSS(`table.flows`)))
	shoot("flows.png")

	// The browser goes away with its context.
	bcancel()
	acancel()
	if proc != nil {
		if err := proc.Signal(syscall.Signal(0)); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("chromium still running after cancel: %v", err)
		}
	}
}
