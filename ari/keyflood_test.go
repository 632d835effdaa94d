package ari

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
)

// A caller who presses keys without end costs the call a bounded inbox
// (maxQueuedKeys) while its goroutine is busy elsewhere, and a bounded
// typeahead (maxTypeahead) while it reads; both keep the first keys.
func TestStubKeyFloodIsBounded(t *testing.T) {
	const flood = 1000
	keys := func(offset int) string {
		var b strings.Builder
		for i := range flood {
			b.WriteByte("0123456789*#"[(i+offset)%12])
		}
		return b.String()
	}
	first, second := keys(0), keys(5)

	s := setup(t)
	res := newResult()
	calls := make(chan *Call, 1)
	busy := make(chan struct{})
	reading := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, c *Call, in Inbound) {
		defer res.finish()
		calls <- c
		// Busy elsewhere (an HTTP look-up, say): nobody reads the events.
		<-busy
		res.add(c.q.waitingKeys())
		c.drain()
		res.add(string(c.typeahead))
		c.typeahead = c.typeahead[:0]

		// Reading events as they come, as every wait does.
		close(reading)
		for c.Events() < 2*flood {
			if ev, err := c.next(ctx, time.Now().Add(20*time.Millisecond), true, "flood"); err == nil {
				c.common(ev)
			} else if ctx.Err() != nil {
				return
			}
		}
		c.drain()
		res.add(string(c.typeahead))
		g, err := c.Gather(ctx, applets.GatherSpec{MaxDigits: 3, FirstTimeout: time.Second})
		res.add(g, err)
		res.add(c.Hangup(ctx, "normal"))
	})
	startStub(t, s, h, nil)
	id := s.placeCall("inbound")
	c := <-calls
	s.press(id, first)
	waitUntilTrue(t, "the first flood routed", func() bool { return c.Events() >= flood })
	close(busy)
	<-reading
	s.press(id, second)
	res.wait(t, 10*time.Second)
	expect(t, res.get(), maxQueuedKeys, first[:maxQueuedKeys], second[:maxTypeahead], second[:3], nil, nil)
}

func waitUntilTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
