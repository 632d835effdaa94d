package web

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserBuilder: a workspace admin who never sees TOML creates the
// support line from a template, adds a step and sees the linter object
// and then agree, connects a menu key to another step, sets a schedule
// with a holiday, tries a call in the simulate panel (its path drawn on
// the diagram), saves, meets another admin's edit (changed since you
// opened it), and publishes.
func TestBrowserBuilder(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f, 1366, 900)
	b.login("wendy")
	b.run("new flow", chromedp.Navigate(f.ts.URL+"/flows/new"), chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "Built Support"))
	b.follow("create from the support template", chromedp.Submit(chromedp.CSS(`input[name="name"]`)), `#builder`)
	b.run("the steps drawn", poll(`document.querySelectorAll("ol.steps li.step").length >= 8`))
	b.shoot("builder-template.png")
	count := func() string { return b.text(`String(document.querySelectorAll("ol.steps li.step").length)`) }
	before := count()

	// A schedule with no hours is an error, shown by the step and gone
	// once hours and a holiday are set.
	b.run("select the welcome step", click(`li.step[data-step="welcome"]`))
	b.run("add a schedule", click(`button[data-add="schedule"]`),
		poll(`document.querySelector('li.step[data-step="schedule"]') !== null`),
		poll(`document.querySelector('li.step[data-step="schedule"]').classList.contains("has-error")`))
	if count() == before {
		t.Fatal("no step added")
	}
	b.shoot("builder-lint-error.png")
	b.run("open the schedule", click(`li.step[data-step="schedule"]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-params="schedule"] [data-rows="hours"]`)))
	b.run("set the time zone, hours and a holiday",
		change(`[data-param="timezone"] input`, "America/New_York"),
		poll(`document.querySelector("[data-source]").value.includes("America/New_York")`),
		chromedp.WaitVisible(chromedp.CSS(`[data-rows="hours"] [data-add-row="hours"]`)),
		click(`[data-rows="hours"] [data-add-row="hours"]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-rows="hours"] [data-row="0"] [data-field="from"]`)),
		change(`[data-rows="hours"] [data-row="0"] [data-field="from"]`, "09:00"),
		poll(`document.querySelector("[data-source]").value.includes("09:00")`),
		change(`[data-rows="hours"] [data-row="0"] [data-field="to"]`, "18:00"),
		poll(`document.querySelector("[data-source]").value.includes("18:00")`))
	for _, day := range []string{"mon", "tue", "wed", "thu"} {
		b.run("tick "+day, click(`[data-rows="hours"] [data-row="0"] [data-day="`+day+`"]`),
			poll(`document.querySelector("[data-source]").value.includes('"`+day+`"')`))
	}
	// A row added while the page still writes the edit before it (Friday)
	// outlives the redraw that edit brings.
	b.run("tick fri and add a holiday at once", poll(`(() => { if (document.querySelector("[data-busy]")) return false;
			document.querySelector('[data-rows="hours"] [data-row="0"] [data-day="fri"]').click();
			document.querySelector('[data-rows="holidays"] [data-add-row="holidays"]').click();
			return true; })()`),
		poll(`document.querySelector("[data-source]").value.includes('"fri"') && !document.querySelector("[data-busy]")`),
		poll(`document.querySelector('[data-rows="holidays"] [data-row="0"] [data-field="name"]') !== null`))
	b.run("a holiday",
		change(`[data-rows="holidays"] [data-row="0"] [data-field="name"]`, "Christmas"),
		poll(`document.querySelector("[data-source]").value.includes("Christmas")`),
		change(`[data-rows="holidays"] [data-row="0"] [data-field="dates"]`, "2026-12-25"),
		poll(`document.querySelector("[data-source]").value.includes("2026-12-25")`))
	b.run("the schedule is clean", poll(`!document.querySelector('li.step[data-step="schedule"]').classList.contains("has-error")`))
	b.shoot("builder-schedule.png")

	// A new menu, its keys connected to steps.
	b.run("add a menu after goodbye", click(`li.step[data-step="goodbye"]`),
		click(`button[data-add="menu"]`),
		poll(`document.querySelector('li.step[data-step="menu-2"]') !== null`),
		click(`li.step[data-step="menu-2"]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-params="menu-2"] [data-param="keys"] textarea`)),
		change(`[data-params="menu-2"] [data-param="keys"] textarea`, "1 = tech\n2 = sales"),
		poll(`/keys = \{ 1 = "tech", 2 = "sales" \}/.test(document.querySelector("[data-source]").value)`),
		poll(`(document.querySelector('li.step[data-step="menu-2"] li[data-outcome="2"] select') || {}).value === "sales"`))
	b.run("and deleted again", click(`li.step[data-step="menu-2"] button[data-tool="delete"]`),
		poll(`document.querySelector('li.step[data-step="menu-2"]') === null`))

	// Menu key 3 goes to billing instead of sales, from the diagram.
	b.run("connect key 3", change(`li.step[data-step="menu"] li[data-outcome="3"] select`, "billing"),
		poll(`/3 = "billing"/.test(document.querySelector("[data-source]").value)`))
	// An outcome dragged onto a step goes there: the menu's timeout to goodbye.
	b.run("drag timeout onto goodbye", chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		document.querySelector('li.step[data-step="menu"] li[data-outcome="timeout"] .outcome').dispatchEvent(new DragEvent("dragstart", {dataTransfer: dt, bubbles: true}));
		document.querySelector('li.step[data-step="goodbye"]').dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
	})()`), poll(`/timeout = "goodbye"/.test(document.querySelector("[data-source]").value)`))
	// Untouched steps keep their comments.
	if src := b.text(`document.querySelector("[data-source]").value`); !strings.Contains(src, `# "Welcome to support. This call may be recorded."`) {
		t.Errorf("a comment of an untouched step is lost:\n%s", src)
	}

	// Try a call: key 1, the tech team answers.
	b.run("simulate", chromedp.SetValue(chromedp.CSS(`[data-simulate] input[name="input"]`), "1"),
		chromedp.SetValue(chromedp.CSS(`[data-simulate] input[name="agents"]`), "answered"),
		chromedp.SetValue(chromedp.CSS(`[data-simulate] input[name="at"]`), "2026-12-02T10:00:00"),
		click(`[data-simulate] button`),
		chromedp.WaitVisible(chromedp.CSS(`[data-trace]`)),
		poll(`document.querySelector('li.step[data-step="tech"]').classList.contains("on-path")`))
	if got := b.text(`[...document.querySelectorAll("[data-trace] tbody tr")].map(r => r.cells[1].innerText + ":" + r.cells[2].innerText).join(" ")`); !strings.Contains(got, "menu:1") || !strings.Contains(got, "tech:answered") {
		t.Errorf("simulated path %q", got)
	}
	b.shoot("builder-simulate.png")

	b.run("save", click(`[data-save]`), poll(`document.querySelector("[data-message]").innerText.includes("Saved as revision")`))

	// Another admin saves meanwhile: this page's next save is refused.
	row, err := f.st.GetFlow(context.Background(), "Built Support")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.EditFlow(context.Background(), "Built Support", row.Source+"\n# edited elsewhere\n", row.Revision, "admin"); err != nil {
		t.Fatal(err)
	}
	b.run("save again", click(`[data-save]`), chromedp.WaitVisible(chromedp.CSS(`[data-conflict]`)))
	if got := b.text(`document.querySelector("[data-conflict-source]").value`); !strings.Contains(got, "# edited elsewhere") {
		t.Errorf("the other version is not shown: %q", got)
	}
	b.shoot("builder-conflict.png")
	b.run("take theirs", click(`[data-take-theirs]`), poll(`document.querySelector("[data-source]").value.includes("# edited elsewhere")`))

	b.run("publish", click(`[data-publish]`), poll(`document.querySelector("[data-status-badge]").innerText === "published"`))
	if row, _ := f.st.GetFlow(context.Background(), "Built Support"); row.Status != "published" || !strings.Contains(row.Source, "2026-12-25") {
		t.Errorf("published flow: %s\n%s", row.Status, row.Source)
	}
	b.shoot("builder-published.png")
	b.noSideways("the builder")

	// Roll back to the first revision from the history, comparing first.
	b.run("history", chromedp.Navigate(f.ts.URL+"/flows/Built%20Support/history?a=1&b="+itoa(row.Revision+2)), chromedp.WaitVisible(chromedp.CSS(`table.diff`)))
	b.shoot("builder-history-diff.png")
	b.run("confirm yes", chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`))
	b.follow("roll back to revision 1", chromedp.Click(chromedp.CSS(`form[action$="/rollback"] input[value="1"] ~ button`)), `h1`)
	if row, _ := f.st.GetFlow(context.Background(), "Built Support"); strings.Contains(row.Source, "2026-12-25") {
		t.Errorf("rolled back, still the schedule:\n%s", row.Source)
	}

	// On a tablet the builder fits.
	b.run("tablet", chromedp.EmulateViewport(820, 1180), chromedp.Navigate(f.ts.URL+"/flows/Built%20Support/edit"),
		poll(`document.querySelectorAll("ol.steps li.step").length >= 8`))
	b.noSideways("the builder on a tablet")
	b.shoot("builder-tablet.png")
}

// change sets a field and tells the page, in one step of the page's own
// (the builder redraws its forms: a node found earlier may be gone), once
// the page has finished the edit before (as a person waits for it).
func change(sel, value string) chromedp.Action[chromedp.Void] {
	return poll(`(() => { if (document.querySelector("[data-busy]")) return false;
		const e = document.querySelector(` + strconv.Quote(sel) + `); if (!e) return false;
		e.value = ` + strconv.Quote(value) + `; e.dispatchEvent(new Event("change")); return true; })()`)
}

// click clicks what sel finds now, in one step of the page's own (the
// builder redraws its steps and forms after every change).
func click(sel string) chromedp.Action[chromedp.Void] {
	return poll(`(() => { if (document.querySelector("[data-busy]")) return false;
		const e = document.querySelector(` + strconv.Quote(sel) + `); if (!e) return false; e.click(); return true; })()`)
}
