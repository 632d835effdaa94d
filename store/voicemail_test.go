package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSavingAVoicemailTwiceKeepsOneRow(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	vm := Voicemail{Recording: "vm-tech-c1-1", Mailbox: "tech", Workspace: "acme", Caller: "+15550001", Created: t0}
	for range 3 {
		if err := s.SaveVoicemail(vm); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, s)
	// A later save with more details fills blanks, keeps the rest.
	more := vm
	more.Caller = "+19999999"
	more.Flow, more.Duration = "Acme Support", 12*time.Second
	s.SaveVoicemail(more)
	flush(t, s)
	added, err := s.ReconcileVoicemails(ctx, []FoundRecording{{Name: vm.Recording}})
	if err != nil || added != 0 {
		t.Errorf("reconcile of a saved voicemail = %d, %v; want 0", added, err)
	}
	if n := count(t, s, `SELECT COUNT(*) FROM voicemails`); n != 1 {
		t.Fatalf("voicemails = %d, want 1", n)
	}
	got, err := s.GetVoicemailByRecording(ctx, vm.Recording, AllWorkspaces())
	if err != nil {
		t.Fatal(err)
	}
	if got.Caller != "+15550001" || got.Flow != "Acme Support" || got.Duration != 12*time.Second || got.Recovered {
		t.Errorf("voicemail = %+v", got)
	}
}

func TestVoicemailNamesRoundTrip(t *testing.T) {
	at := time.UnixMilli(1767225612345).UTC()
	cases := []struct{ mailbox, callID string }{
		{"tech", "1767225600.42"},
		{"sales-team", "c0ffee-1234-5678"},
		{"support desk/1", ""},
		{"~odd~", "a~b"},
	}
	for _, tc := range cases {
		name := VoicemailName(tc.mailbox, tc.callID, at)
		mb, id, got, ok := ParseVoicemailName(name + ".wav")
		if !ok || mb != tc.mailbox || id != tc.callID || !got.Equal(at) {
			t.Errorf("%q -> %q -> (%q, %q, %v, %v)", tc.mailbox, name, mb, id, got, ok)
		}
	}
	if VoicemailName("tech", "1767225600.42", at) != "vm-tech-1767225600_o42-1767225612345" {
		t.Errorf("name = %s", VoicemailName("tech", "1767225600.42", at))
	}
	for _, bad := range []string{"call-1", "vm-", "vm-tech", "vm-tech-1", "vm--c-1", "vm-tech-c-notatime", "vm-te~zz-c-1"} {
		if _, _, _, ok := ParseVoicemailName(bad); ok {
			t.Errorf("ParseVoicemailName(%q) accepted", bad)
		}
	}
	if p := VoicemailMetaPath("/r/vm-tech-1767225600.42-1767225612345.wav"); p != "/r/vm-tech-1767225600.42-1767225612345.json" {
		t.Errorf("meta path = %s", p)
	}
	if p := VoicemailMetaPath("/r/vm-tech-1767225600.42-1767225612345"); p != "/r/vm-tech-1767225600.42-1767225612345.json" {
		t.Errorf("meta path without extension = %s", p)
	}
}

