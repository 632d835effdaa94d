package web

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserSoundUploadListenAndRefusal: a workspace admin uploads a
// prompt, sees it listed with the name a flow uses and plays it; a file
// that is no audio is refused with the reason; typed text is heard.
func TestBrowserSoundUploadListenAndRefusal(t *testing.T) {
	f := soundFixture(t, nil)
	b := newBrowser(t, f, 1366, 860)
	b.login("wendy")
	b.run("sounds", chromedp.Navigate(f.ts.URL+"/sounds"), chromedp.WaitVisible(chromedp.CSS(`input[type="file"]`)))
	wavFile, _ := filepath.Abs(filepath.Join("testdata", "sounds", "hello.wav"))
	b.run("choose a file", chromedp.SetUploadFiles(chromedp.CSS(`input[type="file"]`), []string{wavFile}),
		chromedp.SendKeys(chromedp.CSS(`.upload input[name="name"]`), "welcome"))
	b.follow("upload", chromedp.Click(chromedp.CSS(`.upload button[type="submit"]`)), `tr[data-sound="acme/welcome"]`)
	if msg := b.text(`document.querySelector(".flash.ok").innerText`); !strings.Contains(msg, "Use it in a flow as sound:callflow/acme/welcome") {
		t.Errorf("after upload: %q", msg)
	}
	if use := b.text(`document.querySelector('tr[data-sound="acme/welcome"] td.use').innerText`); use != "sound:callflow/acme/welcome" {
		t.Errorf("use as %q", use)
	}
	row := `tr[data-sound="acme/welcome"] audio`
	b.run("play", chromedp.Evaluate[chromedp.Void](`document.querySelector('`+row+`').play().catch(e => { window.playError = String(e); })`),
		poll(`document.querySelector('`+row+`').currentTime > 0 || window.playError`))
	if perr := b.text(`window.playError || ""`); perr != "" {
		t.Fatalf("play: %s", perr)
	}
	b.shoot("sounds-uploaded.png")

	// Not audio: refused, and the page says why.
	bad := filepath.Join(t.TempDir(), "minutes.wav")
	f.writeFile(bad, "Minutes of the meeting: nothing decided.\n")
	b.run("choose a bad file", chromedp.SetUploadFiles(chromedp.CSS(`input[type="file"]`), []string{bad}))
	b.follow("upload the bad file", chromedp.Click(chromedp.CSS(`.upload button[type="submit"]`)), `.flash.error`)
	if msg := b.text(`document.querySelector(".flash.error").innerText`); msg != "minutes.wav is not a WAV, MP3 or OGG file (its content looks like text/plain; charset=utf-8)" {
		t.Errorf("refusal says %q", msg)
	}
	if n := b.text(`String(document.querySelectorAll("table.sounds tbody tr").length)`); n != "1" {
		t.Errorf("%s sounds listed after the refusal", n)
	}
	b.shoot("sounds-refused.png")

	if f.srv.opts.Sounds.Speech == nil {
		t.Log("espeak-ng is not installed: no text to speech preview")
		return
	}
	b.run("type text", chromedp.SendKeys(chromedp.CSS(`.say textarea[name="text"]`), "Thanks for calling Acme."))
	b.follow("hear it", chromedp.Click(chromedp.CSS(`.say button[type="submit"]`)), `[data-preview] audio`)
	prev := `document.querySelector('[data-preview] audio')`
	b.run("play the preview", chromedp.Evaluate[chromedp.Void](prev+`.play().catch(e => { window.playError = String(e); })`),
		poll(prev+`.currentTime > 0 || window.playError`))
	if perr := b.text(`window.playError || ""`); perr != "" {
		t.Fatalf("play the preview: %s", perr)
	}
	b.shoot("sounds-tts-preview.png")
}
