package fresh

import (
	"errors"
	"testing"
	"time"
)

// A value is read once while fresh, again once made stale, and a failed
// read is remembered as the zero value rather than asked again at once.
func TestValueIsReadOnceWhileFreshAndAgainWhenStale(t *testing.T) {
	reads := 0
	var fail error
	read := func() (int, error) {
		reads++
		return reads * 10, fail
	}
	v := Value[int]{For: time.Hour}
	for range 3 {
		if got, err := v.Get(read); got != 10 || err != nil {
			t.Fatalf("Get = %d, %v; want the first read, 10", got, err)
		}
	}
	v.Stale()
	if got, _ := v.Get(read); got != 20 || reads != 2 {
		t.Errorf("after Stale: %d after %d reads; want 20 after 2", got, reads)
	}
	v.Stale()
	fail = errors.New("database away")
	if got, err := v.Get(read); got != 0 || err == nil {
		t.Errorf("a failed read: %d, %v; want 0 and the error", got, err)
	}
	if got, err := v.Get(read); got != 0 || err != nil || reads != 3 {
		t.Errorf("after a failed read: %d, %v after %d reads; want 0, no error, no new read", got, err, reads)
	}
	always := Value[int]{}
	always.Get(read)
	always.Get(read)
	if reads != 5 {
		t.Errorf("a Value kept for 0 read %d times in 2 Gets", reads-3)
	}
}
