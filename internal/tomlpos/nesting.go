package tomlpos

import "fmt"

// MaxNesting bounds how deep arrays and inline tables may nest. A flow
// needs three or four levels; a hostile file with a million '[' would
// otherwise cost the parser deep recursion and the index a path per level,
// each as long as the depth.
const MaxNesting = 32

// checkNesting finds the first place where arrays and inline tables nest
// deeper than MaxNesting, or a dotted key (a.b.c, in a table header too)
// has MaxNesting parts or more, skipping strings and comments. Time and
// memory grow with the square of a key's parts (every prefix is a path):
// a 200 KB key "a.a.a..." once took minutes and gigabytes to refuse. A
// value has at most one dot (a number, a time), so only keys come near the
// bound.
func checkNesting(src []byte) error {
	depth, dots, line, lineStart := 0, 0, 1, 0
	at := func(i int) Pos { return Pos{Line: line, Col: i - lineStart + 1} }
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case '\n':
			dots, line, lineStart = 0, line+1, i+1
		case '#':
			for i+1 < len(src) && src[i+1] != '\n' {
				i++
			}
		case '"', '\'':
			// skip the string; multi-line strings may span lines
			delim := []byte{c}
			if i+2 < len(src) && src[i+1] == c && src[i+2] == c {
				delim = []byte{c, c, c}
			}
			for i += len(delim); i < len(src); i++ {
				if src[i] == '\n' {
					line, lineStart = line+1, i+1
				}
				if c == '"' && src[i] == '\\' {
					if i++; i < len(src) && src[i] == '\n' { // a line-ending backslash
						line, lineStart = line+1, i+1
					}
					continue
				}
				if hasPrefix(src[i:], delim) {
					i += len(delim) - 1
					break
				}
			}
		case '.':
			if dots++; dots >= MaxNesting {
				return &Error{Pos: at(i), Msg: fmt.Sprintf("a dotted key has more than %d parts", MaxNesting)}
			}
		case '=', ',':
			dots = 0
		case '[', '{':
			dots = 0
			depth++
			if depth > MaxNesting {
				return &Error{Pos: at(i), Msg: fmt.Sprintf("arrays and tables nest deeper than %d levels", MaxNesting)}
			}
		case ']', '}':
			dots = 0
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}

func hasPrefix(b, p []byte) bool {
	if len(b) < len(p) {
		return false
	}
	for i := range p {
		if b[i] != p[i] {
			return false
		}
	}
	return true
}
