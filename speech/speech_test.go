package speech

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// writeWAV writes a PCM WAV of a 440 Hz tone.
func writeWAV(t *testing.T, path string, rate, channels, bits int, d time.Duration) {
	t.Helper()
	frames := int(int64(rate) * int64(d) / int64(time.Second))
	bps := bits / 8
	data := make([]byte, frames*channels*bps)
	for i := range frames {
		v := math.Sin(2 * math.Pi * 440 * float64(i) / float64(rate))
		for c := range channels {
			off := (i*channels + c) * bps
			switch bits {
			case 8:
				data[off] = byte(128 + 100*v)
			case 16:
				binary.LittleEndian.PutUint16(data[off:], uint16(int16(8000*v)))
			}
		}
	}
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+len(data)))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(channels), uint32(rate),
		uint32(rate * channels * bps), uint16(channels * bps), uint16(bits)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(len(data)))
	b.Write(data)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	p := filepath.Join(t.TempDir(), "fake-tts")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// fake is a synthesiser that copies an 8 kHz WAV to its first argument,
// counting its runs in a file.
type fake struct {
	cmd, counter, argsFile string
}

func newFake(t *testing.T, extra string) fake {
	t.Helper()
	dir := t.TempDir()
	wav := filepath.Join(dir, "fixture.wav")
	writeWAV(t, wav, 8000, 1, 16, 300*time.Millisecond)
	f := fake{counter: filepath.Join(dir, "count"), argsFile: filepath.Join(dir, "args")}
	f.cmd = script(t, `out="$1"; shift
echo run >> '`+f.counter+`'
: > '`+f.argsFile+`'
for a in "$@"; do printf '%s\0' "$a" >> '`+f.argsFile+`'; done
`+extra+`
cp '`+wav+`' "$out"`)
	return f
}

func (f fake) runs(t *testing.T) int {
	b, err := os.ReadFile(f.counter)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "run\n")
}

