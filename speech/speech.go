package speech

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/callflow/callflow/applets"
	"github.com/rs/zerolog"
)

// MaxText is the longest text Speak accepts, in characters.
const MaxText = 2000

// DefaultTimeout bounds one synthesis (both commands).
const DefaultTimeout = 20 * time.Second

// Command placeholders. An argument may hold several, or text around them.
const (
	PlaceholderText  = "{text}"  // the text to speak, always one argument
	PlaceholderOut   = "{out}"   // the file to write
	PlaceholderIn    = "{in}"    // Convert's input
	PlaceholderVoice = "{voice}" // Options.Voice; an argument holding it is left out when Voice is empty
)

var (
	// DefaultCommand runs espeak-ng. "--" ends its options, so text that
	// starts with '-' is spoken rather than parsed. "-v{voice}" disappears
	// when no voice is set.
	DefaultCommand = []string{"espeak-ng", "-v" + PlaceholderVoice, "-w", PlaceholderOut, "--", PlaceholderText}
	// DefaultConvert makes what Asterisk plays as ".wav": 8 kHz 16-bit mono.
	DefaultConvert = []string{"sox", PlaceholderIn, "-r", "8000", "-c", "1", "-b", "16", PlaceholderOut}
)

var (
	ErrEmptyText   = errors.New("speech: no text to speak")
	ErrTextTooLong = fmt.Errorf("speech: text longer than %d characters", MaxText)
)

// Options configure an Engine.
type Options struct {
	// Command synthesises {text} into the WAV file {out}; default
	// DefaultCommand. It runs directly, never through a shell.
	Command []string
	// Convert turns {in} into an 8 kHz 16-bit mono WAV {out}. nil means
	// DefaultConvert; an empty, non-nil list means Command's output is
	// already in that format.
	Convert []string
	// CacheDir holds the WAV files; Asterisk must be able to read it
	// (normally <astdatadir>/sounds/tts). Created if missing.
	CacheDir string
	// Timeout bounds one synthesis; default 20s.
	Timeout time.Duration
	// Voice replaces {voice} in Command (espeak-ng: "en-us", "hi", ...).
	Voice  string
	Logger zerolog.Logger
}

// Engine is an applets.Speaker that caches what it synthesises.
type Engine struct {
	opts Options
	dir  string
	log  zerolog.Logger

	mu      sync.Mutex
	flights map[string]*flight
}

// flight is one synthesis that concurrent callers for the same text share.
type flight struct {
	done chan struct{}
	err  error
}

var _ applets.Speaker = (*Engine)(nil)

// New checks opts and creates the cache directory.
func New(opts Options) (*Engine, error) {
	if opts.Command == nil {
		opts.Command = DefaultCommand
	}
	if opts.Convert == nil {
		opts.Convert = DefaultConvert
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.CacheDir == "" {
		return nil, errors.New("speech: no cache directory")
	}
	if err := checkTemplate("command", opts.Command, PlaceholderOut, PlaceholderText); err != nil {
		return nil, err
	}
	if len(opts.Convert) > 0 {
		if err := checkTemplate("convert", opts.Convert, PlaceholderIn, PlaceholderOut); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("speech: cache directory: %w", err)
	}
	// World-readable: Asterisk usually runs as another user.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("speech: cache directory: %w", err)
	}
	e := &Engine{
		opts:    opts,
		dir:     dir,
		log:     opts.Logger.With().Str("component", "speech").Logger(),
		flights: map[string]*flight{},
	}
	for _, cmd := range [][]string{opts.Command, opts.Convert} {
		if len(cmd) > 0 {
			if _, err := exec.LookPath(cmd[0]); err != nil {
				e.log.Warn().Err(err).Msg("text to speech will fail until this program is installed")
			}
		}
	}
	e.removeStale()
	return e, nil
}

func checkTemplate(what string, tmpl []string, need ...string) error {
	if len(tmpl) == 0 || tmpl[0] == "" {
		return fmt.Errorf("speech: empty %s", what)
	}
	for _, p := range need {
		if !slices.ContainsFunc(tmpl, func(a string) bool { return strings.Contains(a, p) }) {
			return fmt.Errorf("speech: %s %q has no %s", what, tmpl, p)
		}
	}
	return nil
}

// removeStale deletes temporary files a crash left behind.
func (e *Engine) removeStale() {
	tmps, _ := filepath.Glob(filepath.Join(e.dir, ".tts-*"))
	for _, p := range tmps {
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > 10*time.Minute {
			_ = os.Remove(p)
		}
	}
}

