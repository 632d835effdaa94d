package store

import (
	"context"
	"testing"
	"time"
)

// The stats of a queue come from its calls' queue steps: answered (and
// within the service level), abandoned, timed out, left; waits.
func TestQueueStatsSumTheQueueSteps(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	for i, st := range []struct {
		outcome string
		waited  float64
	}{{"answered", 10}, {"answered", 50}, {"hangup", 30}, {"timeout", 600}, {"exit_key", 5}} {
		c := sampleCall("q-"+string(rune('a'+i)), t0.Add(time.Duration(i)*time.Minute), 0)
		c.Steps = []StepRecord{{Flow: c.Flow, Step: "wait", Applet: "queue", Outcome: st.outcome, Started: c.Started, Ended: c.Started,
			Details: map[string]any{"queue": "support", "waited_s": st.waited}}}
		if err := s.RecordCall(c); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, s)
	got, err := s.QueueStats(ctx, StatsFilter{Scope: AllWorkspaces(), From: t0.Add(-time.Hour), To: t0.Add(time.Hour)}, 20*time.Second)
	if err != nil || len(got) != 1 {
		t.Fatalf("%+v, %v", got, err)
	}
	q := got[0]
	if q.Queue != "support" || q.Callers != 5 || q.Answered != 2 || q.Abandoned != 1 || q.TimedOut != 1 || q.Left != 1 ||
		q.AvgWaitS != 30 || q.MaxWaitS != 600 || q.InLevel != 1 {
		t.Errorf("%+v", q)
	}
	if none, _ := s.QueueStats(ctx, StatsFilter{Scope: InWorkspaces("other")}, 20*time.Second); len(none) != 0 {
		t.Errorf("another workspace's: %+v", none)
	}
}
