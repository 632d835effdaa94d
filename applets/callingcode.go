package applets

import "strings"

// PhoneParts is what the calling-code table tells about a phone number.
type PhoneParts struct {
	// Country is the ITU calling code ("1", "44", "353"); "" when the
	// number cannot be read as international.
	Country string
	// Area is the NANP area code ("212") of +1 numbers; "" elsewhere,
	// because area codes of other countries vary in length.
	Area string
}

// SplitNumber reads the calling code (and, for NANP numbers, the area code)
// of a number as Asterisk gives it. International numbers are written
// "+44...", "0044..." or "01144..."; without a prefix, 11 digits starting
// with 1 and 10 digits starting with 2-9 are taken for NANP numbers (what
// North American trunks send). Anything else is unknown.
func SplitNumber(number string) PhoneParts {
	n := digitsOnly(number)
	var intl string
	switch {
	case strings.HasPrefix(n, "+"):
		intl = n[1:]
	case strings.HasPrefix(n, "00"):
		intl = n[2:]
	case strings.HasPrefix(n, "011") && len(n) > 11:
		intl = n[3:]
	case len(n) == 11 && n[0] == '1':
		intl = n
	case len(n) == 10 && n[0] >= '2' && n[0] <= '9':
		intl = "1" + n
	default:
		return PhoneParts{}
	}
	if !allDigits(intl) {
		return PhoneParts{}
	}
	// Calling codes are prefix-free: at most one of the three can match.
	for l := 3; l >= 1; l-- {
		if len(intl) <= l || !callingCodes[intl[:l]] {
			continue
		}
		p := PhoneParts{Country: intl[:l]}
		if p.Country == "1" && len(intl) == 11 {
			p.Area = intl[1:4]
		}
		return p
	}
	return PhoneParts{}
}

// digitsOnly drops the separators people write in numbers.
func digitsOnly(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')':
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// callingCodes are the ITU-T E.164 country calling codes in service.
var callingCodes = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(`
		1 7
		20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49
		51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 81 82 84 86
		90 91 92 93 94 95 98
		211 212 213 216 218 220 221 222 223 224 225 226 227 228 229
		230 231 232 233 234 235 236 237 238 239 240 241 242 243 244
		245 246 247 248 249 250 251 252 253 254 255 256 257 258 260
		261 262 263 264 265 266 267 268 269 290 291 297 298 299
		350 351 352 353 354 355 356 357 358 359 370 371 372 373 374
		375 376 377 378 379 380 381 382 383 385 386 387 389 420 421 423
		500 501 502 503 504 505 506 507 508 509 590 591 592 593 594
		595 596 597 598 599 670 672 673 674 675 676 677 678 679 680
		681 682 683 685 686 687 688 689 690 691 692 800 808 850 852
		853 855 856 870 878 880 881 882 883 886 888 960 961 962 963
		964 965 966 967 968 970 971 972 973 974 975 976 977 979 992
		993 994 995 996 998`) {
		m[c] = true
	}
	return m
}()
