package tomlpos

import "fmt"

// MaxNesting bounds how deep arrays and inline tables may nest. A flow
// needs three or four levels; a hostile file with a million '[' would
// otherwise cost a parser (ours or BurntSushi's) gigabytes of stack and
// paths.
const MaxNesting = 32

// checkNesting finds the first place where arrays and inline tables nest
// deeper than MaxNesting, skipping strings and comments.
func checkNesting(src []byte) error {
	depth, line, col := 0, 1, 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		col++
		switch c {
		case '\n':
			line, col = line+1, 0
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
			i += len(delim)
			for i < len(src) {
				if src[i] == '\n' {
					line, col = line+1, 0
				}
				if c == '"' && src[i] == '\\' {
					i += 2
					continue
				}
				if hasPrefix(src[i:], delim) {
					i += len(delim) - 1
					break
				}
				i++
			}
		case '[', '{':
			depth++
			if depth > MaxNesting {
				return &Error{Pos: Pos{Line: line, Col: col}, Msg: fmt.Sprintf("arrays and tables nest deeper than %d levels", MaxNesting)}
			}
		case ']', '}':
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
