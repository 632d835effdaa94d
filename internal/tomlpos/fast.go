package tomlpos

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// parseFast parses the plain TOML flow files are made of (tables, arrays
// of tables, strings, decimal numbers, booleans, arrays, one-line inline
// tables) in one pass that also indexes key positions. BurntSushi/toml
// stays the reference: anything else — dates, hex numbers, a duplicate
// key, a syntax error — returns ok=false and the document goes to it, so
// results and error messages are always BurntSushi's. A differential
// fuzz test holds the two to the same values. The reason for this path is
// speed: BurntSushi's lexer hands every token through a channel, which
// made linting ten thousand flows take seconds.
func parseFast(src []byte) (root map[string]any, ix *Index, ok bool) {
	// one index entry per key or array element, roughly one per '=' or ','
	guess := bytes.Count(src, []byte("=")) + bytes.Count(src, []byte(",")) + 8
	p := &fastParser{scanner: scanner{src: src, line: 1, ix: &Index{pending: make([]entry, 0, guess)}, aot: map[string]int{}}}
	p.root = make(map[string]any, 8)
	p.cur = p.root
	p.defined = map[string]bool{}
	if !utf8.Valid(src) || hasControl(src) || bytes.IndexByte(src, '\\') >= 0 && keyEscapes(src) {
		return nil, nil, false
	}
	if !p.run() {
		return nil, nil, false
	}
	return p.root, p.ix, true
}

type fastParser struct {
	scanner
	root    map[string]any
	cur     map[string]any  // the table key/values go into
	defined map[string]bool // tables opened by a header, resolved paths
	// arrays of tables by resolved path, to append elements
}

// hasControl finds bytes TOML allows nowhere but where BurntSushi knows
// the rules (CR, NUL, DEL...).
func hasControl(src []byte) bool {
	for _, c := range src {
		if c < 0x20 && c != '\t' && c != '\n' || c == 0x7f {
			return true
		}
	}
	return false
}

// keyEscapes is a cheap, conservative test for a backslash inside a quoted
// key: such keys go to BurntSushi, whose escape rules are TOML's.
func keyEscapes(src []byte) bool {
	for _, line := range bytes.Split(src, []byte("\n")) {
		t := bytes.TrimLeft(line, " \t[")
		if len(t) > 0 && (t[0] == '"' || t[0] == '\'') {
			if eq := bytes.IndexByte(t, '='); eq < 0 || bytes.IndexByte(t[:eq], '\\') >= 0 {
				return true
			}
		}
		if bytes.Contains(line, []byte("{")) && bytes.Contains(line, []byte("\\")) {
			return true
		}
	}
	return false
}

func (p *fastParser) run() bool {
	for {
		p.skipSpace(true)
		if p.eof() {
			return true
		}
		if p.peek() == '[' {
			if !p.fastHeader() {
				return false
			}
		} else if !p.fastKeyValue(p.prefix, p.cur, true) {
			return false
		}
	}
}

// endOfLine accepts only blanks, a comment, then a newline or the end.
func (p *fastParser) endOfLine() bool {
	p.skipSpace(false)
	if p.eof() {
		return true
	}
	switch p.peek() {
	case '#':
		p.skipComment()
		return true
	case '\n':
		return true
	}
	return false
}

func (p *fastParser) fastHeader() bool {
	start := p.pos()
	p.advance()
	array := false
	if p.peek() == '[' {
		array = true
		p.advance()
	}
	p.skipSpace(false)
	parts, ok := p.key()
	if !ok {
		return false
	}
	p.skipSpace(false)
	if p.peek() != ']' {
		return false
	}
	p.advance()
	if array {
		if p.peek() != ']' {
			return false
		}
		p.advance()
	}
	if !p.endOfLine() {
		return false
	}
	// Walk to the parent table, creating implicit tables; every segment
	// but the last follows the newest element of an array of tables.
	t := p.root
	resolved := ""
	for i, part := range parts[:len(parts)-1] {
		_ = i
		resolved = p.join(resolved, part)
		switch v := t[part].(type) {
		case nil:
			nt := map[string]any{}
			t[part] = nt
			t = nt
		case map[string]any:
			t = v
		case []map[string]any:
			if _, isAOT := p.aot[resolved]; !isAOT || len(v) == 0 {
				return false
			}
			resolved += "[" + strconv.Itoa(len(v)-1) + "]"
			t = v[len(v)-1]
		default:
			return false
		}
	}
	last := parts[len(parts)-1]
	resolved = p.join(resolved, last)
	if array {
		n, seen := p.aot[resolved]
		arr, isArr := t[last].([]map[string]any)
		if seen != isArr || (!seen && t[last] != nil) {
			return false
		}
		if seen {
			n++
		}
		p.aot[resolved] = n
		if !seen {
			p.record(resolved, start)
		}
		nt := map[string]any{}
		t[last] = append(arr, nt)
		resolved += "[" + strconv.Itoa(n) + "]"
		p.cur = nt
	} else {
		if p.defined[resolved] {
			return false // a table defined twice
		}
		switch v := t[last].(type) {
		case nil:
			nt := map[string]any{}
			t[last] = nt
			p.cur = nt
		case map[string]any:
			// an implicit table made by an earlier header: defining it now is
			// fine, unless dotted keys made it (BurntSushi decides that)
			if p.defined["="+resolved] {
				return false
			}
			p.cur = v
		default:
			return false
		}
		p.defined[resolved] = true
	}
	p.record(resolved, start)
	p.prefix = resolved
	return true
}

