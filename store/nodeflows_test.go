package store

import (
	"context"
	"path/filepath"
	"testing"
)

// Each node's report replaces its last one; a flow's versions are listed
// node by node, so a node running another version shows.
func TestNodeFlowsSayWhichVersionEachNodeRuns(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	a := openAt(t, path, testOptions())
	b := openAnother(t, path, testOptions())
	if err := a.ReportNodeFlows(ctx, "node-a", []NodeFlow{{Flow: "Support", Version: "v1", File: "flows/support.toml"}, {Flow: "Night", Version: "n1"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.ReportNodeFlows(ctx, "node-b", []NodeFlow{{Flow: "Support", Version: "v1"}}); err != nil {
		t.Fatal(err)
	}
	// node-a deploys a new version and drops Night
	if err := a.ReportNodeFlows(ctx, "node-a", []NodeFlow{{Flow: "Support", Version: "v2"}}); err != nil {
		t.Fatal(err)
	}
	got, err := b.NodeFlows(ctx, "Support")
	if err != nil || len(got) != 2 || got[0].Node != "node-a" || got[0].Version != "v2" || got[1].Node != "node-b" || got[1].Version != "v1" || got[0].Loaded.IsZero() {
		t.Errorf("Support on the nodes: %+v, %v", got, err)
	}
	if night, _ := b.NodeFlows(ctx, "Night"); len(night) != 0 {
		t.Errorf("a flow the node no longer runs: %+v", night)
	}
}
