package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/internal/flowhead"
	"github.com/callflow/callflow/internal/server"
	"github.com/callflow/callflow/internal/tomlpos"
	"github.com/callflow/callflow/store"
)

// fileFlows are the flows of the configured flows directory that load.
func fileFlows(cfg *config.Config) []*flows.Flow {
	if fi, err := os.Stat(cfg.FlowsDir); err != nil || !fi.IsDir() {
		return nil
	}
	all, _ := flows.LoadFiles([]string{cfg.FlowsDir}, applets.Builtin(), flows.ParseOptions{Country: cfg.DefaultCountry}, flows.LintOptions{})
	return all
}

func fileFlow(cfg *config.Config, name string) (*flows.Flow, bool) {
	for _, f := range fileFlows(cfg) {
		if strings.EqualFold(f.Name, strings.TrimSpace(name)) {
			return f, true
		}
	}
	return nil, false
}

// databaseFlow finds a flow of the database by name, else by id.
func databaseFlow(ctx context.Context, st *store.Store, nameOrID string) (store.FlowRow, error) {
	row, err := st.GetFlow(ctx, nameOrID)
	if errors.Is(err, store.ErrNotFound) {
		if byID, err2 := st.GetFlowByID(ctx, nameOrID); err2 == nil {
			return byID, nil
		}
	}
	return row, err
}

// exportFlow prints a flow's TOML as a file that is that flow: its own id,
// name, status, workspace and numbers written in, so that the file, edited
// and imported, updates this flow and no other. A file flow is its file.
func exportFlow(ctx context.Context, cfg *config.Config, st *store.Store, nameOrID string, stderr io.Writer) ([]byte, error) {
	row, err := databaseFlow(ctx, st, nameOrID)
	if errors.Is(err, store.ErrNotFound) {
		if f, ok := fileFlow(cfg, nameOrID); ok {
			fmt.Fprintf(stderr, "callflow: %s is the file %s: printed as it is\n", f.Name, f.File)
			return f.Raw, nil
		}
	}
	if err != nil {
		return nil, err
	}
	out, err := flowhead.Set([]byte(row.Source), flowhead.Header{ID: row.ID, Name: row.Name, Status: row.Status,
		Workspace: row.Workspace, Numbers: row.Numbers, SetNumbers: true})
	if err != nil {
		return nil, fmt.Errorf("%s: %w (its source is broken: fix it on the web, or import a good file with id = %q)", row.Name, err, row.ID)
	}
	return out, nil
}

// duplicateFlow copies a flow into the database as a draft, a file flow
// too. The copy takes no name a file flow has.
func duplicateFlow(ctx context.Context, cfg *config.Config, st *store.Store, nameOrID, author string) (store.FlowRow, error) {
	files := fileFlows(cfg)
	taken := func(name string) bool {
		for _, f := range files {
			if strings.EqualFold(f.Name, name) {
				return true
			}
		}
		return false
	}
	row, err := databaseFlow(ctx, st, nameOrID)
	if err == nil {
		return st.CopyFlow(ctx, store.FlowCopy{From: row.Name, Author: author, Taken: taken})
	}
	f, ok := fileFlow(cfg, nameOrID)
	if !errors.Is(err, store.ErrNotFound) || !ok {
		return store.FlowRow{}, err
	}
	if probs := withoutItsDirectory(f.File, f.Raw, cfg); probs.HasErrors() {
		return store.FlowRow{}, notFromDatabase(probs)
	}
	return st.CopyFlow(ctx, store.FlowCopy{From: f.Name, Source: string(f.Raw), Workspace: f.Workspace, Author: author, Taken: taken})
}

