package tomlpos

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Documents beyond the plain ones flows are made of: values come out as
// TOML says, and what TOML forbids is a syntax error where it was written.
func TestParseFollowsTOML(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want map[string]any // nil: want an error
		err  string         // "line:col: text"
	}{
		{"hex", "a = 0x1f\n", map[string]any{"a": int64(31)}, ""},
		{"underscores", "a = 1_000\n", map[string]any{"a": int64(1000)}, ""},
		{"dotted keys", "a.b = 1\n", map[string]any{"a": map[string]any{"b": int64(1)}}, ""},
		{"unicode escape", "a = \"\\u00e9\"\n", map[string]any{"a": "é"}, ""},
		{"multi-line inline table", "a = { b = 1,\n c = 2 }\n", map[string]any{"a": map[string]any{"b": int64(1), "c": int64(2)}}, ""},
		{"inf", "a = inf\n", map[string]any{"a": math.Inf(1)}, ""},
		{"quotes closing a multi-line string", "a = \"\"\"\nx\"\"\"\"\"\n", map[string]any{"a": "x\"\""}, ""},
		{"duplicate key", "a = 1\na = 2\n", nil, "2:1: syntax: key a is already defined"},
		{"table twice", "[a]\n[a]\n", nil, "2:2: syntax: table a already exists"},
		{"table after dotted keys made it", "a.b = 1\n[a]\nc = 2\n", nil, "2:2: syntax:"},
		{"junk after a value", "a = 1 b = 2\n", nil, "1:7: syntax:"},
		{"leading zero", "a = 01\n", nil, "1:5: syntax: integers cannot have leading zeroes"},
		{"dot without decimals", "a = 1.\n", nil, "1:7: syntax: decimal point must be followed by a digit"},
		{"carriage return in a string", "a = \"x\r\n", nil, "1:"},
		{"integer too large", "a = 9223372036854775808\n", nil, "1:5: syntax:"},
		{"unclosed array", "a = [1,\n", nil, "1:"},
		{"NUL", "a = \"Ma\x00in\"\n", nil, "1:8: syntax:"},
		{"invalid UTF-8", "a = \"Ma\xff\xfein\"\n", nil, "1:8: syntax:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, err := Parse([]byte(c.src))
			if c.want == nil {
				if err == nil {
					t.Fatalf("accepted: %#v", doc.Root)
				}
				if _, ok := err.(*Error); !ok || !strings.HasPrefix(err.Error(), c.err) {
					t.Errorf("got %v (%T), want it to start with %q", err, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(doc.Root, c.want) {
				t.Errorf("got %#v, want %#v", doc.Root, c.want)
			}
		})
	}
}

// Local date-times have no zone: they decode as time.Time in a marker zone
// that a step reads in its own time zone.
func TestLocalDateTimesDecodeInMarkerZones(t *testing.T) {
	doc, err := Parse([]byte("dt = 1979-05-27T07:32:00\nd = 1979-05-27\nt = 07:32:00.5\no = 1979-05-27T07:32:00-05:00\nlist = [1979-05-27]\nany = 1979-05-27\n"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		DT   time.Time   `toml:"dt"`
		D    time.Time   `toml:"d"`
		T    time.Time   `toml:"t"`
		O    time.Time   `toml:"o"`
		List []time.Time `toml:"list"`
		Any  any         `toml:"any"`
	}
	if errs := doc.Decode("", doc.Root, &v); len(errs) > 0 {
		t.Fatal(errs)
	}
	est := time.FixedZone("", -5*3600)
	for _, c := range []struct {
		got, want time.Time
		zone      string
	}{
		{v.DT, time.Date(1979, 5, 27, 7, 32, 0, 0, time.UTC), "datetime-local"},
		{v.D, time.Date(1979, 5, 27, 0, 0, 0, 0, time.UTC), "date-local"},
		{v.T, time.Date(0, 1, 1, 7, 32, 0, 5e8, time.UTC), "time-local"},
		{v.List[0], time.Date(1979, 5, 27, 0, 0, 0, 0, time.UTC), "date-local"},
	} {
		if c.got.Location().String() != c.zone || !c.got.Equal(c.want) {
			t.Errorf("got %v in %q, want %v in %q", c.got, c.got.Location(), c.want, c.zone)
		}
	}
	if !v.O.Equal(time.Date(1979, 5, 27, 7, 32, 0, 0, est)) {
		t.Errorf("offset date-time: got %v", v.O)
	}
	if d, ok := v.Any.(time.Time); !ok || d.Location().String() != "date-local" {
		t.Errorf("a date into any: got %#v", v.Any)
	}
	var wrong struct {
		D string `toml:"d"`
	}
	errs := doc.Decode("", map[string]any{"d": doc.Root["d"]}, &wrong)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "want a string, got a date-time") {
		t.Errorf("got %v", errs)
	}
}

func TestIndexFindsElementsOfArraysAndInlineTables(t *testing.T) {
	src := `a = [ [1, 2], [ ], # a comment, [with brackets]
  [ [ "x" ], { k = [3] } ], ]
b = {c.d = 1, e = [{f = 2}]}
[ t . u ]
v = [
  1,

  # between elements
  2,
]
[[ w ]]
x = 1
[[ w ]]
'y' = { z = 1 }
`
	ix := NewIndex([]byte(src))
	cases := map[string]Pos{
		"a":            {1, 1},
		"a[0]":         {1, 7},
		"a[0][1]":      {1, 11},
		"a[1]":         {1, 15},
		"a[2]":         {2, 3},
		"a[2][0]":      {2, 5},
		"a[2][0][0]":   {2, 7},
		"a[2][1]":      {2, 14},
		"a[2][1].k":    {2, 16},
		"a[2][1].k[0]": {2, 21},
		"b.c":          {3, 6},
		"b.c.d":        {3, 6},
		"b.e[0].f":     {3, 21},
		"t":            {4, 1},
		"t.u":          {4, 1},
		"t.u.v":        {5, 1},
		"t.u.v[1]":     {9, 3},
		"w":            {11, 1},
		"w[0].x":       {12, 1},
		"w[1]":         {13, 1},
		"w[1].y.z":     {14, 9},
	}
	checkPositions(t, ix, cases)
}

// coversValues checks that every table, key and element Parse decoded from
// src has a position, inside the document, where something was written.
func coversValues(t *testing.T, src []byte, doc *Document) {
	t.Helper()
	lines := bytes.Split(src, []byte("\n"))
	var walk func(path string, v any)
	walk = func(path string, v any) {
		if path != "" {
			p, ok := doc.Index.Lookup(path)
			if !ok {
				t.Fatalf("%s has no position\n%s", path, src)
			}
			if p.Line < 1 || p.Line > len(lines) || p.Col < 1 || p.Col > len(lines[p.Line-1]) {
				t.Fatalf("%s at %v, outside the document\n%s", path, p, src)
			}
			if c := lines[p.Line-1][p.Col-1]; bytes.IndexByte([]byte(" \t\r,#=]}"), c) >= 0 {
				t.Fatalf("%s at %v points at %q\n%s", path, p, c, src)
			}
		}
		switch x := v.(type) {
		case map[string]any:
			for k, item := range x {
				walk(joinPath(path, k), item)
			}
		case []any:
			for i, item := range x {
				walk(path+"["+strconv.Itoa(i)+"]", item)
			}
		}
	}
	walk("", doc.Root)
}

func TestIndexCoversEveryKeyOfEveryShippedFile(t *testing.T) {
	var files []string
	for _, pattern := range []string{"../../testdata/*/*.toml", "../../testdata/*/*/*.toml", "../../*.toml"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	if len(files) < 10 {
		t.Fatalf("found only %d files", len(files))
	}
	parsed := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := Parse(src)
		if err != nil {
			continue // testdata/lint/syntax.toml
		}
		parsed++
		coversValues(t, src, doc)
	}
	if parsed < len(files)-2 {
		t.Errorf("only %d of %d files parsed", parsed, len(files))
	}
}

// Any bytes: Parse never panics, refuses with a position, and indexes
// everything it accepts.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/*/*.toml")
	for _, file := range files {
		if src, err := os.ReadFile(file); err == nil {
			f.Add(src)
		}
	}
	f.Add([]byte("a = [1, 2.5, -3e2, \"x\", 'y', true, [ ], { b = \"c\" }]\n[t]\n[[u]]\nv = \"\"\"\nline\"\"\"\n"))
	f.Add([]byte("a = [[1, [2]], {b.c = [3, {d = 4}]}] # x\n[ e . 'f' ]\n[[ g ]]\n[g.h]\ni = 1979-05-27\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		doc, err := Parse(src)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Pos.Line < 1 || e.Pos.Col < 1 {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		coversValues(t, src, doc)
	})
}
