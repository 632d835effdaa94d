package flows

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"
)

// Watcher reloads the flows directory when it changes and swaps the
// registry. fsnotify gives speed; a poll of file sizes and times catches
// what it misses (network file systems, a directory replaced whole).
type Watcher struct {
	Loader   *Loader
	Registry *Registry
	Log      zerolog.Logger
	// Debounce gathers a burst of writes into one reload (default 50ms:
	// an editor's save is a few writes within milliseconds, and a reload
	// reads only what changed, so one burst split in two costs little).
	Debounce time.Duration
	// Poll is the fallback scan interval (default 1s).
	Poll time.Duration
	// OnReload, when set, sees every new set (metrics, the web page).
	OnReload func(*Set, Problems)

	mu  sync.Mutex
	sig [32]byte // of the directory as last loaded
}

// Load loads once and installs the result; serve calls it before taking
// calls.
func (w *Watcher) Load() (*Set, Problems) {
	set, probs, sig := w.Loader.load()
	w.mu.Lock()
	w.sig = sig
	w.mu.Unlock()
	w.Registry.Swap(set)
	w.report(set, probs)
	return set, probs
}

func (w *Watcher) report(set *Set, probs Problems) {
	// One broken file can hold hundreds of thousands of problems: the log
	// gets the first few of each file and a count of the rest, the
	// registry (check, the web pages) keeps them all.
	logged := map[string]int{}
	for _, p := range probs {
		if logged[p.File]++; logged[p.File] > maxLoggedProblems {
			continue
		}
		ev := w.Log.Warn()
		if p.Severity == Error {
			ev = w.Log.Error()
		}
		ev.Str("problem", p.String()).Msg("flow problem")
	}
	for file, n := range logged {
		if n > maxLoggedProblems {
			w.Log.Warn().Str("file", file).Int("not_logged", n-maxLoggedProblems).Msg("more flow problems in this file; `callflow check` lists them all")
		}
	}
	w.Log.Info().Int64("version", set.Version).Int("flows", len(set.Flows())).Int("problems", len(probs)).Msg("flows loaded")
	if w.OnReload != nil {
		w.OnReload(set, probs)
	}
}

// maxLoggedProblems is how many problems of one file a reload logs.
const maxLoggedProblems = 50

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	debounce := w.Debounce
	if debounce <= 0 {
		debounce = 50 * time.Millisecond
	}
	poll := w.Poll
	if poll <= 0 {
		poll = time.Second
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch flows: %w", err)
	}
	defer fw.Close()
	if err := fw.Add(w.Loader.Dir); err != nil {
		w.Log.Warn().Err(err).Str("dir", w.Loader.Dir).Msg("cannot watch the flows directory; polling only")
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(debounce)
			} else {
				timer.Reset(debounce)
			}
			fire = timer.C
		case err, ok := <-fw.Errors:
			if ok {
				w.Log.Warn().Err(err).Msg("flows watcher")
			}
		case <-ticker.C:
			w.mu.Lock()
			stale := dirSignature(w.Loader.Dir) != w.sig
			w.mu.Unlock()
			if stale {
				w.Load()
				// Re-add the watch: the directory may have been replaced.
				_ = fw.Add(w.Loader.Dir)
			}
		case <-fire:
			fire = nil
			w.Load()
		}
	}
}

// dirSignature summarises names, sizes and modification times.
func dirSignature(dir string) [32]byte {
	files, _ := listFlowFiles(dir)
	stats := make([]os.FileInfo, len(files))
	for i, f := range files {
		stats[i], _ = os.Stat(f)
	}
	return signature(files, stats)
}

// signature summarises files by name, size and modification time; a nil
// stat (the file could not be had) leaves the file out.
func signature(files []string, stats []os.FileInfo) [32]byte {
	h := sha256.New()
	for i, f := range files {
		if fi := stats[i]; fi != nil {
			fmt.Fprintf(h, "%s %d %d\n", f, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
