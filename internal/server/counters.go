package server

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/flows"
)

// counterWait is the longest a call waits for its round-robin turn from
// the database before taking one from this node's own rotation.
const counterWait = 500 * time.Millisecond

// sharedCounters take round-robin turns from the database, which every node
// shares; while it cannot answer (down, restarting, far away), turns come
// from this node's own rotation, so agents are still rung in turn rather
// than the first of each list every time. The shared order resumes as soon
// as the database answers.
type sharedCounters struct {
	db    applets.Counters
	local flows.MemCounters
	log   zerolog.Logger
	away  atomic.Bool // the last turn was a local one
}

func (c *sharedCounters) Next(ctx context.Context, key string, n int) (int, error) {
	dctx, cancel := context.WithTimeout(ctx, counterWait)
	pos, err := c.db.Next(dctx, key, n)
	cancel()
	if err == nil {
		if c.away.Swap(false) {
			c.log.Info().Msg("round robin: turns come from the database again")
		}
		return pos, nil
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if !c.away.Swap(true) {
		c.log.Warn().Err(err).Msg("round robin: the database does not answer; turns come from this node's own rotation meanwhile")
	}
	return c.local.Next(ctx, key, n)
}
