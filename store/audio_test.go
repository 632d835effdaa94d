package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// Audio goes in and comes out whole, in pieces of any size and from any
// offset (HTTP ranges), a second copy keeps the first, and a name never
// stored is not found.
func TestAudioIsStoredInChunksAndReadFromAnyOffset(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	want := make([]byte, 3*audioChunk+1234) // four chunks, the last short
	for i := range want {
		want[i] = byte(i * 7)
	}
	if err := s.PutAudio(ctx, "vm-sales-c1-1", bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAudio(ctx, "vm-sales-c1-1", bytes.NewReader([]byte("other"))); err != nil {
		t.Fatal(err)
	}
	a, err := s.OpenAudio(ctx, "vm-sales-c1-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Size() != int64(len(want)) {
		t.Fatalf("size %d, want %d", a.Size(), len(want))
	}
	got, err := io.ReadAll(a)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read all: %d bytes, %v", len(got), err)
	}
	for _, off := range []int64{0, audioChunk - 10, 2*audioChunk + 5, int64(len(want)) - 3} {
		if _, err := a.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := io.ReadFull(a, buf)
		if end := min(off+100, int64(len(want))); !bytes.Equal(buf[:n], want[off:end]) || err != nil && end-off == 100 {
			t.Errorf("at %d: %d bytes, %v", off, n, err)
		}
	}
	if _, err := s.OpenAudio(ctx, "never"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown audio: %v", err)
	}
	if have, _ := s.HasAudio(ctx, "vm-sales-c1-1"); !have {
		t.Error("HasAudio false after PutAudio")
	}
}

// Audio is listed by prefix and deleted whole.
func TestAudioIsListedByPrefixAndDeleted(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	for _, n := range []string{"sound/acme/welcome.wav", "sound/acme/menu.wav", "sound/other/hi.wav", "vm-sales-c1-1", "sound_x"} {
		if err := s.PutAudio(ctx, n, bytes.NewReader([]byte("RIFF"+n))); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListAudio(ctx, "sound/acme/")
	if err != nil || len(got) != 2 || got[0].Name != "sound/acme/menu.wav" || got[1].Name != "sound/acme/welcome.wav" || got[0].Size != int64(len("RIFFsound/acme/menu.wav")) {
		t.Fatalf("listed %+v, %v", got, err)
	}
	if err := s.DeleteAudio(ctx, "sound/acme/menu.wav"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ListAudio(ctx, "sound/"); len(got) != 2 {
		t.Errorf("after delete: %+v", got)
	}
	if _, err := s.OpenAudio(ctx, "sound/acme/menu.wav"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted audio opens: %v", err)
	}
	if n := count(t, s, `SELECT COUNT(*) FROM audio_chunks WHERE name = 'sound/acme/menu.wav'`); n != 0 {
		t.Errorf("%d chunks left", n)
	}
}