// writeWAV writes d of 8 kHz 16-bit mono silence.
func writeWAV(t testing.TB, path string, d time.Duration) {
	t.Helper()
	data := make([]byte, int(d.Seconds()*16000))
	hdr := make([]byte, 44)
	copy(hdr[0:], "RIFF")
	binary.LittleEndian.PutUint32(hdr[4:], uint32(36+len(data)))
	copy(hdr[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(hdr[16:], 16)
	binary.LittleEndian.PutUint16(hdr[20:], 1)
	binary.LittleEndian.PutUint16(hdr[22:], 1)
	binary.LittleEndian.PutUint32(hdr[24:], 8000)
	binary.LittleEndian.PutUint32(hdr[28:], 16000)
	binary.LittleEndian.PutUint16(hdr[32:], 2)
	binary.LittleEndian.PutUint16(hdr[34:], 16)
	copy(hdr[36:], "data")
	binary.LittleEndian.PutUint32(hdr[40:], uint32(len(data)))
	if err := os.WriteFile(path, append(hdr, data...), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestReconcileFindsOrphanedRecordings(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	dir := t.TempDir()
	at := t0.Add(time.Hour)

	// With a sidecar: every detail comes back.
	withMeta := VoicemailName("tech", "1767.1", at)
	wav := filepath.Join(dir, withMeta+".wav")
	writeWAV(t, wav, 3*time.Second)
	if err := WriteVoicemailMeta(wav, Voicemail{CallID: "1767.1", Mailbox: "tech", Workspace: "acme",
		Caller: "+15550001", Called: "+914430001234", Flow: "Acme Support", Step: "tech-vm",
		Duration: 3 * time.Second, Created: at}); err != nil {
		t.Fatal(err)
	}
	// Without one: the name gives mailbox, call and time.
	bare := VoicemailName("sales-team", "1767.2", at.Add(time.Minute))
	writeWAV(t, filepath.Join(dir, bare+".wav"), 2*time.Second)
	// Saved normally: left alone.
	saved := VoicemailName("tech", "1767.3", at)
	writeWAV(t, filepath.Join(dir, saved+".wav"), time.Second)
	s.SaveVoicemail(Voicemail{Recording: saved, Mailbox: "tech", Workspace: "acme", Created: at})
	flush(t, s)
	// Not a voicemail.
	writeWAV(t, filepath.Join(dir, "call-1767.4.wav"), time.Second)

	found, err := ScanVoicemailDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 3 {
		t.Fatalf("found %+v, want 3 voicemail recordings", found)
	}
	for i := range 2 { // twice: the second run adds nothing
		added, err := s.ReconcileVoicemails(ctx, found)
		want := []int{2, 0}[i]
		if err != nil || added != want {
			t.Fatalf("reconcile #%d = %d, %v; want %d", i+1, added, err, want)
		}
	}
	if n := count(t, s, `SELECT COUNT(*) FROM voicemails`); n != 3 {
		t.Errorf("voicemails = %d, want 3", n)
	}
	v, err := s.GetVoicemailByRecording(ctx, withMeta, AllWorkspaces())
	if err != nil {
		t.Fatal(err)
	}
	if v.Mailbox != "tech" || v.Workspace != "acme" || v.Caller != "+15550001" || v.Flow != "Acme Support" ||
		v.Step != "tech-vm" || v.CallID != "1767.1" || v.Path != wav || v.Duration != 3*time.Second ||
		!v.Created.Equal(at) || !v.Recovered {
		t.Errorf("recovered with sidecar = %+v", v)
	}
	v, err = s.GetVoicemailByRecording(ctx, bare, AllWorkspaces())
	if err != nil {
		t.Fatal(err)
	}
	if v.Mailbox != "sales-team" || v.CallID != "1767.2" || v.Duration != 2*time.Second ||
		!v.Created.Equal(at.Add(time.Minute)) || !v.Recovered || v.Workspace != "" {
		t.Errorf("recovered from the name = %+v", v)
	}
	if _, err := s.GetVoicemailByRecording(ctx, bare, InWorkspaces("acme")); !errors.Is(err, ErrNotFound) {
		t.Errorf("a voicemail of unknown workspace is for admins only: %v", err)
	}
}

func TestGetVoicemailIsRestrictedToTheCallersWorkspaces(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	s.SaveVoicemail(Voicemail{Recording: "vm-a-1-1", Mailbox: "a", Workspace: "acme", Created: t0})
	s.SaveVoicemail(Voicemail{Recording: "vm-b-2-1", Mailbox: "b", Workspace: "globex", Created: t0.Add(time.Minute)})
	flush(t, s)
	list, _, _ := s.ListVoicemails(ctx, VoicemailFilter{Scope: AllWorkspaces()})
	ids := map[string]int64{}
	for _, v := range list {
		ids[v.Workspace] = v.ID
	}
	cases := []struct {
		name  string
		id    int64
		scope Scope
		ok    bool
	}{
		{"own workspace", ids["acme"], InWorkspaces("acme"), true},
		{"one of several", ids["acme"], InWorkspaces("globex", "acme"), true},
		{"admin", ids["globex"], AllWorkspaces(), true},
		{"other workspace", ids["globex"], InWorkspaces("acme"), false},
		{"no workspace at all", ids["acme"], Scope{}, false},
		{"missing id", 999, AllWorkspaces(), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.GetVoicemail(ctx, tc.id, tc.scope)
			if tc.ok && err != nil {
				t.Errorf("GetVoicemail: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrNotFound) {
				t.Errorf("GetVoicemail = %v, want ErrNotFound", err)
			}
			err = s.MarkHeard(ctx, tc.id, tc.scope, "ann", true)
			if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, ErrNotFound)) {
				t.Errorf("MarkHeard = %v", err)
			}
			err = s.DeleteVoicemail(ctx, tc.id, tc.scope, "ann")
			if tc.ok != (err == nil) {
				t.Errorf("DeleteVoicemail = %v", err)
			}
			s.RestoreVoicemail(ctx, tc.id, AllWorkspaces())
		})
	}
}

func TestVoicemailHeardDeletedAndListed(t *testing.T) {
	ctx := context.Background()
	opts := testOptions()
	now := t0.Add(24 * time.Hour)
	opts.Now = func() time.Time { return now }
	s := openTest(t, opts)
	for i := range 6 {
		s.SaveVoicemail(Voicemail{
			Recording: fmt.Sprintf("vm-%d", i), Mailbox: []string{"tech", "sales"}[i%2], Workspace: "acme",
			Flow: "Acme Support", Created: t0.Add(time.Duration(i) * time.Hour),
		})
	}
	flush(t, s)
	all, total, err := s.ListVoicemails(ctx, VoicemailFilter{Scope: InWorkspaces("acme")})
	if err != nil || total != 6 || len(all) != 6 {
		t.Fatalf("list = %d/%d, %v", len(all), total, err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Created.After(all[i-1].Created) {
			t.Fatalf("not newest first: %v after %v", all[i].Created, all[i-1].Created)
		}
	}
	newest := all[0]
	if err := s.MarkHeard(ctx, newest.ID, InWorkspaces("acme"), "ann", true); err != nil {
		t.Fatal(err)
	}
	v, _ := s.GetVoicemail(ctx, newest.ID, AllWorkspaces())
	if !v.Heard || v.HeardBy != "ann" || !v.HeardAt.Equal(now) {
		t.Errorf("heard = %+v", v)
	}
	s.MarkHeard(ctx, newest.ID, AllWorkspaces(), "bob", false)
	v, _ = s.GetVoicemail(ctx, newest.ID, AllWorkspaces())
	if v.Heard || v.HeardBy != "" || !v.HeardAt.IsZero() {
		t.Errorf("unheard = %+v", v)
	}
	if err := s.DeleteVoicemail(ctx, all[1].ID, InWorkspaces("acme"), "ann"); err != nil {
		t.Fatal(err)
	}
	v, _ = s.GetVoicemail(ctx, all[1].ID, AllWorkspaces())
	if !v.Deleted || v.DeletedBy != "ann" || !v.DeletedAt.Equal(now) {
		t.Errorf("deleted = %+v", v)
	}
	heard := false
	cases := []struct {
		name string
		f    VoicemailFilter
		want int
	}{
		{"deleted hidden", VoicemailFilter{Scope: AllWorkspaces()}, 5},
		{"deleted included for admins", VoicemailFilter{Scope: AllWorkspaces(), IncludeDeleted: true}, 6},
		{"the bin", VoicemailFilter{Scope: AllWorkspaces(), OnlyDeleted: true}, 1},
		{"mailbox (one of its three deleted)", VoicemailFilter{Scope: AllWorkspaces(), Mailbox: "tech"}, 2},
		{"date range", VoicemailFilter{Scope: AllWorkspaces(), From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour)}, 2},
		{"flow", VoicemailFilter{Scope: AllWorkspaces(), Flow: "Other"}, 0},
		{"unheard", VoicemailFilter{Scope: AllWorkspaces(), Heard: &heard}, 5},
		{"other workspace", VoicemailFilter{Scope: InWorkspaces("globex")}, 0},
		{"page", VoicemailFilter{Scope: AllWorkspaces(), Limit: 2, Offset: 4}, 1},
	}
	for _, tc := range cases {
		got, _, err := s.ListVoicemails(ctx, tc.f)
		if err != nil || len(got) != tc.want {
			t.Errorf("%s: %d voicemails, %v; want %d", tc.name, len(got), err, tc.want)
		}
	}
	if err := s.RestoreVoicemail(ctx, all[1].ID, InWorkspaces("acme")); err != nil {
		t.Fatal(err)
	}
	if _, total, _ := s.ListVoicemails(ctx, VoicemailFilter{Scope: AllWorkspaces()}); total != 6 {
		t.Errorf("after restore: %d", total)
	}
}

func TestSidecarIsWrittenWhole(t *testing.T) {
	dir := t.TempDir()
	wav := filepath.Join(dir, "vm-tech-1-1.wav")
	in := Voicemail{Mailbox: "tech", Caller: "+1555", Flow: "F", Created: t0}
	if err := WriteVoicemailMeta(wav, in); err != nil {
		t.Fatal(err)
	}
	got, err := ReadVoicemailMeta(wav)
	if err != nil {
		t.Fatal(err)
	}
	if got.Mailbox != "tech" || got.Caller != "+1555" || got.Recording != "vm-tech-1-1" || got.Path != wav || !got.Created.Equal(t0) {
		t.Errorf("sidecar = %+v", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	if _, err := ReadVoicemailMeta(filepath.Join(dir, "nothing.wav")); err == nil {
		t.Error("missing sidecar read without error")
	}
}
