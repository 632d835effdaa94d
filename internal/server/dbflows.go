package server

import (
	"context"
	"fmt"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/store"
)

// DatabaseFlows loads the flows kept in SQLite for the registry and the
// linter: their status and numbers are the database's.
func DatabaseFlows(st *store.Store, popts flows.ParseOptions, lopts flows.LintOptions) func() ([]*flows.Flow, flows.Problems) {
	return func() ([]*flows.Flow, flows.Problems) {
		rows, err := st.ListFlows(context.Background(), store.AllWorkspaces())
		if err != nil {
			return nil, flows.Problems{{File: st.Path(), Line: 1, Col: 1, Severity: flows.Error, Msg: "database flows: " + err.Error()}}
		}
		var out []*flows.Flow
		var probs flows.Problems
		opts := popts
		opts.Source = "db"
		for _, r := range rows {
			file := fmt.Sprintf("db:%s@%d", r.Name, r.Revision)
			f, fp := flows.Parse(file, []byte(r.Source), applets.Builtin(), opts)
			if f != nil {
				f.ID, f.Name, f.Status, f.Numbers = r.ID, r.Name, r.Status, nil
				if r.Workspace != "" {
					f.Workspace = r.Workspace
				}
				for _, n := range r.Numbers {
					if e164, err := flows.NormalizeNumber(n, opts.Country); err == nil {
						f.Numbers = append(f.Numbers, e164)
					}
				}
				fp = append(fp, flows.LintFlow(f, lopts)...)
			}
			probs = append(probs, fp...)
			if f != nil && !fp.HasErrors() {
				out = append(out, f)
			}
		}
		return out, probs
	}
}
