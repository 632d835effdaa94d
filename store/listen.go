package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// FlowsChannel is the PostgreSQL notification channel a change to flows
// and their numbers is announced on (every such change adds a revision).
const FlowsChannel = "callflow_flows"

// ListenFlows calls changed each time another connection (another node,
// `callflow flows` in another process) changes the database's flows, until
// ctx ends. On SQLite, where nothing can notify, it returns at once.
func (s *Store) ListenFlows(ctx context.Context, changed func()) {
	s.listenLoop(ctx, FlowsChannel, "flow changes", changed)
}

// listenLoop calls changed for each notification on channel until ctx
// ends. It holds one connection of its own and comes back after losing it;
// the caller's poll stays the backup for what is missed meanwhile.
func (s *Store) listenLoop(ctx context.Context, channel, what string, changed func()) {
	if !s.pg {
		return
	}
	for backoff := 100 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 5*time.Second) {
		err := s.listen(ctx, channel, changed)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn().Err(err).Dur("retry_in", backoff).Msg("store: not listening for " + what + "; polling meanwhile")
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

func (s *Store) listen(ctx context.Context, channel string, changed func()) error {
	conn, err := pgx.Connect(ctx, s.path)
	if err != nil {
		return fmt.Errorf("%s", redactDSN(err.Error(), s.path))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
		return err
	}
	// Whatever changed before LISTEN took effect is the poll's to find.
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		changed()
	}
}

// FlowChanges is ListenFlows as a channel: a value whenever another
// process may have changed the flows, numbers or users; closed when ctx
// ends. On SQLite it is nil (nothing to listen to: the poll alone).
func (s *Store) FlowChanges(ctx context.Context) <-chan struct{} {
	return s.changes(ctx, FlowsChannel, "flow changes")
}

// changes is listenLoop as a channel (nil on SQLite).
func (s *Store) changes(ctx context.Context, channel, what string) <-chan struct{} {
	if !s.pg {
		return nil
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		s.listenLoop(ctx, channel, what, func() {
			select {
			case ch <- struct{}{}:
			default: // one pending value is enough: the reader looks again
			}
		})
	}()
	return ch
}
