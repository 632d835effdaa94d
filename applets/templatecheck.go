package applets

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"text/template/parse"

	"github.com/callflow/callflow/internal/tomlpos"
)

// fieldCheck walks a parsed template with the type dot has at each point,
// so that a field a template cannot see ({{.Callr}}) is an error when the
// flow loads rather than a failed text or email on a call. A nil type is
// one the check cannot know (what a function returns): nothing is checked
// beneath it, as text/template would only find out at run time.
type fieldCheck struct {
	vars []tmplVar // declared variables, innermost last
}

type tmplVar struct {
	name string
	t    reflect.Type
}

var templateDataType = reflect.TypeOf(TemplateData{})

// checkFields reports the first field root does not have.
func checkFields(root *parse.ListNode) error {
	c := &fieldCheck{vars: []tmplVar{{"$", templateDataType}}}
	return c.list(root, templateDataType)
}

func (c *fieldCheck) list(l *parse.ListNode, dot reflect.Type) error {
	if l == nil {
		return nil
	}
	mark := len(c.vars) // variables live until the end of their list
	defer func() { c.vars = c.vars[:mark] }()
	for _, n := range l.Nodes {
		var err error
		switch n := n.(type) {
		case *parse.ActionNode:
			_, err = c.pipe(n.Pipe, dot)
		case *parse.IfNode:
			err = c.branch(&n.BranchNode, dot, false)
		case *parse.WithNode:
			err = c.branch(&n.BranchNode, dot, true)
		case *parse.RangeNode:
			err = c.branch(&n.BranchNode, dot, true)
		case *parse.TemplateNode:
			err = fmt.Errorf("%s: a flow template cannot include another template", n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// branch checks if, with and range: with and range move dot into what
// their pipeline gives; else keeps the outer dot.
func (c *fieldCheck) branch(b *parse.BranchNode, dot reflect.Type, movesDot bool) error {
	mark := len(c.vars) // the pipeline's variables reach {{end}}
	defer func() { c.vars = c.vars[:mark] }()
	t, err := c.pipe(b.Pipe, dot)
	if err != nil {
		return err
	}
	inner := dot
	if movesDot {
		inner = t
	}
	if b.NodeType == parse.NodeRange {
		key, elem := rangeTypes(t)
		inner = elem
		switch decl := c.vars[mark:]; len(decl) {
		case 1:
			decl[0].t = elem
		case 2:
			decl[0].t, decl[1].t = key, elem
		}
	}
	if err := c.list(b.List, inner); err != nil {
		return err
	}
	return c.list(b.ElseList, dot)
}

func rangeTypes(t reflect.Type) (key, elem reflect.Type) {
	if t == nil {
		return nil, nil
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return reflect.TypeOf(0), t.Elem()
	case reflect.Map:
		return t.Key(), t.Elem()
	case reflect.Int:
		return t, t
	}
	return nil, nil
}

// pipe returns the type the pipeline gives and declares its variables.
func (c *fieldCheck) pipe(p *parse.PipeNode, dot reflect.Type) (reflect.Type, error) {
	if p == nil {
		return nil, nil
	}
	var t reflect.Type
	for _, cmd := range p.Cmds {
		var err error
		if t, err = c.command(cmd, dot); err != nil {
			return nil, err
		}
	}
	if !p.IsAssign {
		for _, v := range p.Decl {
			c.vars = append(c.vars, tmplVar{v.Ident[0], t})
		}
	}
	return t, nil
}

func (c *fieldCheck) command(cmd *parse.CommandNode, dot reflect.Type) (reflect.Type, error) {
	var first reflect.Type
	for i, arg := range cmd.Args {
		t, err := c.arg(arg, dot)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			first = t
		}
	}
	return first, nil
}

func (c *fieldCheck) arg(n parse.Node, dot reflect.Type) (reflect.Type, error) {
	switch n := n.(type) {
	case *parse.DotNode:
		return dot, nil
	case *parse.FieldNode:
		return fieldPath(dot, n.Ident, n)
	case *parse.VariableNode:
		return fieldPath(c.lookup(n.Ident[0]), n.Ident[1:], n)
	case *parse.ChainNode:
		t, err := c.arg(n.Node, dot)
		if err != nil {
			return nil, err
		}
		return fieldPath(t, n.Field, n)
	case *parse.PipeNode:
		return c.pipe(n, dot)
	}
	return nil, nil // a function's result, a literal
}

func (c *fieldCheck) lookup(name string) reflect.Type {
	for i := len(c.vars) - 1; i >= 0; i-- {
		if c.vars[i].name == name {
			return c.vars[i].t
		}
	}
	return nil
}

func fieldPath(t reflect.Type, idents []string, n parse.Node) (reflect.Type, error) {
	for _, name := range idents {
		next, ok := field(t, name)
		if !ok {
			return nil, fmt.Errorf("{{%s}}: %s", n, noField(t, name))
		}
		t = next
	}
	return t, nil
}

// field is the type of t.name as text/template finds it: a method, a
// struct field, a map entry. ok is false when t has no such thing.
func field(t reflect.Type, name string) (_ reflect.Type, ok bool) {
	if t == nil || t.Kind() == reflect.Interface {
		return nil, true
	}
	for t.Kind() == reflect.Pointer {
		if m, ok := t.MethodByName(name); ok {
			return firstResult(m.Type), true
		}
		t = t.Elem()
	}
	if m, ok := reflect.PointerTo(t).MethodByName(name); ok {
		return firstResult(m.Type), true
	}
	switch t.Kind() {
	case reflect.Struct:
		if f, ok := t.FieldByName(name); ok && f.IsExported() {
			return f.Type, true
		}
	case reflect.Map:
		if t.Key().Kind() == reflect.String {
			return t.Elem(), true
		}
	}
	return nil, false
}

func firstResult(m reflect.Type) reflect.Type {
	if m.NumOut() == 0 {
		return nil
	}
	return m.Out(0)
}

// noField says what t does offer in place of name.
func noField(t reflect.Type, name string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var has []string
	if t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				if f.Type.Kind() == reflect.Map {
					has = append(has, "."+f.Name+".NAME")
				} else {
					has = append(has, "."+f.Name)
				}
			}
		}
	}
	if len(has) == 0 {
		return fmt.Sprintf("a %s has no .%s", t, name)
	}
	what := "a " + strings.ToLower(t.Name())
	if t == templateDataType {
		what = "a template"
	}
	return fmt.Sprintf("%s has no .%s (it has %s)", what, name, strings.Join(has, ", "))
}

var templateType = reflect.TypeOf(Template{})

// Untemplated lists the keys of a decoded parameter struct whose text
// holds "{{" although no template fills it in: such text would be used as
// written (a destination dialled with braces in it).
func Untemplated(params any) []string {
	var keys []string
	untemplated(reflect.ValueOf(params), "", &keys)
	return keys
}

func untemplated(v reflect.Value, key string, keys *[]string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			untemplated(v.Elem(), key, keys)
		}
	case reflect.String:
		if strings.Contains(v.String(), "{{") {
			*keys = append(*keys, key)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			untemplated(v.Index(i), fmt.Sprintf("%s[%d]", key, i), keys)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return
		}
		names := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			names = append(names, k.String())
		}
		sort.Strings(names)
		for _, k := range names {
			untemplated(v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())), tomlpos.JoinPath(key, k), keys)
		}
	case reflect.Struct:
		if v.Type() == templateType {
			return
		}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			switch {
			case name == "-":
				continue
			case name == "" && f.Anonymous:
				untemplated(v.Field(i), key, keys) // embedded parameters share the table
				continue
			case name == "":
				name = strings.ToLower(f.Name)
			}
			untemplated(v.Field(i), tomlpos.JoinPath(key, name), keys)
		}
	}
}
