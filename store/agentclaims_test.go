package store

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Two nodes on one database: an agent one holds is not the other's until
// it is released or its claim runs out; a node's own claim renews.
func TestAgentClaimsAreOneNodesAtATime(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	a := openAt(t, path, testOptions())
	b := openAnother(t, path, testOptions())
	now := time.Now()
	got, err := a.ClaimAgents(ctx, "node-a", []string{"alice", "bob"}, now, now.Add(time.Minute))
	if err != nil || !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("node-a claims: %v, %v", got, err)
	}
	if got, _ := b.ClaimAgents(ctx, "node-b", []string{"alice", "carol"}, now, now.Add(time.Minute)); !slices.Equal(got, []string{"carol"}) {
		t.Errorf("node-b took %v; alice is node-a's", got)
	}
	if err := a.ReleaseAgents(ctx, "node-a", []string{"alice"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.ClaimAgents(ctx, "node-b", []string{"alice"}, now, now.Add(time.Minute)); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("released alice: node-b took %v", got)
	}
	// bob's claim runs out unless extended; node-a died: node-b takes him after.
	if got, _ := b.ClaimAgents(ctx, "node-b", []string{"bob"}, now.Add(2*time.Minute), now.Add(3*time.Minute)); !slices.Equal(got, []string{"bob"}) {
		t.Errorf("a claim past its time: node-b took %v", got)
	}
	if err := b.ExtendAgents(ctx, "node-b", []string{"bob"}, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.ClaimAgents(ctx, "node-a", []string{"bob"}, now.Add(10*time.Minute), now.Add(11*time.Minute)); len(got) != 0 {
		t.Errorf("an extended claim taken: %v", got)
	}
	if err := b.WrapUpAgents(ctx, "node-b", []string{"carol"}, now.Add(45*time.Second)); err != nil {
		t.Fatal(err)
	}
	talking, wrapping := AgentClaim{Node: "node-b"}, AgentClaim{Node: "node-b", WrapUp: true}
	held, err := a.ClaimedAgents(ctx, now.Add(30*time.Second))
	if err != nil || len(held) != 3 || held["alice"] != talking || held["bob"] != talking || held["carol"] != wrapping {
		t.Errorf("claimed: %v, %v", held, err)
	}
	if held, _ := a.ClaimedAgents(ctx, now.Add(2*time.Minute)); len(held) != 1 || held["bob"] != talking {
		t.Errorf("claimed once the ringing and the wrap-up ran out: %v", held)
	}
	// A new call's claim is not a wrap-up's.
	if got, _ := b.ClaimAgents(ctx, "node-b", []string{"carol"}, now.Add(50*time.Second), now.Add(3*time.Minute)); !slices.Equal(got, []string{"carol"}) {
		t.Errorf("carol after her wrap-up: %v", got)
	}
	if held, _ := a.ClaimedAgents(ctx, now.Add(time.Minute)); held["carol"] != talking {
		t.Errorf("carol rung again: %+v", held["carol"])
	}
}
