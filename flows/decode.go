package flows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/internal/tomlpos"
)

// ParseOptions tune decoding.
type ParseOptions struct {
	// Country is the calling code for national numbers ("1").
	Country string
	// Source is "file" (default) or "db".
	Source string
	// Partial keeps a flow that has errors, broken steps and all, so that
	// `check` lints the rest of it in the same run. Such a flow is for
	// reporting only: it never takes calls.
	Partial bool
}

type fileDoc struct {
	ID          string    `toml:"id"`
	Name        string    `toml:"name"`
	Description string    `toml:"description"`
	Numbers     []string  `toml:"numbers"`
	Status      string    `toml:"status"`
	Workspace   string    `toml:"workspace"`
	Settings    Settings  `toml:"settings"`
	Steps       rawTables `toml:"steps"`
}

// rawTables keeps an array of tables as parsed: each step is decoded
// later, by its applet, so copying it here would be wasted work.
type rawTables []map[string]any

func (r *rawTables) UnmarshalTOMLValue(v any) error {
	switch x := v.(type) {
	case []map[string]any:
		*r = x
	case []any:
		for _, item := range x {
			m, ok := item.(map[string]any)
			if !ok {
				return fmt.Errorf("want [[steps]] tables")
			}
			*r = append(*r, m)
		}
	default:
		return fmt.Errorf("want [[steps]] tables")
	}
	return nil
}

type stepHead struct {
	ID     string            `toml:"id"`
	Applet string            `toml:"applet"`
	Next   string            `toml:"next"`
	On     map[string]string `toml:"on"`
	Note   string            `toml:"note"`
}

// Parse decodes one flow file. It returns the flow (nil when the file
// cannot be used at all) and every problem found while decoding; graph
// checks are Lint's.
func Parse(file string, src []byte, reg *applets.Registry, opts ParseOptions) (*Flow, Problems) {
	doc, err := tomlpos.Parse(src)
	if err != nil {
		return nil, problemsFrom(file, Error, err, tomlpos.Pos{Line: 1, Col: 1})
	}
	var probs Problems
	errorf := func(path, format string, args ...any) {
		p := doc.Pos(path)
		probs = append(probs, Problem{File: file, Line: p.Line, Col: p.Col, Severity: Error, Msg: fmt.Sprintf(format, args...)})
	}

	var fd fileDoc
	for _, e := range doc.Decode("", doc.Root, &fd) {
		probs = append(probs, problemsFrom(file, Error, e, tomlpos.Pos{})...)
	}
	sum := sha256.Sum256(src)
	f := &Flow{
		ID:          fd.ID,
		Name:        strings.TrimSpace(fd.Name),
		Description: fd.Description,
		Status:      fd.Status,
		Workspace:   fd.Workspace,
		Settings:    fd.Settings,
		File:        file,
		Source:      opts.Source,
		Version:     hex.EncodeToString(sum[:])[:12],
		Raw:         src,
		byID:        map[string]int{},
		doc:         doc,
	}
	if f.Source == "" {
		f.Source = "file"
	}
	if f.Name == "" {
		if _, ok := doc.Index.Lookup("name"); ok {
			errorf("name", "name is empty")
		}
		f.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	if f.ID != "" && !applets.ValidName(f.ID) {
		errorf("id", "id %q: use letters, digits, '_', '.' and '-'", f.ID)
	}
	switch f.Status {
	case "":
		f.Status, f.StatusImplied = Published, true
	case Published, Draft:
	default:
		errorf("status", "status %q: use %q or %q", f.Status, Published, Draft)
	}
	if f.Workspace == "" {
		f.Workspace = "default"
	} else if !applets.ValidName(f.Workspace) {
		errorf("workspace", "workspace %q: use letters, digits, '_', '.' and '-'", f.Workspace)
	}
	seen := map[string]bool{}
	for i, raw := range fd.Numbers {
		path := "numbers[" + strconv.Itoa(i) + "]"
		n, err := NormalizeNumber(raw, opts.Country)
		if err != nil {
			errorf(path, "%v", err)
			continue
		}
		if seen[n] {
			errorf(path, "number %s is listed twice", n)
			continue
		}
		seen[n] = true
		f.Numbers = append(f.Numbers, n)
		f.numberIdx = append(f.numberIdx, i)
	}
	probs = append(probs, checkSettings(file, doc, &f.Settings)...)

	if len(fd.Steps) == 0 {
		errorf("", "flow %q has no steps: add at least one [[steps]]", f.Name)
	}
	for i, table := range fd.Steps {
		step, sp := parseStep(file, doc, i, table, reg, f)
		probs = append(probs, sp...)
		if step == nil {
			continue
		}
		if _, dup := f.byID[step.ID]; dup {
			errorf("steps["+strconv.Itoa(i)+"].id", "step id %q is used twice", step.ID)
			continue
		}
		step.Index = len(f.Steps)
		f.byID[step.ID] = step.Index
		f.Steps = append(f.Steps, step)
	}
	doc.Root = nil // decoded: only positions are needed from now on
	if probs.HasErrors() && !opts.Partial {
		return nil, probs
	}
	return f, probs
}

func checkSettings(file string, doc *tomlpos.Document, s *Settings) Problems {
	var probs Problems
	errorf := func(key, format string, args ...any) {
		p := doc.Pos("settings." + key)
		probs = append(probs, Problem{File: file, Line: p.Line, Col: p.Col, Severity: Error, Msg: fmt.Sprintf(format, args...)})
	}
	if s.MaxSteps < 0 || s.MaxSteps > 10000 {
		errorf("max_steps", "max_steps must be between 1 and 10000")
	}
	if s.WhisperAccept != "" && (len(s.WhisperAccept) != 1 || !applets.ValidKeys(s.WhisperAccept)) {
		errorf("whisper_accept", "whisper_accept must be one key: 0-9, * or #")
	}
	if s.WhisperAccept != "" && s.Whisper == "" {
		errorf("whisper_accept", "whisper_accept needs a whisper message telling the agent which key to press")
	}
	for _, key := range []string{"post_call_webhook", "abandoned_webhook"} {
		u := s.PostCallWebhook
		if key == "abandoned_webhook" {
			u = s.AbandonedWebhook
		}
		if u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			errorf(key, "%s must be an http:// or https:// URL", key)
		}
	}
	return probs
}

