package applets

import (
	"reflect"
	"strings"
)

// ParamDoc describes one parameter of an applet, read from its Params
// struct: the name from the toml tag, the kind from the Go type, and the
// doc, allowed values and target kind from the doc, enum and target tags.
// Editors build their forms from it, so a new applet needs no editor code.
type ParamDoc struct {
	Name string `json:"name"`
	// Type is string, int, number, bool, duration, list, map or table.
	Type string `json:"type"`
	Doc  string `json:"doc,omitempty"`
	// Enum lists the allowed values when they are fixed.
	Enum []string `json:"enum,omitempty"`
	// Target says what the values (of a map) or the value names: "step"
	// for a step id, "flow" for a flow name.
	Target string `json:"target,omitempty"`
	// Fields are the parameters of each table of a table parameter.
	Fields []ParamDoc `json:"fields,omitempty"`
}

// AppletDoc describes an applet for editors.
type AppletDoc struct {
	Name     string     `json:"name"`
	Summary  string     `json:"summary"`
	Outcomes []string   `json:"outcomes"`
	Group    string     `json:"group,omitempty"`
	Params   []ParamDoc `json:"params"`
}

// Describe lists every applet of reg with its parameters, by name.
func Describe(reg *Registry) []AppletDoc {
	var out []AppletDoc
	for _, name := range reg.Names() {
		d, _ := reg.Lookup(name)
		doc := AppletDoc{Name: d.Name, Summary: d.Summary, Outcomes: append([]string{}, d.Outcomes...), Group: d.Group, Params: []ParamDoc{}}
		if d.Params != nil {
			doc.Params = describeStruct(reflect.TypeOf(d.Params))
		}
		out = append(out, doc)
	}
	return out
}

var (
	durationType  = reflect.TypeOf(Duration(0))
	tmplParamType = reflect.TypeOf(Template{})
	unmarshaler   = reflect.TypeOf((*interface{ UnmarshalTOMLValue(any) error })(nil)).Elem()
)

func describeStruct(t reflect.Type) []ParamDoc {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := []ParamDoc{}
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if sf.Anonymous && sf.Tag.Get("toml") == "" {
			out = append(out, describeStruct(sf.Type)...) // shared parameters (DialParams)
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		p := ParamDoc{Name: name, Doc: sf.Tag.Get("doc"), Target: sf.Tag.Get("target")}
		if e := sf.Tag.Get("enum"); e != "" {
			p.Enum = strings.Split(e, ",")
		}
		p.Type, p.Fields = paramType(sf.Type)
		out = append(out, p)
	}
	return out
}

// paramType names the kind of value t takes in a flow file.
func paramType(t reflect.Type) (string, []ParamDoc) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		return "duration", nil
	case t == tmplParamType:
		return "string", nil
	}
	switch t.Kind() {
	case reflect.String:
		return "string", nil
	case reflect.Bool:
		return "bool", nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int", nil
	case reflect.Float32, reflect.Float64:
		return "number", nil
	case reflect.Map:
		return "map", nil
	case reflect.Slice:
		el := t.Elem()
		for el.Kind() == reflect.Pointer {
			el = el.Elem()
		}
		// A list of structs is an array of tables, unless its items also
		// read a plain string (hunt targets): then one item a line does.
		if el.Kind() == reflect.Struct && el != tmplParamType && !reflect.PointerTo(el).Implements(unmarshaler) {
			return "table", describeStruct(el)
		}
		return "list", nil
	case reflect.Struct:
		return "table", describeStruct(t)
	}
	return "string", nil
}
