package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestLineDiffShowsTheChangedLinesInPlace(t *testing.T) {
	got := lineDiff("a\nb\nc\nd", "a\nB\nc\nd\ne")
	var ops []string
	for _, l := range got {
		ops = append(ops, l.Op+l.Text)
	}
	if want := " a|-b|+B| c| d|+e"; strings.Join(ops, "|") != want {
		t.Errorf("diff %q, want %q", strings.Join(ops, "|"), want)
	}
}

// Any two revisions compare, line by line, on the history page.
func TestHistoryComparesTwoRevisions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	row, err := f.st.GetFlow(ctx, "Night Line")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.EditFlow(ctx, "Night Line", strings.Replace(row.Source, "applet", "applet ", 1)+"\n# a note\n", row.Revision, "wendy"); err != nil {
		t.Fatal(err)
	}
	admin := f.login("admin")
	q := url.Values{"a": {itoa(row.Revision)}, "b": {itoa(row.Revision + 1)}}
	resp, body := admin.get("/flows/Night%20Line/history?" + q.Encode())
	wantStatus(t, "compare", resp, http.StatusOK)
	if !strings.Contains(body, `<tr class="add">`) || !strings.Contains(body, "# a note") || !strings.Contains(body, `<tr class="del">`) {
		t.Errorf("no diff in the page:\n%s", body)
	}
	resp, _ = admin.get("/flows/Night%20Line/history?a=1&b=99")
	wantStatus(t, "no such revision", resp, http.StatusNotFound)
}

func itoa(n int) string { return id(int64(n)) }
