package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/internal/pgtest"
)

// numbersStore has flows Sales and Support in acme, Front in other, and
// +15550000001 on Sales since t0.
func numbersStore(t *testing.T) (*Store, *testClock) {
	t.Helper()
	ctx := context.Background()
	clk := &testClock{t: t0}
	opts := testOptions()
	opts.Now = clk.Now
	s := openTest(t, opts)
	for name, ws := range map[string]string{"Sales": "acme", "Support": "acme", "Front": "other"} {
		if _, err := s.CreateFlow(ctx, FlowInput{Name: name, Workspace: ws, Source: srcV1, Author: "ann"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AssignNumbers(ctx, "Sales", []string{"+15550000001"}, "ann"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	return s, clk
}

func resultsLine(rs []NumberResult) string {
	var out []string
	for _, r := range rs {
		s := r.Number + ":" + r.Outcome
		if r.From != "" {
			s += ":from=" + r.From
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// Each number of a change gets its own result; refusals do not stop the
// others, and a flow that is not there stops all.
func TestChangeNumbersAnswersEachNumber(t *testing.T) {
	ctx := context.Background()
	s, _ := numbersStore(t)
	acmeOnly := func(ws string) bool { return ws == "acme" }
	file := func(n string) string {
		if n == "+15550000009" {
			return "Lobby"
		}
		return ""
	}
	steps := []struct {
		name string
		ch   NumberChange
		want string
	}{
		{"assign new numbers, one twice, one already there, one on a file flow",
			NumberChange{Op: NumberAssign, Flow: "Support", Numbers: []string{"+15550000002", "+15550000002", "+15550000003", "+15550000001", "+15550000009"}, Held: file},
			"+15550000002:assigned +15550000003:assigned +15550000001:refused +15550000009:refused"},
		{"move takes a number from another flow",
			NumberChange{Op: NumberAssign, Flow: "Support", Move: true, Numbers: []string{"+15550000001", "+15550000002"}},
			"+15550000001:moved:from=Sales +15550000002:unchanged"},
		{"a workspace admin cannot give a number to another workspace's flow",
			NumberChange{Op: NumberAssign, Flow: "Front", Move: true, Numbers: []string{"+15550000003"}, Allowed: acmeOnly},
			"+15550000003:refused"},
		{"release leaves the number in the inventory",
			NumberChange{Op: NumberRelease, Numbers: []string{"+15550000003", "+15550000077"}},
			"+15550000003:released:from=Support +15550000077:unchanged"},
		{"add numbers without a flow",
			NumberChange{Op: NumberAdd, Workspace: "other", Numbers: []string{"+15550000004", "+15550000003"}},
			"+15550000004:added +15550000003:unchanged"},
		{"a number of another workspace is not ours to assign",
			NumberChange{Op: NumberAssign, Flow: "Sales", Numbers: []string{"+15550000004"}, Allowed: acmeOnly},
			"+15550000004:refused"},
		{"remove only what has no flow",
			NumberChange{Op: NumberRemove, Numbers: []string{"+15550000004", "+15550000001"}},
			"+15550000004:removed +15550000001:refused"},
	}
	for _, st := range steps {
		st.ch.Author = "wendy"
		got, err := s.ChangeNumbers(ctx, st.ch)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if line := resultsLine(got); line != st.want {
			t.Errorf("%s:\n got %s\nwant %s", st.name, line, st.want)
		}
	}
	if _, err := s.ChangeNumbers(ctx, NumberChange{Op: NumberAssign, Flow: "Nope", Numbers: []string{"+15550000005"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("assign to a missing flow: %v", err)
	}
	if _, err := s.ChangeNumbers(ctx, NumberChange{Op: "steal", Numbers: []string{"+15550000005"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown operation: %v", err)
	}

	// The flows' histories say what moved, by whom.
	hist, err := s.FlowHistory(ctx, "Sales")
	if err != nil || hist[0].Comment != "released +15550000001 (moved to Support) on the numbers page" || hist[0].Author != "wendy" {
		t.Errorf("Sales history: %+v %v", hist[0], err)
	}
	if f, _ := s.GetFlow(ctx, "Support"); strings.Join(f.Numbers, ",") != "+15550000001,+15550000002" {
		t.Errorf("Support numbers %v", f.Numbers)
	}
	// And each number's audit.
	audit, err := s.Audit(ctx, "number +15550000001", 10)
	if err != nil || len(audit) != 2 || audit[1].Action != "assign number" || audit[0].Action != "move number" || audit[0].Actor != "wendy" || audit[0].Detail != "from flow Sales to flow Support" {
		t.Errorf("audit of +15550000001: %+v %v", audit, err)
	}
}

// The inventory lists numbers with their flow and since when, and keeps
// numbers released anywhere (the flow page too) with when.
func TestListNumbersKeepsReleasedNumbers(t *testing.T) {
	ctx := context.Background()
	s, clk := numbersStore(t)
	if _, err := s.AssignNumbers(ctx, "Front", []string{"+15550000020"}, "ann"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	if _, err := s.ReleaseNumbers(ctx, "Front", []string{"+15550000020"}, "bob"); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListNumbers(ctx, AllWorkspaces())
	if err != nil || len(all) != 2 {
		t.Fatalf("numbers: %+v %v", all, err)
	}
	sales, front := all[0], all[1]
	if sales.Number != "+15550000001" || sales.Flow != "Sales" || sales.Workspace != "acme" || !sales.Assigned.Equal(t0) || sales.AssignedBy != "ann" {
		t.Errorf("assigned number: %+v", sales)
	}
	if front.Flow != "" || front.Workspace != "other" || !front.Released.Equal(t0.Add(2*time.Hour)) || front.ReleasedBy != "bob" || !front.Assigned.IsZero() {
		t.Errorf("released number: %+v", front)
	}
	acme, _ := s.ListNumbers(ctx, InWorkspaces("acme"))
	if len(acme) != 1 || acme[0].Number != "+15550000001" {
		t.Errorf("acme's numbers: %+v", acme)
	}
	if none, _ := s.ListNumbers(ctx, Scope{}); len(none) != 0 {
		t.Errorf("no scope sees %+v", none)
	}
	// Deleting a flow with its numbers keeps them too.
	if err := s.DeleteFlow(ctx, "Sales", "ann", true); err != nil {
		t.Fatal(err)
	}
	all, _ = s.ListNumbers(ctx, AllWorkspaces())
	if len(all) != 2 || all[0].Flow != "" || all[0].Workspace != "acme" || all[0].ReleasedBy != "ann" {
		t.Errorf("after deleting Sales: %+v", all)
	}
	// Assigning again clears the release.
	if _, err := s.ChangeNumbers(ctx, NumberChange{Op: NumberAssign, Flow: "Support", Numbers: []string{"+15550000001"}, Author: "cy"}); err != nil {
		t.Fatal(err)
	}
	all, _ = s.ListNumbers(ctx, AllWorkspaces())
	if all[0].Flow != "Support" || !all[0].Released.IsZero() || all[0].AssignedBy != "cy" || !all[0].Added.Equal(t0) {
		t.Errorf("assigned again: %+v", all[0])
	}
}

func TestNumberCallsCountsCallsPerNumberSince(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	for i, at := range []time.Time{t0.Add(-40 * 24 * time.Hour), t0.Add(-time.Hour), t0} {
		c := sampleCall("c"+string(rune('a'+i)), at, 0)
		if err := s.RecordCall(c); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, s)
	got, err := s.NumberCalls(ctx, t0.Add(-30*24*time.Hour))
	if err != nil || got["+914430001234"].Calls != 2 || !got["+914430001234"].Last.Equal(t0) || len(got) != 1 {
		t.Errorf("calls per number: %+v %v", got, err)
	}
}

// Migration 13 puts the numbers flows had into the inventory, on both
// backends.
func TestNumberInventoryMigrationTakesExistingNumbers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cf.db")
	var (
		old *sql.DB
		err error
	)
	if onPostgres() {
		old, err = openPostgres(pgtest.Database(t, path), 1, 0)
	} else {
		old, err = openDB(path, time.Second, "immediate", 1)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, old, onPostgres(), migrations[:11], time.Now); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO flows (id, name, workspace, revision, status, created, updated) VALUES ('f1', 'Sales', 'acme', 1, 'draft', 1, 1)`,
		`INSERT INTO numbers (number, flow, assigned, assigned_by) VALUES ('+15550000001', 'Sales', 42, 'ann')`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s := openAt(t, path, testOptions())
	got, err := s.ListNumbers(ctx, AllWorkspaces())
	if err != nil || len(got) != 1 || got[0].Workspace != "acme" || got[0].Added.UnixNano() != 42 || got[0].AddedBy != "ann" {
		t.Fatalf("after the migration: %+v %v", got, err)
	}
	if _, err := s.ReleaseNumbers(ctx, "Sales", []string{"+15550000001"}, "bob"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ListNumbers(ctx, AllWorkspaces()); len(got) != 1 || got[0].Flow != "" {
		t.Errorf("released after the migration: %+v", got)
	}
}

// Numbers changed on a flow's page or by an import have their history too.
func TestNumberHistoryFollowsEveryWayNumbersChange(t *testing.T) {
	ctx := context.Background()
	s, _ := numbersStore(t)
	if _, err := s.ReleaseNumbers(ctx, "Sales", []string{"+15550000001"}, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ImportFlow(ctx, FlowImport{Name: "Support", Source: srcV1, Numbers: []string{"+15550000001"}, SetNumbers: true, Replace: true, Author: "cy"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Audit(ctx, "number +15550000001", 10)
	var lines []string
	for _, e := range got {
		lines = append(lines, e.Actor+" "+e.Action+" "+e.Detail)
	}
	want := "cy assign number to flow Support|bob release number from flow Sales|ann assign number to flow Sales"
	if err != nil || strings.Join(lines, "|") != want {
		t.Errorf("history:\n got %s\nwant %s (%v)", strings.Join(lines, "|"), want, err)
	}
}
