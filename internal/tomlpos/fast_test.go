package tomlpos

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/BurntSushi/toml"
)

// agree checks that whatever the fast path accepts, BurntSushi accepts
// with the same values, and that both index the same key positions.
func agree(t *testing.T, src []byte) (fast bool) {
	t.Helper()
	root, ix, ok := parseFast(src)
	if !ok {
		return false
	}
	var want map[string]any
	if _, err := toml.Decode(string(src), &want); err != nil {
		t.Fatalf("fast path accepted what BurntSushi rejects (%v):\n%s", err, src)
	}
	if want == nil {
		want = map[string]any{}
	}
	if !reflect.DeepEqual(root, want) {
		t.Fatalf("values differ:\nfast %#v\nref  %#v\n%s", root, want, src)
	}
	ref := NewIndex(src)
	ref.Lookup("") // positions are joined into paths on first use
	ix.Lookup("")
	if len(ref.keys) != len(ix.keys) {
		t.Fatalf("fast index has %d paths, scanner %d\n%s", len(ix.keys), len(ref.keys), src)
	}
	for k, p := range ref.keys {
		if q, ok := ix.keys[k]; !ok || q != p {
			t.Fatalf("position of %s: fast %v (%v), scanner %v\n%s", k, q, ok, p, src)
		}
	}
	return true
}

func TestFastParserAgreesOnEveryShippedFlow(t *testing.T) {
	var files []string
	for _, pattern := range []string{"../../testdata/*/*.toml", "../../testdata/*/*/*.toml", "../../*.toml"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	if len(files) < 10 {
		t.Fatalf("found only %d files", len(files))
	}
	fast := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if agree(t, src) {
			fast++
		}
	}
	if fast < len(files)*3/4 {
		t.Errorf("fast path took only %d of %d files", fast, len(files))
	}
}

func TestFastParserDefersWhatItDoesNotKnow(t *testing.T) {
	for _, src := range []string{
		"a = 1979-05-27\n",         // dates
		"a = 0x1f\n",               // hex
		"a = 1_000\n",              // underscores
		"a.b = 1\n",                // dotted keys
		"a = 1\na = 2\n",           // duplicate (an error: BurntSushi says so)
		"[a]\n[a]\n",               // table twice
		"a = \"\\u00e9\"\n",        // unicode escape
		"a = { b = 1,\n c = 2 }\n", // multi-line inline table
		"a = 1 b = 2\n",            // junk after a value
		"a = inf\n",
		"a = 01\n",
		"a = 1.\n",
		"a = \"x\r\n",
	} {
		if _, _, ok := parseFast([]byte(src)); ok {
			t.Errorf("fast path took %q", src)
		}
	}
}

func FuzzFastParser(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/*/*.toml")
	for _, file := range files {
		if src, err := os.ReadFile(file); err == nil {
			f.Add(src)
		}
	}
	f.Add([]byte("a = [1, 2.5, -3e2, \"x\", 'y', true, [ ], { b = \"c\" }]\n[t]\n[[u]]\nv = \"\"\"\nline\"\"\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		agree(t, src)
	})
}
