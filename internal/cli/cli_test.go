package cli

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, path string, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// repoRoot is read once, before any test changes directory.
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Join(wd, "..", "..")
}()

// runCLI runs a command line from the repository's root, where the flows,
// lint cases and golden files the CLI tests name are.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Chdir(repoRoot)
	var out, errb bytes.Buffer
	code := Run(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// Every lint rule has a broken flow in testdata/lint and the exact output
// of `callflow check` for it in testdata/golden/check.
func TestCheckReportsEveryRuleWithPositions(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"syntax", []string{"testdata/lint/syntax.toml"}},
		{"unknown-keys", []string{"testdata/lint/unknown-keys.toml"}},
		{"unknown-applet", []string{"testdata/lint/unknown-applet.toml"}},
		{"bad-values", []string{"testdata/lint/bad-values.toml"}},
		{"bad-routes", []string{"testdata/lint/bad-routes.toml"}},
		{"warnings", []string{"--sounds", "testdata/sounds", "testdata/lint/warnings.toml"}},
		{"dead-end", []string{"testdata/lint/dead-end.toml"}},
		{"bounded-loop", []string{"testdata/lint/bounded-loop.toml"}},
		{"duplicate-numbers", []string{"testdata/lint/duplicate-numbers"}},
		{"seed-flows", []string{"testdata/flows"}},
		{"missing-file", []string{"testdata/lint/no-such-file.toml"}},
		{"every-problem", []string{"testdata/lint/every-problem.toml"}},
		{"transfer-to-sibling", []string{"testdata/lint/transfer-sibling/front-desk.toml"}},
		{"to-as-string", []string{"testdata/lint/to-as-string.toml"}},
		{"templates", []string{"testdata/lint/templates.toml"}},
		{"settings-on-step", []string{"testdata/lint/settings-on-step.toml"}},
		{"menu-keys-only", []string{"testdata/lint/menu-keys-only.toml"}},
		{"whisper-sound", []string{"--sounds", "testdata/sounds", "testdata/lint/whisper.toml"}},
		{"whisper-bad", []string{"testdata/lint/whisper-bad.toml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("CALLFLOW_CONFIG", "")
			out, summary, code := runCLI(t, append([]string{"check"}, c.args...)...)
			golden(t, filepath.Join("testdata/golden/check", c.name+".golden"), fmt.Sprintf("exit %d\n%s%s", code, out, summary))
			hasError := strings.Contains(out, ": error: ")
			if (code == 1) != hasError {
				t.Errorf("exit %d with errors=%v", code, hasError)
			}
		})
	}
}

// The simulator's path through the example flows for each menu choice,
// timeout and agent outcome.
func TestSimulateSeedFlows(t *testing.T) {
	const at = "2026-12-25T10:00:00-05:00"
	cases := []struct {
		name string
		args []string
	}{
		{"support-key1-answered", []string{"Basic Support Flow", "--input", "1", "--agents", "answered"}},
		{"support-key1-no-answer", []string{"Basic Support Flow", "--input", "1", "--agents", "no_answer"}},
		{"support-key1-busy", []string{"Basic Support Flow", "--input", "1", "--agents", "busy"}},
		{"support-key1-failed-empty-message", []string{"Basic Support Flow", "--input", "1", "--agents", "failed", "--messages", "0s"}},
		{"support-key2-answered", []string{"+914430001234", "--input", "2", "--agents", "answered", "--talk", "10s"}},
		{"support-key2-no-answer", []string{"+914430001234", "--input", "2", "--agents", "no_answer"}},
		{"support-key3-answered", []string{"Basic Support Flow", "--input", "3", "--agents", "answered"}},
		{"support-key3-busy", []string{"Basic Support Flow", "--input", "3", "--agents", "busy"}},
		{"support-timeout-then-2", []string{"Basic Support Flow", "--input", "timeout,2", "--agents", "answered"}},
		{"support-invalid-then-3", []string{"Basic Support Flow", "--input", "9,3", "--agents", "no_answer"}},
		{"support-silent-caller", []string{"Basic Support Flow"}},
		{"support-hangup-while-ringing", []string{"Basic Support Flow", "--input", "1", "--hangup-at", "4"}},
		{"after-hours", []string{"After-Hours Flow"}},
		{"after-hours-empty-message", []string{"After-Hours Flow", "--messages", "0s"}},
		{"after-hours-hangup-while-recording", []string{"After-Hours Flow", "--messages", "7s", "--hangup-at", "4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("CALLFLOW_CONFIG", "")
			args := append([]string{"simulate", "--flows", "testdata/flows", "--at", at}, c.args...)
			out, errOut, code := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden(t, filepath.Join("testdata/golden/simulate", c.name+".golden"), out)
		})
	}
}

func TestSimulateJSONHasStepAppletOutcome(t *testing.T) {
	t.Setenv("CALLFLOW_CONFIG", "")
	out, errOut, code := runCLI(t, "simulate", "--flows", "testdata/flows", "Basic Support Flow", "--input", "2", "--agents", "busy", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{`"step": "billing"`, `"applet": "forward"`, `"outcome": "busy"`, `"step": "billing-vm"`} {
		if !strings.Contains(out, want) {
			t.Errorf("JSON lacks %s:\n%s", want, out)
		}
	}
}

func TestGraphDrawsRoutedAndFallThroughEdges(t *testing.T) {
	t.Setenv("CALLFLOW_CONFIG", "")
	out, errOut, code := runCLI(t, "graph", "--flows", "testdata/flows", "After-Hours Flow")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "testdata/golden/graph/after-hours.dot", out)
}

func TestUnknownFlowIsAnError(t *testing.T) {
	t.Setenv("CALLFLOW_CONFIG", "")
	_, errOut, code := runCLI(t, "simulate", "--flows", "testdata/flows", "Nope")
	if code != 1 || !strings.Contains(errOut, `no flow named or numbered "Nope"`) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// check counts the files it read, those that do not parse among them: a
// broken file is a flow checked, never "0 flows checked: 1 error".
func TestCheckCountsEveryFileAsAFlow(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"testdata/lint/syntax.toml"}, "1 flow checked: 1 error, 0 warnings, 0 notes\n"},
		{[]string{"testdata/lint/bad-values.toml"}, "1 flow checked: 11 errors, 0 warnings, 1 note\n"},
		{[]string{"testdata/lint/duplicate-numbers"}, "3 flows checked: 4 errors, 0 warnings, 3 notes\n"},
		{[]string{"testdata/flows", "testdata/lint/syntax.toml"}, "3 flows checked: 1 error, 0 warnings, 0 notes\n"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			t.Setenv("CALLFLOW_CONFIG", "")
			_, summary, _ := runCLI(t, append([]string{"check"}, c.args...)...)
			if summary != c.want {
				t.Errorf("summary %q, want %q", summary, c.want)
			}
		})
	}
}
