package speech

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// WAV sample formats (the fmt chunk's format tag).
const (
	FormatPCM   = 1
	FormatFloat = 3
	FormatALaw  = 6
	FormatMuLaw = 7

	formatExtensible = 0xFFFE
)

// ErrNotWAV is returned by CheckWAV for a file that is not a RIFF WAVE file.
var ErrNotWAV = errors.New("not a WAV file")

// WAVInfo is what a WAV file's header says.
type WAVInfo struct {
	Format     int // FormatPCM, ...; WAVE_FORMAT_EXTENSIBLE is resolved to its sub-format
	SampleRate int
	Channels   int
	Bits       int   // bits per sample
	DataBytes  int64 // audio bytes
	Duration   time.Duration
}

// Telephony reports whether Asterisk plays the file as ".wav" as it is:
// 8 kHz, mono, 16-bit PCM.
func (w WAVInfo) Telephony() bool {
	return w.Format == FormatPCM && w.SampleRate == 8000 && w.Channels == 1 && w.Bits == 16
}

func (w WAVInfo) String() string {
	ch := "mono"
	if w.Channels != 1 {
		ch = fmt.Sprintf("%d channels", w.Channels)
	}
	return fmt.Sprintf("%d Hz %s %d-bit %s, %s", w.SampleRate, ch, w.Bits, formatName(w.Format), w.Duration.Round(time.Millisecond))
}

func formatName(f int) string {
	switch f {
	case FormatPCM:
		return "PCM"
	case FormatFloat:
		return "float"
	case FormatALaw:
		return "A-law"
	case FormatMuLaw:
		return "µ-law"
	}
	return fmt.Sprintf("format %#x", f)
}

// CheckWAV reads the RIFF header of the WAV file at path.
func CheckWAV(path string) (WAVInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return WAVInfo{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return WAVInfo{}, err
	}
	info, err := readWAV(f, fi.Size())
	if err != nil {
		return WAVInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

func readWAV(r io.ReadSeeker, size int64) (WAVInfo, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return WAVInfo{}, fmt.Errorf("%w: too short", ErrNotWAV)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return WAVInfo{}, ErrNotWAV
	}
	var (
		info     WAVInfo
		byteRate int64
		haveFmt  bool
		pos      int64 = 12
	)
	for range 64 { // a WAV file has a handful of chunks
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			break
		}
		pos += 8
		id := string(ch[0:4])
		n := int64(binary.LittleEndian.Uint32(ch[4:8]))
		switch id {
		case "fmt ":
			if n < 16 {
				return WAVInfo{}, fmt.Errorf("%w: fmt chunk of %d bytes", ErrNotWAV, n)
			}
			b := make([]byte, min(n, 40))
			if _, err := io.ReadFull(r, b); err != nil {
				return WAVInfo{}, fmt.Errorf("%w: truncated fmt chunk", ErrNotWAV)
			}
			info.Format = int(binary.LittleEndian.Uint16(b[0:2]))
			info.Channels = int(binary.LittleEndian.Uint16(b[2:4]))
			info.SampleRate = int(binary.LittleEndian.Uint32(b[4:8]))
			byteRate = int64(binary.LittleEndian.Uint32(b[8:12]))
			info.Bits = int(binary.LittleEndian.Uint16(b[14:16]))
			if info.Format == formatExtensible && len(b) >= 26 {
				// The sub-format GUID starts with the format tag.
				info.Format = int(binary.LittleEndian.Uint16(b[24:26]))
			}
			haveFmt = true
			if _, err := r.Seek(pos+n+n%2, io.SeekStart); err != nil {
				return WAVInfo{}, err
			}
		case "data":
			if !haveFmt {
				return WAVInfo{}, fmt.Errorf("%w: data before fmt", ErrNotWAV)
			}
			// Writers that stream (or were cut off) leave the size wrong.
			if n == 0xFFFFFFFF || pos+n > size {
				n = max(size-pos, 0)
			}
			info.DataBytes = n
			if byteRate <= 0 {
				byteRate = int64(info.SampleRate) * int64(info.Channels) * int64(info.Bits) / 8
			}
			if byteRate > 0 {
				info.Duration = time.Duration(float64(n) / float64(byteRate) * float64(time.Second))
			}
			if info.SampleRate <= 0 || info.Channels <= 0 || info.Bits <= 0 {
				return info, fmt.Errorf("%w: bad fmt chunk (%d Hz, %d channels, %d bits)", ErrNotWAV, info.SampleRate, info.Channels, info.Bits)
			}
			return info, nil
		default:
			pos += n + n%2
			if _, err := r.Seek(pos, io.SeekStart); err != nil {
				return WAVInfo{}, err
			}
			continue
		}
		pos += n + n%2
	}
	if !haveFmt {
		return WAVInfo{}, fmt.Errorf("%w: no fmt chunk", ErrNotWAV)
	}
	return WAVInfo{}, fmt.Errorf("%w: no data chunk", ErrNotWAV)
}

// CheckTelephony flags a WAV file Asterisk would have to resample or cannot
// play (8000 Hz mono 16-bit is what it plays as is), naming the command
// that converts it. The linter calls it for every sound a flow names.
func CheckTelephony(path string) error {
	info, err := CheckWAV(path)
	if err != nil {
		return err
	}
	if !info.Telephony() {
		return fmt.Errorf("is %s, not 8000 Hz mono 16-bit: convert it with `sox %s -r 8000 -c 1 -b 16 out.wav`", info, filepath.Base(path))
	}
	return nil
}
