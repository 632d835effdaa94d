package mailer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const spoolExt = ".json"

// openSpool creates the spool directory and queues what a previous run left.
func (m *Mailer) openSpool() error {
	dir := m.opts.Spool
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		// Half-written files from a crash: their Send never returned nil.
		if strings.HasPrefix(e.Name(), ".tmp-") {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	names, err := m.spoolNames()
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.overflow = len(names)
	m.refillLocked()
	if n := len(m.pending) + m.overflow; n > 0 {
		m.log.Info().Int("emails", n).Str("spool", dir).Msg("resuming spooled emails")
	}
	return nil
}

// spoolNames lists spooled messages, oldest first.
func (m *Mailer) spoolNames() ([]string, error) {
	entries, err := os.ReadDir(m.opts.Spool)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(n, spoolExt) && !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	return names, nil
}

// refill moves spooled messages into the queue while there is room.
func (m *Mailer) refill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refillLocked()
}

func (m *Mailer) refillLocked() {
	room := m.opts.QueueSize - len(m.pending)
	if m.opts.Spool == "" || m.overflow == 0 || room <= 0 {
		return
	}
	names, err := m.spoolNames()
	if err != nil {
		m.log.Error().Err(err).Msg("cannot read mail spool")
		return
	}
	known := make(map[string]bool, len(m.pending))
	for _, j := range m.pending {
		known[j.file] = true
	}
	left := 0
	for _, name := range names {
		if known[name] {
			continue
		}
		if room == 0 {
			left++
			continue
		}
		j, err := m.readSpool(name)
		if err != nil {
			bad := filepath.Join(m.opts.Spool, name+".bad")
			m.log.Error().Err(err).Str("file", bad).Msg("unreadable spooled email set aside")
			_ = os.Rename(filepath.Join(m.opts.Spool, name), bad)
			continue
		}
		m.pending = append(m.pending, j)
		room--
	}
	m.overflow = left
}

func (m *Mailer) readSpool(name string) (*job, error) {
	b, err := os.ReadFile(filepath.Join(m.opts.Spool, name))
	if err != nil {
		return nil, err
	}
	var j job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	if j.ID == "" || len(j.Email.To) == 0 {
		return nil, fmt.Errorf("%s: not a spooled email", name)
	}
	j.file = name
	// A restart often follows a fix to the mail settings: try again now,
	// keeping the attempts already made.
	j.Next = time.Now()
	return &j, nil
}

// writeSpool saves j atomically: a crash leaves the old file or the new one.
func (m *Mailer) writeSpool(j *job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(m.opts.Spool, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	name := j.ID + spoolExt
	if err == nil {
		err = os.Rename(tmp, filepath.Join(m.opts.Spool, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	j.file = name
	return nil
}

func (m *Mailer) removeSpool(j *job) {
	if j.file == "" {
		return
	}
	if err := os.Remove(filepath.Join(m.opts.Spool, j.file)); err != nil && !os.IsNotExist(err) {
		m.log.Warn().Err(err).Str("file", j.file).Msg("cannot remove spooled email")
	}
	j.file = ""
}