// fastKeyValue reads `key = value` into t. At the top of a line (line is
// set) the value must end the line.
func (p *fastParser) fastKeyValue(prefix string, t map[string]any, line bool) bool {
	start := p.pos()
	parts, ok := p.key()
	if !ok || len(parts) != 1 {
		return false // dotted keys: BurntSushi knows their rules
	}
	if _, dup := t[parts[0]]; dup {
		return false
	}
	p.recordKey(prefix, parts[0], start)
	p.skipSpace(false)
	if p.peek() != '=' {
		return false
	}
	p.advance()
	p.skipSpace(false)
	path := ""
	if c := p.peek(); c == '[' || c == '{' {
		path = p.join(prefix, parts[0]) // only containers need their own path
	}
	v, ok := p.fastValue(path)
	if !ok {
		return false
	}
	if _, table := v.(map[string]any); table {
		p.defined["="+path] = true // an inline table may not be reopened by a header
	}
	t[parts[0]] = v
	if line {
		return p.endOfLine()
	}
	return true
}

func (p *fastParser) fastValue(path string) (any, bool) {
	if p.eof() {
		return nil, false
	}
	switch c := p.peek(); {
	case c == '"':
		if strings.HasPrefix(string(p.src[p.i:min(p.i+3, len(p.src))]), `"""`) {
			return p.fastMultiline(true)
		}
		return p.fastBasic()
	case c == '\'':
		if strings.HasPrefix(string(p.src[p.i:min(p.i+3, len(p.src))]), `'''`) {
			return p.fastMultiline(false)
		}
		return p.fastLiteral()
	case c == '[':
		return p.fastArray(path)
	case c == '{':
		return p.fastInline(path)
	case c == 't' || c == 'f':
		for _, w := range []string{"true", "false"} {
			if strings.HasPrefix(string(p.src[p.i:min(p.i+len(w), len(p.src))]), w) {
				p.i += len(w)
				if !p.delimited() {
					return nil, false
				}
				return w == "true", true
			}
		}
		return nil, false
	default:
		return p.fastNumber()
	}
}

// delimited reports whether a bare value ended properly.
func (p *fastParser) delimited() bool {
	if p.eof() {
		return true
	}
	switch p.peek() {
	case ' ', '\t', '\r', '\n', ',', ']', '}', '#':
		return true
	}
	return false
}

func (p *fastParser) fastNumber() (any, bool) {
	start := p.i
	for !p.eof() {
		c := p.peek()
		if c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E' {
			p.i++
			continue
		}
		break
	}
	if !p.delimited() {
		return nil, false // dates, hex, underscores, inf, nan: BurntSushi's
	}
	tok := string(p.src[start:p.i])
	digits := strings.TrimLeft(tok, "+-")
	if digits == "" || len(tok)-len(digits) > 1 || digits[0] < '0' || digits[0] > '9' {
		return nil, false
	}
	if len(digits) > 1 && digits[0] == '0' && digits[1] >= '0' && digits[1] <= '9' {
		return nil, false // leading zeros are invalid TOML
	}
	if strings.ContainsAny(digits, "+-") && !strings.ContainsAny(digits, "eE") {
		return nil, false
	}
	if !strings.ContainsAny(digits, ".eE") {
		n, err := strconv.ParseInt(tok, 10, 64)
		if err != nil {
			return nil, false
		}
		return n, true
	}
	// A float needs digits on both sides of '.', and no '.' in the exponent.
	mant, exp, hasExp := strings.Cut(strings.ToLower(digits), "e")
	if whole, frac, hasDot := strings.Cut(mant, "."); hasDot && (whole == "" || frac == "" || !allDigits(whole) || !allDigits(frac)) {
		return nil, false
	} else if !hasDot && !allDigits(mant) {
		return nil, false
	}
	if hasExp && !allDigits(strings.TrimLeft(exp, "+-")) || hasExp && len(exp)-len(strings.TrimLeft(exp, "+-")) > 1 {
		return nil, false
	}
	f, err := strconv.ParseFloat(tok, 64)
	if err != nil {
		return nil, false
	}
	return f, true
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

