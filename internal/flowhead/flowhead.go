package flowhead

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/callflow/callflow/internal/tomlpos"
)

// Header is what a flow file says about which flow it is. Empty fields
// leave what the file wrote.
type Header struct {
	ID        string
	Name      string
	Status    string
	Workspace string
	// Numbers replace the file's numbers when SetNumbers (none: numbers = []).
	Numbers    []string
	SetNumbers bool
}

// keys in the order new ones are written.
var keys = []string{"id", "name", "status", "workspace", "numbers"}

func (h Header) value(key string) (string, bool) {
	switch key {
	case "id":
		return quote(h.ID), h.ID != ""
	case "name":
		return quote(h.Name), h.Name != ""
	case "status":
		return quote(h.Status), h.Status != ""
	case "workspace":
		return quote(h.Workspace), h.Workspace != ""
	case "numbers":
		q := make([]string, len(h.Numbers))
		for i, n := range h.Numbers {
			q[i] = quote(n)
		}
		return "[" + strings.Join(q, ", ") + "]", h.SetNumbers
	}
	return "", false
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// Set rewrites the top-level keys of the flow file src that h sets, in
// place, keeping every other line, comment and the rest of a rewritten
// line's comment; keys the file lacks are added after its name. src must
// be valid TOML.
func Set(src []byte, h Header) ([]byte, error) {
	if _, err := tomlpos.Parse(src); err != nil {
		return nil, fmt.Errorf("the flow does not parse: %w", err)
	}
	stmts, err := topLevel(src)
	if err != nil {
		return nil, err
	}
	var edits []edit
	found := map[string]bool{}
	insertAt := -1 // after the name's line; else before the first key or table
	for _, s := range stmts {
		if s.key == "name" {
			insertAt = lineEnd(src, s.end)
		}
		found[s.key] = true
		if v, ok := h.value(s.key); ok {
			edits = append(edits, edit{s.start, s.end, s.key + " = " + v})
		}
	}
	var added []string
	for _, k := range keys {
		if v, ok := h.value(k); ok && !found[k] {
			added = append(added, k+" = "+v+"\n")
		}
	}
	if len(added) > 0 {
		if insertAt < 0 {
			insertAt = firstStatement(src)
		}
		text := strings.Join(added, "")
		if insertAt > 0 && src[insertAt-1] != '\n' {
			text = "\n" + text // a name on the file's last line, without newline
		}
		edits = append(edits, edit{insertAt, insertAt, text})
	}
	var out bytes.Buffer
	at := 0
	// An insertion goes before a rewrite that starts where it does.
	sort.Slice(edits, func(i, j int) bool {
		if edits[i].start != edits[j].start {
			return edits[i].start < edits[j].start
		}
		return edits[i].end < edits[j].end
	})
	for _, e := range edits {
		out.Write(src[at:e.start])
		out.WriteString(e.text)
		at = e.end
	}
	out.Write(src[at:])
	res := out.Bytes()
	if err := verify(res, h); err != nil {
		return nil, err
	}
	return res, nil
}

// verify parses the result and checks that it says what h says.
func verify(src []byte, h Header) error {
	doc, err := tomlpos.Parse(src)
	if err != nil {
		return fmt.Errorf("rewriting the flow's header: %w", err)
	}
	for _, k := range keys {
		if _, ok := h.value(k); !ok {
			continue
		}
		var want any
		switch k {
		case "id":
			want = h.ID
		case "name":
			want = h.Name
		case "status":
			want = h.Status
		case "workspace":
			want = h.Workspace
		case "numbers":
			got, _ := doc.Root[k].([]any)
			if len(got) != len(h.Numbers) {
				return fmt.Errorf("rewriting the flow's header: numbers came out as %v", doc.Root[k])
			}
			for i := range got {
				if got[i] != h.Numbers[i] {
					return fmt.Errorf("rewriting the flow's header: numbers came out as %v", doc.Root[k])
				}
			}
			continue
		}
		if !reflect.DeepEqual(doc.Root[k], want) {
			return fmt.Errorf("rewriting the flow's header: %s came out as %v", k, doc.Root[k])
		}
	}
	return nil
}

// quote writes s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// statement is one top-level key = value: src[start:end] holds both.
type statement struct {
	key        string // "" for a dotted or unusual key
	start, end int
}

var errUnterminated = errors.New("flow header: a value does not end")

// topLevel lists the key = value statements before the first table
// header. The document is known to parse, so the scan only needs to find
// where each value ends: strings, arrays and inline tables may hold
// brackets, '#' and newlines.
func topLevel(src []byte) ([]statement, error) {
	var out []statement
	i := 0
	for i < len(src) {
		i = skipBlank(src, i)
		if i >= len(src) || src[i] == '[' {
			return out, nil // a table header: the top level is over
		}
		start := i
		eq := keyEnd(src, i)
		if eq < 0 {
			return nil, fmt.Errorf("flow header: no '=' after the key at byte %d", i)
		}
		key := strings.TrimSpace(string(src[start:eq]))
		if len(key) >= 2 && (key[0] == '"' || key[0] == '\'') && key[len(key)-1] == key[0] && !strings.ContainsAny(key[1:len(key)-1], `"'.\`) {
			key = key[1 : len(key)-1]
		}
		v := eq + 1
		for v < len(src) && (src[v] == ' ' || src[v] == '\t') {
			v++
		}
		end, err := valueEnd(src, v)
		if err != nil {
			return nil, err
		}
		out = append(out, statement{key: key, start: start, end: end})
		i = lineEnd(src, end)
	}
	return out, nil
}

// skipBlank skips whitespace, newlines and comments.
func skipBlank(src []byte, i int) int {
	for i < len(src) {
		switch src[i] {
		case ' ', '\t', '\r', '\n':
			i++
		case '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		default:
			return i
		}
	}
	return i
}

// keyEnd finds the '=' after a (possibly quoted, possibly dotted) key.
func keyEnd(src []byte, i int) int {
	for i < len(src) {
		switch src[i] {
		case '=':
			return i
		case '"', '\'':
			j, err := stringEnd(src, i)
			if err != nil {
				return -1
			}
			i = j
		case '\n':
			return -1
		default:
			i++
		}
	}
	return -1
}

// valueEnd returns the end of the value starting at i.
func valueEnd(src []byte, i int) (int, error) {
	depth := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '"' || c == '\'':
			j, err := stringEnd(src, i)
			if err != nil {
				return 0, err
			}
			i = j
			if depth == 0 {
				return i, nil
			}
		case c == '[' || c == '{':
			depth++
			i++
		case c == ']' || c == '}':
			depth--
			i++
			if depth == 0 {
				return i, nil
			}
		case c == '#' && depth > 0:
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case depth == 0 && (c == '#' || c == '\n' || c == '\r'):
			return trimRight(src, i), nil
		default:
			i++
		}
	}
	if depth > 0 {
		return 0, errUnterminated
	}
	return trimRight(src, i), nil
}

func trimRight(src []byte, i int) int {
	for i > 0 && (src[i-1] == ' ' || src[i-1] == '\t') {
		i--
	}
	return i
}

// stringEnd returns the index after the string starting at i.
func stringEnd(src []byte, i int) (int, error) {
	q := src[i]
	if bytes.HasPrefix(src[i:], []byte{q, q, q}) {
		delim := []byte{q, q, q}
		j := i + 3
		for j < len(src) {
			if q == '"' && src[j] == '\\' {
				j += 2
				continue
			}
			if bytes.HasPrefix(src[j:], delim) {
				j += 3
				// Up to two more quotes belong to the content.
				for k := 0; k < 2 && j < len(src) && src[j] == q; k++ {
					j++
				}
				return j, nil
			}
			j++
		}
		return 0, errUnterminated
	}
	j := i + 1
	for j < len(src) && src[j] != '\n' {
		if q == '"' && src[j] == '\\' {
			j += 2
			continue
		}
		if src[j] == q {
			return j + 1, nil
		}
		j++
	}
	return 0, errUnterminated
}

// lineEnd is the index after the newline that ends the line holding i.
func lineEnd(src []byte, i int) int {
	for i < len(src) && src[i] != '\n' {
		i++
	}
	if i < len(src) {
		i++
	}
	return i
}

// firstStatement is where the first key or table header starts, after
// the file's opening comments.
func firstStatement(src []byte) int {
	i := skipBlank(src, 0)
	// Back to the start of its line.
	for i > 0 && src[i-1] != '\n' {
		i--
	}
	return i
}
