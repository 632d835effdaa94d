package flows

// Edge is one way out of a step: to another step, to the end of the call,
// off the end of the file (a dead end), or to another flow. The outcomes
// that take the same way are grouped, in the order the applet lists them.
type Edge struct {
	From     string // step id
	Kind     RouteKind
	To       string // step id (RouteTo, RouteFallThrough), flow name (RouteTransfer), "" otherwise
	Outcomes []string
}

// Edges lists every way through a flow, step by step in file order: the
// one reading of the routing rules that the linter, `callflow graph` and
// the web diagram share.
func Edges(f *Flow) []Edge {
	var out []Edge
	for _, s := range f.Steps {
		out = append(out, StepEdges(f, s)...)
	}
	return out
}

// StepEdges lists the ways out of one step.
func StepEdges(f *Flow, s *Step) []Edge {
	if s.Facts.Ends {
		if s.Facts.Transfer != "" {
			return []Edge{{From: s.ID, Kind: RouteTransfer, To: s.Facts.Transfer}}
		}
		return []Edge{{From: s.ID, Kind: RouteEnd}}
	}
	var out []Edge
	type way struct {
		kind RouteKind
		to   string
	}
	at := map[way]int{} // index in out
	for _, o := range s.Facts.Outcomes {
		t, k := f.Route(s, o)
		key := way{k, t}
		if i, ok := at[key]; ok {
			out[i].Outcomes = append(out[i].Outcomes, o)
			continue
		}
		at[key] = len(out)
		out = append(out, Edge{From: s.ID, Kind: k, To: t, Outcomes: []string{o}})
	}
	return out
}
