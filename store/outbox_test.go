package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Two stores on one database (two nodes) claiming at once: every due
// delivery is claimed by exactly one; one not yet due, or leased, is not;
// a lease that ran out is claimed again; a retry waits for its time.
func TestOutboxDeliveriesAreClaimedByOneNodeAtATime(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	a := openAt(t, path, testOptions())
	b := openAnother(t, path, testOptions())
	now := time.Now()
	for i := range 50 {
		if _, err := a.OutboxAdd(ctx, OutboxItem{Target: "https://crm.example/hook", Event: "call.ended", Body: []byte(fmt.Sprintf(`{"n":%d}`, i)), Attempts: 1, Due: now}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.OutboxAdd(ctx, OutboxItem{Target: "https://later.example", Body: []byte("{}"), Due: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for _, node := range []struct {
		name string
		s    *Store
	}{{"a", a}, {"b", b}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				items, err := node.s.OutboxClaim(ctx, OutboxWebhook, node.name, now, time.Minute, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(items) == 0 {
					return
				}
				mu.Lock()
				for _, it := range items {
					if other, dup := seen[it.ID]; dup {
						t.Errorf("delivery %d claimed by %s and %s", it.ID, other, node.name)
					}
					seen[it.ID] = node.name
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 50 {
		t.Fatalf("%d deliveries claimed, want the 50 due", len(seen))
	}
	if items, _ := a.OutboxClaim(ctx, OutboxWebhook, "a", now, time.Minute, 100); len(items) != 0 {
		t.Errorf("leased deliveries claimed again: %d", len(items))
	}
	later := now.Add(2 * time.Minute) // the leases are over
	items, err := b.OutboxClaim(ctx, OutboxWebhook, "b", later, time.Minute, 100)
	if err != nil || len(items) != 50 {
		t.Fatalf("after the leases: %d, %v", len(items), err)
	}
	if err := b.OutboxRetry(ctx, items[0].ID, 2, later.Add(time.Minute), "HTTP 503"); err != nil {
		t.Fatal(err)
	}
	for _, it := range items[1:] {
		if err := b.OutboxDone(ctx, it.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := a.OutboxClaim(ctx, OutboxWebhook, "a", later.Add(2*time.Minute), time.Minute, 100); len(got) != 1 || got[0].Attempts != 2 || got[0].Error != "HTTP 503" || string(got[0].Body) != string(items[0].Body) {
		t.Errorf("the retried delivery: %+v", got)
	}
	if n, _ := a.OutboxLen(ctx); n != 2 {
		t.Errorf("%d deliveries left, want 2 (the retried one and the later one)", n)
	}
}

// Webhooks and emails share the outbox; each sender claims only its own.
func TestOutboxClaimsOnlyTheKindAskedFor(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	now := time.Now()
	if _, err := s.OutboxAdd(ctx, OutboxItem{Target: "https://crm.example/hook", Body: []byte("{}"), Due: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OutboxAdd(ctx, OutboxItem{Kind: OutboxEmail, Target: "ops@example.com", Body: []byte(`{"id":"m1"}`), Due: now}); err != nil {
		t.Fatal(err)
	}
	mail, err := s.OutboxClaim(ctx, OutboxEmail, "a", now, time.Minute, 10)
	if err != nil || len(mail) != 1 || mail[0].Kind != OutboxEmail || mail[0].Target != "ops@example.com" {
		t.Errorf("emails claimed: %+v, %v", mail, err)
	}
	hooks, err := s.OutboxClaim(ctx, OutboxWebhook, "a", now, time.Minute, 10)
	if err != nil || len(hooks) != 1 || hooks[0].Kind != OutboxWebhook {
		t.Errorf("webhooks claimed: %+v, %v", hooks, err)
	}
}
