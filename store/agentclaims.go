package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ClaimAgents takes for node, until until, those of names that no other
// node holds now (a claim past its until is free), and returns them. One
// statement per agent: two nodes claiming the same agent at once get it
// once.
func (s *Store) ClaimAgents(ctx context.Context, node string, names []string, now, until time.Time) ([]string, error) {
	var got []string
	for _, n := range names {
		var agent string
		err := s.w.QueryRowContext(ctx, `INSERT INTO agent_claims (agent, node, until, wrap_up) VALUES (?, ?, ?, 0)
ON CONFLICT (agent) DO UPDATE SET node = excluded.node, until = excluded.until, wrap_up = 0
WHERE agent_claims.until < ? OR agent_claims.node = excluded.node
RETURNING agent`, n, node, until.UnixNano(), now.UnixNano()).Scan(&agent)
		switch {
		case err == nil:
			got = append(got, agent)
		case errors.Is(err, sql.ErrNoRows):
		default:
			return got, fmt.Errorf("store: claim agent %q: %w", n, err)
		}
	}
	return got, nil
}

// ExtendAgents moves node's claims on names to until (an agent talking).
func (s *Store) ExtendAgents(ctx context.Context, node string, names []string, until time.Time) error {
	for _, n := range names {
		if _, err := s.w.ExecContext(ctx, `UPDATE agent_claims SET until = ? WHERE agent = ? AND node = ?`, until.UnixNano(), n, node); err != nil {
			return fmt.Errorf("store: extend agent %q: %w", n, err)
		}
	}
	return nil
}

// WrapUpAgents keeps node's claims on names until until, through the
// agents' wrap-up after a call.
func (s *Store) WrapUpAgents(ctx context.Context, node string, names []string, until time.Time) error {
	for _, n := range names {
		if _, err := s.w.ExecContext(ctx, `UPDATE agent_claims SET until = ?, wrap_up = 1 WHERE agent = ? AND node = ?`, until.UnixNano(), n, node); err != nil {
			return fmt.Errorf("store: wrap-up of agent %q: %w", n, err)
		}
	}
	return nil
}

// ReleaseAgents gives back node's claims on names.
func (s *Store) ReleaseAgents(ctx context.Context, node string, names []string) error {
	for _, n := range names {
		if _, err := s.w.ExecContext(ctx, `DELETE FROM agent_claims WHERE agent = ? AND node = ?`, n, node); err != nil {
			return fmt.Errorf("store: release agent %q: %w", n, err)
		}
	}
	return nil
}

// AgentClaim is who holds an agent now, and whether for their wrap-up
// after a call (else ringing or talking).
type AgentClaim struct {
	Node   string
	WrapUp bool
}

// ClaimedAgents returns the agents whose claim runs past now, each with
// the node holding it: who is ringing, talking or in wrap-up anywhere.
func (s *Store) ClaimedAgents(ctx context.Context, now time.Time) (map[string]AgentClaim, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT agent, node, wrap_up FROM agent_claims WHERE until >= ?`, now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: claimed agents: %w", err)
	}
	defer rows.Close()
	out := map[string]AgentClaim{}
	for rows.Next() {
		var agent string
		var c AgentClaim
		var wrap int
		if err := rows.Scan(&agent, &c.Node, &wrap); err != nil {
			return nil, fmt.Errorf("store: claimed agents: %w", err)
		}
		c.WrapUp = wrap != 0
		out[agent] = c
	}
	return out, rows.Err()
}
