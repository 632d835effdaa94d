package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/internal/server"
	"github.com/callflow/callflow/speech"
	"github.com/callflow/callflow/store"
)

// check lints flow files: every problem one line, file:line:col.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file")
	sounds := fs.String("sounds", "", "sounds directory to look for audio files (default: config sounds_dir)")
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "callflow: %v\n", err)
		return 2
	}
	if len(paths) == 0 {
		paths = []string{cfg.FlowsDir}
	}
	lopts := flows.LintOptions{SoundsDir: cfg.SoundsDir, DefaultMaxSteps: cfg.Calls.MaxSteps, CheckWAV: speech.CheckTelephony}
	if *sounds != "" {
		lopts.SoundsDir = *sounds
	}
	popts := flows.ParseOptions{Country: cfg.DefaultCountry}
	var dbFlows []*flows.Flow
	var dbProbs flows.Problems
	if _, err := os.Stat(cfg.Database); err == nil {
		// flows kept in the database share the registry, so the linter
		// sees them too (a name or number in both is a conflict)
		if st, err := store.Open(context.Background(), cfg.Database, store.Options{}); err == nil {
			dbFlows, dbProbs = server.DatabaseFlows(st, popts, lopts)()
			st.Close()
		} else {
			fmt.Fprintf(stderr, "callflow: database %s: %v (its flows are not checked)\n", cfg.Database, err)
		}
	}
	all, probs := flows.LoadFiles(paths, applets.Builtin(), popts, lopts, dbFlows...)
	probs = append(dbProbs, probs...)
	for _, p := range probs {
		fmt.Fprintln(stdout, p.String())
	}
	errs, warns := 0, 0
	for _, p := range probs {
		if p.Severity == flows.Error {
			errs++
		} else {
			warns++
		}
	}
	fmt.Fprintf(stderr, "%d flows checked: %d errors, %d warnings\n", len(all), errs, warns)
	if errs > 0 {
		return 1
	}
	return 0
}