// flowHistory prints a database flow's revisions, or the versions of a
// file flow that took calls (its edits are its file's history).
func flowHistory(ctx context.Context, cfg *config.Config, st *store.Store, nameOrID string, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	row, err := databaseFlow(ctx, st, nameOrID)
	if err == nil {
		revs, err := st.FlowHistory(ctx, row.Name)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "revision\twhen\twho\tstatus\tnumbers\tcomment")
		for _, r := range revs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Revision, r.Created.Format("2006-01-02 15:04"), r.Author, r.Status, strings.Join(r.Numbers, ","), r.Comment)
		}
		return tw.Flush()
	}
	f, ok := fileFlow(cfg, nameOrID)
	if !errors.Is(err, store.ErrNotFound) || !ok {
		return err
	}
	modified := ""
	if fi, err := os.Stat(f.File); err == nil {
		modified = ", modified " + fi.ModTime().Format("2006-01-02 15:04")
	}
	fmt.Fprintf(stdout, "%s is the file %s (version %s%s): its edits are the file's history.\n", f.Name, f.File, f.Version, modified)
	seen, err := st.FlowVersions(ctx, f.Name)
	if err != nil {
		return err
	}
	if len(seen) == 0 {
		_, err := fmt.Fprintln(stdout, "No call has been recorded on it.")
		return err
	}
	fmt.Fprintln(tw, "version\tcalls\tfirst call\tlast call")
	for _, v := range seen {
		current := ""
		if v.Version == f.Version {
			current = " (the file now)"
		}
		fmt.Fprintf(tw, "%s%s\t%d\t%s\t%s\n", v.Version, current, v.Calls, v.First.Local().Format("2006-01-02 15:04"), v.Last.Local().Format("2006-01-02 15:04"))
	}
	return tw.Flush()
}

// importer imports flow files into the database, each only if it will
// load there beside every other flow: a file that would be stored and
// then not loaded (its numbers answered "not in service") is refused
// with the reason.
type importer struct {
	cfg              *config.Config
	st               *store.Store
	author           string
	publish, replace bool
	stderr           io.Writer
}

type imported struct {
	row  store.FlowRow
	what string
}

// candidate is one file to import.
type candidate struct {
	file        string
	src         []byte
	flow        *flows.Flow
	hasNumbers  bool // the file lists numbers: they become the flow's
	hasSpace    bool // the file names a workspace
	hasStatus   bool // the file says published or draft
	replacesRow *store.FlowRow
}

func (im *importer) run(ctx context.Context, files []string) ([]imported, error) {
	popts := flows.ParseOptions{Country: im.cfg.DefaultCountry}
	lopts := flows.LintOptions{SoundsDir: im.cfg.SoundsDir, DefaultMaxSteps: im.cfg.Calls.MaxSteps}
	var cands []*candidate
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		f, probs := flows.Parse(file, src, applets.Builtin(), popts)
		if f != nil {
			probs = append(probs, flows.LintFlow(f, lopts)...)
		}
		for _, p := range probs {
			fmt.Fprintln(im.stderr, p.String())
		}
		if f == nil || probs.HasErrors() {
			return nil, fmt.Errorf("not imported: %s has errors", file)
		}
		if probs := withoutItsDirectory(file, src, im.cfg); probs.HasErrors() {
			for _, p := range probs {
				fmt.Fprintln(im.stderr, p.String())
			}
			return nil, fmt.Errorf("%s: %w", file, notFromDatabase(probs))
		}
		ix := tomlpos.NewIndex(src)
		_, hasNumbers := ix.Lookup("numbers")
		_, hasSpace := ix.Lookup("workspace")
		_, hasStatus := ix.Lookup("status")
		c := &candidate{file: file, src: src, flow: f, hasNumbers: hasNumbers, hasSpace: hasSpace, hasStatus: hasStatus}
		if row, err := im.target(ctx, f); err == nil {
			c.replacesRow = &row
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		cands = append(cands, c)
	}
	if err := im.checkSet(cands); err != nil {
		return nil, err
	}
	var out []imported
	for _, c := range cands {
		f := c.flow
		status := f.Status // a new flow: as the file says (published when it does not)
		if !c.hasStatus && c.replacesRow != nil {
			status = "" // an existing flow keeps its status unless the file names one
		}
		if im.publish {
			status = flows.Published
		}
		ws := ""
		if c.hasSpace {
			ws = f.Workspace
		}
		row, changed, err := im.st.ImportFlow(ctx, store.FlowImport{
			ID: f.ID, Name: f.Name, Workspace: ws, Source: string(c.src), Status: status,
			Numbers: f.Numbers, SetNumbers: c.hasNumbers, Replace: im.replace,
			Author: im.author, Comment: "imported from " + c.file,
		})
		if err != nil {
			return out, fmt.Errorf("%s: not imported: %w", c.file, err)
		}
		what := "imported"
		if !changed {
			what = "unchanged"
		}
		out = append(out, imported{row, what})
	}
	return out, nil
}

