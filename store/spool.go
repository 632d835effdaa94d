package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// spool is the append-only JSON-lines overflow file next to the database.
// Records before readOff are written; the file is truncated once drained.
// One process holds it (an exclusive lock), so two stores on the same
// database never replay each other's records. All methods run under the
// writer's mutex.
type spool struct {
	path    string
	f       *os.File
	size    int64
	readOff int64
	pending int // records after readOff
}

// openSpool opens and locks the spool file. It returns a nil spool (and no
// error) when another process holds the lock, and the number of records a
// previous run left in it.
func openSpool(path string) (*spool, int, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, 0, err
	}
	locked, err := lockFile(f)
	if err != nil || !locked {
		f.Close()
		return nil, 0, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	sp := &spool{path: path, f: f, size: int64(len(data))}
	if n := len(data); n > 0 && data[n-1] != '\n' {
		// A torn last line (the machine stopped mid-append) must not
		// swallow the next record: end it; it is read back as unreadable.
		if _, err := f.WriteAt([]byte{'\n'}, sp.size); err != nil {
			f.Close()
			return nil, 0, err
		}
		sp.size++
		data = append(data, '\n')
	}
	sp.pending = bytes.Count(data, []byte{'\n'})
	return sp, sp.pending, nil
}

func (sp *spool) append(o op) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	n, err := sp.f.WriteAt(b, sp.size)
	if err != nil {
		if n > 0 {
			// Drop the partial line so the file stays line-aligned.
			err = errors.Join(err, sp.f.Truncate(sp.size))
		}
		return err
	}
	sp.size += int64(n)
	sp.pending++
	return nil
}

// read returns up to max records after readOff without consuming them;
// lines that do not decode come back in bad. consumed and lines are what
// consume takes once the records are written.
func (sp *spool) read(max int) (ops []op, bad []string, consumed int64, lines int, err error) {
	r := bufio.NewReaderSize(io.NewSectionReader(sp.f, sp.readOff, sp.size-sp.readOff), 64<<10)
	for lines < sp.pending && len(ops) < max {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if err == io.EOF {
				err = fmt.Errorf("spool %s: %d records expected, file ends early", sp.path, sp.pending-lines)
			}
			return ops, bad, consumed, lines, err
		}
		consumed += int64(len(line))
		lines++
		var o op
		if json.Unmarshal(line, &o) != nil || !o.valid() {
			bad = append(bad, string(bytes.TrimSpace(line)))
			continue
		}
		ops = append(ops, o)
	}
	return ops, bad, consumed, lines, nil
}

func (sp *spool) consume(n int64, lines int) {
	sp.readOff += n
	sp.pending -= lines
}

// reset empties a drained file.
func (sp *spool) reset() error {
	if sp.size == 0 {
		return nil
	}
	sp.size, sp.readOff, sp.pending = 0, 0, 0
	return sp.f.Truncate(0)
}

// close keeps only unwritten records, so the next start replays no more
// than it must, and releases the lock.
func (sp *spool) close() error {
	var err error
	switch {
	case sp.pending == 0:
		err = sp.reset()
	case sp.readOff > 0:
		rest := make([]byte, sp.size-sp.readOff)
		if _, err = sp.f.ReadAt(rest, sp.readOff); err == nil {
			if _, err = sp.f.WriteAt(rest, 0); err == nil {
				err = sp.f.Truncate(int64(len(rest)))
			}
		}
	}
	return errors.Join(err, sp.f.Close())
}

func (o op) valid() bool {
	switch o.Kind {
	case opCall:
		return o.Call != nil && o.Call.ID != ""
	case opVoicemail:
		return o.Voicemail != nil && o.Voicemail.Recording != ""
	case opRecording:
		return o.Recording != nil && o.Recording.Name != ""
	}
	return false
}
