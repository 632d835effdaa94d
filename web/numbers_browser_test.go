package web

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserNumbersBulkAssignAndRelease: a workspace admin pastes numbers
// and reads a result per line, then releases one from its row; the
// released number stays listed, flagged.
func TestBrowserNumbersBulkAssignAndRelease(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f, 1366, 860)
	b.login("wendy")
	b.run("numbers", chromedp.Navigate(f.ts.URL+"/numbers"), chromedp.WaitVisible(chromedp.CSS(`table.numbers`)))
	if got := b.text(`document.querySelector('tr[data-number="+15550003333"] .flag').innerText`); got != "its flow is a draft" {
		t.Errorf("draft flow's number flag %q", got)
	}
	b.shoot("numbers.png")
	b.run("open the bulk form", chromedp.Click(chromedp.CSS(`details.bulk summary`)), chromedp.WaitVisible(chromedp.CSS(`textarea[name="numbers"]`)),
		chromedp.SendKeys(chromedp.CSS(`textarea[name="numbers"]`), "+15550007777\n(555) 000-8888\n555 000 999\n+15550003333\n"),
		chromedp.SetValue(chromedp.CSS(`details.bulk select[name="flow"]`), "Night Line"))
	b.follow("assign", chromedp.Click(chromedp.CSS(`details.bulk button[value="assign"]`)), `table.results`)
	got := b.text(`[...document.querySelectorAll("table.results tbody tr")].map(r => r.cells[0].innerText + "=" + r.cells[2].innerText).join(" | ")`)
	want := "+15550007777=assigned | (555) 000-8888=assigned | 555 000 999=refused | +15550003333=refused"
	if got != want {
		t.Errorf("results:\n got %s\nwant %s", got, want)
	}
	if detail := b.text(`document.querySelectorAll("table.results tbody tr")[3].cells[3].innerText`); !strings.Contains(detail, "tick move") {
		t.Errorf("the refused move says %q", detail)
	}
	// The form keeps what was typed, to tick "move" and send again.
	if v := b.text(`document.querySelector('textarea[name="numbers"]').value`); !strings.Contains(v, "+15550003333") {
		t.Errorf("the form lost the numbers: %q", v)
	}
	b.shoot("numbers-bulk-results.png")

	// Release one from its row (the confirmation answered yes).
	row := `tr[data-number="+15550007777"]`
	b.run("confirm yes", chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`))
	b.follow("release", chromedp.Click(chromedp.CSS(row+` button[value="release"]`)), `table.results`)
	if got := b.text(`document.querySelector('` + row + ` .flag').innerText`); !strings.Contains(got, "no flow") {
		t.Errorf("released number's flag %q", got)
	}
	if n, _ := f.st.FlowForNumber(context.Background(), "+15550007777"); n.Name != "" {
		t.Errorf("still on %s", n.Name)
	}
	// And give it a flow again from its row.
	b.run("choose a flow", chromedp.SetValue(chromedp.CSS(row+` select[name="flow"]`), "Draft Line"))
	b.follow("assign from the row", chromedp.Click(chromedp.CSS(row+` button[value="assign"]`)), `table.results`)
	if n, err := f.st.FlowForNumber(context.Background(), "+15550007777"); err != nil || n.Name != "Draft Line" {
		t.Errorf("after assigning from the row: %q %v", n.Name, err)
	}
	b.noSideways("numbers at 1366 px")
	b.run("flagged", chromedp.Navigate(f.ts.URL+"/numbers?show=flagged"), chromedp.WaitVisible(chromedp.CSS(`table.numbers`)))
	b.shoot("numbers-flagged.png")
}

// TestBrowserNumbersAndSoundsFitAPhone: neither page scrolls sideways on a
// 390 px phone.
func TestBrowserNumbersAndSoundsFitAPhone(t *testing.T) {
	f := soundFixture(t, nil)
	wendy := f.login("wendy")
	wendy.upload("/sounds", "hello.wav", readTestdata(t, "hello.wav"), map[string]string{"workspace": "acme", "name": "welcome-to-acme-support"})
	b := newBrowser(t, f, 390, 844)
	b.login("admin")
	for _, p := range []struct{ name, path, wait string }{
		{"numbers", "/numbers", `table.numbers`},
		{"sounds", "/sounds", `table.sounds`},
	} {
		b.run(p.name, chromedp.Navigate(f.ts.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.wait)))
		b.noSideways("phone " + p.path)
		b.shoot("phone-admin-" + p.name + ".png")
	}
}
