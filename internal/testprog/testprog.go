// Package testprog builds the callflow command for tests that run it as a
// process of its own (crash and restart tests, the load tool's child mode).
// Only tests import it.
package testprog

import (
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// Callflow builds the product into a temporary directory of t, with the
// race detector when the test binary has it, so that the process's own
// paths are race-checked too.
func Callflow(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "callflow")
	args := []string{"build", "-o", bin}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	if out, err := exec.Command("go", append(args, "github.com/callflow/callflow")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
