package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

const night = "name = \"Night\"\nstatus = \"published\"\nnumbers = [\"+15550001111\"]\n[[steps]]\napplet = \"hangup\"\n"

// imported imports src as the flow named name (id: the flow it is).
func imported(t *testing.T, s *Store, in FlowImport) (FlowRow, bool, error) {
	t.Helper()
	if in.Author == "" {
		in.Author = "ann"
	}
	return s.ImportFlow(context.Background(), in)
}

func TestDuplicateSaysDraftWithItsOwnNameIDAndNoNumbers(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	if _, _, err := imported(t, s, FlowImport{Name: "Night", Source: night, Status: FlowPublished, Numbers: []string{"+15550001111"}, SetNumbers: true}); err != nil {
		t.Fatal(err)
	}
	orig, _ := s.GetFlow(ctx, "Night")
	cp, err := s.DuplicateFlow(ctx, "Night", "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`name = "Copy of Night"`, `status = "draft"`, `numbers = []`, `id = "` + cp.ID + `"`} {
		if !strings.Contains(cp.Source, want) {
			t.Errorf("the copy's source lacks %s:\n%s", want, cp.Source)
		}
	}
	if cp.ID == "" || cp.ID == orig.ID || cp.Status != FlowDraft || len(cp.Numbers) != 0 {
		t.Errorf("copy %+v of %+v", cp, orig)
	}
	if strings.Contains(cp.Source, "+15550001111") || strings.Contains(cp.Source, `"published"`) {
		t.Errorf("the copy claims the original's numbers or status:\n%s", cp.Source)
	}
}