// Speak returns media for text, synthesising it unless it is cached.
// Concurrent calls for the same text share one synthesis, which goes on
// (within Timeout) even if ctx ends, so the next caller finds it cached.
func (e *Engine) Speak(ctx context.Context, text string) (applets.Media, error) {
	if strings.TrimSpace(text) == "" {
		return "", ErrEmptyText
	}
	if utf8.RuneCountInString(text) > MaxText {
		return "", ErrTextTooLong
	}
	if strings.ContainsRune(text, 0) || !utf8.ValidString(text) {
		return "", errors.New("speech: text is not valid UTF-8 text")
	}
	key := e.Key(text)
	file := e.File(text)
	media := applets.Media("sound:" + strings.TrimSuffix(file, ".wav"))
	if cached(file) {
		return media, nil
	}

	e.mu.Lock()
	f, ok := e.flights[key]
	if !ok {
		f = &flight{done: make(chan struct{})}
		e.flights[key] = f
		go func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.Timeout)
			defer cancel()
			f.err = e.synthesise(sctx, key, text, file)
			e.mu.Lock()
			delete(e.flights, key)
			e.mu.Unlock()
			close(f.done)
		}()
	}
	e.mu.Unlock()

	select {
	case <-f.done:
		if f.err != nil {
			return "", f.err
		}
		return media, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Key is the cache key of text: the first 16 hex digits of a SHA-256 over
// everything that shapes the audio.
func (e *Engine) Key(text string) string {
	h := sha256.New()
	for _, part := range [][]string{e.opts.Command, e.opts.Convert, {e.opts.Voice}, {text}} {
		for _, s := range part {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
		h.Write([]byte{1})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Dir is the directory the engine writes its files to.
func (e *Engine) Dir() string { return e.dir }

// File is where the WAV for text is cached.
func (e *Engine) File(text string) string {
	return filepath.Join(e.dir, "tts-"+e.Key(text)+".wav")
}

func cached(file string) bool {
	fi, err := os.Stat(file)
	return err == nil && fi.Mode().IsRegular() && fi.Size() > 44
}

func (e *Engine) synthesise(ctx context.Context, key, text, file string) error {
	if cached(file) {
		return nil // finished by a flight that ended just before this one began
	}
	raw, err := tempFile(e.dir, ".tts-"+key+"-raw-*.wav")
	if err != nil {
		return fmt.Errorf("speech: %w", err)
	}
	defer os.Remove(raw)
	vars := map[string]string{PlaceholderOut: raw, PlaceholderText: text, PlaceholderVoice: e.opts.Voice}
	if err := run(ctx, e.opts.Command, vars); err != nil {
		return err
	}
	out := raw
	if len(e.opts.Convert) > 0 {
		conv, err := tempFile(e.dir, ".tts-"+key+"-*.wav")
		if err != nil {
			return fmt.Errorf("speech: %w", err)
		}
		defer os.Remove(conv)
		if err := run(ctx, e.opts.Convert, map[string]string{PlaceholderIn: raw, PlaceholderOut: conv}); err != nil {
			return err
		}
		out = conv
	}
	info, err := CheckWAV(out)
	if err != nil {
		return fmt.Errorf("speech: synthesised audio: %w", err)
	}
	if !info.Telephony() || info.DataBytes == 0 {
		return fmt.Errorf("speech: synthesised audio is %s; Asterisk needs 8000 Hz mono 16-bit PCM with sound in it (check Convert)", info)
	}
	if err := os.Chmod(out, 0o644); err != nil {
		return fmt.Errorf("speech: %w", err)
	}
	if err := os.Rename(out, file); err != nil {
		return fmt.Errorf("speech: %w", err)
	}
	e.log.Debug().Str("file", file).Dur("duration", info.Duration).Int("chars", utf8.RuneCountInString(text)).Msg("synthesised")
	return nil
}

// ConvertWAV converts in to out with convert (nil: DefaultConvert, which
// makes 8 kHz 16-bit mono), writing out atomically: a failure leaves no
// partial file. The extension of out tells sox the format to write.
func ConvertWAV(ctx context.Context, in, out string, convert []string) error {
	if convert == nil {
		convert = DefaultConvert
	}
	if err := checkTemplate("convert", convert, PlaceholderIn, PlaceholderOut); err != nil {
		return err
	}
	tmp, err := tempFile(filepath.Dir(out), ".convert-*"+filepath.Ext(out))
	if err != nil {
		return fmt.Errorf("speech: %w", err)
	}
	defer os.Remove(tmp)
	if err := run(ctx, convert, map[string]string{PlaceholderIn: in, PlaceholderOut: tmp}); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("speech: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("speech: %w", err)
	}
	return nil
}

// tempFile creates an empty file and returns its name.
func tempFile(dir, pattern string) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	name := f.Name()
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// expand fills a command template. Each argument stays one argument
// whatever the values hold, and the values are not scanned again.
func expand(tmpl []string, vars map[string]string) []string {
	var pairs []string
	for k, v := range vars {
		pairs = append(pairs, k, v)
	}
	r := strings.NewReplacer(pairs...)
	out := make([]string, 0, len(tmpl))
	for _, a := range tmpl {
		if strings.Contains(a, PlaceholderVoice) && vars[PlaceholderVoice] == "" {
			continue
		}
		out = append(out, r.Replace(a))
	}
	return out
}

// run runs a command template; its error carries the command's output.
func run(ctx context.Context, tmpl []string, vars map[string]string) error {
	args := expand(tmpl, vars)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out tail
	cmd.Stdout = &out
	cmd.Stderr = &out
	killGroup(cmd)
	// Children that keep the output pipe open must not hold up Wait.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(out.String())
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("speech: %s: killed at the time limit: %w", args[0], ctx.Err())
	}
	if ctx.Err() != nil {
		return fmt.Errorf("speech: %s: %w", args[0], ctx.Err())
	}
	if msg != "" {
		return fmt.Errorf("speech: %s: %w: %s", args[0], err, msg)
	}
	return fmt.Errorf("speech: %s: %w", args[0], err)
}

// tail keeps the last few KB a command writes.
type tail struct {
	mu sync.Mutex
	b  []byte
}

const tailMax = 4 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > tailMax {
		t.b = t.b[len(t.b)-tailMax:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
