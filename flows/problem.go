package flows

import (
	"errors"
	"fmt"
	"sort"

	"github.com/callflow/callflow/internal/tomlpos"
)

// Severity says whether a problem stops a flow from loading.
type Severity string

const (
	Error   Severity = "error"
	Warning Severity = "warning"
	// Note is something right but worth saying (check reports it).
	Note Severity = "note"
)

// Problem is one lint finding: `file:line:col: severity: message`.
type Problem struct {
	File     string
	Line     int
	Col      int
	Severity Severity
	Msg      string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d:%d: %s: %s", p.File, p.Line, p.Col, p.Severity, p.Msg)
}

func (p Problem) Error() string { return p.String() }

// Problems is a list of findings.
type Problems []Problem

// HasErrors reports whether any problem is an error.
func (ps Problems) HasErrors() bool {
	for _, p := range ps {
		if p.Severity == Error {
			return true
		}
	}
	return false
}

// Sort orders problems by file, line, column, then message.
func (ps Problems) Sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Msg < b.Msg
	})
}

// problemsFrom flattens an error tree of *tomlpos.Error into problems.
func problemsFrom(file string, sev Severity, err error, fallback tomlpos.Pos) Problems {
	if err == nil {
		return nil
	}
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		var out Problems
		for _, e := range multi.Unwrap() {
			out = append(out, problemsFrom(file, sev, e, fallback)...)
		}
		return out
	}
	var pe *tomlpos.Error
	if errors.As(err, &pe) {
		return Problems{{File: file, Line: pe.Pos.Line, Col: pe.Pos.Col, Severity: sev, Msg: pe.Msg}}
	}
	return Problems{{File: file, Line: fallback.Line, Col: fallback.Col, Severity: sev, Msg: err.Error()}}
}
