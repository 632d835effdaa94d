package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

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
	lopts.Notes = true
	// Partial: a step that does not decode must not hide the problems of
	// the rest of the file.
	popts := flows.ParseOptions{Country: cfg.DefaultCountry, Partial: true}
	var dbFlows []*flows.Flow
	var dbProbs flows.Problems
	if haveDatabase(cfg) {
		// flows kept in the database share the registry, so the linter
		// sees them too (a name or number in both is a conflict)
		if st, err := store.Open(context.Background(), cfg.Database, server.StoreOptions(cfg)); err == nil {
			dbFlows, dbProbs = server.DatabaseFlows(st, popts, lopts)()
			st.Close()
		} else {
			fmt.Fprintf(stderr, "callflow: database %s: %v (its flows are not checked)\n", cfg.DatabaseShown(), err)
		}
	}
	files, siblings := flowFiles(paths)
	// A file checked alone is checked with the other flows of its
	// directory, as the server would load it: a transfer may go to them
	// and a number they claim is taken. Their own problems are theirs.
	neighbours, _ := flows.LoadFiles(siblings, applets.Builtin(), flows.ParseOptions{Country: cfg.DefaultCountry}, flows.LintOptions{})
	_, probs := flows.LoadFiles(paths, applets.Builtin(), popts, lopts, append(dbFlows, neighbours...)...)
	probs = append(dbProbs, probs...)
	counted := map[string]bool{}
	for _, f := range files {
		counted[f] = true
	}
	for _, f := range dbFlows {
		counted[f.File] = true
	}
	errs, warns, notes := 0, 0, 0
	for _, p := range probs {
		if slices.Contains(siblings, filepath.Clean(p.File)) {
			continue
		}
		if strings.HasPrefix(p.File, "db:") {
			counted[p.File] = true
		}
		fmt.Fprintln(stdout, p.String())
		switch p.Severity {
		case flows.Error:
			errs++
		case flows.Warning:
			warns++
		default:
			notes++
		}
	}
	fmt.Fprintf(stderr, "%s checked: %s, %s, %s\n", plural(len(counted), "flow"), plural(errs, "error"), plural(warns, "warning"), plural(notes, "note"))
	if errs > 0 {
		return 1
	}
	return 0
}

// flowFiles lists the flow files paths name (a directory's *.toml, a path
// that is not there as itself: it is reported) and the other flow files
// in the directories of the files named alone.
func flowFiles(paths []string) (files, siblings []string) {
	var dirs []string
	for _, p := range paths {
		p = filepath.Clean(p)
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.IsDir():
			files = append(files, tomlFiles(p)...)
		default:
			files = append(files, p)
			if err == nil && !slices.Contains(dirs, filepath.Dir(p)) {
				dirs = append(dirs, filepath.Dir(p))
			}
		}
	}
	for _, d := range dirs {
		for _, f := range tomlFiles(d) {
			if !slices.Contains(files, f) && !slices.Contains(siblings, f) {
				siblings = append(siblings, f)
			}
		}
	}
	return files, siblings
}

// tomlFiles are the flow files of dir as the server loads them: *.toml,
// hidden files left out.
func tomlFiles(dir string) []string {
	all, _ := filepath.Glob(filepath.Join(dir, "*.toml"))
	var out []string
	for _, f := range all {
		if !strings.HasPrefix(filepath.Base(f), ".") {
			out = append(out, f)
		}
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
