package applets_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
	"github.com/rs/zerolog"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Each applet has a flow in testdata/applets and, per scripted case, the
// simulated trace in testdata/golden/applets.
func TestAppletOutcomes(t *testing.T) {
	at := time.Date(2026, 12, 25, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		applet, name string
		script       scripted.Script
	}{
		{"greeting", "plays-in-order", scripted.Script{}},
		{"menu", "single-key", scripted.Script{Inputs: keys("1")}},
		{"menu", "multi-digit", scripted.Script{Inputs: keys("100")}},
		{"menu", "star-key", scripted.Script{Inputs: keys("*")}},
		{"menu", "invalid-then-retry", scripted.Script{Inputs: keys("5,1")}},
		{"menu", "max-retries", scripted.Script{Inputs: keys("timeout,9")}},
		{"forward", "answered", scripted.Script{Agents: agents("answered")}},
		{"forward", "no-answer", scripted.Script{Agents: agents("no_answer")}},
		{"forward", "busy", scripted.Script{Agents: agents("busy")}},
		{"forward", "failed", scripted.Script{Agents: agents("failed")}},
		{"multi_ring", "answered-then-survey", scripted.Script{Agents: agents("answered"), TalkTime: 20 * time.Second}},
		{"multi_ring", "no-answer", scripted.Script{Agents: agents("no_answer")}},
		{"voicemail", "recorded", scripted.Script{Messages: []time.Duration{25 * time.Second}}},
		{"voicemail", "capped-at-max-length", scripted.Script{Messages: []time.Duration{5 * time.Minute}}},
		{"voicemail", "empty", scripted.Script{Messages: []time.Duration{0}}},
		{"voicemail", "hangup-while-recording", scripted.Script{Messages: []time.Duration{4 * time.Second}, HangupAt: 3}},
		{"transfer", "to-greeting", scripted.Script{}},
		{"hangup", "busy", scripted.Script{}},
		{"set", "vars-tags-counter", scripted.Script{}},
		{"webhook", "skipped", scripted.Script{}},
		{"email", "with-voicemail", scripted.Script{}},
	}
	all, probs := flows.LoadFiles([]string{"../testdata/applets"}, applets.Builtin(), flows.ParseOptions{}, flows.LintOptions{})
	if probs.HasErrors() {
		t.Fatalf("testdata flows: %v", probs)
	}
	set := flows.NewSet(1, all, nil)
	for _, c := range cases {
		t.Run(c.applet+"/"+c.name, func(t *testing.T) {
			c.script.Start, c.script.From, c.script.To = at, "+15557654321", "+15550001000"
			sim, err := flows.Simulate(context.Background(), set, c.applet, flows.SimOptions{Script: c.script, Log: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			flows.WriteTrace(&out, sim.Record)
			for _, m := range sim.Mail {
				out.WriteString("email to " + strings.Join(m.To, ", ") + ": " + m.Subject + "\n")
				for _, a := range m.Attachments {
					out.WriteString("  attached " + a.Name + "\n")
				}
			}
			for _, vm := range sim.Stored {
				out.WriteString("stored voicemail " + vm.Recording.Name + " in " + vm.Mailbox + " from " + vm.Caller + "\n")
			}
			golden(t, filepath.Join("../testdata/golden/applets", c.applet+"-"+c.name+".golden"), out.String())
		})
	}
}

func keys(s string) []scripted.Input {
	in, err := scripted.ParseInputs(s)
	if err != nil {
		panic(err)
	}
	return in
}

func agents(s string) []applets.DialStatus {
	a, err := scripted.ParseAgents(s)
	if err != nil {
		panic(err)
	}
	return a
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestMediaNames(t *testing.T) {
	cases := map[string]string{
		"hello-world":           "sound:hello-world",
		"custom/welcome.wav":    "sound:custom/welcome",
		"sound:custom/x.gsm":    "sound:custom/x",
		"recording:vm-1":        "recording:vm-1",
		"digits:42":             "digits:42",
		"/var/lib/sounds/a.wav": "sound:/var/lib/sounds/a",
	}
	for in, want := range cases {
		got, err := applets.ParseMedia(in)
		if err != nil || string(got) != want {
			t.Errorf("%q: got %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "http://x/y.wav", "sound:"} {
		if _, err := applets.ParseMedia(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestEveryAppletIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	reg := applets.Builtin()
	for _, name := range reg.Names() {
		if !strings.Contains(string(readme), "### `"+name+"`") {
			t.Errorf("README.md has no reference section \"### `%s`\"", name)
		}
		if _, err := os.Stat(filepath.Join("../testdata/applets", name+".toml")); err != nil {
			t.Errorf("applet %s has no golden test flow: %v", name, err)
		}
	}
}

// An applet's outcomes are written once, in its Definition: every outcome a
// configured step reports is one the definition documents, by name or by a
// "<placeholder>" for names its parameters choose.
func TestStepOutcomesAreDocumentedByTheDefinition(t *testing.T) {
	reg := applets.Builtin()
	all, probs := flows.LoadFiles([]string{"../testdata/applets"}, reg, flows.ParseOptions{}, flows.LintOptions{})
	if probs.HasErrors() {
		t.Fatalf("testdata flows: %v", probs)
	}
	seen := map[string]bool{}
	for _, f := range all {
		for _, s := range f.Steps {
			def, _ := reg.Lookup(s.Applet)
			seen[s.Applet] = true
			named := slices.ContainsFunc(def.Outcomes, func(o string) bool { return strings.HasPrefix(o, "<") })
			for _, o := range s.Facts.Outcomes {
				if !slices.Contains(def.Outcomes, o) && !named {
					t.Errorf("%s: step %q (%s) reports outcome %q, not in its definition %v", f.Name, s.ID, s.Applet, o, def.Outcomes)
				}
			}
			if len(s.Facts.Outcomes) == 0 && !s.Facts.Ends {
				t.Errorf("%s: step %q (%s) reports no outcome", f.Name, s.ID, s.Applet)
			}
		}
	}
	for _, name := range reg.Names() {
		if !seen[name] {
			t.Errorf("no flow in testdata/applets uses %s", name)
		}
	}
}
