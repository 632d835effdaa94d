package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
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

// A node starting again closes the calls its earlier process left in
// progress, and those older than nodes, never a call another node is
// running on the same database.
func TestMarkInterruptedClosesOnlyThisNodesCalls(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	for _, c := range []struct{ id, node string }{{"a-1", "node-a"}, {"a-2", "node-a"}, {"b-1", "node-b"}, {"legacy-1", ""}} {
		rec := sampleCall(c.id, t0, 1)
		rec.Ended, rec.Outcome, rec.Node = time.Time{}, OutcomeInProgress, c.node
		if err := s.RecordCall(rec); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, s)
	n, err := s.MarkInterrupted(ctx, "node-a")
	if err != nil || n != 3 {
		t.Fatalf("marked %d, %v; want node-a's two and the one of no node", n, err)
	}
	for id, want := range map[string]string{"a-1": OutcomeInterrupted, "a-2": OutcomeInterrupted, "legacy-1": OutcomeInterrupted, "b-1": OutcomeInProgress} {
		if c, err := s.GetCall(ctx, id, AllWorkspaces()); err != nil || c.Outcome != want {
			t.Errorf("%s: %q, %v; want %q", id, c.Outcome, err, want)
		}
	}
}

// A conversation another process watched to its end closes its call's
// record, whether it was left in progress or marked interrupted; a call
// that ended otherwise keeps its outcome.
func TestConversationOverCompletesTheCallsItWasLeftIn(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	for id, outcome := range map[string]string{"open": OutcomeInProgress, "cut": OutcomeInterrupted, "done": "no_answer"} {
		rec := sampleCall(id, t0, 1)
		rec.Ended, rec.Outcome = time.Time{}, outcome
		if err := s.RecordCall(rec); err != nil {
			t.Fatal(err)
		}
	}
	ended := t0.Add(10 * time.Minute)
	if err := s.ConversationOver([]string{"open", "open-l2", "cut", "done"}, ended); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	for id, want := range map[string]string{"open": OutcomeCompleted, "cut": OutcomeCompleted, "done": "no_answer"} {
		c, err := s.GetCall(ctx, id, AllWorkspaces())
		if err != nil || c.Outcome != want {
			t.Errorf("%s: %q, %v; want %q", id, c.Outcome, err, want)
		}
		if want == OutcomeCompleted && !c.Ended.Equal(ended) {
			t.Errorf("%s ended %s, want %s", id, c.Ended, ended)
		}
	}
}
