package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// AudioEntry is one piece of audio the database holds.
type AudioEntry struct {
	Name    string
	Size    int64
	Created int64 // unix nanoseconds
}

// ListAudio lists the audio whose names start with prefix, by name.
func (s *Store) ListAudio(ctx context.Context, prefix string) ([]AudioEntry, error) {
	// substr, not LIKE: names may hold '%' or '_'.
	rows, err := s.r.QueryContext(ctx, `SELECT name, size, created FROM audio WHERE substr(name, 1, ?) = ? ORDER BY name`,
		len([]rune(prefix)), prefix)
	if err != nil {
		return nil, fmt.Errorf("store: list audio: %w", err)
	}
	defer rows.Close()
	var out []AudioEntry
	for rows.Next() {
		var e AudioEntry
		if err := rows.Scan(&e.Name, &e.Size, &e.Created); err != nil {
			return nil, fmt.Errorf("store: list audio: %w", err)
		}
		if strings.HasPrefix(e.Name, prefix) {
			out = append(out, e)
		}
	}
	return out, rows.Err()
}

// DeleteAudio removes the audio of name, if the database holds it.
func (s *Store) DeleteAudio(ctx context.Context, name string) error {
	err := s.immediate(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM audio_chunks WHERE name = ?`, name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM audio WHERE name = ?`, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete audio %s: %w", name, err)
	}
	return nil
}
