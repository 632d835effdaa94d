package applets

import (
	"errors"
	"strings"
	"time"

	"github.com/callflow/callflow/applets/call"
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

// ParseMedia checks one media URI and turns a bare file name into a sound.
func ParseMedia(s string) (Media, error) { return call.ParseMedia(s) }

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

// keysSpec is how a step that takes keys (a menu, a ZIP code) gathers them:
// 5 s for the first key and 3 s between keys unless the flow says otherwise.
func keysSpec(prompt []Media, maxDigits int, first, inter Duration, terminator string) GatherSpec {
	return GatherSpec{
		Prompt:       prompt,
		MaxDigits:    maxDigits,
		FirstTimeout: orDefault(first, 5*time.Second),
		InterTimeout: orDefault(inter, 3*time.Second),
		Terminator:   terminator,
	}
}

// problems collects a step's validation errors.
type problems []error

func (p *problems) add(err error) {
	if err != nil {
		*p = append(*p, err)
	}
}

func (p problems) err() error { return errors.Join(p...) }
