package applets

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Applet is one configured step: parameters decoded and validated at load
// time, run for each call that reaches the step.
type Applet interface {
	// Run does the step's work and names its outcome.
	Run(ctx context.Context, env *Env) (Result, error)
	// Facts tells the linter, the simulator and the graph what the step can do.
	Facts() Facts
}

// Result is how a step ended.
type Result struct {
	Outcome string
	// Transfer names the flow the call goes on in (the transfer applet).
	Transfer string
	// End hangs the call up after this step whatever the routing says.
	End bool
}

// Facts describe a configured step for static checks.
type Facts struct {
	// Outcomes the step can produce.
	Outcomes []string
	// Terminal outcomes end the call unless `on` routes them explicitly
	// (a dial that was answered: the conversation is the end of the call).
	Terminal []string
	// Routes are outcome -> step routes the applet itself declares (a
	// menu's `keys`), checked and followed like `on`.
	Routes map[string]string
	// Retry outcomes run the step again unless `on` routes them (a menu's
	// timeout and invalid: the caller gets another go, and the step
	// counts the attempts and gives up with an outcome of its own).
	Retry []string
	// Input: the step waits for the caller, so a loop through it is bounded
	// by the caller (and, for menus, by max_retries).
	Input bool
	// Bounded: the step counts visits and leaves the loop past a limit.
	Bounded bool
	// Ends: the step always ends the call (hangup) or leaves the flow
	// (transfer).
	Ends bool
	// Transfer is the flow a transfer step jumps to.
	Transfer string
	// Media the step plays, for the missing-audio check.
	Media []Media
	// Mailboxes the step records into.
	Mailboxes []string
	// Legacy marks a step kept only for compatibility (skipped at run time).
	Legacy string
}

// Params is a step's parameter table as the flow file wrote it.
type Params interface {
	// Decode fills dst (a pointer to a struct with `toml` tags) strictly:
	// an unknown key or a value of the wrong type is an error with its
	// position. It returns nil or an error joining every problem.
	Decode(dst any) error
	// Errorf returns an error positioned at key ("" for the step itself).
	Errorf(key, format string, args ...any) error
	// Warnf records a warning positioned at key.
	Warnf(key, format string, args ...any)
	// Has reports whether key was written.
	Has(key string) bool
	// Dir is the directory of the flow file (for relative file names).
	Dir() string
}

// Definition registers an applet type.
type Definition struct {
	Name    string
	Summary string
	// Outcomes documents every outcome the applet can produce; "<key>"
	// style placeholders stand for configured names.
	Outcomes []string
	// Group is where editors list the applet: "say & play", "gather",
	// "connect", "route", "record & voicemail", "messaging",
	// "HTTP & bidding", "transfer & end" ("": with the others).
	Group string
	// Params is a zero value of the parameter struct, for documentation
	// and editors: tags doc (a line of help), enum (the allowed values,
	// comma-separated) and target ("step" or "flow": what a value names).
	Params any
	// New decodes and validates a step's parameters.
	New func(p Params) (Applet, error)
}

// FactsOf returns what a configured step of this applet can do: a's own
// Facts, with the outcomes of the definition when a leaves them out. An
// applet whose outcomes do not depend on its parameters writes them once,
// in its Definition; one whose parameters name outcomes (a menu's keys)
// lists them in Facts.
func (d Definition) FactsOf(a Applet) Facts {
	f := a.Facts()
	if f.Outcomes == nil {
		for _, o := range d.Outcomes {
			if !strings.HasPrefix(o, "<") { // "<key>": named by parameters
				f.Outcomes = append(f.Outcomes, o)
			}
		}
	}
	return f
}

// Registry holds the known applet types. Build it with New and Register;
// there is no global registry.
type Registry struct {
	defs map[string]Definition
}

// NewRegistry returns a registry holding defs.
func NewRegistry(defs ...Definition) *Registry {
	r := &Registry{defs: map[string]Definition{}}
	for _, d := range defs {
		r.Register(d)
	}
	return r
}

// Register adds a definition; a duplicate name is a programming error.
func (r *Registry) Register(d Definition) {
	if _, dup := r.defs[d.Name]; dup {
		panic(fmt.Sprintf("applets: %q registered twice", d.Name))
	}
	r.defs[d.Name] = d
}

// Lookup returns the definition of name.
func (r *Registry) Lookup(name string) (Definition, bool) {
	d, ok := r.defs[name]
	return d, ok
}

// Names lists registered applets in order.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.defs))
	for n := range r.defs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
