package flows

import (
	"fmt"
	"io"
	"strconv"
)

// WriteDOT draws the flow for Graphviz: one edge per routed outcome,
// fall-through edges dashed, ends and dead ends as their own nodes.
func WriteDOT(w io.Writer, f *Flow) error {
	q := strconv.Quote
	fmt.Fprintf(w, "digraph %s {\n", q(f.Name))
	fmt.Fprintf(w, "  rankdir=TB;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n")
	fmt.Fprintf(w, "  %s [shape=circle, label=\"call\", style=filled, fillcolor=\"#dfe\"];\n", q("__start"))
	for _, s := range f.Steps {
		fmt.Fprintf(w, "  %s [label=%s];\n", q(s.ID), q(s.ID+"\n"+s.Applet))
	}
	if len(f.Steps) > 0 {
		fmt.Fprintf(w, "  %s -> %s;\n", q("__start"), q(f.Steps[0].ID))
	}
	needEnd, needDead := false, false
	for _, s := range f.Steps {
		if s.Facts.Ends {
			if s.Facts.Transfer != "" {
				fmt.Fprintf(w, "  %s [shape=cds, label=%s];\n", q("__flow:"+s.Facts.Transfer), q("flow "+s.Facts.Transfer))
				fmt.Fprintf(w, "  %s -> %s [label=\"transfer\"];\n", q(s.ID), q("__flow:"+s.Facts.Transfer))
			} else {
				needEnd = true
				fmt.Fprintf(w, "  %s -> %s;\n", q(s.ID), q("__end"))
			}
			continue
		}
		for _, o := range s.Facts.Outcomes {
			target, kind := f.Route(s, o)
			switch kind {
			case RouteTo:
				fmt.Fprintf(w, "  %s -> %s [label=%s];\n", q(s.ID), q(target), q(o))
			case RouteFallThrough:
				fmt.Fprintf(w, "  %s -> %s [label=%s, style=dashed];\n", q(s.ID), q(target), q(o))
			case RouteEnd:
				needEnd = true
				fmt.Fprintf(w, "  %s -> %s [label=%s];\n", q(s.ID), q("__end"), q(o))
			case RouteOffEnd:
				needDead = true
				fmt.Fprintf(w, "  %s -> %s [label=%s, color=red, style=dashed];\n", q(s.ID), q("__deadend"), q(o))
			}
		}
	}
	if needEnd {
		fmt.Fprintf(w, "  %s [shape=doublecircle, label=\"end\"];\n", q("__end"))
	}
	if needDead {
		fmt.Fprintf(w, "  %s [shape=octagon, label=\"dead end\", color=red, fontcolor=red];\n", q("__deadend"))
	}
	_, err := fmt.Fprintln(w, "}")
	return err
}
