package call

import (
	"fmt"
	"path"
	"strings"
)

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
