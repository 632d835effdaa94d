package suggest

import (
	"slices"
	"testing"
)

func TestDistanceCountsEdits(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"name", "name", 0},
		{"nmae", "name", 2},        // a swap is two replacements
		{"passwrd", "password", 1}, // one insertion
		{"flow_dir", "flows_dir", 1},
		{"kitten", "sitting", 3},
		{"CALLFLOW_ARI_PASWORD", "CALLFLOW_ARI_PASSWORD", 1},
	} {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Distance(c.b, c.a); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d (not symmetric)", c.b, c.a, got, c.want)
		}
	}
}

func TestClosestPicksTheNearestWithinTheBound(t *testing.T) {
	fields := []string{"name", "numbers", "status", "steps", "settings", "workspace"}
	for _, c := range []struct {
		name   string
		word   string
		max    int
		want   string
		wantOK bool
	}{
		{"one typo", "nmae", 2, "name", true},
		{"exact", "steps", 2, "steps", true},
		{"too far", "description", 2, "", false},
		{"bound is inclusive", "setings", 1, "settings", true},
		{"just over the bound", "stps", 0, "", false},
		{"nearest of several within the bound", "stap", 2, "steps", true}, // status is 3 away
		{"empty word", "", 3, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := Closest(c.word, slices.Values(fields), c.max)
			if got != c.want || ok != c.wantOK {
				t.Errorf("Closest(%q, %d) = %q, %v; want %q, %v", c.word, c.max, got, ok, c.want, c.wantOK)
			}
		})
	}
}

func TestClosestBreaksTiesAlphabetically(t *testing.T) {
	fields := []string{"cat", "mat", "bat"} // each one edit from "hat"
	for range 2 {
		if got, _ := Closest("hat", slices.Values(fields), 1); got != "bat" {
			t.Errorf("got %q from %v, want bat", got, fields)
		}
		slices.Reverse(fields)
	}
}
