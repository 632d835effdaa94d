package flows

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/rs/zerolog"
)

// A reload reads and decodes only the files that changed; what it serves
// and reports is what reading every file would give.

// flowNamed is reloadV1 as flow name with number.
func flowNamed(name, number string) string {
	return strings.NewReplacer(`"Main"`, fmt.Sprintf("%q", name), "+15550002222", number).Replace(reloadV1)
}

func mustFlow(t *testing.T, set *Set, name string) *Flow {
	t.Helper()
	f, ok := set.ByName(name)
	if !ok {
		t.Fatalf("flow %q not served; problems %v", name, set.Problems)
	}
	return f
}

// setTime gives file a modification time, as a copy that keeps times would.
func setTime(t *testing.T, file string, mtime time.Time) {
	t.Helper()
	if err := os.Chtimes(file, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestReloadDecodesOnlyWhatChanged(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.toml", flowNamed("A", "+15550000001"))
	writeFile(t, dir, "b.toml", flowNamed("B", "+15550000002"))
	l := &Loader{Dir: dir, Applets: applets.Builtin()}
	first, _ := l.Load()

	same, _ := l.Load()
	if mustFlow(t, same, "A") != mustFlow(t, first, "A") || mustFlow(t, same, "B") != mustFlow(t, first, "B") {
		t.Errorf("an unchanged directory was decoded again")
	}

	setTime(t, filepath.Join(dir, "a.toml"), time.Now().Add(time.Minute))
	touched, _ := l.Load()
	if mustFlow(t, touched, "A") != mustFlow(t, first, "A") {
		t.Errorf("a file touched but not changed was decoded again")
	}

	writeFile(t, dir, "b.toml", strings.Replace(flowNamed("B", "+15550000002"), "hello-v1", "hello-v2", 1))
	edited, _ := l.Load()
	if mustFlow(t, edited, "A") != mustFlow(t, first, "A") {
		t.Errorf("the unchanged file was decoded again")
	}
	if b := mustFlow(t, edited, "B"); b.Steps[0].ID != "hello-v2" {
		t.Errorf("the edit is not served: %s", b.Steps[0].ID)
	}
}

// Size, modification time and identity stand for the content, except for
// a file written too recently for its time to tell one write from the next.
func TestReloadTrustsAFilesStatUnlessItWasJustWritten(t *testing.T) {
	for _, c := range []struct {
		name  string
		mtime time.Time // of both versions
		want  string    // the first step served after the rewrite
	}{
		{"written an hour ago", time.Now().Add(-time.Hour), "hello-v1"},
		{"written in the same tick as the read", time.Now(), "hello-v2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "main.toml")
			writeFile(t, dir, "main.toml", reloadV1)
			setTime(t, file, c.mtime)
			l := &Loader{Dir: dir, Applets: applets.Builtin()}
			l.Load()

			// Same size, same time, same inode: only the content differs.
			writeFile(t, dir, "main.toml", strings.Replace(reloadV1, "hello-v1", "hello-v2", 1))
			setTime(t, file, c.mtime)
			set, _ := l.Load()
			if got := mustFlow(t, set, "Main").Steps[0].ID; got != c.want {
				t.Errorf("serving %s, want %s", got, c.want)
			}
		})
	}
}

// Problems belong to the directory, not to the reload that found them:
// every reload reports those of files that did not change.
func TestReloadReportsProblemsOfUnchangedFiles(t *testing.T) {
	dir := t.TempDir()
	warned := flowNamed("Warned", "+15550000003") + `[[steps]]
id = "rr"
applet = "round_robin"
to = ["PJSIP/a", "PJSIP/b"]
try_next = 5
next = "bye"
`
	writeFile(t, dir, "warned.toml", warned)
	writeFile(t, dir, "broken.toml", flowNamed("Broken", "+15550000004"))
	l := &Loader{Dir: dir, Applets: applets.Builtin()}
	first, _ := l.Load()
	good := mustFlow(t, first, "Broken")
	writeFile(t, dir, "broken.toml", strings.Replace(flowNamed("Broken", "+15550000004"), `applet = "hangup"`, `applet = "hangup"`+"\nbogus = 1", 1))

	for i := range 3 {
		set, probs := l.Load()
		for _, want := range []string{"try_next = 5 but there are only 1 other destinations", "unknown hangup parameter \"bogus\"", "keeping the last good version"} {
			if !strings.Contains(fmt.Sprint(probs), want) {
				t.Errorf("reload %d: no %q in %v", i+1, want, probs)
			}
		}
		if mustFlow(t, set, "Broken") != good {
			t.Errorf("reload %d: the last good version of the broken file is not served", i+1)
		}
	}
}

// The checks across flows see every flow, changed or not.
func TestReloadLintsTheWholeSet(t *testing.T) {
	dir := t.TempDir()
	transfers := strings.Replace(flowNamed("A", "+15550000001"), "applet = \"hangup\"", "applet = \"transfer\"\nflow = \"B\"", 1)
	writeFile(t, dir, "a.toml", transfers)
	writeFile(t, dir, "b.toml", flowNamed("B", "+15550000002"))
	l := &Loader{Dir: dir, Applets: applets.Builtin()}
	if _, probs := l.Load(); probs.HasErrors() {
		t.Fatal(probs)
	}

	if err := os.Remove(filepath.Join(dir, "b.toml")); err != nil {
		t.Fatal(err)
	}
	set, probs := l.Load()
	if _, ok := set.ByName("B"); ok {
		t.Errorf("a deleted file's flow is still served")
	}
	if !strings.Contains(fmt.Sprint(probs), `transfer to flow "B", which does not exist`) {
		t.Errorf("the unchanged flow's transfer to the deleted one is not reported: %v", probs)
	}

	writeFile(t, dir, "c.toml", flowNamed("C", "+15550000001"))
	set, probs = l.Load()
	if _, ok := set.ByName("C"); ok || !strings.Contains(fmt.Sprint(probs), "also claimed") {
		t.Errorf("a new file taking an unchanged flow's number: served %v, problems %v", ok, probs)
	}
}

// After a load the poll sees the directory as loaded, or it would reload
// forever.
func TestWatcherPollAgreesWithTheLoad(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.toml", reloadV1)
	writeFile(t, dir, "broken.toml", "name = \n")
	if err := os.Symlink("nowhere.toml", filepath.Join(dir, "dangling.toml")); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	w := &Watcher{Loader: &Loader{Dir: dir, Applets: applets.Builtin()}, Registry: NewRegistry(), Log: zerolog.Nop()}
	w.Load()
	if w.sig != dirSignature(dir) {
		t.Errorf("the poll's signature differs from the load's")
	}
}

// Whether a sound exists is the sounds directory's business: an unchanged
// flow's sounds are looked up again on every reload.
func TestReloadLooksSoundsUpAgain(t *testing.T) {
	dir, sounds := t.TempDir(), t.TempDir()
	writeFile(t, dir, "main.toml", reloadV1)
	l := &Loader{Dir: dir, Applets: applets.Builtin(), Lint: LintOptions{SoundsDir: sounds}}
	first, probs := l.Load()
	if !strings.Contains(fmt.Sprint(probs), `sound "one" not found`) {
		t.Fatalf("missing sound not reported: %v", probs)
	}
	writeFile(t, sounds, "one.gsm", "")
	set, probs := l.Load()
	if len(probs) != 0 {
		t.Errorf("the sound is there now, still: %v", probs)
	}
	if mustFlow(t, set, "Main") != mustFlow(t, first, "Main") {
		t.Errorf("the unchanged flow was decoded again")
	}
}

// A file's decoded flow depends on the loader's options too.
func TestReloadDecodesAgainWhenTheOptionsChange(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "main.toml", strings.Replace(reloadV1, "+15550002222", "5550002222", 1))
	l := &Loader{Dir: dir, Applets: applets.Builtin(), Parse: ParseOptions{Country: "1"}}
	if set, _ := l.Load(); mustFlow(t, set, "Main").Numbers[0] != "+15550002222" {
		t.Fatalf("numbers %v", mustFlow(t, set, "Main").Numbers)
	}
	l.Parse.Country = "44"
	if set, _ := l.Load(); mustFlow(t, set, "Main").Numbers[0] != "+445550002222" {
		t.Errorf("still %v after the country changed", mustFlow(t, set, "Main").Numbers)
	}
}
