package store

import (
	"strings"
	"unicode"
)

// numberClause matches a number as staff type it against the columns.
// Numbers are stored in E.164 (+14155550101), people type 415-555-0101,
// (415) 555-0101, +1 415 555 0101 or just 5550101: punctuation and spaces
// are dropped and the digits are found anywhere in the stored number; a
// leading + anchors them at its start instead; leading zeros (a national
// trunk prefix, or 00 for international) are dropped first. Text with
// letters (a SIP name, "anonymous") is found as it is, ignoring case. It
// returns "" when nothing was typed to search for. PostgreSQL has strpos
// for SQLite's instr and LIKE (case-sensitive there) for its GLOB.
func numberClause(pg bool, typed string, cols ...string) (string, []any) {
	instr, glob, wild := "instr", " GLOB ?", "*"
	if pg {
		instr, glob, wild = "strpos", " LIKE ?", "%"
	}
	t := strings.TrimSpace(typed)
	if t == "" {
		return "", nil
	}
	var digits strings.Builder
	text := false
	for _, r := range t {
		switch {
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case r == '+' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/' || unicode.IsSpace(r):
		default:
			text = true
		}
	}
	var conds []string
	var args []any
	switch d := digits.String(); {
	case text:
		for _, c := range cols {
			conds = append(conds, instr+"(lower("+c+"), lower(?)) > 0")
			args = append(args, t)
		}
	case d == "":
		return "", nil
	case strings.HasPrefix(t, "+"):
		// GLOB on a literal prefix uses the column's index.
		for _, c := range cols {
			conds = append(conds, c+glob, c+glob)
			args = append(args, "+"+d+wild, d+wild)
		}
	default:
		if trimmed := strings.TrimLeft(d, "0"); trimmed != "" {
			d = trimmed
		}
		for _, c := range cols {
			conds = append(conds, instr+"("+c+", ?) > 0")
			args = append(args, d)
		}
	}
	return "(" + strings.Join(conds, " OR ") + ")", args
}
