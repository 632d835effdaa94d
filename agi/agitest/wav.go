package agitest

import (
	"encoding/binary"
	"math"
	"os"
)

// WriteWAV writes samples of a quiet 440 Hz tone as an 8 kHz 16-bit mono
// WAV file, the format Asterisk's "wav" recordings have.
func WriteWAV(path string, samples int) error {
	const rate = 8000
	data := make([]byte, 44+2*samples)
	copy(data[0:], "RIFF")
	binary.LittleEndian.PutUint32(data[4:], uint32(36+2*samples))
	copy(data[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(data[16:], 16)     // fmt chunk size
	binary.LittleEndian.PutUint16(data[20:], 1)      // PCM
	binary.LittleEndian.PutUint16(data[22:], 1)      // mono
	binary.LittleEndian.PutUint32(data[24:], rate)   // sample rate
	binary.LittleEndian.PutUint32(data[28:], rate*2) // byte rate
	binary.LittleEndian.PutUint16(data[32:], 2)      // block align
	binary.LittleEndian.PutUint16(data[34:], 16)     // bits per sample
	copy(data[36:], "data")
	binary.LittleEndian.PutUint32(data[40:], uint32(2*samples))
	for i := range samples {
		v := int16(3000 * math.Sin(2*math.Pi*440*float64(i)/rate))
		binary.LittleEndian.PutUint16(data[44+2*i:], uint16(v))
	}
	return os.WriteFile(path, data, 0o644)
}
