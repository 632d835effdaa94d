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
	for _, e := range Edges(f) {
		from := q(e.From)
		switch e.Kind {
		case RouteTransfer:
			fmt.Fprintf(w, "  %s [shape=cds, label=%s];\n", q("__flow:"+e.To), q("flow "+e.To))
			fmt.Fprintf(w, "  %s -> %s [label=\"transfer\"];\n", from, q("__flow:"+e.To))
			continue
		case RouteEnd:
			needEnd = true
			if len(e.Outcomes) == 0 { // an ending step
				fmt.Fprintf(w, "  %s -> %s;\n", from, q("__end"))
				continue
			}
		case RouteOffEnd:
			needDead = true
		}
		for _, o := range e.Outcomes {
			switch e.Kind {
			case RouteTo:
				fmt.Fprintf(w, "  %s -> %s [label=%s];\n", from, q(e.To), q(o))
			case RouteFallThrough:
				fmt.Fprintf(w, "  %s -> %s [label=%s, style=dashed];\n", from, q(e.To), q(o))
			case RouteEnd:
				fmt.Fprintf(w, "  %s -> %s [label=%s];\n", from, q("__end"), q(o))
			case RouteOffEnd:
				fmt.Fprintf(w, "  %s -> %s [label=%s, color=red, style=dashed];\n", from, q("__deadend"), q(o))
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
