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
// ctx ends. It holds one connection of its own and comes back after losing
// it; the caller's poll stays the backup for what is missed meanwhile. On
// SQLite, where nothing can notify, it returns at once.
func (s *Store) ListenFlows(ctx context.Context, changed func()) {
	if !s.pg {
		return
	}
	for backoff := 100 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 5*time.Second) {
		err := s.listen(ctx, changed)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn().Err(err).Dur("retry_in", backoff).Msg("store: not listening for flow changes; polling meanwhile")
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

func (s *Store) listen(ctx context.Context, changed func()) error {
	conn, err := pgx.Connect(ctx, s.path)
	if err != nil {
		return fmt.Errorf("%s", redactDSN(err.Error(), s.path))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+FlowsChannel); err != nil {
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
