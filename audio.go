package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/ari"
	"github.com/callflow/callflow/store"
)

// voicemailAudio finds a voicemail's WAV for the inbox: the file named in
// the record (FastAGI recordings, on this host), else a local copy, else
// the copy is fetched from Asterisk's stored recordings first.
type voicemailAudio struct {
	dir string // local copies
	ari *ari.App
}

func (v voicemailAudio) open(ctx context.Context, vm store.Voicemail) (io.ReadSeekCloser, time.Time, error) {
	if vm.Path != "" && filepath.IsAbs(vm.Path) {
		if f, mod, err := openFile(vm.Path); err == nil {
			return f, mod, nil
		}
	}
	name := vm.Recording
	if name == "" || strings.ContainsAny(name, "/\\\x00") || strings.Contains(name, "..") {
		return nil, time.Time{}, fmt.Errorf("voicemail %d: bad recording name: %w", vm.ID, os.ErrNotExist)
	}
	local := filepath.Join(v.dir, name+".wav")
	if f, mod, err := openFile(local); err == nil {
		return f, mod, nil
	}
	if v.ari == nil {
		return nil, time.Time{}, fmt.Errorf("voicemail %d: %w", vm.ID, os.ErrNotExist)
	}
	if err := v.fetch(ctx, name, local); err != nil {
		return nil, time.Time{}, err
	}
	return openFile(local)
}

// fetch copies a stored recording from Asterisk (atomically: a reader
// never sees half a file).
func (v voicemailAudio) fetch(ctx context.Context, name, local string) error {
	rc, err := v.ari.FetchRecording(ctx, name)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := os.MkdirAll(v.dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(v.dir, ".fetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, io.LimitReader(rc, 512<<20)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), local)
}

func openFile(path string) (io.ReadSeekCloser, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, time.Time{}, fmt.Errorf("%s: not a file", path)
	}
	return f, fi.ModTime(), nil
}

// reconcileVoicemails puts back voicemails whose database write was lost
// (a crash between the recording and the write, or a recording still going
// when the process died): Asterisk's stored recordings and the FastAGI
// recordings directory are the truth. Only recordings made since since
// are looked at (zero: all). A recording under a second long is what the
// voicemail step calls empty (or what a full disk left): it is no message.
// Messages of calls still in progress (inProgress) are being recorded: the
// voicemail step stores them when they end.
func reconcileVoicemails(ctx context.Context, st *store.Store, a *ari.App, agiDir string, since time.Time, inProgress func(callID string) bool, log zerolog.Logger) {
	recent := func(name string) bool {
		_, callID, at, ok := store.ParseVoicemailName(name)
		return ok && (since.IsZero() || !at.Before(since)) && !inProgress(callID)
	}
	var remote []string
	if a != nil {
		names, err := a.StoredRecordings(ctx)
		if err != nil {
			log.Warn().Err(err).Msg("reconcile: cannot list Asterisk's stored recordings")
		}
		for _, n := range names {
			if recent(n) {
				remote = append(remote, n)
			}
		}
	}
	var local []store.FoundRecording
	if agiDir != "" {
		if found, err := store.ScanVoicemailDir(agiDir); err == nil {
			for _, f := range found {
				if recent(f.Name) && f.Duration >= time.Second {
					local = append(local, f)
				}
			}
		}
	}
	if len(remote)+len(local) == 0 {
		return
	}
	known, err := st.KnownVoicemails(ctx, remote)
	if err != nil {
		log.Error().Err(err).Msg("reconcile voicemails")
		return
	}
	found := local
	for _, n := range remote {
		if known[n] {
			continue
		}
		d, err := storedDuration(ctx, a, n)
		if err != nil {
			log.Warn().Err(err).Str("recording", n).Msg("reconcile: stored recording unreadable")
			continue
		}
		if d < time.Second {
			log.Debug().Str("recording", n).Msg("reconcile: empty recording is no message")
			continue
		}
		found = append(found, store.FoundRecording{Name: n, Duration: d})
	}
	if len(found) == 0 {
		return
	}
	added, err := st.ReconcileVoicemails(ctx, found)
	if err != nil {
		log.Error().Err(err).Msg("reconcile voicemails")
		return
	}
	if added > 0 {
		log.Warn().Int("recovered", added).Msg("voicemails found in recordings but not in the database were put back")
	}
}

// storedDuration is the length of a stored recording: Asterisk stores
// 8 kHz 16-bit mono WAV behind a 44-byte header.
func storedDuration(ctx context.Context, a *ari.App, name string) (time.Duration, error) {
	rc, err := a.FetchRecording(ctx, name)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(rc, 512<<20))
	if err != nil {
		return 0, err
	}
	const header, bytesPerSecond = 44, 16000
	if n <= header {
		return 0, nil
	}
	return time.Duration(n-header) * time.Second / bytesPerSecond, nil
}
