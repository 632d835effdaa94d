package tomlpos

import (
	"strconv"
	"strings"
	"sync"
)

// Pos is a place in a TOML document: 1-based line and byte column.
type Pos struct {
	Line int
	Col  int
}

// IsValid reports whether the position points somewhere.
func (p Pos) IsValid() bool { return p.Line > 0 }

// Index maps every key of a document to where it was written. Paths use
// dots between keys and [i] for array elements, so the third step's
// `on.timeout` is "steps[2].on.timeout".
//
// BurntSushi/toml keeps key positions private and files every element of an
// array of tables under one key, so it cannot tell us which step an unknown
// key belongs to; this scanner can. It only has to find keys: values are
// skipped, and anything it does not understand ends the scan early (the
// decoder reports syntax errors itself).
type Index struct {
	// Positions are noted as (parent, key) pairs and joined into paths
	// only when someone asks: most documents are never asked, and the
	// string joins were a large part of loading ten thousand flows.
	pending []entry
	once    sync.Once
	keys    map[string]Pos
}

type entry struct {
	parent string
	key    string // with hasKey: a key of parent
	hasKey bool
	elem   int // without hasKey, >= 0: an element of parent; else parent is the path
	pos    Pos
}

func (ix *Index) build() {
	ix.keys = make(map[string]Pos, len(ix.pending))
	for _, e := range ix.pending {
		path := e.parent
		switch {
		case e.hasKey:
			path = joinPath(e.parent, e.key)
		case e.elem >= 0:
			path = e.parent + "[" + strconv.Itoa(e.elem) + "]"
		}
		if _, ok := ix.keys[path]; !ok {
			ix.keys[path] = e.pos
		}
	}
	ix.pending = nil
}

// Lookup returns where path was written and whether it was found.
func (ix *Index) Lookup(path string) (Pos, bool) {
	if ix == nil {
		return Pos{}, false
	}
	ix.once.Do(ix.build)
	p, ok := ix.keys[path]
	return p, ok
}

// Nearest returns the position of path, or of its closest written ancestor.
func (ix *Index) Nearest(path string) Pos {
	for path != "" {
		if p, ok := ix.Lookup(path); ok {
			return p
		}
		path = parentPath(path)
	}
	return Pos{Line: 1, Col: 1}
}

func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// NewIndex scans src.
func NewIndex(src []byte) *Index {
	s := &scanner{src: src, line: 1, lineStart: 0, ix: &Index{}, aot: map[string]int{}}
	s.run()
	return s.ix
}

type scanner struct {
	src       []byte
	i         int
	line      int
	lineStart int
	ix        *Index
	aot       map[string]int // array-of-tables path (resolved) -> current index
	prefix    string         // current table, resolved
}

func (s *scanner) pos() Pos { return Pos{Line: s.line, Col: s.i - s.lineStart + 1} }

func (s *scanner) eof() bool { return s.i >= len(s.src) }

func (s *scanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

func (s *scanner) advance() {
	if s.src[s.i] == '\n' {
		s.line++
		s.lineStart = s.i + 1
	}
	s.i++
}

// skipSpace skips blanks, and newlines and comments when multiline is set.
func (s *scanner) skipSpace(multiline bool) {
	for !s.eof() {
		c := s.peek()
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			s.advance()
		case c == '\n' && multiline:
			s.advance()
		case c == '#' && multiline:
			s.skipComment()
		default:
			return
		}
	}
}

func (s *scanner) skipComment() {
	for !s.eof() && s.peek() != '\n' {
		s.advance()
	}
}

// join appends key the way Decode writes paths (quoted when needed).
func (s *scanner) join(prefix, key string) string { return joinPath(prefix, key) }

func (s *scanner) run() {
	defer func() { _ = recover() }() // a malformed document just ends the index
	for {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		switch c := s.peek(); {
		case c == '[':
			if !s.header() {
				return
			}
		default:
			if !s.keyValue(s.prefix) {
				return
			}
		}
	}
}

func (s *scanner) header() bool {
	start := s.pos() // a table is reported at its opening bracket
	s.advance()
	array := false
	if s.peek() == '[' {
		array = true
		s.advance()
	}
	s.skipSpace(false)
	parts, ok := s.key()
	if !ok {
		return false
	}
	s.skipSpace(false)
	if s.peek() != ']' {
		return false
	}
	s.advance()
	if array {
		if s.peek() != ']' {
			return false
		}
		s.advance()
	}
	// Resolve every segment but the last against arrays of tables seen so far.
	resolved := ""
	for k, p := range parts {
		resolved = s.join(resolved, p)
		if k == len(parts)-1 {
			break
		}
		if n, ok := s.aot[resolved]; ok {
			resolved += "[" + strconv.Itoa(n) + "]"
		}
	}
	if array {
		n, seen := s.aot[resolved]
		if seen {
			n++
		}
		s.aot[resolved] = n
		if !seen {
			s.record(resolved, start)
		}
		resolved += "[" + strconv.Itoa(n) + "]"
	}
	s.record(resolved, start)
	s.prefix = resolved
	return true
}

