package flows

import (
	"fmt"
	"strings"
)

// NormalizeNumber turns what an admin or Asterisk wrote into the form the
// registry keys on: E.164 ("+15551230001") for public numbers, the digits
// as they are for short local extensions ("6001"). country is the calling
// code used for national numbers ("1" for NANP, "44", "91").
func NormalizeNumber(raw, country string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("empty number")
	}
	plus := false
	var digits strings.Builder
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits.WriteRune(c)
		case c == '+' && i == 0:
			plus = true
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", fmt.Errorf("number %q: unexpected %q", raw, c)
		}
	}
	d := digits.String()
	if d == "" {
		return "", fmt.Errorf("number %q has no digits", raw)
	}
	if !plus && strings.HasPrefix(d, "00") {
		plus, d = true, d[2:]
	}
	if plus {
		if len(d) < 7 || len(d) > 15 || d[0] == '0' {
			return "", fmt.Errorf("number %q is not E.164 (+, country code, 7 to 15 digits)", raw)
		}
		return "+" + d, nil
	}
	if len(d) <= 6 {
		return d, nil // a local extension
	}
	if country == "" {
		country = "1"
	}
	if len(country) > 3 || country[0] == '0' || strings.Trim(country, "0123456789") != "" {
		return "", fmt.Errorf("number %q: bad country code %q", raw, country)
	}
	if country == "1" {
		switch {
		case len(d) == 10 && d[0] >= '2':
			return "+1" + d, nil
		case len(d) == 11 && d[0] == '1' && d[1] >= '2':
			return "+" + d, nil
		}
		return "", fmt.Errorf("number %q is neither E.164 nor a 10-digit North American number", raw)
	}
	if d[0] == '0' {
		d = d[1:] // national trunk prefix
	} else if strings.HasPrefix(d, country) && len(d) > 10 {
		return "+" + d, nil // written with its country code but no '+'
	}
	n := country + d
	if len(n) < 7 || len(n) > 15 {
		return "", fmt.Errorf("number %q does not make an E.164 number with country code %s", raw, country)
	}
	return "+" + n, nil
}