func parseStep(file string, doc *tomlpos.Document, i int, table map[string]any, reg *applets.Registry, f *Flow) (*Step, Problems) {
	path := "steps[" + strconv.Itoa(i) + "]"
	var probs Problems
	errorf := func(p string, format string, args ...any) {
		pos := doc.Pos(p)
		probs = append(probs, Problem{File: file, Line: pos.Line, Col: pos.Col, Severity: Error, Msg: fmt.Sprintf(format, args...)})
	}
	// The step's own keys come out of the table; what is left is the
	// applet's. The table is ours: the document is not read again.
	var h stepHead
	str := func(key string, dst *string) {
		v, ok := table[key]
		if !ok {
			return
		}
		delete(table, key)
		if sv, isStr := v.(string); isStr {
			*dst = sv
			return
		}
		errorf(path+"."+key, "%s: want a string", key)
	}
	str("id", &h.ID)
	str("applet", &h.Applet)
	str("next", &h.Next)
	str("note", &h.Note)
	if v, ok := table["on"]; ok {
		delete(table, "on")
		for _, e := range doc.Decode(path+".on", v, &h.On) {
			probs = append(probs, problemsFrom(file, Error, e, tomlpos.Pos{})...)
		}
	}
	params := table
	s := &Step{ID: h.ID, Applet: h.Applet, Next: h.Next, On: h.On, Note: h.Note,
		flow: f, path: path}
	if s.ID == "" {
		if _, written := doc.Index.Lookup(path + ".id"); written {
			errorf(path+".id", "step id is empty")
		}
		s.ID = "step-" + strconv.Itoa(i+1)
	} else if !applets.ValidName(s.ID) {
		errorf(path+".id", "step id %q: use letters, digits, '_', '.' and '-'", s.ID)
	}
	if s.Applet == "" {
		errorf(path, "step %q has no applet (one of: %s)", s.ID, strings.Join(reg.Names(), ", "))
		return s.keepBroken(nil, nil), probs
	}
	def, ok := reg.Lookup(s.Applet)
	if !ok {
		errorf(path+".applet", "unknown applet %q (one of: %s)", s.Applet, strings.Join(reg.Names(), ", "))
		return s.keepBroken(nil, nil), probs
	}
	sp := &stepParams{doc: doc, path: path, values: params, applet: s.Applet, file: file}
	applet, err := def.New(sp)
	if err != nil {
		probs = append(probs, problemsFrom(file, Error, err, s.pos())...)
	}
	probs = append(probs, sp.warnings...)
	if applet == nil || err != nil {
		return s.keepBroken(&def, applet), probs
	}
	s.Run = applet
	s.Facts = def.FactsOf(applet)
	return s, probs
}

// stepParams gives an applet its parameter table.
type stepParams struct {
	doc      *tomlpos.Document
	path     string
	values   map[string]any
	applet   string
	file     string
	warnings Problems
}

func (p *stepParams) Decode(dst any) error {
	errs := p.doc.Decode(p.path, p.values, dst)
	for _, e := range errs {
		if te, ok := e.(*tomlpos.Error); ok && strings.HasPrefix(te.Msg, "unknown key") && !strings.Contains(strings.TrimPrefix(te.Path, p.path+"."), ".") {
			te.Msg = unknownParam(p.applet, strings.TrimPrefix(te.Path, p.path+"."), te.Msg)
		}
	}
	for _, key := range applets.Untemplated(dst) {
		errs = append(errs, p.Errorf(key, "`%s` is not a template: the {{...}} in it would be used as written, never filled in (templates work in an sms body and an email subject and body)", key))
	}
	return joinErrors(errs)
}

func (p *stepParams) key(key string) string {
	if key == "" {
		return p.path
	}
	return p.path + "." + key
}

func (p *stepParams) Errorf(key, format string, args ...any) error {
	return p.doc.Errorf(p.key(key), format, args...)
}

func (p *stepParams) Warnf(key, format string, args ...any) {
	pos := p.doc.Pos(p.key(key))
	p.warnings = append(p.warnings, Problem{File: p.file, Line: pos.Line, Col: pos.Col, Severity: Warning, Msg: fmt.Sprintf(format, args...)})
}

func (p *stepParams) Has(key string) bool {
	_, ok := p.values[key]
	return ok
}

func (p *stepParams) Dir() string { return filepath.Dir(p.file) }

func joinErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return multiError(errs)
}

type multiError []error

func (m multiError) Error() string {
	s := make([]string, len(m))
	for i, e := range m {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

func (m multiError) Unwrap() []error { return m }
