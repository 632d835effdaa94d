package flows

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/rs/zerolog"
)

// writeFlows writes n copies of the example support flow, each with its
// own name and number.
func writeFlows(b *testing.B, n int) string {
	b.Helper()
	src, err := os.ReadFile("../testdata/flows/basic-support.toml")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	for i := range n {
		s := strings.Replace(string(src), `name = "Basic Support Flow"`, fmt.Sprintf(`name = "Support %d"`, i), 1)
		s = strings.Replace(s, `"+914430001234"`, fmt.Sprintf(`"+1555%07d"`, i), 1)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.toml", i)), []byte(s), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// BenchmarkLintFiles is `callflow check` on 10,000 flow files: read,
// decode, lint each, then the cross-flow checks.
func BenchmarkLintFiles(b *testing.B) {
	dir := writeFlows(b, 10000)
	reg := applets.Builtin()
	b.ResetTimer()
	for b.Loop() {
		fs, probs := LoadFiles([]string{dir}, reg, ParseOptions{}, LintOptions{})
		if len(fs) != 10000 || probs.HasErrors() {
			b.Fatalf("%d flows, %.300v", len(fs), probs[:min(len(probs), 3)])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/10000, "µs/file")
}

// BenchmarkLoadRegistry is a full reload of 10,000 changed files into a
// new registry set (the watcher's path).
func BenchmarkLoadRegistry(b *testing.B) {
	dir := writeFlows(b, 10000)
	b.ResetTimer()
	for b.Loop() {
		l := &Loader{Dir: dir, Applets: applets.Builtin()}
		set, _ := l.Load()
		if len(set.Flows()) != 10000 {
			b.Fatalf("%d flows", len(set.Flows()))
		}
	}
}

// describe rewrites flow file i of a writeFlows directory with a new
// description, the smallest edit an admin makes.
func describe(b *testing.B, dir string, i int, description string) {
	b.Helper()
	file := filepath.Join(dir, fmt.Sprintf("f%05d.toml", i))
	src, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	start := strings.Index(string(src), "description = ")
	end := start + strings.IndexByte(string(src[start:]), '\n')
	out := string(src[:start]) + fmt.Sprintf("description = %q", description) + string(src[end:])
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReloadOneChanged is the Loader's share of a reload after one of
// 10,000 files changed.
func BenchmarkReloadOneChanged(b *testing.B) {
	dir := writeFlows(b, 10000)
	l := &Loader{Dir: dir, Applets: applets.Builtin()}
	if set, _ := l.Load(); len(set.Flows()) != 10000 {
		b.Fatalf("%d flows", len(set.Flows()))
	}
	n := 0
	for b.Loop() {
		n++
		want := fmt.Sprintf("edit %d", n)
		b.StopTimer()
		describe(b, dir, 4242, want)
		b.StartTimer()
		set, _ := l.Load()
		if f, ok := set.ByName("Support 4242"); !ok || f.Description != want || len(set.Flows()) != 10000 {
			b.Fatalf("the edit is not live (%v)", ok)
		}
	}
}

// BenchmarkChangedFileLive is what an admin waits for: from writing one of
// 10,000 files to the registry serving it, through the watcher with its
// default debounce and poll.
func BenchmarkChangedFileLive(b *testing.B) {
	dir := writeFlows(b, 10000)
	reg := NewRegistry()
	swapped := make(chan *Set, 1)
	w := &Watcher{Loader: &Loader{Dir: dir, Applets: applets.Builtin()}, Registry: reg, Log: zerolog.Nop(),
		OnReload: func(s *Set, _ Problems) {
			select {
			case swapped <- s:
			default:
			}
		}}
	w.Load()
	<-swapped
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	edit := func(n int) {
		want := fmt.Sprintf("edit %d", n)
		describe(b, dir, 4242, want)
		for {
			set := <-swapped
			if f, ok := set.ByName("Support 4242"); ok && f.Description == want {
				return
			}
		}
	}
	edit(0) // the watch is in place once one edit went through
	n := 0
	for b.Loop() {
		n++
		edit(n)
	}
}

// BenchmarkRunnerStep is the runner's own cost per step (routing, trace,
// logging disabled) on a scripted call: greeting, menu and invalid-key
// greetings until max_retries.
func BenchmarkRunnerStep(b *testing.B) {
	src, _ := os.ReadFile("../testdata/flows/basic-support.toml")
	f, probs := Parse("basic-support.toml", src, applets.Builtin(), ParseOptions{})
	if f == nil {
		b.Fatal(probs)
	}
	set := NewSet(1, []*Flow{f}, nil)
	r := &Runner{Log: zerolog.Nop()}
	inputs := make([]scripted.Input, 200)
	for i := range inputs {
		inputs[i] = scripted.Input{Keys: "9"} // invalid forever: menu <-> invalid
	}
	steps := 0
	b.ResetTimer()
	for b.Loop() {
		rec := r.Run(context.Background(), scripted.New(scripted.Script{Inputs: inputs}), set, f, CallInfo{})
		steps += len(rec.Steps)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(steps), "ns/step")
}
