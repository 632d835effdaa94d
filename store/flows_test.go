package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

const srcV1 = "name = \"Acme Support\"\n[[steps]]\nid = \"welcome\"\napplet = \"greeting\"\n"
const srcV2 = srcV1 + "[[steps]]\nid = \"bye\"\napplet = \"hangup\"\n"

func TestFlowRevisionsRollbackAndPublishing(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	f, err := s.CreateFlow(ctx, FlowInput{Name: "Acme Support", Workspace: "acme", Source: srcV1, Author: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Revision != 1 || f.Status != FlowDraft || f.Source != srcV1 || f.UpdatedBy != "ann" || len(f.Numbers) != 0 {
		t.Errorf("created = %+v", f)
	}
	if _, err := s.CreateFlow(ctx, FlowInput{Name: "Acme Support", Source: srcV1}); !errors.Is(err, ErrExists) {
		t.Errorf("second create: %v", err)
	}
	f, changed, err := s.SaveFlow(ctx, FlowInput{Name: "Acme Support", Source: srcV1, Author: "bob"})
	if err != nil || changed || f.Revision != 1 {
		t.Errorf("import of the same source: rev %d changed %v %v", f.Revision, changed, err)
	}
	f, changed, err = s.SaveFlow(ctx, FlowInput{Name: "Acme Support", Source: srcV2, Author: "bob", Comment: "add goodbye"})
	if err != nil || !changed || f.Revision != 2 || f.Source != srcV2 || f.Workspace != "acme" {
		t.Fatalf("import of a new source: %+v %v %v", f, changed, err)
	}
	if f, err = s.PublishFlow(ctx, "Acme Support", "ann"); err != nil || f.Status != FlowPublished || f.Revision != 3 {
		t.Fatalf("publish: %+v %v", f, err)
	}
	if f, _ = s.PublishFlow(ctx, "Acme Support", "ann"); f.Revision != 3 {
		t.Errorf("publishing twice made revision %d", f.Revision)
	}
	if f, err = s.RollbackFlow(ctx, "Acme Support", 1, "carol"); err != nil || f.Revision != 4 || f.Source != srcV1 || f.Status != FlowPublished {
		t.Fatalf("rollback: %+v %v", f, err)
	}
	if _, err := s.RollbackFlow(ctx, "Acme Support", 42, "carol"); !errors.Is(err, ErrNotFound) {
		t.Errorf("rollback to a missing revision: %v", err)
	}
	if f, err = s.UnpublishFlow(ctx, "Acme Support", "ann"); err != nil || f.Status != FlowDraft {
		t.Fatalf("unpublish: %+v %v", f, err)
	}
	hist, err := s.FlowHistory(ctx, "Acme Support")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range hist {
		got = append(got, r.Author+":"+r.Comment)
		if r.Created.IsZero() {
			t.Errorf("revision %d without time", r.Revision)
		}
	}
	want := "ann:unpublished bob:add goodbye ann:created"
	if g := strings.Join(got, " "); !strings.HasPrefix(g, "ann:unpublished carol:rollback to revision 1 ann:published") || !strings.HasSuffix(g, "bob:add goodbye ann:created") {
		t.Errorf("history = %s (want like %s)", g, want)
	}
	r, err := s.GetFlowRevision(ctx, "Acme Support", 2)
	if err != nil || r.Source != srcV2 {
		t.Errorf("revision 2 = %+v, %v", r, err)
	}
}

func TestFlowNumbersDeleteAndDuplicateRules(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	s.CreateFlow(ctx, FlowInput{Name: "Sales", Workspace: "acme", Source: srcV1, Author: "ann"})
	s.CreateFlow(ctx, FlowInput{Name: "Support", Workspace: "acme", Source: srcV2, Author: "ann"})
	s.CreateFlow(ctx, FlowInput{Name: "Other", Workspace: "globex", Source: srcV2, Author: "ann"})

	f, err := s.AssignNumbers(ctx, "Sales", []string{"+15550002", " +15550001", "+15550002"}, "ann")
	if err != nil || strings.Join(f.Numbers, ",") != "+15550001,+15550002" || f.Revision != 2 {
		t.Fatalf("assign: %+v %v", f, err)
	}
	if _, err := s.AssignNumbers(ctx, "Support", []string{"+15550003", "+15550001"}, "ann"); !errors.Is(err, ErrNumberTaken) {
		t.Errorf("taking another flow's number: %v", err)
	}
	if f, _ := s.GetFlow(ctx, "Support"); len(f.Numbers) != 0 {
		t.Errorf("a refused bulk assignment left %v", f.Numbers)
	}
	if f, _ := s.FlowForNumber(ctx, "+15550001"); f.Name != "Sales" {
		t.Errorf("number owner = %q", f.Name)
	}

	cases := []struct {
		name  string
		flow  string
		force bool
		want  error
	}{
		{"refused while numbers point to it", "Sales", false, ErrFlowHasNumbers},
		{"forced, releasing its numbers", "Sales", true, nil},
		{"already gone", "Sales", false, ErrNotFound},
		{"without numbers", "Other", false, nil},
	}
	dup, err := s.DuplicateFlow(ctx, "Sales", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if dup.Name != "Copy of Sales" || dup.Status != FlowDraft || len(dup.Numbers) != 0 || !strings.HasSuffix(dup.Source, srcV1[len(`name = "Acme Support"`):]) || dup.Revision != 1 || dup.Workspace != "acme" {
		t.Errorf("duplicate = %+v", dup)
	}
	if dup2, _ := s.DuplicateFlow(ctx, "Sales", "bob"); dup2.Name != "Copy of Sales (2)" {
		t.Errorf("second duplicate = %q", dup2.Name)
	}
	for _, tc := range cases {
		err := s.DeleteFlow(ctx, tc.flow, "carol", tc.force)
		if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := s.FlowForNumber(ctx, "+15550001"); !errors.Is(err, ErrNotFound) {
		t.Errorf("number still assigned after a forced delete: %v", err)
	}
	if _, err := s.AssignNumbers(ctx, "Support", []string{"+15550001"}, "ann"); err != nil {
		t.Errorf("a released number cannot be reused: %v", err)
	}
	hist, _ := s.FlowHistory(ctx, "Sales")
	if len(hist) == 0 || !strings.HasPrefix(hist[0].Comment, "deleted") || hist[0].Author != "carol" {
		t.Errorf("deletion not in history: %+v", hist[0])
	}
	flows, _ := s.ListFlows(ctx, InWorkspaces("acme"))
	var names []string
	for _, f := range flows {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "Copy of Sales,Copy of Sales (2),Support" {
		t.Errorf("flows in acme = %v", names)
	}
	if all, _ := s.ListFlows(ctx, AllWorkspaces()); len(all) != 3 {
		t.Errorf("all flows = %d", len(all))
	}
	// A deleted name can be used again; its history continues.
	f, err = s.CreateFlow(ctx, FlowInput{Name: "Sales", Source: srcV2, Author: "dan"})
	if err != nil || f.Revision != len(hist)+1 || f.Workspace != "default" {
		t.Errorf("recreated = %+v, %v", f, err)
	}
	if _, err := s.ReleaseNumbers(ctx, "Support", []string{"+15550001"}, "ann"); err != nil {
		t.Error(err)
	}
	if f, _ := s.GetFlow(ctx, "Support"); len(f.Numbers) != 0 {
		t.Errorf("numbers after release: %v", f.Numbers)
	}
}

func TestEditFlowSavesOnlyFromTheCurrentRevision(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	if _, err := s.CreateFlow(ctx, FlowInput{Name: "Acme Support", Workspace: "acme", Source: srcV1, Author: "ann"}); err != nil {
		t.Fatal(err)
	}
	f, err := s.EditFlow(ctx, "Acme Support", srcV2, 1, "bob")
	if err != nil || f.Revision != 2 || f.Source != srcV2 || f.UpdatedBy != "bob" || f.Workspace != "acme" {
		t.Fatalf("edit from the current revision: %+v %v", f, err)
	}
	if _, err := s.EditFlow(ctx, "Acme Support", srcV1, 1, "carol"); !errors.Is(err, ErrStale) {
		t.Errorf("edit from revision 1 after revision 2: %v", err)
	}
	if f, err = s.EditFlow(ctx, "Acme Support", srcV2, 2, "carol"); err != nil || f.Revision != 2 {
		t.Errorf("the same source made revision %d (%v)", f.Revision, err)
	}
	hist, err := s.FlowHistory(ctx, "Acme Support")
	if err != nil || len(hist) != 2 || hist[0].Author != "bob" || hist[0].Comment != "edited" {
		t.Errorf("history: %+v %v", hist, err)
	}
	if _, err := s.EditFlow(ctx, "Nope", srcV1, 1, "bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("edit of a missing flow: %v", err)
	}
}
