package call

import "testing"

func TestRouteReadsFlowNumberAndPositionalNumbers(t *testing.T) {
	cases := []struct {
		name         string
		args         []string
		dialled      string
		flow, number string
	}{
		{"the extension", nil, "+914430001234", "", "+914430001234"},
		{"number= wins over the extension", []string{"number=4155550101"}, "6001", "", "4155550101"},
		{"flow= and the extension", []string{"flow=Support"}, "6001", "Support", "6001"},
		{"positional number from the s extension", []string{"inbound", "+14155550101"}, "s", "", "+14155550101"},
		{"written with separators", []string{"inbound", "(415) 555-0101"}, "s", "", "(415) 555-0101"},
		{"no number anywhere keeps the extension", []string{"inbound"}, "s", "", "s"},
		{"key=value is never a positional number", []string{"x=1"}, "s", "", "s"},
		{"the flow alone", []string{"flow= After Hours "}, "", "After Hours", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			flow, number := Route(c.args, c.dialled)
			if flow != c.flow || number != c.number {
				t.Errorf("Route(%q, %q) = %q, %q; want %q, %q", c.args, c.dialled, flow, number, c.flow, c.number)
			}
		})
	}
}
