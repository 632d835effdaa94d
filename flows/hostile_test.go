//go:build unix

package flows

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/callflow/callflow/applets"
	"github.com/rs/zerolog"
)

// Flow files come from whoever can write to the flows directory (or post a
// flow to the API): a broken or hostile one gets a clear error at
// file:line:col, costs little memory and time, and the other flows keep
// loading.

// allocated returns the bytes fn allocated. Tests in this file do not run
// in parallel, so other allocations are noise far below the bounds.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// goodFlow is the flow that must keep loading beside hostile files.
const goodFlow = reloadV1

func loadDir(t *testing.T, dir string) (*Set, Problems) {
	t.Helper()
	l := &Loader{Dir: dir, Applets: applets.Builtin()}
	return l.Load()
}

// checkRefused checks that file got an error with a position and a short
// message, and that the good flow still loaded.
func checkRefused(t *testing.T, set *Set, probs Problems, file, want string) {
	t.Helper()
	found := false
	for _, p := range probs {
		if p.File != file {
			continue
		}
		if p.Line < 1 || p.Col < 1 || len(p.Msg) > 1000 || !utf8.ValidString(p.Msg) {
			t.Errorf("unusable problem: %.300q", p.String())
		}
		if p.Severity == Error && strings.Contains(p.Msg, want) {
			found = true
		}
	}
	if !found {
		t.Errorf("no error with %q for %s in %.2000v", want, filepath.Base(file), probs)
	}
	if _, ok := set.ByNumber("+15550002222"); !ok {
		t.Errorf("the good flow did not load beside %s: %v", filepath.Base(file), probs)
	}
}

