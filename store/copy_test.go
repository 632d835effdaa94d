package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// A SQLite file copied into another database (PostgreSQL on that run):
// every row arrives once, a second copy adds nothing, and what was copied
// works there (a login, the next round-robin turn, a new user's id).
func TestCopyMovesEveryRowOnceAndAgainAddsNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, err := Open(ctx, filepath.Join(dir, "old.db"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.CreateUser(ctx, NewUser{Name: "ann", Password: "pw", Role: RoleStaff, Workspaces: []string{"acme"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.SaveFlow(ctx, FlowInput{Name: "Acme Support", Source: srcV1, Author: "bob"}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		src.RecordCall(sampleCall(fmt.Sprintf("c%d", i), t0, 3))
		src.SaveVoicemail(Voicemail{Recording: fmt.Sprintf("vm-sales-c%d-%d", i, i), CallID: fmt.Sprintf("c%d", i), Mailbox: "sales", Workspace: "acme"})
	}
	for range 3 {
		if _, err := src.Next(ctx, "Acme/rr", 4); err != nil {
			t.Fatal(err)
		}
	}
	// A callback the box keeps to make: the new database's nodes make it.
	if _, err := src.QueueJoin(ctx, QueueEntry{Queue: "acme/Acme Support/wait", Call: "c4", Node: "box", Number: "+15550004", Callback: true,
		Joined: t0, Place: CallbackPlace{Workspace: "acme", Flow: "Acme Support", Step: "wait"}}); err != nil {
		t.Fatal(err)
	}

	dst := openAt(t, filepath.Join(dir, "new.db"), testOptions())
	for round := range 2 {
		counts, err := src.CopyTo(ctx, dst)
		if err != nil {
			t.Fatalf("copy %d: %v", round, err)
		}
		for _, c := range counts {
			if c.From != c.To {
				t.Errorf("copy %d: %s has %d rows, the copy %d", round, c.Table, c.From, c.To)
			}
		}
	}
	if _, err := dst.VerifyPassword(ctx, "ann", "pw"); err != nil {
		t.Errorf("login on the copy: %v", err)
	}
	if n, err := dst.Next(ctx, "Acme/rr", 4); err != nil || n != 3 {
		t.Errorf("next turn on the copy = %d, %v; want 3", n, err)
	}
	if _, err := dst.CreateUser(ctx, NewUser{Name: "bob", Password: "pw", Role: RoleStaff}); err != nil {
		t.Errorf("a new user after the copy: %v", err)
	}
	if kept, err := dst.QueueKeptCallbacks(ctx, "box"); err != nil || len(kept) != 1 || kept[0].Place.Flow != "Acme Support" {
		t.Errorf("the callback on the copy: %+v, %v", kept, err)
	}
	if _, err := dst.QueueJoin(ctx, QueueEntry{Queue: "q", Call: "new", Node: "box", Joined: t0}); err != nil {
		t.Errorf("a caller joining after the copy: %v", err)
	}
	c, err := dst.GetCall(ctx, "c3", AllWorkspaces())
	if err != nil || len(c.Steps) != 3 || c.Voicemails != 1 {
		t.Errorf("call on the copy: %+v, %v", c, err)
	}
}