// fastBasic reads a one-line "..." string with the common escapes.
func (p *fastParser) fastBasic() (any, bool) {
	p.advance()
	var b []byte
	start := p.i
	plain := true
	for !p.eof() {
		c := p.peek()
		switch {
		case c == '"':
			var s string
			if plain {
				s = string(p.src[start:p.i])
			} else {
				s = string(b)
			}
			p.advance()
			return s, true
		case c == '\\':
			if plain {
				b = append(b, p.src[start:p.i]...)
				plain = false
			}
			p.advance()
			if p.eof() {
				return nil, false
			}
			e := p.peek()
			p.advance()
			switch e {
			case 'n':
				b = append(b, '\n')
			case 't':
				b = append(b, '\t')
			case 'r':
				b = append(b, '\r')
			case '"':
				b = append(b, '"')
			case '\\':
				b = append(b, '\\')
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			default:
				return nil, false // \u, \U, \e, \x: BurntSushi's
			}
		case c < 0x20 && c != '\t' || c == 0x7f:
			return nil, false
		default:
			if !plain {
				b = append(b, c)
			}
			p.advance()
		}
	}
	return nil, false
}

func (p *fastParser) fastLiteral() (any, bool) {
	p.advance()
	start := p.i
	for !p.eof() {
		c := p.peek()
		if c == '\'' {
			s := string(p.src[start:p.i])
			p.advance()
			return s, true
		}
		if c < 0x20 && c != '\t' || c == 0x7f {
			return nil, false
		}
		p.advance()
	}
	return nil, false
}

// fastMultiline reads """...""" (no escapes but \n, \t, \\, \", and no
// line-ending backslash) or ”'...”'. Anything subtler is BurntSushi's.
func (p *fastParser) fastMultiline(basic bool) (any, bool) {
	delim := `'''`
	if basic {
		delim = `"""`
	}
	for range 3 {
		p.advance()
	}
	if !p.eof() && p.peek() == '\n' {
		p.advance() // a newline right after the opening is trimmed
	} else if !p.eof() && p.peek() == '\r' && p.i+1 < len(p.src) && p.src[p.i+1] == '\n' {
		p.advance()
		p.advance()
	}
	var b []byte
	for !p.eof() {
		if strings.HasPrefix(string(p.src[p.i:min(p.i+3, len(p.src))]), delim) {
			if p.i+3 < len(p.src) && p.src[p.i+3] == delim[0] {
				return nil, false // quotes at the end: BurntSushi's
			}
			for range 3 {
				p.advance()
			}
			return string(b), true
		}
		c := p.peek()
		if basic && c == '\\' {
			p.advance()
			if p.eof() {
				return nil, false
			}
			switch e := p.peek(); e {
			case 'n':
				b = append(b, '\n')
			case 't':
				b = append(b, '\t')
			case '\\':
				b = append(b, '\\')
			case '"':
				b = append(b, '"')
			default:
				return nil, false
			}
			p.advance()
			continue
		}
		if c < 0x20 && c != '\t' && c != '\n' || c == 0x7f || c == '\r' {
			return nil, false
		}
		b = append(b, c)
		p.advance()
	}
	return nil, false
}

func (p *fastParser) fastArray(path string) (any, bool) {
	p.advance()
	out := []any{}
	for {
		p.skipSpace(true)
		if p.eof() {
			return nil, false
		}
		if p.peek() == ']' {
			p.advance()
			return out, true
		}
		p.recordElem(path, len(out), p.pos())
		elem := ""
		if c := p.peek(); c == '[' || c == '{' {
			elem = path + "[" + strconv.Itoa(len(out)) + "]"
		}
		v, ok := p.fastValue(elem)
		if !ok {
			return nil, false
		}
		out = append(out, v)
		p.skipSpace(true)
		switch p.peek() {
		case ',':
			p.advance()
		case ']':
		default:
			return nil, false
		}
	}
}

// fastInline reads a one-line inline table.
func (p *fastParser) fastInline(path string) (any, bool) {
	p.advance()
	t := map[string]any{}
	p.skipSpace(false)
	if p.peek() == '}' {
		p.advance()
		return t, true
	}
	for {
		p.skipSpace(false)
		if p.eof() || p.peek() == '\n' || p.peek() == '}' {
			return nil, false // newlines or a trailing comma: BurntSushi's
		}
		if !p.fastKeyValue(path, t, false) {
			return nil, false
		}
		p.skipSpace(false)
		switch p.peek() {
		case ',':
			p.advance()
		case '}':
			p.advance()
			return t, true
		default:
			return nil, false
		}
	}
}
