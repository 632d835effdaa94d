package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestStatsPerFlowForADateRange(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	add := func(id, flow string, at time.Time, qualified, abandoned bool, texts int) {
		c := CallRecord{ID: id, Flow: flow, Workspace: "acme", Started: at, Qualified: qualified, Abandoned: abandoned}
		for range texts {
			c.Events = append(c.Events, CallEvent{Kind: EventSMS, At: at})
		}
		c.Events = append(c.Events, CallEvent{Kind: EventEmail, At: at})
		s.RecordCall(c)
	}
	add("a1", "Sales", day.Add(1*time.Hour), true, false, 1)
	add("a2", "Sales", day.Add(2*time.Hour), false, true, 0)
	add("a3", "Sales", day.Add(26*time.Hour), true, false, 2)
	add("a4", "Support", day.Add(3*time.Hour), false, false, 0)
	add("old", "Sales", day.Add(-48*time.Hour), true, false, 5) // before the range
	// 20:00 UTC on day 1 is the next morning in Kolkata (+5:30).
	add("late", "Support", day.Add(20*time.Hour), false, false, 0)
	s.SaveVoicemail(Voicemail{Recording: "vm-1", Flow: "Sales", Workspace: "acme", Created: day.Add(2 * time.Hour)})
	s.SaveVoicemail(Voicemail{Recording: "vm-2", Flow: "Sales", Workspace: "acme", Created: day.Add(-72 * time.Hour)})
	s.SaveVoicemail(Voicemail{Recording: "vm-3", Flow: "Globex", Workspace: "globex", Created: day})
	flush(t, s)

	f := StatsFilter{Scope: InWorkspaces("acme"), From: day, To: day.AddDate(0, 0, 3)}
	got, err := s.Stats(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{Sales 3 2 1 1 3 [{2026-03-02 2} {2026-03-03 1} {2026-03-04 0}]} {Support 2 0 0 0 0 [{2026-03-02 2} {2026-03-03 0} {2026-03-04 0}]}]`
	if g := fmt.Sprint(got); g != want {
		t.Errorf("stats\n got %s\nwant %s", g, want)
	}

	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skip("no time zone data")
	}
	f = StatsFilter{Scope: AllWorkspaces(), Flow: "Support", From: day, To: day.AddDate(0, 0, 2), Location: kolkata}
	got, _ = s.Stats(ctx, f)
	if g := fmt.Sprint(got); g != `[{Support 2 0 0 0 0 [{2026-03-02 1} {2026-03-03 1} {2026-03-04 0}]}]` {
		t.Errorf("stats in Kolkata = %s", g)
	}
	if got, _ := s.Stats(ctx, StatsFilter{Scope: Scope{}}); len(got) != 0 {
		t.Errorf("an empty scope sees %v", got)
	}
}

func TestListCallsFilters(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	for i := range 10 {
		c := sampleCall(fmt.Sprintf("c%02d", i), t0.Add(time.Duration(i)*time.Hour), 1)
		if i%2 == 1 {
			c.Flow, c.Outcome, c.Caller, c.Workspace = "Sales", "no_answer", "+15550099", "globex"
		}
		s.RecordCall(c)
	}
	flush(t, s)
	cases := []struct {
		name  string
		f     CallFilter
		want  int
		first string
	}{
		{"all, newest first", CallFilter{Scope: AllWorkspaces()}, 10, "c09"},
		{"flow", CallFilter{Scope: AllWorkspaces(), Flow: "Sales"}, 5, "c09"},
		{"number (caller)", CallFilter{Scope: AllWorkspaces(), Number: "+15550099"}, 5, "c09"},
		{"number (called)", CallFilter{Scope: AllWorkspaces(), Number: "+914430001234"}, 10, "c09"},
		{"outcome", CallFilter{Scope: AllWorkspaces(), Outcome: "answered"}, 5, "c08"},
		{"date range", CallFilter{Scope: AllWorkspaces(), From: t0.Add(2 * time.Hour), To: t0.Add(5 * time.Hour)}, 3, "c04"},
		{"workspace", CallFilter{Scope: InWorkspaces("acme")}, 5, "c08"},
		{"no scope", CallFilter{}, 0, ""},
		{"page", CallFilter{Scope: AllWorkspaces(), Limit: 3, Offset: 3}, 3, "c06"},
	}
	for _, tc := range cases {
		calls, total, err := s.ListCalls(ctx, tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(calls) != tc.want || (tc.want > 0 && calls[0].ID != tc.first) {
			t.Errorf("%s: %d calls (total %d), first %v", tc.name, len(calls), total, calls)
		}
		if tc.name == "page" && total != 10 {
			t.Errorf("page total = %d", total)
		}
	}
}
