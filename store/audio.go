package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"
)

// audioChunk is the size of one row of audio: a minute of 8 kHz 16-bit
// mono is about 1 MB, so a message is a handful of rows.
const audioChunk = 256 << 10

// SharesAudio reports whether voicemail audio belongs in the database:
// with PostgreSQL, so that every node plays every message; a SQLite box
// keeps its files.
func (s *Store) SharesAudio() bool { return s.pg }

// HasAudio reports whether the database holds the audio of name.
func (s *Store) HasAudio(ctx context.Context, name string) (bool, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM audio WHERE name = ?`, name).Scan(&n); err != nil {
		return false, fmt.Errorf("store: audio: %w", err)
	}
	return n > 0, nil
}

// PutAudio copies r into the database as name, a chunk at a time, in one
// transaction: a reader sees all of it or none. Audio already there is
// kept (copies are idempotent).
func (s *Store) PutAudio(ctx context.Context, name string, r io.Reader) error {
	if have, err := s.HasAudio(ctx, name); err != nil || have {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: put audio %s: %w", name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM audio_chunks WHERE name = ?`, name); err != nil {
		return fmt.Errorf("store: put audio %s: %w", name, err)
	}
	buf := make([]byte, audioChunk)
	var size int64
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO audio_chunks (name, seq, data) VALUES (?, ?, ?)`, name, seq, buf[:n]); err != nil {
				return fmt.Errorf("store: put audio %s: %w", name, err)
			}
			size += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("store: put audio %s: %w", name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audio (name, size, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		name, size, s.now().UnixNano()); err != nil {
		return fmt.Errorf("store: put audio %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: put audio %s: %w", name, err)
	}
	return nil
}

// AudioReader reads audio from the database a chunk at a time; it seeks,
// so HTTP range requests are served from it.
type AudioReader struct {
	s       *Store
	ctx     context.Context
	name    string
	size    int64
	created time.Time
	off     int64
	seq     int    // the chunk in buf, -1 for none
	buf     []byte // chunk seq
}

// OpenAudio opens the audio of name; ErrNotFound when the database has
// none.
func (s *Store) OpenAudio(ctx context.Context, name string) (*AudioReader, error) {
	a := &AudioReader{s: s, ctx: ctx, name: name, seq: -1}
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT size, created FROM audio WHERE name = ?`, name).Scan(&a.size, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: audio %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("store: audio %s: %w", name, err)
	}
	a.created = time.Unix(0, created).UTC()
	return a, nil
}

// Size is the audio's length in bytes; Created when it was stored.
func (a *AudioReader) Size() int64        { return a.size }
func (a *AudioReader) Created() time.Time { return a.created }

func (a *AudioReader) Read(p []byte) (int, error) {
	if a.off >= a.size {
		return 0, io.EOF
	}
	seq := int(a.off / audioChunk)
	if seq != a.seq {
		var data []byte
		if err := a.s.r.QueryRowContext(a.ctx, `SELECT data FROM audio_chunks WHERE name = ? AND seq = ?`, a.name, seq).Scan(&data); err != nil {
			return 0, fmt.Errorf("store: audio %s chunk %d: %w", a.name, seq, err)
		}
		a.seq, a.buf = seq, data
	}
	n := copy(p, a.buf[a.off-int64(seq)*audioChunk:])
	if n == 0 {
		return 0, fmt.Errorf("store: audio %s: chunk %d is short", a.name, seq)
	}
	a.off += int64(n)
	return n, nil
}

func (a *AudioReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += a.off
	case io.SeekEnd:
		offset += a.size
	default:
		return 0, errors.New("store: audio: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("store: audio: seek before the start")
	}
	a.off = offset
	return offset, nil
}

// Close releases nothing: each chunk is read by its own query.
func (a *AudioReader) Close() error { return nil }
