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
// (a crash between the recording and the write): Asterisk's stored
// recordings and the FastAGI recordings directory are the truth.
func reconcileVoicemails(ctx context.Context, st *store.Store, a *ari.App, agiDir string, log zerolog.Logger) {
	var found []store.FoundRecording
	if a != nil {
		names, err := a.StoredRecordings(ctx)
		if err != nil {
			log.Warn().Err(err).Msg("reconcile: cannot list Asterisk's stored recordings")
		}
		for _, n := range names {
			if _, _, _, ok := store.ParseVoicemailName(n); ok {
				found = append(found, store.FoundRecording{Name: n})
			}
		}
	}
	if agiDir != "" {
		if local, err := store.ScanVoicemailDir(agiDir); err == nil {
			found = append(found, local...)
		}
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
