package applets

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/callflow/callflow/internal/tomlpos"
)

// Duration is a parameter written as "5s", "1m30s" or whole seconds.
type Duration = tomlpos.Duration

// MediaList is one media URI or a list of them. A bare name ("custom/menu"
// or "menu.wav") is a sound file.
type MediaList []Media

func (m *MediaList) UnmarshalTOMLValue(v any) error {
	var raw tomlpos.StringOrList
	if err := raw.UnmarshalTOMLValue(v); err != nil {
		return err
	}
	out := make(MediaList, 0, len(raw))
	for _, s := range raw {
		media, err := ParseMedia(s)
		if err != nil {
			return err
		}
		out = append(out, media)
	}
	*m = out
	return nil
}

var mediaSchemes = map[string]bool{"sound": true, "recording": true, "number": true, "digits": true, "characters": true, "tone": true}

// ParseMedia checks one media URI and turns a bare file name into a sound.
func ParseMedia(s string) (Media, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("empty media")
	}
	if scheme, rest, ok := strings.Cut(s, ":"); ok && !strings.Contains(scheme, "/") {
		if !mediaSchemes[scheme] {
			return "", fmt.Errorf("unknown media scheme %q in %q (use sound:, recording:, digits:, number:, characters: or tone:)", scheme, s)
		}
		if rest == "" {
			return "", fmt.Errorf("media %q names nothing", s)
		}
		if scheme == "sound" {
			return Media("sound:" + stripSoundExt(rest)), nil
		}
		return Media(s), nil
	}
	return Media("sound:" + stripSoundExt(s)), nil
}

// Asterisk picks the format itself: a sound URI names the file without
// its extension.
func stripSoundExt(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".wav", ".gsm", ".ulaw", ".alaw", ".sln", ".sln16", ".g722", ".mp3":
		return strings.TrimSuffix(name, path.Ext(name))
	}
	return name
}

// SoundFile returns the file name of a sound: media, or "" for other kinds.
func (m Media) SoundFile() string {
	if rest, ok := strings.CutPrefix(string(m), "sound:"); ok {
		return rest
	}
	return ""
}

// ValidKeys reports whether s is made only of phone keys 0-9 * #.
func ValidKeys(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c == '*' || c == '#') {
			return false
		}
	}
	return s != ""
}

// ValidName reports whether s can name a mailbox, counter or recording:
// letters, digits, '_', '.', '-' (64 at most, starting with a letter or
// digit), no path tricks. Checked by hand: it runs for every step of
// every flow loaded.
func ValidName(s string) bool {
	if s == "" || len(s) > 64 || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// orDefault returns d when v is zero.
func orDefault(v Duration, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v.D()
}

// problems collects a step's validation errors.
type problems []error

func (p *problems) add(err error) {
	if err != nil {
		*p = append(*p, err)
	}
}

func (p problems) err() error { return errors.Join(p...) }
