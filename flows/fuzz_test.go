package flows

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/callflow/callflow/applets"
)

// Any bytes as a flow file: decoding and linting never panic, and an
// accepted flow routes every outcome somewhere known.
func FuzzParseAndLint(f *testing.F) {
	for _, pattern := range []string{"../testdata/flows/*.toml", "../testdata/lint/*.toml", "../testdata/applets/*.toml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if src, err := os.ReadFile(file); err == nil {
				f.Add(src)
			}
		}
	}
	reg := applets.Builtin()
	f.Fuzz(func(t *testing.T, src []byte) {
		fl, probs := Parse("fuzz.toml", src, reg, ParseOptions{Country: "1"})
		for _, p := range probs {
			if p.Line < 1 || p.Col < 1 {
				t.Fatalf("problem without a position: %v", p)
			}
		}
		if fl == nil {
			return
		}
		LintFlow(fl, LintOptions{})
		LintSet([]*Flow{fl})
		for _, s := range fl.Steps {
			for _, o := range s.Facts.Outcomes {
				target, kind := fl.Route(s, o)
				if kind == RouteTo || kind == RouteFallThrough {
					if _, ok := fl.Step(target); !ok && !probs.HasErrors() {
						lint := LintFlow(fl, LintOptions{})
						if !lint.HasErrors() {
							t.Fatalf("step %q outcome %q goes to unknown %q and lint is silent", s.ID, o, target)
						}
					}
				}
			}
		}
	})
}
