package applets

import (
	"bytes"
	"strings"
	"text/template"
	"time"
)

// TemplateData is what message templates ({{.Caller}}, {{.Vars.x}}) see.
type TemplateData struct {
	Caller    string
	Called    string
	CallID    string
	Flow      string
	Workspace string
	Step      string
	Time      time.Time
	Vars      map[string]string
	Tags      []string
	Voicemail *Voicemail // the latest message of the call, if any
}

// Data returns the template data of the call so far.
func (e *Env) Data() TemplateData {
	d := TemplateData{
		Caller: e.Call.Caller(), Called: e.Call.Called(), CallID: e.Call.ID(),
		Flow: e.Flow.Name, Workspace: e.Flow.Workspace, Step: e.Step, Time: e.Now(),
		Vars: e.State.Vars, Tags: e.State.TagList(),
	}
	if n := len(e.State.Voicemails); n > 0 {
		vm := e.State.Voicemails[n-1]
		d.Voicemail = &vm
	}
	return d
}

// Template is a text/template parsed at load time.
type Template struct {
	Source string
	t      *template.Template
}

func (t *Template) UnmarshalTOMLValue(v any) error {
	s, ok := v.(string)
	if !ok {
		return errString("want a template string")
	}
	parsed, err := parseTemplate(s)
	if err != nil {
		return err
	}
	t.Source, t.t = s, parsed
	return nil
}

// parseTemplate parses s and checks every field it names against what a
// template sees (TemplateData).
func parseTemplate(s string) (*template.Template, error) {
	parsed, err := template.New("").Option("missingkey=zero").Parse(s)
	if err != nil {
		return nil, errString("bad template: " + strings.TrimPrefix(err.Error(), "template: :"))
	}
	if err := checkFields(parsed.Tree.Root); err != nil {
		return nil, errString("bad template: " + err.Error())
	}
	return parsed, nil
}

// MustTemplate parses a built-in template.
func MustTemplate(s string) Template {
	parsed, err := parseTemplate(s)
	if err != nil {
		panic(err)
	}
	return Template{Source: s, t: parsed}
}

// IsZero reports whether no template was given.
func (t Template) IsZero() bool { return t.t == nil }

// Render executes the template.
func (t Template) Render(d TemplateData) (string, error) {
	if t.t == nil {
		return "", nil
	}
	var b bytes.Buffer
	if err := t.t.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

type errString string

func (e errString) Error() string { return string(e) }