// target is the database flow a file will update: the one its id names,
// or with --replace the one of its name.
func (im *importer) target(ctx context.Context, f *flows.Flow) (store.FlowRow, error) {
	if f.ID != "" {
		return im.st.GetFlowByID(ctx, f.ID)
	}
	if im.replace {
		return im.st.GetFlow(ctx, f.Name)
	}
	return store.FlowRow{}, store.ErrNotFound
}

// checkSet refuses files that the server would not load beside the other
// flows: a name or number a file flow or another database flow has, a
// transfer to no flow. The files are checked together, so that flows that
// transfer to each other can come in at once.
func (im *importer) checkSet(cands []*candidate) error {
	popts := flows.ParseOptions{Country: im.cfg.DefaultCountry}
	incoming := map[string]bool{}
	var all []*flows.Flow
	for _, c := range cands {
		f := c.flow
		if !c.hasNumbers && c.replacesRow != nil {
			f.Numbers = normalized(c.replacesRow.Numbers, im.cfg.DefaultCountry) // they stay the flow's
		} else if !c.hasNumbers {
			f.Numbers = nil
		}
		if c.replacesRow != nil {
			incoming[c.replacesRow.ID] = true
		}
		incoming["name:"+strings.ToLower(f.Name)] = true
		all = append(all, f)
	}
	dbFlows, _ := server.DatabaseFlows(im.st, popts, flows.LintOptions{})()
	for _, f := range dbFlows {
		// Another flow of a file's name: the store refuses the file
		// and says why.
		if !incoming[f.ID] && !incoming["name:"+strings.ToLower(f.Name)] {
			all = append(all, f)
		}
	}
	for _, f := range fileFlows(im.cfg) {
		if c := sameFile(cands, f.File); c != nil {
			// Moving a file flow into the database: the file keeps
			// serving until it is removed, then the database's flow.
			fmt.Fprintf(im.stderr, "callflow: %s is in the flows directory: the database's %q serves calls once the file is removed\n", f.File, c.flow.Name)
			continue
		}
		all = append(all, f)
	}
	probs, bad := flows.LintSet(all)
	var mine flows.Problems
	for _, c := range cands {
		if !bad[c.flow] {
			continue
		}
		for _, p := range probs {
			if p.File == c.file {
				mine = append(mine, p)
			}
		}
	}
	if len(mine) == 0 {
		return nil
	}
	for _, p := range mine {
		fmt.Fprintln(im.stderr, p.String())
	}
	return errors.New("not imported: the server would not load it beside the other flows (see above)")
}

// sameFile is the candidate read from file, if any.
func sameFile(cands []*candidate, file string) *candidate {
	fi, err := os.Stat(file)
	if err != nil {
		return nil
	}
	for _, c := range cands {
		if ci, err := os.Stat(c.file); err == nil && os.SameFile(fi, ci) {
			return c
		}
	}
	return nil
}

func normalized(numbers []string, country string) []string {
	var out []string
	for _, n := range numbers {
		if e164, err := flows.NormalizeNumber(n, country); err == nil {
			out = append(out, e164)
		}
	}
	return out
}

// withoutItsDirectory loads a flow as the server loads a database flow:
// with no directory beside it, so that a file it names there (a ZIP list)
// is not found. Problems point at file.
func withoutItsDirectory(file string, src []byte, cfg *config.Config) flows.Problems {
	empty, err := os.MkdirTemp("", "callflow-import-")
	if err != nil {
		return flows.Problems{{File: file, Line: 1, Col: 1, Severity: flows.Error, Msg: err.Error()}}
	}
	defer os.RemoveAll(empty)
	alone := filepath.Join(empty, "flow.toml")
	_, probs := flows.Parse(alone, src, applets.Builtin(), flows.ParseOptions{Country: cfg.DefaultCountry, Source: "db"})
	var out flows.Problems
	for _, p := range probs {
		if p.Severity == flows.Error {
			p.File = file
			p.Msg = strings.ReplaceAll(p.Msg, empty+string(filepath.Separator), "")
			out = append(out, p)
		}
	}
	return out
}

func notFromDatabase(probs flows.Problems) error {
	return fmt.Errorf("not imported: a flow kept in the database has no directory, so the files it names beside it are not found there (%s); "+
		"write them into the flow (a zip_route's exact, prefix and range lists) or keep the flow as a file in flows_dir", probs[0].Msg)
}