func TestLoaderRefusesHugeFilesWithoutReadingThem(t *testing.T) {
	const size = 100 << 20
	cases := []struct {
		name string
		make func(t *testing.T, file string)
	}{
		{"sparse", func(t *testing.T, file string) {
			if err := os.WriteFile(file, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(file, size); err != nil {
				t.Fatal(err)
			}
		}},
		{"written", func(t *testing.T, file string) {
			// A real flow, padded with comments: it would parse.
			f, err := os.Create(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			f.WriteString(goodFlow)
			line := []byte("# " + strings.Repeat("x", 1021) + "\n")
			for range size / len(line) {
				if _, err := f.Write(line); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "good.toml", goodFlow)
			huge := filepath.Join(dir, "huge.toml")
			c.make(t, huge)
			runtime.GC()

			var set *Set
			var probs Problems
			if n := allocated(func() { set, probs = loadDir(t, dir) }); n > 16<<20 {
				t.Errorf("loading allocated %d MiB for a %d MiB file", n>>20, size>>20)
			}
			checkRefused(t, set, probs, huge, fmt.Sprintf("a flow file may be at most %d", MaxFileSize))

			var flows []*Flow
			if n := allocated(func() {
				flows, probs = LoadFiles([]string{dir}, applets.Builtin(), ParseOptions{}, LintOptions{})
			}); n > 16<<20 {
				t.Errorf("check allocated %d MiB", n>>20)
			}
			checkRefused(t, NewSet(1, flows, probs), probs, huge, "a flow file may be at most")
		})
	}
}

// Nesting that would cost a recursive parser its stack, or the decoder and
// the index time and memory quadratic in the depth, is refused up front.
func TestParseRefusesDeepNesting(t *testing.T) {
	const n = 100000
	cases := []struct {
		name      string
		src       string
		want      string
		line, col int
	}{
		{"arrays", "name = \"x\"\na = " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n", "nest deeper than 32", 2, 37},
		{"unclosed-arrays", "a = " + strings.Repeat("[", n), "nest deeper than 32", 1, 37},
		{"inline-tables", "a = " + strings.Repeat("{b = ", n) + "1" + strings.Repeat("}", n) + "\n", "nest deeper than 32", 1, 0},
		{"step-parameter", "[[steps]]\napplet = \"greeting\"\nplay = " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n", "nest deeper than 32", 3, 40},
		{"table-header-brackets", strings.Repeat("[", n) + "a" + strings.Repeat("]", n) + "\n", "nest deeper than 32", 1, 33},
		{"dotted-key", strings.Repeat("a.", n) + "a = 1\n", "dotted key has more than 32 parts", 1, 64},
		{"quoted-dotted-key", strings.Repeat(`"a".`, n) + "a = 1\n", "dotted key has more than 32 parts", 1, 128},
		{"dotted-table-header", "name = \"x\"\n[" + strings.Repeat("a.", n) + "a]\n", "dotted key has more than 32 parts", 2, 65},
		{"dotted-array-of-tables", "[[" + strings.Repeat("steps.", n) + "x]]\n", "dotted key has more than 32 parts", 1, 0},
		{"dotted-key-in-inline-table", "a = {" + strings.Repeat("b.", n) + "c = 1}\n", "dotted key has more than 32 parts", 1, 0},
	}
	reg := applets.Builtin()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f *Flow
			var probs Problems
			if n := allocated(func() { f, probs = Parse("deep.toml", []byte(c.src), reg, ParseOptions{}) }); n > 16<<20 {
				t.Errorf("refusing it allocated %d MiB", n>>20)
			}
			if f != nil || len(probs) != 1 {
				t.Fatalf("want one error, got %d problems: %.500v", len(probs), probs)
			}
			p := probs[0]
			if p.Severity != Error || p.File != "deep.toml" || !strings.Contains(p.Msg, c.want) {
				t.Errorf("got %q, want an error with %q", p, c.want)
			}
			if p.Line != c.line || c.col > 0 && p.Col != c.col {
				t.Errorf("at %d:%d, want %d:%d", p.Line, p.Col, c.line, c.col)
			}
		})
	}
}

// Keys and headers of a few parts, and dots in strings, comments and
// values, are what real flows have: the key-depth check leaves them alone.
func TestDottedKeyCheckLeavesNormalFilesAlone(t *testing.T) {
	deep := strings.Repeat("a.", 40)
	src := `# ` + deep + `
name = "Dots"
description = "` + deep + `"
numbers = ["+15550004444"]
[settings]
qualified_after = "1.5s"
[[steps]]
id = "v1.2.3"
applet = "greeting"
play = ['sound:` + deep + `', """
` + deep + `\
` + deep + `"""]
on.done = "bye"
[[steps]]
id = "bye"
applet = "hangup"
note = '''` + deep + `'''
`
	f, probs := Parse("dots.toml", []byte(src), applets.Builtin(), ParseOptions{})
	if f == nil || probs.HasErrors() {
		t.Fatalf("%v", probs)
	}
	bad := src + strings.Repeat("x.", 32) + "y = 1\n"
	_, probs = Parse("dots.toml", []byte(bad), applets.Builtin(), ParseOptions{})
	if len(probs) != 1 || probs[0].Line != strings.Count(src, "\n")+1 || !strings.Contains(probs[0].Msg, "more than 32 parts") {
		t.Errorf("line numbers lost across multi-line strings: %v", probs)
	}
}

// manySteps writes n greetings that fall through to a final hangup.
func manySteps(n int) string {
	var b strings.Builder
	b.WriteString("name = \"Many\"\nnumbers = [\"+15550005555\"]\n")
	for range n {
		b.WriteString("[[steps]]\napplet=\"greeting\"\nplay=\"a\"\n")
	}
	b.WriteString("[[steps]]\napplet=\"hangup\"\n")
	return b.String()
}

// A hundred thousand steps fit under MaxFileSize: they load, in memory
// proportional to the file.
func TestHundredThousandStepsLoad(t *testing.T) {
	const n = 100000
	src := manySteps(n)
	if len(src) > MaxFileSize {
		t.Fatalf("the file is %d bytes, over the limit: shorten the steps", len(src))
	}
	dir := t.TempDir()
	writeFile(t, dir, "good.toml", goodFlow)
	writeFile(t, dir, "many.toml", src)
	var set *Set
	var probs Problems
	// Quadratic work in the number of steps would be 10^10 of something.
	if got := allocated(func() { set, probs = loadDir(t, dir) }); got > 1<<30 {
		t.Errorf("loading allocated %d MiB for a %d KiB file", got>>20, len(src)>>10)
	}
	f, ok := set.ByName("Many")
	if !ok || len(f.Steps) != n+1 || probs.HasErrors() {
		t.Fatalf("loaded: %v; problems %.500v", ok, probs)
	}
	if _, ok := set.ByNumber("+15550002222"); !ok {
		t.Errorf("the good flow did not load")
	}
}

// Every step's every outcome goes to another step of a cycle: the linter
// reports what it promises (loops that wait for nobody, unreachable steps,
// dead ends), in messages of bounded size, and finishes.
func TestLintReportsCyclesEverywhere(t *testing.T) {
	ring := func(n int, step func(i int) string) string {
		var b strings.Builder
		b.WriteString("name = \"Cycles\"\nnumbers = [\"+15550006666\"]\n")
		for i := range n {
			fmt.Fprintf(&b, "[[steps]]\nid = \"s%d\"\n%s\n", i, step(i))
		}
		return b.String()
	}
	next := func(n int) func(int) string {
		return func(i int) string {
			return fmt.Sprintf("applet = \"greeting\"\nplay = \"a\"\nnext = \"s%d\"", (i+1)%n)
		}
	}
	forwards := func(n int) func(int) string {
		return func(i int) string {
			return fmt.Sprintf("applet = \"forward\"\nto = \"PJSIP/a\"\non = { no_answer = \"s%d\", busy = \"s%d\", failed = \"s%d\" }", (i+1)%n, (i+2)%n, (i+n-1)%n)
		}
	}
	cases := []struct {
		name  string
		src   string
		want  []string // each in some warning
		loops int
	}{
		{"ring", ring(5, next(5)), []string{"loop s0 -> s1 -> s2 -> s3 -> s4 -> s0 waits for no caller input"}, 1},
		{"long-ring", ring(100000, next(100000)), []string{"loop s0 -> s1 -> ", "-> ... (99980 more steps) -> s99999 -> s0 waits"}, 1},
		{"every-outcome-elsewhere", ring(1000, forwards(1000)), []string{"loop s0 -> s1 -> ", "(980 more steps)"}, 1},
		{"self-loops", ring(3, func(i int) string {
			return fmt.Sprintf("applet = \"greeting\"\nplay = \"a\"\nnext = \"s%d\"", i)
		}), []string{"loop s0 -> s0 waits", `step "s1" (greeting) is unreachable`, `step "s2" (greeting) is unreachable`}, 1},
		{"two-rings-and-a-dead-end", ring(5, func(i int) string {
			switch i {
			case 0:
				return "applet = \"forward\"\nto = \"PJSIP/a\"\non = { no_answer = \"s1\", busy = \"s3\" }"
			case 1, 2:
				return fmt.Sprintf("applet = \"greeting\"\nplay = \"a\"\nnext = \"s%d\"", 3-i)
			case 3:
				return "applet = \"greeting\"\nplay = \"a\"\nnext = \"s4\""
			}
			return "applet = \"forward\"\nto = \"PJSIP/b\"\non = { no_answer = \"s3\", busy = \"s3\" }"
		}), []string{"loop s1 -> s2 -> s1", "loop s3 -> s4 -> s3", `dead end: step "s4" outcome "failed" falls off the end`}, 2},
		{"menu-loop-is-bounded", ring(2, func(i int) string {
			if i == 0 {
				return "applet = \"menu\"\nprompt = \"sound:menu\"\nkeys = { 1 = \"s1\" }\non = { timeout = \"s0\", invalid = \"s0\", max_retries = \"s1\" }"
			}
			return "applet = \"greeting\"\nplay = \"a\"\nnext = \"s0\""
		}), nil, 0},
		{"counted-loop-is-bounded", ring(2, func(i int) string {
			if i == 0 {
				return "applet = \"set\"\ncounter = \"tries\"\nlimit = 3\non = { limit = \"s0\" }\nnext = \"s1\""
			}
			return "applet = \"greeting\"\nplay = \"a\"\nnext = \"s0\""
		}), nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Parse directly: the long ring is over MaxFileSize.
			f, probs := Parse("cycles.toml", []byte(c.src), applets.Builtin(), ParseOptions{})
			if f == nil || probs.HasErrors() {
				t.Fatalf("%.1000v", probs)
			}
			lint := LintFlow(f, LintOptions{})
			loops := 0
			for _, p := range lint {
				if len(p.Msg) > 2000 {
					t.Errorf("a %d-byte message: %.200s...", len(p.Msg), p.Msg)
				}
				if strings.HasPrefix(p.Msg, "loop ") {
					loops++
				}
				if p.Severity == Error {
					t.Errorf("unexpected error %v", p)
				}
			}
			if loops != c.loops {
				t.Errorf("%d loop warnings, want %d: %.2000v", loops, c.loops, lint)
			}
			for _, w := range c.want {
				if !strings.Contains(fmt.Sprint(lint), w) {
					t.Errorf("no warning with %q in %.2000v", w, lint)
				}
			}
		})
	}
}

