package flows

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Every way out of every step, with the outcomes that take it grouped: the
// routing rules read once for the linter, graph and diagram.
func TestEdgesGroupOutcomesByWayOut(t *testing.T) {
	f := mustParse(t, "edges", `
name = "Edges"
numbers = ["+15550001000"]

[[steps]]
id = "menu"
applet = "menu"
prompt = ["sound:menu"]
keys = { 1 = "sales", 2 = "bye" }
on = { max_retries = "bye" }

[[steps]]
id = "sales"
applet = "forward"
to = "PJSIP/sales"
on = { busy = "vm" }

[[steps]]
id = "other"
applet = "transfer"
flow = "Elsewhere"

[[steps]]
id = "vm"
applet = "voicemail"
mailbox = "sales"

[[steps]]
id = "bye"
applet = "hangup"
`)
	kinds := map[RouteKind]string{RouteTo: "to", RouteFallThrough: "fall", RouteEnd: "end", RouteOffEnd: "offend", RouteTransfer: "transfer"}
	var got []string
	for _, e := range Edges(f) {
		got = append(got, fmt.Sprintf("%s %s %s [%s]", e.From, kinds[e.Kind], e.To, strings.Join(e.Outcomes, ",")))
	}
	want := []string{
		"menu to sales [1]",
		"menu to bye [2,max_retries]",
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("no edge %q in\n%s", w, strings.Join(got, "\n"))
		}
	}
	for _, w := range []string{"sales to vm [busy]", "other transfer Elsewhere []", "bye end  []"} {
		if !slices.Contains(got, w) {
			t.Errorf("no edge %q in\n%s", w, strings.Join(got, "\n"))
		}
	}
	// Every outcome of every step is on exactly one edge.
	for _, s := range f.Steps {
		n := 0
		for _, e := range StepEdges(f, s) {
			n += len(e.Outcomes)
		}
		if !s.Facts.Ends && n != len(s.Facts.Outcomes) {
			t.Errorf("step %s: %d outcomes on edges, %d outcomes", s.ID, n, len(s.Facts.Outcomes))
		}
	}
}
