package flows

import "testing"

func TestNormalizeNumber(t *testing.T) {
	cases := []struct {
		in, country, want string
		bad               bool
	}{
		{"+1 (555) 123-0007", "1", "+15551230007", false},
		{"5551230007", "1", "+15551230007", false},
		{"15551230007", "1", "+15551230007", false},
		{"0015551230007", "44", "+15551230007", false},
		{"+914430001234", "1", "+914430001234", false},
		{"044 3000 1234", "91", "+914430001234", false},
		{"914430001234", "91", "+914430001234", false},
		{"020 7946 0018", "44", "+442079460018", false},
		{"6001", "1", "6001", false},
		{"12345678", "1", "", true},
		{"555-CALL-NOW", "1", "", true},
		{"+0123456789", "1", "", true},
		{"+1234567890123456", "1", "", true},
		{"", "1", "", true},
		{"s", "1", "", true},
	}
	for _, c := range cases {
		got, err := NormalizeNumber(c.in, c.country)
		if c.bad != (err != nil) || got != c.want {
			t.Errorf("%q (country %s): got %q, %v; want %q", c.in, c.country, got, err, c.want)
		}
	}
}

func FuzzNormalizeNumber(f *testing.F) {
	for _, s := range []string{"+15551230007", "044 3000 1234", "6001", "00 44 20", "(555)"} {
		f.Add(s, "1")
	}
	f.Fuzz(func(t *testing.T, in, country string) {
		n, err := NormalizeNumber(in, country)
		if err != nil {
			return
		}
		// A normalised number normalises to itself.
		if again, err := NormalizeNumber(n, country); err != nil || again != n {
			t.Fatalf("%q -> %q -> %q, %v", in, n, again, err)
		}
	})
}