func TestCopyOfAFileFlowTakesNoNameInUse(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	files := map[string]bool{"Copy of Night": true} // a file flow has it
	cp, err := s.CopyFlow(ctx, FlowCopy{From: "Night", Source: night, Workspace: "acme", Author: "bob", Taken: func(n string) bool { return files[n] }})
	if err != nil {
		t.Fatal(err)
	}
	if cp.Name != "Copy of Night (2)" || cp.Workspace != "acme" || cp.Status != FlowDraft || !strings.Contains(cp.Source, `name = "Copy of Night (2)"`) {
		t.Errorf("copy = %+v", cp)
	}
	hist, _ := s.FlowHistory(ctx, cp.Name)
	if len(hist) != 1 || hist[0].Comment != `copied from the file flow "Night"` {
		t.Errorf("history %+v", hist)
	}
	if _, err := s.CopyFlow(ctx, FlowCopy{From: "Broken", Source: "name = \"Broken\"\nsteps = [", Author: "bob"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a source that does not parse was copied: %v", err)
	}
}

func TestImportUpdatesTheFlowItsIDNames(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	first, changed, err := imported(t, s, FlowImport{Name: "Night", Source: night, Status: FlowPublished, Numbers: []string{"+15550001111"}, SetNumbers: true})
	if err != nil || !changed || first.ID == "" || !strings.Contains(first.Source, `id = "`+first.ID+`"`) {
		t.Fatalf("first import %+v %v %v", first, changed, err)
	}
	// The exported copy, renamed and given other numbers, comes back.
	renamed := strings.Replace(first.Source, `name = "Night"`, `name = "Night Line"`, 1)
	row, changed, err := imported(t, s, FlowImport{ID: first.ID, Name: "Night Line", Source: renamed, Numbers: []string{"+15550002222"}, SetNumbers: true})
	if err != nil || !changed {
		t.Fatalf("second import: %v", err)
	}
	if row.ID != first.ID || row.Name != "Night Line" || strings.Join(row.Numbers, ",") != "+15550002222" || row.Status != FlowPublished {
		t.Errorf("after the import %+v", row)
	}
	if _, err := s.GetFlow(ctx, "Night"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the old name is still a flow: %v", err)
	}
	hist, err := s.FlowHistory(ctx, "Night Line")
	if err != nil || len(hist) != 2 || !strings.Contains(hist[0].Comment, `renamed from "Night"`) || !strings.Contains(hist[0].Comment, "released +15550001111") {
		t.Errorf("history %+v %v", hist, err)
	}
	if _, changed, _ := imported(t, s, FlowImport{ID: first.ID, Name: "Night Line", Source: renamed, Numbers: []string{"+15550002222"}, SetNumbers: true}); changed {
		t.Error("importing the same file again made a revision")
	}
}

func TestImportNeverOverwritesAnotherFlow(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	x, _, _ := imported(t, s, FlowImport{Name: "X", Source: "name = \"X\"\n", Numbers: []string{"+15550001111"}, SetNumbers: true})
	y, _, _ := imported(t, s, FlowImport{Name: "Y", Source: "name = \"Y\"\n"})
	cases := []struct {
		name string
		in   FlowImport
		want error
		msg  string
	}{
		{"a file without an id named like a flow", FlowImport{Name: "X", Source: "name = \"X\"\n"}, ErrExists, `add id = "` + x.ID + `"`},
		{"a flow renamed to another's name", FlowImport{ID: y.ID, Name: "X", Source: "name = \"X\"\n"}, ErrExists, `cannot rename "Y" to "X"`},
		{"an unknown id with a taken name", FlowImport{ID: "feedfacefeedface", Name: "X", Source: "name = \"X\"\n"}, ErrExists, "this database does not have"},
		{"another flow's number", FlowImport{ID: y.ID, Name: "Y", Source: "name = \"Y\"\n# v2\n", Numbers: []string{"+15550001111"}, SetNumbers: true}, ErrNumberTaken, `on flow "X"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := imported(t, s, c.in)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %v, want %v with %q", err, c.want, c.msg)
			}
		})
	}
	if got, _ := s.GetFlow(ctx, "X"); got.Source != x.Source || got.Revision != x.Revision || strings.Join(got.Numbers, ",") != "+15550001111" {
		t.Errorf("X changed: %+v", got)
	}
	if got, _ := s.GetFlow(ctx, "Y"); got.Revision != y.Revision {
		t.Errorf("Y changed by a refused import: %+v", got)
	}
	// Asked to, a file without an id updates the flow of its name.
	if got, changed, err := imported(t, s, FlowImport{Name: "X", Source: "name = \"X\"\n# v2\n", Replace: true}); err != nil || !changed || got.ID != x.ID {
		t.Errorf("replace: %+v %v %v", got, changed, err)
	}
}

func TestImportOfAnUnknownIDKeepsIt(t *testing.T) {
	s := openTest(t, testOptions())
	// A file exported from another database keeps its identity here.
	row, _, err := imported(t, s, FlowImport{ID: "0123456789abcdef", Name: "Z", Source: "id = \"0123456789abcdef\"\nname = \"Z\"\n"})
	if err != nil || row.ID != "0123456789abcdef" || row.Status != FlowDraft || row.Workspace != "default" {
		t.Errorf("%+v %v", row, err)
	}
}

func TestFlowsChangedGrowsWithEveryChange(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	last, err := s.FlowsChanged(ctx)
	if err != nil {
		t.Fatal(err)
	}
	step := func(what string, change func() error, moves bool) {
		t.Helper()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		n, err := s.FlowsChanged(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if moved := n != last; moved != moves {
			t.Errorf("%s: changed %d -> %d", what, last, n)
		}
		last = n
	}
	ignore := func(_ FlowRow, err error) error { return err }
	step("create", func() error { return ignore(s.CreateFlow(ctx, FlowInput{Name: "A", Source: "name = \"A\"\n"})) }, true)
	step("the same source", func() error { _, _, err := s.SaveFlow(ctx, FlowInput{Name: "A", Source: "name = \"A\"\n"}); return err }, false)
	step("assign", func() error { return ignore(s.AssignNumbers(ctx, "A", []string{"+1555"}, "ann")) }, true)
	step("publish", func() error { return ignore(s.PublishFlow(ctx, "A", "ann")) }, true)
	step("duplicate", func() error { return ignore(s.DuplicateFlow(ctx, "A", "ann")) }, true)
	step("release", func() error { return ignore(s.ReleaseNumbers(ctx, "A", []string{"+1555"}, "ann")) }, true)
	step("delete", func() error { return s.DeleteFlow(ctx, "Copy of A", "ann", false) }, true)
}

func TestFlowVersionsAreThoseThatTookCalls(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	for i, v := range []string{"v1", "v1", "v2"} {
		c := sampleCall("c"+v+string(rune('a'+i)), t0.Add(timeMinutes(i)), 1)
		c.FlowVersion = v
		if err := s.RecordCall(c); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, s)
	vs, err := s.FlowVersions(ctx, "Acme Support")
	if err != nil || len(vs) != 2 || vs[0].Version != "v2" || vs[1].Version != "v1" || vs[1].Calls != 2 || !vs[1].First.Equal(t0) {
		t.Errorf("%+v %v", vs, err)
	}
}

func timeMinutes(n int) time.Duration { return time.Duration(n) * time.Minute }
