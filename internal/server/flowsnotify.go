package server

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// flowsPoll is how often a running server asks the database whether its
// flows changed: one indexed read, so that a change made elsewhere serves
// calls within about half a second. With a change feed it is the backup.
const flowsPoll = 500 * time.Millisecond

// FlowChanges is a feed of changes to the database's flows, numbers and
// users made by any process (PostgreSQL's LISTEN/NOTIFY, say): each value
// on the channel means "they may have changed", and the server then reads
// the change count as a poll would. The feed closes the channel when ctx
// ends or it breaks; the poll goes on either way, so a lost notification
// is a change seen half a second later, never a change missed.
type FlowChanges interface {
	FlowChanges(ctx context.Context) <-chan struct{}
}

// databaseFlowsWatch reloads the flows when the flows kept in the
// database change, whoever changed them: `callflow flows …` in another
// process, another server on the same database, the web (which reloads at
// once through reload, so the poll does not load a second time).
type databaseFlowsWatch struct {
	changed  func(context.Context) (int64, error) // the store's FlowsChanged
	load     func()
	interval time.Duration
	feed     FlowChanges // nil: the poll alone
	log      zerolog.Logger

	mu      sync.Mutex // one reload at a time; seen moves with it
	seen    int64
	known   bool // seen was read
	failing bool // the last poll failed (logged once)
}

// reload loads the flows now. The change count is read before the load:
// a change made while it loads is picked up by the next poll.
func (w *databaseFlowsWatch) reload() {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.changed(context.Background())
	w.load()
	if err == nil {
		w.seen, w.known = n, true
	}
}

// Run polls, and listens to the feed, until ctx ends.
func (w *databaseFlowsWatch) Run(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	var notes <-chan struct{}
	if w.feed != nil {
		notes = w.feed.FlowChanges(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case _, ok := <-notes:
			if !ok {
				notes = nil // broken: the poll carries on alone
				if ctx.Err() == nil {
					w.log.Warn().Msg("the database's change feed ended: polling only")
				}
				continue
			}
		}
		n, err := w.changed(ctx)
		w.mu.Lock()
		stale := err == nil && (!w.known || n != w.seen)
		if (err != nil) != w.failing {
			w.failing = err != nil
			if err != nil {
				w.log.Warn().Err(err).Msg("cannot tell whether the database's flows changed; retrying")
			} else {
				w.log.Info().Msg("watching the database's flows again")
			}
		}
		w.mu.Unlock()
		if stale && ctx.Err() == nil {
			w.log.Info().Int64("changes", n).Msg("the database's flows changed: reloading")
			w.reload()
		}
	}
}