func TestBinaryGarbageIsAClearError(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	utf16 := []byte{0xff, 0xfe} // the good flow as a Windows editor may save it
	for _, r := range goodFlow {
		utf16 = append(utf16, byte(r), 0)
	}
	cases := []struct {
		name string
		src  []byte
	}{
		{"random-bytes", random},
		{"nuls", make([]byte, 4096)},
		{"nul-in-a-flow", []byte(strings.Replace(goodFlow, `"Main"`, "\"Ma\x00in\"", 1))},
		{"invalid-utf8-value", []byte(strings.Replace(goodFlow, `"Main"`, "\"Ma\xff\xfein\"", 1))},
		{"invalid-utf8-key", []byte("\xc3\x28 = 1\n" + goodFlow)},
		{"utf16", utf16},
		{"gzip", []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcb\x48\xcd\xc9\xc9\x07\x00")},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01")},
		{"lone-byte", []byte{0xff}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "good.toml", goodFlow)
			writeFile(t, dir, "garbage.toml", string(c.src))
			set, probs := loadDir(t, dir)
			checkRefused(t, set, probs, filepath.Join(dir, "garbage.toml"), "")
		})
	}
}

// Symbolic links that loop, and other files that are no flow file, get an
// error; the loader and the watcher neither loop nor block on them.
func TestSymlinkLoopsAndSpecialFilesInTheFlowsDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "good.toml", goodFlow)
	links := map[string]string{
		"a.toml":        "b.toml", // a -> b -> a
		"b.toml":        "a.toml",
		"self.toml":     "self.toml",
		"here.toml":     ".",  // the directory itself
		"parent.toml":   "..", // its parent
		"up":            "..", // not a flow file: skipped
		"dangling.toml": "nowhere.toml",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Skipf("no symbolic links here: %v", err)
		}
	}
	// Opening a FIFO waits for a writer: the loader must not.
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.toml"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a.toml":        "too many levels of symbolic links",
		"b.toml":        "too many levels of symbolic links",
		"self.toml":     "too many levels of symbolic links",
		"here.toml":     "not a regular file",
		"parent.toml":   "not a regular file",
		"dangling.toml": "no such file",
		"pipe.toml":     "not a regular file",
	}
	check := func(t *testing.T, set *Set, probs Problems) {
		t.Helper()
		for name, msg := range want {
			checkRefused(t, set, probs, filepath.Join(dir, name), msg)
		}
		for _, p := range probs {
			if strings.Contains(p.File, "up") {
				t.Errorf("the link to the parent was followed: %v", p)
			}
		}
	}

	set, probs := loadDir(t, dir)
	check(t, set, probs)
	flows, probs := LoadFiles([]string{dir}, applets.Builtin(), ParseOptions{}, LintOptions{})
	check(t, NewSet(1, flows, probs), probs)

	// The poll compares signatures: one that changed by itself would
	// reload forever.
	if dirSignature(dir) != dirSignature(dir) {
		t.Errorf("the directory's signature changes while the directory does not")
	}

	reg := NewRegistry()
	w := &Watcher{Loader: &Loader{Dir: dir, Applets: applets.Builtin()}, Registry: reg, Log: zerolog.Nop(), Poll: 5 * time.Millisecond, Debounce: 5 * time.Millisecond}
	set, probs = w.Load()
	check(t, set, probs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	writeFile(t, dir, "later.toml", strings.NewReplacer(`"Main"`, `"Later"`, "+15550002222", "+15550007777").Replace(goodFlow))
	waitFor(t, func() bool { _, ok := reg.Current().ByName("Later"); return ok })
	check(t, reg.Current(), reg.Current().Problems)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("watcher: %v", err)
	}
}

