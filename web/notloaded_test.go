package web

import (
	"context"
	"strings"
	"testing"

	"github.com/callflow/callflow/store"
)

// A database flow that is not loaded is blamed on its problems only when
// it has some listed; one saved after the last reload (by `callflow flows`
// in another process) is said to be waiting for the reload.
func TestFlowsPageNeverBlamesProblemsItDoesNotList(t *testing.T) {
	f := newFixture(t)
	if _, err := f.st.CreateFlow(context.Background(), store.FlowInput{Name: "Late Line", Workspace: "acme", Source: dbFlowTOML("Late Line"), Author: "cli"}); err != nil {
		t.Fatal(err)
	}
	_, m := f.login("admin").api("GET", "/api/flows", "", nil)
	notes := map[string]string{}
	problems := map[string]int{}
	for _, x := range m["flows"].([]any) {
		fl := x.(map[string]any)
		name := fl["name"].(string)
		notes[name], _ = fl["note"].(string)
		problems[name] = len(fl["problems"].([]any))
	}
	if n := notes["Late Line"]; !strings.Contains(n, "saved after the flows were last loaded") || problems["Late Line"] != 0 {
		t.Errorf("Late Line: note %q with %d problems", n, problems["Late Line"])
	}
	if n := notes["Ghost Line"]; !strings.Contains(n, "see its problems") || problems["Ghost Line"] == 0 {
		t.Errorf("Ghost Line: note %q with %d problems", n, problems["Ghost Line"])
	}
	for name, n := range notes {
		if strings.Contains(n, "problems") && problems[name] == 0 {
			t.Errorf("%s is blamed on problems it does not list: %q", name, n)
		}
	}
}
