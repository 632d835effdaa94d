package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/callflow/callflow/ari"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/store"
	"github.com/callflow/callflow/web"
)

// voicemailAudio finds a voicemail's WAV for the inbox: the file named in
// the record (FastAGI recordings, on this host), else a local copy, else
// the copy is fetched from Asterisk's stored recordings first.
type voicemailAudio struct {
	dir    string // local copies
	recDir string // Asterisk's recordings directory (FastAGI recordings by name)
	ari    *ari.App
	st     *store.Store // the database's copies (PostgreSQL: any node's messages)
}

func (s *Server) voicemailAudio() voicemailAudio {
	return voicemailAudio{dir: localAudioDir(s.cfg), recDir: s.cfg.RecordingsDir, ari: s.ari, st: s.store}
}

// localAudioDir holds the local copies of recordings Asterisk stored.
func localAudioDir(cfg *config.Config) string {
	return filepath.Join(cfg.LocalDir(), "voicemail")
}

// audioDirs are where the inbox may read audio from: Asterisk's recordings
// directory (FastAGI recordings) and the local copies.
func audioDirs(cfg *config.Config) []string {
	dirs := []string{localAudioDir(cfg)}
	if cfg.RecordingsDir != "" {
		dirs = append(dirs, cfg.RecordingsDir)
	}
	return dirs
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
	if v.recDir != "" {
		if f, mod, err := openFile(filepath.Join(v.recDir, name+".wav")); err == nil {
			return f, mod, nil
		}
	}
	if v.st != nil && v.st.SharesAudio() {
		// Recorded on this node or another: the database's copy.
		if a, err := v.st.OpenAudio(ctx, name); err == nil {
			return a, a.Created(), nil
		}
	}
	if v.ari == nil {
		return nil, time.Time{}, fmt.Errorf("voicemail %d: %w", vm.ID, os.ErrNotExist)
	}
	if err := v.fetch(ctx, name, local); err != nil {
		// Asterisk answering 404 means the recording is gone; anything
		// else (down, timing out) means it cannot be had now.
		var ae *ari.Error
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return nil, time.Time{}, fmt.Errorf("voicemail %d: %w: %w", vm.ID, web.ErrAudioNotFound, err)
		}
		return nil, time.Time{}, fmt.Errorf("voicemail %d: %w: %w", vm.ID, web.ErrAudioUnavailable, err)
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
		return nil, time.Time{}, fmt.Errorf("%s: not a file: %w", path, fs.ErrNotExist)
	}
	return f, fi.ModTime(), nil
}
