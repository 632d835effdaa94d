package applets

import (
	"testing"
)

func TestDescribeReadsEveryAppletsParamsFromItsStruct(t *testing.T) {
	docs := Describe(Builtin())
	if len(docs) != len(Builtin().Names()) {
		t.Fatalf("%d applets described, %d registered", len(docs), len(Builtin().Names()))
	}
	byName := map[string]AppletDoc{}
	for _, d := range docs {
		byName[d.Name] = d
		if d.Summary == "" || d.Group == "" {
			t.Errorf("%s: summary %q group %q: both are shown in the palette", d.Name, d.Summary, d.Group)
		}
		for _, p := range d.Params {
			if p.Doc == "" {
				t.Errorf("%s.%s has no doc tag", d.Name, p.Name)
			}
		}
	}
	param := func(applet, name string) ParamDoc {
		for _, p := range byName[applet].Params {
			if p.Name == name {
				return p
			}
		}
		t.Fatalf("%s has no parameter %s", applet, name)
		return ParamDoc{}
	}
	for _, c := range []struct {
		applet, param, typ, target string
	}{
		{"menu", "keys", "map", "step"},
		{"menu", "timeout", "duration", ""},
		{"menu", "retries", "int", ""},
		{"menu", "prompt", "list", ""},
		{"greeting", "barge_in", "bool", ""},
		{"forward", "ring_timeout", "duration", ""}, // from the embedded DialParams
		{"transfer", "flow", "string", "flow"},
		{"bid", "buyers", "table", ""},
		{"bid", "floor", "number", ""},
		{"ring_in_order", "to", "list", ""}, // items are strings or tables
		{"email", "subject", "string", ""},
		{"schedule", "override", "table", ""},
	} {
		p := param(c.applet, c.param)
		if p.Type != c.typ || p.Target != c.target {
			t.Errorf("%s.%s: type %q target %q, want %q %q", c.applet, c.param, p.Type, p.Target, c.typ, c.target)
		}
	}
	if e := param("hangup", "cause").Enum; len(e) != 4 || e[0] != "normal" {
		t.Errorf("hangup cause enum: %v", e)
	}
	if f := param("zip_route", "routes").Fields; len(f) == 0 || f[0].Name != "name" {
		t.Errorf("zip_route routes fields: %+v", f)
	}
}
