package scripted

import (
	"context"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
)

func TestAdvanceToNeverMovesTheClockBack(t *testing.T) {
	start := time.Date(2026, 12, 25, 10, 0, 0, 0, time.UTC)
	c := New(Script{Start: start})
	c.AdvanceTo(start.Add(2 * time.Second))
	c.AdvanceTo(start.Add(time.Second)) // a shorter request of the same moment
	if got := c.Now().Sub(start); got != 2*time.Second {
		t.Errorf("clock moved %s, want 2s", got)
	}
}

func TestAnsweredDialThatRecordsNamesTheRecording(t *testing.T) {
	c := New(Script{Agents: []applets.DialStatus{applets.Answered, applets.Answered}})
	for _, c2 := range []struct {
		record bool
		want   string
	}{{true, "call-sim-1-1"}, {false, ""}} {
		r, err := c.Dial(context.Background(), applets.DialSpec{Targets: []string{"PJSIP/ann"}, Record: c2.record})
		if err != nil || r.Recording != c2.want {
			t.Errorf("record=%v: recording %q, %v; want %q", c2.record, r.Recording, err, c2.want)
		}
	}
}
