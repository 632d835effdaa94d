package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestNumberSearchFindsNumbersAsStaffTypeThem(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	for i, caller := range []string{"+14155550101", "+14155550199", "+442079460000", "anonymous"} {
		c := sampleCall("c"+caller, t0.Add(time.Duration(i)*time.Minute), 0)
		c.Caller, c.Called = caller, "+15550001111"
		s.RecordCall(c)
		s.SaveVoicemail(Voicemail{CallID: c.ID, Mailbox: "tech", Workspace: "acme", Caller: caller, Called: c.Called,
			Recording: "vm-" + caller, Created: c.Started})
	}
	flush(t, s)
	cases := []struct {
		typed string
		want  []string // callers found
	}{
		{"415-555-0101", []string{"+14155550101"}},
		{"4155550101", []string{"+14155550101"}},
		{"(415) 555-0101", []string{"+14155550101"}},
		{"+1 415 555 0101", []string{"+14155550101"}},
		{"+1.415.555.0101", []string{"+14155550101"}},
		{"5550101", []string{"+14155550101"}},
		{"415 555", []string{"+14155550199", "+14155550101"}},
		{"+1415", []string{"+14155550199", "+14155550101"}},
		{"020 7946 0000", []string{"+442079460000"}},     // national trunk 0
		{"0044 20 7946 0000", []string{"+442079460000"}}, // international 00
		{"+4155550101", nil},                             // + anchors: no country code 4
		{"Anonymous", []string{"anonymous"}},
		{"5550100", nil},
	}
	for _, tc := range cases {
		calls, _, err := s.ListCalls(ctx, CallFilter{Scope: AllWorkspaces(), Number: tc.typed})
		if err != nil {
			t.Fatalf("%q: %v", tc.typed, err)
		}
		var got []string
		for _, c := range calls {
			got = append(got, c.Caller)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("calls for %q: %v, want %v", tc.typed, got, tc.want)
		}
		vms, _, err := s.ListVoicemails(ctx, VoicemailFilter{Scope: AllWorkspaces(), Caller: tc.typed})
		if err != nil {
			t.Fatalf("%q: %v", tc.typed, err)
		}
		got = nil
		for _, v := range vms {
			got = append(got, v.Caller)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("voicemails for %q: %v, want %v", tc.typed, got, tc.want)
		}
	}
	// The called number is searched for calls, not for voicemail callers.
	if calls, _, _ := s.ListCalls(ctx, CallFilter{Scope: AllWorkspaces(), Number: "555-000-1111"}); len(calls) != 4 {
		t.Errorf("called number: %d calls", len(calls))
	}
	if vms, _, _ := s.ListVoicemails(ctx, VoicemailFilter{Scope: AllWorkspaces(), Caller: "555-000-1111"}); len(vms) != 0 {
		t.Errorf("voicemail caller search matched the called number: %d", len(vms))
	}
}

func TestCallsCountTheirVoicemailsAndFindTheirRecordings(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	left := sampleCall("left", t0, 1)
	left.Recording = "call-left-1"
	s.RecordCall(left)
	s.RecordCall(sampleCall("plain", t0.Add(time.Minute), 1))
	other := sampleCall("other", t0.Add(2*time.Minute), 1)
	other.Workspace, other.Recording = "globex", "call-other-1"
	s.RecordCall(other)
	for i, name := range []string{"vm-a", "vm-b", "vm-gone"} {
		s.SaveVoicemail(Voicemail{CallID: "left", Mailbox: "tech", Workspace: "acme", Recording: name, Created: t0.Add(time.Duration(i) * time.Second)})
	}
	flush(t, s)
	gone, _ := s.GetVoicemailByRecording(ctx, "vm-gone", AllWorkspaces())
	if err := s.DeleteVoicemail(ctx, gone.ID, AllWorkspaces(), "ann"); err != nil {
		t.Fatal(err)
	}
	calls, _, err := s.ListCalls(ctx, CallFilter{Scope: AllWorkspaces()})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]CallRecord{}
	for _, c := range calls {
		byID[c.ID] = c
	}
	if byID["left"].Voicemails != 2 || byID["plain"].Voicemails != 0 || byID["left"].Recording != "call-left-1" {
		t.Errorf("left: %d voicemails, recording %q; plain: %d", byID["left"].Voicemails, byID["left"].Recording, byID["plain"].Voicemails)
	}
	if c, _ := s.GetCall(ctx, "left", AllWorkspaces()); c.Voicemails != 2 {
		t.Errorf("GetCall: %d voicemails", c.Voicemails)
	}
	vms, total, _ := s.ListVoicemails(ctx, VoicemailFilter{Scope: AllWorkspaces(), CallID: "left"})
	if total != 2 || len(vms) != 2 {
		t.Errorf("voicemails of the call: %d", total)
	}

	for _, tc := range []struct {
		name, call, rec string
		scope           Scope
		found           bool
	}{
		{"its own recording", "left", "call-left-1", InWorkspaces("acme"), true},
		{"another call's recording", "left", "call-other-1", AllWorkspaces(), false},
		{"a call out of scope", "other", "call-other-1", InWorkspaces("acme"), false},
		{"no such recording", "plain", "call-plain-1", AllWorkspaces(), false},
	} {
		r, err := s.CallRecording(ctx, tc.call, tc.rec, tc.scope)
		if tc.found && (err != nil || r.Name != tc.rec || r.CallID != tc.call) {
			t.Errorf("%s: %+v, %v", tc.name, r, err)
		}
		if !tc.found && !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", tc.name, err)
		}
	}
}

func TestVoicemailSummaryCountsUnheardOutsideTheBin(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	if sum, err := s.SummarizeVoicemails(ctx, AllWorkspaces()); err != nil || sum != (VoicemailSummary{}) {
		t.Fatalf("empty: %+v, %v", sum, err)
	}
	for i, ws := range []string{"acme", "acme", "acme", "globex"} {
		s.SaveVoicemail(Voicemail{Mailbox: "m", Workspace: ws, Recording: "vm" + string(rune('a'+i)), Created: t0.Add(time.Duration(i) * time.Minute)})
	}
	flush(t, s)
	a, _ := s.GetVoicemailByRecording(ctx, "vma", AllWorkspaces())
	b, _ := s.GetVoicemailByRecording(ctx, "vmb", AllWorkspaces())
	c, _ := s.GetVoicemailByRecording(ctx, "vmc", AllWorkspaces())
	s.MarkHeard(ctx, a.ID, AllWorkspaces(), "ann", true)
	s.DeleteVoicemail(ctx, b.ID, AllWorkspaces(), "ann")
	for _, tc := range []struct {
		name  string
		scope Scope
		want  VoicemailSummary
	}{
		{"acme", InWorkspaces("acme"), VoicemailSummary{Total: 2, Unheard: 1, Newest: c.ID}},
		{"everything", AllWorkspaces(), VoicemailSummary{Total: 3, Unheard: 2, Newest: c.ID + 1}},
		{"no scope", Scope{}, VoicemailSummary{}},
	} {
		got, err := s.SummarizeVoicemails(ctx, tc.scope)
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}
