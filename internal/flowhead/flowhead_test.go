package flowhead

import (
	"reflect"
	"strings"
	"testing"

	"github.com/callflow/callflow/internal/tomlpos"
)

func TestSetRewritesTheHeaderInPlace(t *testing.T) {
	cases := []struct {
		name string
		src  string
		h    Header
		want string
	}{
		{
			name: "replaces keys, keeps comments",
			src: `# Acme's main line
name = "Acme"   # shown on the web
numbers = [
  "+15550001111",  # main
  "+15550002222",
]
status = "published"

[[steps]]
applet = "hangup"
`,
			h: Header{ID: "f1", Name: "Copy of Acme", Status: "draft", SetNumbers: true},
			want: `# Acme's main line
name = "Copy of Acme"   # shown on the web
id = "f1"
numbers = []
status = "draft"

[[steps]]
applet = "hangup"
`,
		},
		{
			name: "adds what is missing after the name",
			src:  "name = \"Acme\"\n[[steps]]\napplet = \"hangup\"\n",
			h:    Header{ID: "f2", Status: "draft", Workspace: "acme", Numbers: []string{"+15550001111"}, SetNumbers: true},
			want: "name = \"Acme\"\nid = \"f2\"\nstatus = \"draft\"\nworkspace = \"acme\"\nnumbers = [\"+15550001111\"]\n[[steps]]\napplet = \"hangup\"\n",
		},
		{
			name: "no name: before the first key, after the opening comment",
			src:  "# hello\n\ndescription = \"x\"\n[[steps]]\napplet = \"hangup\"\n",
			h:    Header{ID: "f3", Name: "Acme"},
			want: "# hello\n\nid = \"f3\"\nname = \"Acme\"\ndescription = \"x\"\n[[steps]]\napplet = \"hangup\"\n",
		},
		{
			name: "strings that look like keys and brackets",
			src: `description = """
name = "not this"
[[steps]] nor this ]"""
'name' = "a [#] \" b" # c
[settings]
name = "not the flow's"
`,
			h: Header{Name: "Acme \"East\" \\ ☎"},
			want: `description = """
name = "not this"
[[steps]] nor this ]"""
name = "Acme \"East\" \\ ☎" # c
[settings]
name = "not the flow's"
`,
		},
		{
			name: "the last line without a newline",
			src:  `name = "Acme"`,
			h:    Header{ID: "f4"},
			want: "name = \"Acme\"\nid = \"f4\"\n",
		},
		{
			name: "nothing to set",
			src:  "name = \"Acme\"\n",
			h:    Header{},
			want: "name = \"Acme\"\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Set([]byte(c.src), c.h)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

func TestSetRefusesWhatDoesNotParse(t *testing.T) {
	_, err := Set([]byte("name = \"Acme\nstatus = \n"), Header{Status: "draft"})
	if err == nil || !strings.Contains(err.Error(), "does not parse") {
		t.Errorf("error %v", err)
	}
}

func TestQuoteEscapesControlCharacters(t *testing.T) {
	got, err := Set([]byte("name = \"x\"\n"), Header{Name: "tab\there\x01"})
	if err != nil || !strings.Contains(string(got), `"tab\there\u0001"`) {
		t.Errorf("%s, %v", got, err)
	}
}

// Whatever a parseable file holds, Set either refuses or changes nothing
// but the header: every other key, tables included, reads the same.
func FuzzSetChangesOnlyTheHeader(f *testing.F) {
	f.Add("name = \"Acme\"\nnumbers = [\"+1\", # x\n]\n[[steps]]\napplet = \"hangup\"\n")
	f.Add("a.b = 1\n'name' = '''x\ny'''\n")
	f.Add("# c\n\n[settings]\nname = 1\n")
	f.Fuzz(func(t *testing.T, src string) {
		before, err := tomlpos.Parse([]byte(src))
		if err != nil {
			return
		}
		out, err := Set([]byte(src), Header{ID: "f1", Name: "N", SetNumbers: true, Numbers: []string{"+1"}})
		if err != nil {
			return
		}
		after, err := tomlpos.Parse(out)
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", src, out, err)
		}
		for k, v := range before.Root {
			if k == "id" || k == "name" || k == "numbers" {
				continue
			}
			if !reflect.DeepEqual(after.Root[k], v) {
				t.Errorf("%q -> %q: %s changed from %v to %v", src, out, k, v, after.Root[k])
			}
		}
	})
}
