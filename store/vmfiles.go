package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/callflow/callflow/internal/vmname"
)

// Voicemail recordings are named by internal/vmname
// ("vm-<mailbox>-<call id>-<unix ms>", escaped so the name reads back).
// Next to the audio file "<name>.wav" the caller writes the sidecar
// "<name>.json" (WriteVoicemailMeta) holding the whole Voicemail: caller,
// called number, flow, step, workspace. A recording found without its
// database row is rebuilt from the sidecar, or from the name alone when
// the sidecar is missing.

// VoicemailName returns the recording name of a voicemail.
func VoicemailName(mailbox, callID string, at time.Time) string {
	return vmname.Name(mailbox, callID, at)
}

// ParseVoicemailName reads a name made by VoicemailName (an audio
// extension is ignored).
func ParseVoicemailName(name string) (mailbox, callID string, at time.Time, ok bool) {
	return vmname.Parse(trimAudioExt(name))
}

// audioExts are the extensions Asterisk stores recordings under.
var audioExts = map[string]bool{
	".wav": true, ".wav16": true, ".WAV": true, ".gsm": true, ".ulaw": true, ".alaw": true,
	".sln": true, ".sln16": true, ".g722": true, ".g729": true, ".mp3": true, ".ogg": true, ".flac": true,
}

// trimAudioExt drops a known audio extension (not any dot: call ids hold dots).
func trimAudioExt(name string) string {
	if ext := filepath.Ext(name); audioExts[ext] {
		return strings.TrimSuffix(name, ext)
	}
	return name
}

// VoicemailMetaPath is the sidecar file of a recording: its path with the
// audio extension replaced by ".json".
func VoicemailMetaPath(wavPath string) string {
	return trimAudioExt(wavPath) + ".json"
}

var errNoMeta = errors.New("no voicemail sidecar")

// WriteVoicemailMeta writes the sidecar of the recording at wavPath. It
// lands whole or not at all (temporary file, sync, rename), so a crash
// never leaves half a sidecar.
func WriteVoicemailMeta(wavPath string, v Voicemail) error {
	v.ID = 0
	if v.Path == "" {
		v.Path = wavPath
	}
	if v.Recording == "" {
		v.Recording = trimAudioExt(filepath.Base(wavPath))
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	path := VoicemailMetaPath(wavPath)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vm-meta-*")
	if err != nil {
		return fmt.Errorf("voicemail sidecar: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	err = errors.Join(err, tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("voicemail sidecar: %w", err)
	}
	return nil
}

// ReadVoicemailMeta reads the sidecar of the recording at wavPath.
func ReadVoicemailMeta(wavPath string) (Voicemail, error) {
	b, err := os.ReadFile(VoicemailMetaPath(wavPath))
	if errors.Is(err, fs.ErrNotExist) {
		return Voicemail{}, fmt.Errorf("%w: %s", errNoMeta, wavPath)
	}
	if err != nil {
		return Voicemail{}, err
	}
	var v Voicemail
	if err := json.Unmarshal(b, &v); err != nil {
		return Voicemail{}, fmt.Errorf("voicemail sidecar %s: %w", VoicemailMetaPath(wavPath), err)
	}
	return v, nil
}

// ScanVoicemailDir lists the voicemail recordings in dir (not recursive),
// for ReconcileVoicemails at start-up.
func ScanVoicemailDir(dir string) ([]FoundRecording, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []FoundRecording
	for _, e := range entries {
		name := e.Name()
		ext := filepath.Ext(name)
		if e.IsDir() || !audioExts[ext] || !strings.HasPrefix(name, "vm-") {
			continue
		}
		base := strings.TrimSuffix(name, ext)
		if _, _, _, ok := ParseVoicemailName(base); !ok {
			continue
		}
		path := filepath.Join(dir, name)
		f := FoundRecording{Name: base, Path: path}
		if info, err := e.Info(); err == nil {
			f.Modified = info.ModTime().UTC()
		}
		if strings.EqualFold(ext, ".wav") {
			f.Duration, _ = wavDuration(path)
		}
		out = append(out, f)
	}
	return out, nil
}

// wavDuration reads a RIFF/WAVE header. A file whose writer died keeps
// a data size of 0 or too much; the file's size bounds it.
func wavDuration(path string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	var hdr [12]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil || string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return 0, errors.New("not a WAV file")
	}
	var byteRate uint32
	off := int64(12)
	for {
		var ch [8]byte
		if _, err := io.ReadFull(f, ch[:]); err != nil {
			return 0, errors.New("WAV without data")
		}
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		off += 8
		switch string(ch[0:4]) {
		case "fmt ":
			var fm [16]byte
			if _, err := io.ReadFull(f, fm[:]); err != nil {
				return 0, err
			}
			byteRate = binary.LittleEndian.Uint32(fm[8:12])
			if _, err := f.Seek(off+size+size%2, io.SeekStart); err != nil {
				return 0, err
			}
		case "data":
			if byteRate == 0 {
				return 0, errors.New("WAV without format")
			}
			if rest := info.Size() - off; size == 0 || size > rest {
				size = rest
			}
			return time.Duration(size) * time.Second / time.Duration(byteRate), nil
		default:
			if _, err := f.Seek(off+size+size%2, io.SeekStart); err != nil {
				return 0, err
			}
		}
		off += size + size%2
	}
}
