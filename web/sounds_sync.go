package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/callflow/callflow/store"
)

// SyncResult says what SyncSounds changed.
type SyncResult struct {
	Copied, Removed int
}

// SyncSounds makes the uploaded sounds in dir (<dir>/<workspace>/<name>.wav)
// what the database holds, for a node that shares it: sounds it lacks, or
// holds an older copy of, are copied in; sounds the database no longer
// has are removed. Only files with a sound's name are touched.
func SyncSounds(ctx context.Context, st *store.Store, dir string) (SyncResult, error) {
	var res SyncResult
	stored, err := st.ListAudio(ctx, soundAudioPrefix)
	if err != nil {
		return res, err
	}
	keep := map[string]bool{}
	var errs []error
	for _, e := range stored {
		ws, name, ok := splitSoundAudio(e.Name)
		if !ok {
			continue
		}
		keep[ws+"/"+name] = true
		path := filepath.Join(dir, ws, name+".wav")
		if fi, err := os.Stat(path); err == nil && fi.Size() == e.Size && !fi.ModTime().Before(time.Unix(0, e.Created)) {
			continue
		}
		if err := copyStoredSound(ctx, st, e.Name, path); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Copied++
	}
	wss, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, w := range wss {
		if !w.IsDir() || !soundNameRe.MatchString(w.Name()) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, w.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			name, ok := strings.CutSuffix(f.Name(), ".wav")
			if !ok || !f.Type().IsRegular() || !soundNameRe.MatchString(name) || keep[w.Name()+"/"+name] {
				continue
			}
			// An upload here stores the sound before its file appears:
			// asked again, the database has any sound uploaded since the
			// list above.
			have, err := st.HasAudio(ctx, SoundAudioName(w.Name(), name))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if have {
				continue
			}
			if err := os.Remove(filepath.Join(dir, w.Name(), f.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
			res.Removed++
		}
	}
	return res, errors.Join(errs...)
}

// copyStoredSound writes the database's copy of a sound to path, whole or
// not at all.
func copyStoredSound(ctx context.Context, st *store.Store, key, path string) error {
	a, err := st.OpenAudio(ctx, key)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("sound %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(filepath.Dir(path)), ".sync-*.wav")
	if err != nil {
		return fmt.Errorf("sound %s: %w", key, err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, a)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("sound %s: %w", key, err)
	}
	return nil
}
