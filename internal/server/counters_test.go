package server

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/rs/zerolog"
)

// downCounters answers from a fixed position, or fails while down.
type downCounters struct {
	down bool
	pos  int
}

func (d *downCounters) Next(ctx context.Context, key string, n int) (int, error) {
	if d.down {
		return 0, errors.New("connection refused")
	}
	d.pos++
	return d.pos % n, nil
}

// While the database does not answer, agents are still rung in turn, from
// the node's own rotation; once it answers, its shared order is back.
func TestRoundRobinTurnsGoOnWhileTheDatabaseIsAway(t *testing.T) {
	db := &downCounters{pos: 1}
	c := &sharedCounters{db: db, log: zerolog.Nop()}
	ctx := context.Background()
	next := func() int {
		t.Helper()
		pos, err := c.Next(ctx, "rr", 4)
		if err != nil {
			t.Fatal(err)
		}
		return pos
	}
	if got := next(); got != 2 {
		t.Errorf("from the database: %d, want 2", got)
	}
	db.down = true
	var got []int
	for range 5 {
		got = append(got, next())
	}
	if want := []int{0, 1, 2, 3, 0}; !slices.Equal(got, want) {
		t.Errorf("while the database is away: %v, want %v", got, want)
	}
	db.down = false
	if got := next(); got != 3 {
		t.Errorf("the database back: %d, want 3", got)
	}
}
