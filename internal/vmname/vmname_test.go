package vmname

import (
	"testing"
	"time"
)

func TestNameRoundTripsAndStaysSafe(t *testing.T) {
	at := time.UnixMilli(1767225612345).UTC()
	cases := []struct{ mailbox, call string }{
		{"tech", "1767225600.42"},
		{"after-hours", "1795246529.1"},
		{"a_b.c-d", "agi-7000_x"},
		{"ü", "id with space"},
	}
	for _, c := range cases {
		n := Name(c.mailbox, c.call, at)
		for i := 0; i < len(n); i++ {
			ch := n[i]
			if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '_' || ch == '-') {
				t.Errorf("%q has unsafe byte %q", n, ch)
			}
		}
		mb, call, got, ok := Parse(n)
		if !ok || mb != c.mailbox || call != c.call || !got.Equal(at) {
			t.Errorf("%q parsed to %q %q %v %v", n, mb, call, got, ok)
		}
	}
	for _, bad := range []string{"rec-1", "vm-a-b", "vm--x-1", "vm-a-b-c", "vm-a_q-b-1"} {
		if _, _, _, ok := Parse(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("vm-tech-1_o2-123")
	f.Fuzz(func(t *testing.T, s string) {
		mb, call, at, ok := Parse(s)
		if ok && Name(mb, call, at) != s {
			// Different spellings may parse alike; Name must read back the same values.
			m2, c2, a2, ok2 := Parse(Name(mb, call, at))
			if !ok2 || m2 != mb || c2 != call || !a2.Equal(at) {
				t.Fatalf("%q: round trip failed", s)
			}
		}
	})
}