func (f fake) args(t *testing.T) []string {
	b, err := os.ReadFile(f.argsFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func newEngine(t *testing.T, o Options) *Engine {
	t.Helper()
	if o.CacheDir == "" {
		o.CacheDir = filepath.Join(t.TempDir(), "tts")
	}
	o.Logger = zerolog.Nop()
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mediaFile(t *testing.T, m string) string {
	t.Helper()
	p, ok := strings.CutPrefix(m, "sound:")
	if !ok || !filepath.IsAbs(p) || strings.HasSuffix(p, ".wav") {
		t.Fatalf("media %q: want sound:/abs/path without extension", m)
	}
	return p + ".wav"
}

func TestRealSynthesis(t *testing.T) {
	for _, prog := range []string{"espeak-ng", "sox"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("%s not installed", prog)
		}
	}
	e := newEngine(t, Options{})
	ctx := context.Background()
	m, err := e.Speak(ctx, "Welcome to Acme Support. Press 1 for technical support.")
	if err != nil {
		t.Fatal(err)
	}
	file := mediaFile(t, string(m))
	info, err := CheckWAV(file)
	if err != nil {
		t.Fatal(err)
	}
	if info.SampleRate != 8000 || info.Channels != 1 || info.Bits != 16 || info.Format != FormatPCM || info.Duration <= 0 {
		t.Errorf("synthesised %+v", info)
	}
	before, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if before.Mode().Perm()&0o044 != 0o044 {
		t.Errorf("mode %v: Asterisk could not read it", before.Mode())
	}

	m2, err := e.Speak(ctx, "Welcome to Acme Support. Press 1 for technical support.")
	if err != nil || m2 != m {
		t.Fatalf("second call: %q, %v", m2, err)
	}
	after, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Error("cached file was rewritten")
	}

	// Text that looks like an option is spoken, not parsed.
	m3, err := e.Speak(ctx, "-v is not a voice, --help is not help")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := CheckWAV(mediaFile(t, string(m3))); err != nil || info.Duration <= 0 {
		t.Errorf("dash text: %+v %v", info, err)
	}
}

func TestCacheHitDoesNotRerun(t *testing.T) {
	f := newFake(t, "")
	e := newEngine(t, Options{Command: []string{f.cmd, "{out}", "{text}"}, Convert: []string{}})
	m, err := e.Speak(context.Background(), "Hello")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(mediaFile(t, string(m)))
	if _, err := e.Speak(context.Background(), "Hello"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(mediaFile(t, string(m)))
	if f.runs(t) != 1 || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("%d runs; file rewritten: %v", f.runs(t), !os.SameFile(before, after))
	}
	if base := filepath.Base(mediaFile(t, string(m))); base != "tts-"+e.Key("Hello")+".wav" || len(e.Key("Hello")) != 16 {
		t.Errorf("file %s", base)
	}
	// A new engine on the same directory finds it too.
	e2 := newEngine(t, Options{Command: []string{f.cmd, "{out}", "{text}"}, Convert: []string{}, CacheDir: e.dir})
	if m2, err := e2.Speak(context.Background(), "Hello"); err != nil || m2 != m || f.runs(t) != 1 {
		t.Errorf("%q %v, %d runs", m2, err, f.runs(t))
	}
	// Other text, or another voice, is another file.
	if m3, _ := e.Speak(context.Background(), "Hello!"); m3 == m {
		t.Error("different text, same file")
	}
	e3 := newEngine(t, Options{Command: []string{f.cmd, "{out}", "-v{voice}", "{text}"}, Convert: []string{}, CacheDir: e.dir, Voice: "en-us"})
	if e3.Key("Hello") == e.Key("Hello") {
		t.Error("voice not in the cache key")
	}
}

func TestConcurrentCallsSynthesiseOnce(t *testing.T) {
	f := newFake(t, "sleep 0.3")
	e := newEngine(t, Options{Command: []string{f.cmd, "{out}", "{text}"}, Convert: []string{}})
	var wg sync.WaitGroup
	results := make([]string, 20)
	errs := make([]error, 20)
	for i := range results {
		wg.Go(func() {
			m, err := e.Speak(context.Background(), "Please hold.")
			results[i], errs[i] = string(m), err
		})
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || results[i] != results[0] {
			t.Fatalf("call %d: %q %v", i, results[i], errs[i])
		}
	}
	if n := f.runs(t); n != 1 {
		t.Errorf("synthesised %d times", n)
	}
	if tmps, _ := filepath.Glob(filepath.Join(e.dir, ".tts-*")); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

func TestTextIsOneArgument(t *testing.T) {
	f := newFake(t, "")
	e := newEngine(t, Options{Command: []string{f.cmd, "{out}", "--", "{text}"}, Convert: []string{}})
	text := "-x; rm -rf / $(id) `id` 'q' \"dq\" {out} {voice}\n* ?"
	if _, err := e.Speak(context.Background(), text); err != nil {
		t.Fatal(err)
	}
	got := f.args(t)
	if len(got) != 2 || got[0] != "--" || got[1] != text {
		t.Errorf("args %q", got)
	}
}

func TestVoicePlaceholder(t *testing.T) {
	for _, voice := range []string{"", "en-us"} {
		f := newFake(t, "")
		e := newEngine(t, Options{Command: []string{f.cmd, "{out}", "-v{voice}", "--", "{text}"}, Convert: []string{}, Voice: voice})
		if _, err := e.Speak(context.Background(), "Hi"); err != nil {
			t.Fatal(err)
		}
		want := "--,Hi"
		if voice != "" {
			want = "-ven-us,--,Hi"
		}
		if got := strings.Join(f.args(t), ","); got != want {
			t.Errorf("voice %q: args %q, want %q", voice, got, want)
		}
	}
}

func TestCommandFailure(t *testing.T) {
	cmd := script(t, `echo "espeak-ng: voice 'xx' not found" >&2; exit 3`)
	e := newEngine(t, Options{Command: []string{cmd, "{out}", "{text}"}})
	_, err := e.Speak(context.Background(), "Hello")
	if err == nil || !strings.Contains(err.Error(), "voice 'xx' not found") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("error %v", err)
	}
	if files, _ := os.ReadDir(e.dir); len(files) != 0 {
		t.Errorf("left behind: %v", files)
	}
}

func TestHangingCommandIsKilled(t *testing.T) {
	cmd := script(t, `sleep 60`)
	e := newEngine(t, Options{Command: []string{cmd, "{out}", "{text}"}, Timeout: 100 * time.Millisecond})
	_, err := e.Speak(context.Background(), "Hello")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v", err)
	}
	if files, _ := os.ReadDir(e.dir); len(files) != 0 {
		t.Errorf("left behind: %v", files)
	}
}

