package store

import (
	"context"
	"fmt"
	"time"
)

// NodeFlow is the version of a file flow one node runs.
type NodeFlow struct {
	Node    string    `json:"node"`
	Flow    string    `json:"flow"`
	Version string    `json:"version"`
	File    string    `json:"file,omitempty"`
	Loaded  time.Time `json:"loaded"`
}

// ReportNodeFlows replaces what node said it runs by flows.
func (s *Store) ReportNodeFlows(ctx context.Context, node string, flows []NodeFlow) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: node flows: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM node_flows WHERE node = ?`, node); err != nil {
		return fmt.Errorf("store: node flows: %w", err)
	}
	now := s.now().UnixNano()
	for _, f := range flows {
		if _, err := tx.ExecContext(ctx, `INSERT INTO node_flows (node, flow, version, file, loaded) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (node, flow) DO NOTHING`, node, f.Flow, f.Version, f.File, now); err != nil {
			return fmt.Errorf("store: node flows: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: node flows: %w", err)
	}
	return nil
}

// NodeFlows lists what every node runs of flow, by node.
func (s *Store) NodeFlows(ctx context.Context, flow string) ([]NodeFlow, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT node, flow, version, file, loaded FROM node_flows WHERE flow = ? ORDER BY node`, flow)
	if err != nil {
		return nil, fmt.Errorf("store: node flows: %w", err)
	}
	defer rows.Close()
	var out []NodeFlow
	for rows.Next() {
		var f NodeFlow
		var loaded int64
		if err := rows.Scan(&f.Node, &f.Flow, &f.Version, &f.File, &loaded); err != nil {
			return nil, fmt.Errorf("store: node flows: %w", err)
		}
		f.Loaded = time.Unix(0, loaded).UTC()
		out = append(out, f)
	}
	return out, rows.Err()
}
