package tomlpos

import (
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/pelletier/go-toml/v2/unstable"
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
// The decoded values cannot say where they were written, and an array of
// tables needs the document's order to tell which step a key belongs to,
// so the index walks the parser's syntax tree. It does so the first time
// a position is asked for: most documents never are, and walking every
// flow of ten thousand was a fifth of loading them.
type Index struct {
	src  []byte
	once sync.Once
	keys map[string]Pos
}

// NewIndex indexes src. A document the parser rejects is indexed up to its
// first error.
func NewIndex(src []byte) *Index { return &Index{src: src} }

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

func (ix *Index) build() {
	w := &walker{src: ix.src, keys: map[string]Pos{}, aot: map[string]int{}, lines: []int{0}}
	for i, c := range ix.src {
		if c == '\n' {
			w.lines = append(w.lines, i+1)
		}
	}
	var p unstable.Parser
	p.Reset(ix.src)
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			w.header(e)
		case unstable.KeyValue:
			w.keyValue(w.table, e)
		}
	}
	ix.keys, ix.src = w.keys, nil
}

// walker records the positions of one document's keys, resolving paths
// the way Decode writes them.
type walker struct {
	src   []byte
	lines []int // offset where each line starts
	keys  map[string]Pos
	aot   map[string]int // array of tables (resolved path) -> its last index
	table string         // the current table, resolved
}

func (w *walker) pos(off int) Pos {
	line := sort.SearchInts(w.lines, off+1) - 1
	return Pos{Line: line + 1, Col: off - w.lines[line] + 1}
}

// record keeps the first place a path was written: a table made by dotted
// keys is where it was first mentioned.
func (w *walker) record(path string, off int) {
	if _, ok := w.keys[path]; !ok {
		w.keys[path] = w.pos(off)
	}
}

// header handles [a.b] and [[a.b]]; a table is reported at its opening
// bracket.
func (w *walker) header(e *unstable.Node) {
	var parts []string
	start := -1
	for it := e.Key(); it.Next(); {
		k := it.Node()
		if start < 0 {
			start = int(k.Raw.Offset)
		}
		parts = append(parts, string(k.Data))
	}
	for start > 0 && w.src[start-1] != '[' { // blanks after the bracket
		start--
	}
	start--
	if e.Kind == unstable.ArrayTable {
		start--
	}
	// Every part but the last names the newest element of an array of
	// tables, if it is one.
	resolved := ""
	for i, part := range parts {
		resolved = joinPath(resolved, part)
		if i == len(parts)-1 {
			break
		}
		if n, ok := w.aot[resolved]; ok {
			resolved += "[" + strconv.Itoa(n) + "]"
		}
		w.record(resolved, start) // [a.b] makes a, if nothing did before
	}
	if e.Kind == unstable.ArrayTable {
		n, seen := w.aot[resolved]
		if seen {
			n++
		}
		w.aot[resolved] = n
		w.record(resolved, start)
		resolved += "[" + strconv.Itoa(n) + "]"
	}
	w.record(resolved, start)
	w.table = resolved
}

// keyValue records a (possibly dotted) key and what its value holds, and
// returns the offset just past the value.
func (w *walker) keyValue(table string, e *unstable.Node) int {
	path := table
	start, end := -1, 0
	for it := e.Key(); it.Next(); {
		k := it.Node()
		if start < 0 {
			start = int(k.Raw.Offset)
		}
		end = int(k.Raw.Offset + k.Raw.Length)
		path = joinPath(path, string(k.Data))
		w.record(path, start) // a.b = 1 writes a and a.b here
	}
	return w.value(path, e.Value(), w.skip(end))
}

// value records the elements of arrays and the keys of inline tables in v,
// which starts at offset start, and returns the offset just past it. The
// parser gives every scalar and inline table its place; arrays it does not,
// so their brackets are found from their neighbours.
func (w *walker) value(path string, v *unstable.Node, start int) int {
	switch v.Kind {
	case unstable.Array:
		next := start + 1
		i := 0
		for it := v.Children(); it.Next(); {
			n := it.Node()
			if n.Kind == unstable.Comment {
				continue
			}
			at := w.skip(next)
			elem := path + "[" + strconv.Itoa(i) + "]"
			w.record(elem, at)
			next = w.value(elem, n, at)
			i++
		}
		return w.skip(next) + 1 // past ']'
	case unstable.InlineTable:
		next := int(v.Raw.Offset) + 1
		for it := v.Children(); it.Next(); {
			if n := it.Node(); n.Kind == unstable.KeyValue {
				next = w.keyValue(path, n)
			}
		}
		return w.skip(next) + 1 // past '}'
	default:
		return int(v.Raw.Offset + v.Raw.Length)
	}
}

// skip passes what may stand between a key and its value or between two
// elements: blanks, newlines, comments, '=' and ','.
func (w *walker) skip(off int) int {
	for off < len(w.src) {
		switch w.src[off] {
		case ' ', '\t', '\r', '\n', '=', ',':
			off++
		case '#':
			for off < len(w.src) && w.src[off] != '\n' {
				off++
			}
		default:
			return off
		}
	}
	return off
}