// A flows directory that is itself a symbolic link loop is an error, not
// a crash, for the loader and the watcher alike.
func TestFlowsDirectoryThatIsALoop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flows")
	if err := os.Symlink("flows", dir); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	reg := NewRegistry()
	w := &Watcher{Loader: &Loader{Dir: dir, Applets: applets.Builtin()}, Registry: reg, Log: zerolog.Nop(), Poll: time.Millisecond}
	set, probs := w.Load()
	if len(set.Flows()) != 0 || len(probs) != 1 || probs[0].File != dir || !strings.Contains(probs[0].Msg, "too many levels of symbolic links") {
		t.Fatalf("got %d flows, %v", len(set.Flows()), probs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx); err != nil {
		t.Errorf("watcher: %v", err)
	}
}

// A file with thousands of problems logs the first few and a count; the
// registry keeps them all.
func TestReloadLogsAtMostFiftyProblemsAFile(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("name = \"noisy\"\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "unknown_%d = 1\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "noisy.toml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	reg := NewRegistry()
	w := &Watcher{Loader: &Loader{Dir: dir, Applets: applets.Builtin()}, Registry: reg, Log: zerolog.New(&logBuf)}
	w.Load()
	if n := len(reg.Current().Problems); n < 3000 {
		t.Fatalf("registry keeps %d problems, want all 3000+", n)
	}
	logged := strings.Count(logBuf.String(), `"message":"flow problem"`)
	if logged != maxLoggedProblems {
		t.Errorf("%d problems logged, want %d", logged, maxLoggedProblems)
	}
	if !strings.Contains(logBuf.String(), `"not_logged":`) {
		t.Errorf("no count of the problems not logged:\n%.500s", logBuf.String())
	}
}