func (s *scanner) record(path string, p Pos) {
	s.ix.pending = append(s.ix.pending, entry{parent: path, elem: -1, pos: p})
}

func (s *scanner) recordKey(parent, key string, p Pos) {
	s.ix.pending = append(s.ix.pending, entry{parent: parent, key: key, hasKey: true, elem: -1, pos: p})
}

func (s *scanner) recordElem(parent string, i int, p Pos) {
	s.ix.pending = append(s.ix.pending, entry{parent: parent, elem: i, pos: p})
}

// key reads a possibly dotted, possibly quoted key.
func (s *scanner) key() ([]string, bool) {
	var parts []string
	for {
		s.skipSpace(false)
		var part string
		switch s.peek() {
		case '"':
			str, ok := s.basicString()
			if !ok {
				return nil, false
			}
			part = str
		case '\'':
			str, ok := s.literalString()
			if !ok {
				return nil, false
			}
			part = str
		default:
			start := s.i
			for !s.eof() {
				c := s.peek()
				if c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
					s.advance()
					continue
				}
				break
			}
			if s.i == start {
				return nil, false
			}
			part = string(s.src[start:s.i])
		}
		parts = append(parts, part)
		s.skipSpace(false)
		if s.peek() != '.' {
			return parts, true
		}
		s.advance()
	}
}

func (s *scanner) keyValue(prefix string) bool {
	start := s.pos()
	parts, ok := s.key()
	if !ok {
		return false
	}
	path := prefix
	for _, p := range parts {
		path = s.join(path, p)
		s.record(path, start)
	}
	s.skipSpace(false)
	if s.peek() != '=' {
		return false
	}
	s.advance()
	s.skipSpace(false)
	return s.value(path)
}

func (s *scanner) value(path string) bool {
	switch s.peek() {
	case '"':
		if strings.HasPrefix(string(s.src[s.i:min(s.i+3, len(s.src))]), `"""`) {
			return s.multiline(`"""`)
		}
		_, ok := s.basicString()
		return ok
	case '\'':
		if strings.HasPrefix(string(s.src[s.i:min(s.i+3, len(s.src))]), `'''`) {
			return s.multiline(`'''`)
		}
		_, ok := s.literalString()
		return ok
	case '[':
		return s.array(path)
	case '{':
		return s.inlineTable(path)
	default:
		// number, bool, date: runs to a delimiter
		for !s.eof() {
			c := s.peek()
			if c == ',' || c == ']' || c == '}' || c == '\n' || c == '#' {
				break
			}
			s.advance()
		}
		return true
	}
}

func (s *scanner) array(path string) bool {
	s.advance() // [
	n := 0
	for {
		s.skipSpace(true)
		if s.eof() {
			return false
		}
		if s.peek() == ']' {
			s.advance()
			return true
		}
		elem := path + "[" + strconv.Itoa(n) + "]"
		s.record(elem, s.pos())
		if !s.value(elem) {
			return false
		}
		n++
		s.skipSpace(true)
		if s.peek() == ',' {
			s.advance()
		}
	}
}

func (s *scanner) inlineTable(path string) bool {
	s.advance() // {
	for {
		s.skipSpace(true)
		if s.eof() {
			return false
		}
		if s.peek() == '}' {
			s.advance()
			return true
		}
		if !s.keyValue(path) {
			return false
		}
		s.skipSpace(true)
		if s.peek() == ',' {
			s.advance()
		}
	}
}

func (s *scanner) basicString() (string, bool) {
	start := s.i
	s.advance() // "
	for !s.eof() {
		switch s.peek() {
		case '\\':
			s.advance()
			if s.eof() {
				return "", false
			}
			s.advance()
		case '"':
			s.advance()
			raw := string(s.src[start:s.i])
			if str, err := strconv.Unquote(raw); err == nil {
				return str, true
			}
			return raw[1 : len(raw)-1], true
		case '\n':
			return "", false
		default:
			s.advance()
		}
	}
	return "", false
}

func (s *scanner) literalString() (string, bool) {
	s.advance() // '
	start := s.i
	for !s.eof() {
		switch s.peek() {
		case '\'':
			str := string(s.src[start:s.i])
			s.advance()
			return str, true
		case '\n':
			return "", false
		}
		s.advance()
	}
	return "", false
}

func (s *scanner) multiline(delim string) bool {
	for range 3 {
		s.advance()
	}
	for !s.eof() {
		if delim == `"""` && s.peek() == '\\' {
			s.advance()
			if !s.eof() {
				s.advance()
			}
			continue
		}
		if strings.HasPrefix(string(s.src[s.i:min(s.i+3, len(s.src))]), delim) {
			for range 3 {
				s.advance()
			}
			// up to two more quotes may belong to the string
			for !s.eof() && s.peek() == delim[0] {
				s.advance()
			}
			return true
		}
		s.advance()
	}
	return false
}
