package tomlpos

import (
	"strings"
	"testing"
)

func TestIndexFindsKeysWithArrayIndices(t *testing.T) {
	src := `name = "x"
numbers = ["+1555", "+1666"]

[settings]
record = true

[[steps]]
id = "a"
on = { timeout = "b", "odd key" = "c" }

[[steps]]
id = "b"
keys = { 1 = "a" }
"pass word" = 1
'lit.key' = 2
esc = "multi \"quoted\" ]"
multi = """
x = 1
"""

[steps.on]
busy = "a"

[[steps.rules]]
when = 1
`
	ix := NewIndex([]byte(src))
	cases := map[string]Pos{
		"name":                   {1, 1},
		"numbers[1]":             {2, 21},
		"settings.record":        {5, 1},
		"steps[0].id":            {8, 1},
		"steps[0].on.timeout":    {9, 8},
		`steps[0].on."odd key"`:  {9, 23},
		"steps[1].keys.1":        {13, 10},
		`steps[1]."pass word"`:   {14, 1},
		`steps[1]."lit.key"`:     {15, 1},
		"steps[1].multi":         {17, 1},
		"steps[1].on.busy":       {22, 1},
		"steps[1].rules[0].when": {25, 1},
	}
	checkPositions(t, ix, cases)
	if _, ok := ix.Lookup("steps[1].x"); ok {
		t.Errorf("key inside a multi-line string was indexed")
	}
}

func checkPositions(t *testing.T, ix *Index, want map[string]Pos) {
	t.Helper()
	for path, w := range want {
		if got, ok := ix.Lookup(path); !ok || got != w {
			t.Errorf("%s: got %v (found %v), want %v", path, got, ok, w)
		}
	}
}

func TestDecodeReportsUnknownKeysAndTypesWithPositions(t *testing.T) {
	src := "[a]\nname = 1\nnmae = \"x\"\n\"odd key\" = 2\nwait = \"5 seconds\"\n"
	doc, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		A struct {
			Name string   `toml:"name"`
			Wait Duration `toml:"wait"`
		} `toml:"a"`
	}
	errs := doc.Decode("", doc.Root, &v)
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		"2:1: name: want a string, got an integer",
		`3:1: unknown key "nmae" (did you mean "name"?)`,
		`4:1: unknown key "odd key"`,
		`5:1: wait: bad duration "5 seconds" (write it like "5s", "1m30s")`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseSyntaxErrorHasPosition(t *testing.T) {
	_, err := Parse([]byte("a = 1\nb = = 2\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "2:") {
		t.Fatalf("got %v, want an error on line 2", err)
	}
}

func TestDurationRejectsOverflow(t *testing.T) {
	var d Duration
	if err := d.UnmarshalTOMLValue(int64(18446744074)); err == nil {
		t.Fatalf("huge duration accepted as %v", d)
	}
}

func TestDeepNestingIsRefusedCheaply(t *testing.T) {
	for _, src := range []string{
		"a = " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n",
		"a = " + strings.Repeat("{b=", 50000) + "1" + strings.Repeat("}", 50000) + "\n",
	} {
		_, err := Parse([]byte(src))
		if err == nil || !strings.Contains(err.Error(), "nest deeper than") || !strings.HasPrefix(err.Error(), "1:") {
			t.Errorf("got %v", err)
		}
	}
	ok := "a = [[1, 2], [3, [4, {b = \"[[[[\"}]]]\n# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\ns = '''\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n'''\n"
	if _, err := Parse([]byte(ok)); err != nil {
		t.Errorf("brackets in strings and comments counted: %v", err)
	}
}
