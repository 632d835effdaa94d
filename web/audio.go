package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/callflow/callflow/store"
)

// Errors an audio opener (Options.Audio, Options.RecordingAudio) wraps so
// that people and the API learn why a recording cannot be played.
var (
	// ErrAudioNotFound: the recording is gone (its file deleted, or
	// Asterisk has no such stored recording). Answered 404. fs.ErrNotExist
	// and store.ErrNotFound mean the same.
	ErrAudioNotFound = errors.New("web: recording not found")
	// ErrAudioUnavailable: the recording may exist but cannot be fetched
	// now (Asterisk cannot be reached, or answered with an error).
	// Answered 503 with Retry-After.
	ErrAudioUnavailable = errors.New("web: recording unavailable")
)

// audioRetryAfter is the Retry-After of a 503 for audio, in seconds.
const audioRetryAfter = 30

// FileAudio opens the voicemail's recording at its stored path.
func FileAudio(_ context.Context, vm store.Voicemail) (io.ReadSeekCloser, time.Time, error) {
	if vm.Path == "" || !filepath.IsAbs(vm.Path) {
		return nil, time.Time{}, fmt.Errorf("voicemail %d: %w", vm.ID, os.ErrNotExist)
	}
	return openRegular(vm.Path)
}

// openRegular opens a regular file (never a directory or a device).
func openRegular(path string) (io.ReadSeekCloser, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, time.Time{}, fmt.Errorf("%s: not a regular file: %w", filepath.Base(path), os.ErrNotExist)
	}
	return f, fi.ModTime(), nil
}

// absDirs makes the audio directories absolute.
func absDirs(dirs []string) ([]string, error) {
	out := make([]string, 0, len(dirs))
	for _, d := range dirs {
		if d == "" {
			continue
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("web: audio directory %q: %w", d, err)
		}
		out = append(out, abs)
	}
	return out, nil
}

// confine returns the stored path of a recording when it is a file inside
// one of the audio directories (symlinks resolved), else "": whatever a
// database row says, no other file is served. A recording without a
// usable path is left to the opener to find by its name.
func (s *Server) confine(path, recording string) string {
	if path == "" {
		return ""
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil || !filepath.IsAbs(path) {
		return "" // gone, or relative: found by name if at all
	}
	for _, d := range s.audioDirs {
		if r, err := filepath.EvalSymlinks(d); err == nil {
			d = r // compared as the file is: symlinks resolved (it may be made after start)
		}
		if rel, err := filepath.Rel(d, real); err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return real
		}
	}
	s.log.Warn().Str("recording", recording).Str("path", path).Msg("web: a recording's path is outside the audio directories; ignoring it")
	return ""
}

// validRecording refuses names that could climb out of a recordings
// directory, whatever Audio does with them.
func validRecording(name string) bool {
	return name != "" && !strings.ContainsAny(name, "/\\\x00") && !strings.Contains(name, "..")
}

// downloadName makes the recording name safe for Content-Disposition.
func downloadName(recording string) string {
	n := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, recording)
	n = strings.Trim(n, ".")
	if n == "" {
		n = "voicemail"
	}
	return n + ".wav"
}

type audioOpener func(ctx context.Context) (io.ReadSeekCloser, time.Time, error)

// serveAudio streams a recording with range support (seeking in
// <audio>), inline or, for downloads, as an attachment. Why a recording
// cannot be played is said in the answer: 404 gone, 503 unreachable.
func (s *Server) serveAudio(w http.ResponseWriter, r *http.Request, recording string, open audioOpener) {
	if !validRecording(recording) {
		s.log.Warn().Str("recording", recording).Msg("web: refusing a recording name")
		s.fail(w, r, http.StatusBadRequest, "invalid recording name")
		return
	}
	rc, mod, err := open(r.Context())
	if err != nil {
		s.audioError(w, r, recording, err)
		return
	}
	defer rc.Close()
	name := downloadName(recording)
	h := w.Header()
	h.Set("Content-Type", "audio/wav")
	h.Set("Cache-Control", "private, max-age=3600")
	disp := "inline"
	if strings.HasSuffix(r.URL.Path, "/download") || r.URL.Query().Get("download") != "" {
		disp = "attachment"
	}
	h.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": name}))
	http.ServeContent(w, r, name, mod, rc)
}

// audioError answers an opener's error with its reason.
func (s *Server) audioError(w http.ResponseWriter, r *http.Request, recording string, err error) {
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the listener went away
	case errors.Is(err, ErrAudioNotFound) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, store.ErrNotFound):
		s.log.Info().Err(err).Str("recording", recording).Msg("web: recording not found")
		s.fail(w, r, http.StatusNotFound, "recording not found: its file is gone")
	case errors.Is(err, ErrAudioUnavailable):
		s.log.Warn().Err(err).Str("recording", recording).Msg("web: recording unavailable")
		w.Header().Set("Retry-After", strconv.Itoa(audioRetryAfter))
		s.fail(w, r, http.StatusServiceUnavailable, "recording unavailable: Asterisk cannot be reached; try again later")
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Warn().Err(err).Str("recording", recording).Msg("web: fetching a recording timed out")
		w.Header().Set("Retry-After", strconv.Itoa(audioRetryAfter))
		s.fail(w, r, http.StatusServiceUnavailable, "recording unavailable: fetching it took too long; try again later")
	default:
		s.log.Error().Err(err).Str("recording", recording).Msg("web: opening a recording")
		s.fail(w, r, http.StatusInternalServerError, "the recording could not be read (the server log says why)")
	}
}

// voicemailAudio serves a voicemail's recording.
func (s *Server) voicemailAudio(w http.ResponseWriter, r *http.Request) {
	vm, ok := s.loadVoicemail(w, r)
	if !ok {
		return
	}
	s.serveAudio(w, r, vm.Recording, func(ctx context.Context) (io.ReadSeekCloser, time.Time, error) {
		vm.Path = s.confine(vm.Path, vm.Recording)
		return s.opts.Audio(ctx, vm)
	})
}

// callRecordingAudio serves a whole-call recording of a call in scope.
func (s *Server) callRecordingAudio(w http.ResponseWriter, r *http.Request) {
	rec, err := s.st.CallRecording(r.Context(), r.PathValue("id"), r.PathValue("name"), auth(r).scope())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	s.serveAudio(w, r, rec.Name, func(ctx context.Context) (io.ReadSeekCloser, time.Time, error) {
		rec.Path = s.confine(rec.Path, rec.Name)
		return s.opts.RecordingAudio(ctx, rec)
	})
}

// recordingAsVoicemail lets one opener serve whole-call recordings too:
// it finds both by name (and path) alike.
func recordingAsVoicemail(audio func(context.Context, store.Voicemail) (io.ReadSeekCloser, time.Time, error)) func(context.Context, store.Recording) (io.ReadSeekCloser, time.Time, error) {
	return func(ctx context.Context, rec store.Recording) (io.ReadSeekCloser, time.Time, error) {
		return audio(ctx, store.Voicemail{CallID: rec.CallID, Recording: rec.Name, Path: rec.Path, Duration: rec.Duration, Created: rec.Created})
	}
}
