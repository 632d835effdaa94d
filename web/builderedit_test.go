package web

import (
	"strings"
	"testing"
)

const composeSrc = `# Support line
name = "Support"   # the name

[[steps]]
id = "hello"       # kept as written
applet = "greeting"
play = ["sound:hello"]

# the menu
[[steps]]
id = "menu"
applet = "menu"
prompt = ["sound:menu"]
keys = { "1" = "bye" }

[[steps]]
id = "bye"
applet = "hangup"
`

// The builder's edits rewrite only the steps it changed: the head and
// the untouched steps keep their comments and key order; a step moved
// keeps its lines; a new step is written in full; a deleted one is gone.
func TestComposeKeepsUntouchedStepsAsWritten(t *testing.T) {
	steps := []composedStep{
		{From: 2}, // bye, moved first, untouched
		{From: 0}, // hello, untouched
		{From: 1, Changed: true, Order: []string{"prompt", "keys"}, Params: map[string]any{"id": "menu", "applet": "menu",
			"prompt": []any{"sound:menu"}, "keys": map[string]any{"1": "bye", "2": "sales"}, "on": map[string]any{"timeout": "bye"}}},
		{From: -1, Changed: true, Params: map[string]any{"id": "sales", "applet": "forward", "to": "PJSIP/sales", "ring_timeout": "20s"}},
	}
	got, err := composeSource(composeSrc, steps)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Support line\nname = \"Support\"   # the name\n",
		"[[steps]]\nid = \"bye\"\napplet = \"hangup\"\n",
		"[[steps]]\nid = \"hello\"       # kept as written\napplet = \"greeting\"\nplay = [\"sound:hello\"]\n",
		"[[steps]]\nid = \"menu\"\napplet = \"menu\"\nprompt = [\"sound:menu\"]\nkeys = { 1 = \"bye\", 2 = \"sales\" }\non = { timeout = \"bye\" }\n",
		"[[steps]]\nid = \"sales\"\napplet = \"forward\"\nring_timeout = \"20s\"\nto = \"PJSIP/sales\"\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing:\n%s\nin:\n%s", want, got)
		}
	}
	if strings.Index(got, `id = "bye"`) > strings.Index(got, `id = "hello"`) {
		t.Errorf("order not kept:\n%s", got)
	}
	// Without the menu, it is gone (with its comment line? the comment
	// above a deleted step goes with it).
	got, err = composeSource(composeSrc, []composedStep{{From: 0}, {From: 2}})
	if err != nil || strings.Contains(got, "menu") {
		t.Errorf("deleted menu still there (%v):\n%s", err, got)
	}
}