func TestCallerGivingUpDoesNotSpoilSynthesis(t *testing.T) {
	f := newFake(t, "sleep 0.3")
	e := newEngine(t, Options{Command: []string{f.cmd, "{out}", "{text}"}, Convert: []string{}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Speak(ctx, "Goodbye"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	m, err := e.Speak(context.Background(), "Goodbye")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckWAV(mediaFile(t, string(m))); err != nil {
		t.Fatal(err)
	}
	if n := f.runs(t); n != 1 {
		t.Errorf("%d runs", n)
	}
}

func TestWrongFormatWithoutConversion(t *testing.T) {
	dir := t.TempDir()
	wav := filepath.Join(dir, "cd.wav")
	writeWAV(t, wav, 22050, 1, 16, 100*time.Millisecond)
	cmd := script(t, `cp '`+wav+`' "$1"`)
	e := newEngine(t, Options{Command: []string{cmd, "{out}", "{text}"}, Convert: []string{}})
	_, err := e.Speak(context.Background(), "Hello")
	if err == nil || !strings.Contains(err.Error(), "22050 Hz") {
		t.Fatalf("error %v", err)
	}
}

func TestTextLimits(t *testing.T) {
	f := newFake(t, "")
	e := newEngine(t, Options{Command: []string{f.cmd, "{out}", "{text}"}, Convert: []string{}})
	ctx := context.Background()
	for _, text := range []string{"", "   \n\t"} {
		if _, err := e.Speak(ctx, text); !errors.Is(err, ErrEmptyText) {
			t.Errorf("%q: %v", text, err)
		}
	}
	if _, err := e.Speak(ctx, strings.Repeat("é", MaxText+1)); !errors.Is(err, ErrTextTooLong) {
		t.Errorf("too long: %v", err)
	}
	if _, err := e.Speak(ctx, strings.Repeat("é", MaxText)); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	if _, err := e.Speak(ctx, "a\x00b"); err == nil {
		t.Error("NUL accepted")
	}
	if f.runs(t) != 1 {
		t.Errorf("%d runs", f.runs(t))
	}
}

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	for name, o := range map[string]Options{
		"no cache dir":     {},
		"no {out}":         {CacheDir: dir, Command: []string{"espeak-ng", "{text}"}},
		"no {text}":        {CacheDir: dir, Command: []string{"espeak-ng", "-w", "{out}"}},
		"convert no {in}":  {CacheDir: dir, Convert: []string{"sox", "x.wav", "{out}"}},
		"empty program":    {CacheDir: dir, Command: []string{"", "{out}", "{text}"}},
		"convert no {out}": {CacheDir: dir, Convert: []string{"sox", "{in}", "x.wav"}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	e, err := New(Options{CacheDir: filepath.Join(dir, "a", "tts"), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(expand(e.opts.Command, map[string]string{"{out}": "o.wav", "{text}": "hi"}), " ") != "espeak-ng -w o.wav -- hi" {
		t.Errorf("default command %q", e.opts.Command)
	}
	if fi, err := os.Stat(e.dir); err != nil || !fi.IsDir() {
		t.Errorf("cache dir: %v", err)
	}
}

func TestCheckWAVAsteriskRecording(t *testing.T) {
	// A voicemail as a real Asterisk 20 served it (GET /recordings/stored/{name}/file).
	const p = "testdata/vm-1795237533.wav"
	info, err := CheckWAV(p)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Telephony() || info.SampleRate != 8000 || info.Channels != 1 || info.Bits != 16 || info.Duration <= 0 {
		t.Errorf("%+v", info)
	}
}

func TestCheckWAV(t *testing.T) {
	dir := t.TempDir()
	stereo := filepath.Join(dir, "upload.wav")
	writeWAV(t, stereo, 44100, 2, 16, time.Second)
	info, err := CheckWAV(stereo)
	if err != nil {
		t.Fatal(err)
	}
	if info.SampleRate != 44100 || info.Channels != 2 || info.Bits != 16 || info.Duration != time.Second || info.Telephony() {
		t.Errorf("%+v", info)
	}
	if s := info.String(); s != "44100 Hz 2 channels 16-bit PCM, 1s" {
		t.Errorf("String %q", s)
	}

	phone := filepath.Join(dir, "phone.wav")
	writeWAV(t, phone, 8000, 1, 16, 500*time.Millisecond)
	if info, err := CheckWAV(phone); err != nil || !info.Telephony() || info.Duration != 500*time.Millisecond {
		t.Errorf("%+v %v", info, err)
	}

	// A LIST chunk before fmt, an odd-sized chunk, and a data size left
	// at the streaming placeholder.
	b, _ := os.ReadFile(phone)
	var x bytes.Buffer
	x.Write(b[:12])
	x.WriteString("LIST")
	binary.Write(&x, binary.LittleEndian, uint32(3))
	x.Write([]byte{1, 2, 3, 0})
	x.Write(b[12:40])
	binary.Write(&x, binary.LittleEndian, uint32(0xFFFFFFFF))
	x.Write(b[44:])
	odd := filepath.Join(dir, "odd.wav")
	os.WriteFile(odd, x.Bytes(), 0o644)
	if info, err := CheckWAV(odd); err != nil || !info.Telephony() || info.Duration != 500*time.Millisecond {
		t.Errorf("odd: %+v %v", info, err)
	}

	for name, content := range map[string][]byte{
		"text.wav":      []byte("this is not audio at all, just text"),
		"short.wav":     []byte("RIFF"),
		"nofmt.wav":     append([]byte("RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00"), 1, 2, 3, 4),
		"truncated.wav": b[:30],
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, content, 0o644)
		if _, err := CheckWAV(p); !errors.Is(err, ErrNotWAV) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := CheckWAV(filepath.Join(dir, "missing.wav")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

func TestConvertWAV(t *testing.T) {
	if _, err := exec.LookPath("sox"); err != nil {
		t.Skip("sox not installed")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "upload.wav")
	writeWAV(t, in, 44100, 2, 16, time.Second)
	out := filepath.Join(dir, "sounds", "greeting.wav")
	os.Mkdir(filepath.Dir(out), 0o755)
	if err := ConvertWAV(context.Background(), in, out, nil); err != nil {
		t.Fatal(err)
	}
	info, err := CheckWAV(out)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Telephony() || (info.Duration-time.Second).Abs() > 20*time.Millisecond {
		t.Errorf("%+v", info)
	}

	err = ConvertWAV(context.Background(), filepath.Join(dir, "missing.wav"), filepath.Join(dir, "sounds", "x.wav"), nil)
	if err == nil || !strings.Contains(err.Error(), "sox") {
		t.Fatalf("missing input: %v", err)
	}
	if files, _ := os.ReadDir(filepath.Dir(out)); len(files) != 1 {
		t.Errorf("left behind: %v", files)
	}
}
