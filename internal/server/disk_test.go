package server

import "testing"

func TestLowDiskIsUnder256MiBOrTwoPercent(t *testing.T) {
	const gib = 1 << 30
	cases := []struct {
		name        string
		free, total uint64
		low         bool
	}{
		{"empty small disk", 100 << 20, 100 << 20, true},
		{"roomy", 50 * gib, 100 * gib, false},
		{"under 256 MiB free", 200 << 20, 100 * gib, true},
		{"under 2 % of a big disk", 15 * gib, 1000 * gib, true},
		{"just over 2 %", 21 * gib, 1000 * gib, false},
		{"full", 0, 10 * gib, true},
	}
	for _, c := range cases {
		if got := lowDisk(c.free, c.total); got != c.low {
			t.Errorf("%s: lowDisk(%d, %d) = %v", c.name, c.free, c.total, got)
		}
	}
}

func TestDiskReportNamesAnUnreadableDirectory(t *testing.T) {
	if r := diskReport(""); r != nil {
		t.Errorf("unset directory: %v", r)
	}
	r := diskReport(t.TempDir() + "/missing")
	if r == nil || r["error"] == nil {
		t.Errorf("missing directory: %v", r)
	}
	if r := diskReport(t.TempDir()); r["free_bytes"] == nil || r["total_bytes"] == nil {
		t.Errorf("temp directory: %v", r)
	}
}
