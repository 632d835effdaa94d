package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/callflow/callflow/flows"
)

// stepOutcomes lists, for the builder's diagram, each step's outcomes and
// where each goes.
func stepOutcomes(f *flows.Flow) map[string][]stepOutcome {
	out := map[string][]stepOutcome{}
	if f == nil {
		return out
	}
	for _, st := range f.Steps {
		var list []stepOutcome
		for _, oc := range st.Facts.Outcomes {
			target, kind := f.Route(st, oc)
			so := stepOutcome{Outcome: oc, Next: target}
			_, on := st.On[oc]
			_, routes := st.Facts.Routes[oc]
			so.Routed = on || routes
			switch kind {
			case flows.RouteEnd, flows.RouteOffEnd:
				so.Next = "(end)"
			case flows.RouteFallThrough:
				so.Next = ""
			}
			list = append(list, so)
		}
		out[st.ID] = list
	}
	return out
}

// composedStep is one step as the builder holds it: the step's table
// (id, applet, parameters, on) and whether the builder changed it.
type composedStep struct {
	Params  map[string]any `json:"params"`
	Order   []string       `json:"order"` // the keys in the order to write them
	Changed bool           `json:"changed"`
	// From is the step's index in the source it came from; -1 for a new one.
	From int `json:"from"`
}

type composeBody struct {
	TOML  string         `json:"toml"`
	Steps []composedStep `json:"steps"`
}

// apiFlowCompose writes the builder's steps into a flow's source: the part
// before the first step is kept as written, and so is every step the
// builder did not change (its lines, comments and key order); a changed or
// new step is written anew.
func (s *Server) apiFlowCompose(w http.ResponseWriter, r *http.Request) {
	var body composeBody
	if err := decodeJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	src, err := composeSource(body.TOML, body.Steps)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"toml": src})
}

func composeSource(orig string, steps []composedStep) (string, error) {
	blocks, err := flows.Outline([]byte(orig))
	if err != nil {
		return "", fmt.Errorf("the source does not parse: %w", err)
	}
	lines := strings.Split(orig, "\n")
	head := len(lines)
	for _, b := range blocks {
		if !b.Block {
			return "", fmt.Errorf("step %d is not written as a [[steps]] table: edit the source", b.Index+1)
		}
		head = min(head, b.Line-1)
	}
	// Comments and blank lines just above the first step belong to it.
	for head > 0 && isLead(lines[head-1]) {
		head--
	}
	var out strings.Builder
	out.WriteString(strings.TrimRight(strings.Join(lines[:head], "\n"), "\n"))
	if head > 0 {
		out.WriteString("\n")
	}
	for i, st := range steps {
		out.WriteString("\n")
		if !st.Changed && st.From >= 0 && st.From < len(blocks) {
			b := blocks[st.From]
			start := b.Line - 1
			for start > 0 && isLead(lines[start-1]) && (i > 0 || start-1 >= head) {
				start--
			}
			for start < b.Line-1 && strings.TrimSpace(lines[start]) == "" {
				start++
			}
			out.WriteString(strings.Join(lines[start:b.End], "\n"))
			out.WriteString("\n")
			continue
		}
		text, err := stepTOML(st)
		if err != nil {
			return "", err
		}
		out.WriteString(text)
	}
	return out.String(), nil
}

// isLead reports a blank or comment line.
func isLead(l string) bool {
	t := strings.TrimSpace(l)
	return t == "" || strings.HasPrefix(t, "#")
}

// stepTOML writes one step as a [[steps]] table: id and applet first, the
// parameters in the order given (then the rest, sorted), on last.
func stepTOML(st composedStep) (string, error) {
	var b strings.Builder
	b.WriteString("[[steps]]\n")
	keys := []string{"id", "applet"}
	seen := map[string]bool{"id": true, "applet": true, "on": true}
	for _, k := range st.Order {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	var rest []string
	for k := range st.Params {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	keys = append(append(keys, rest...), "on")
	for _, k := range keys {
		v, ok := st.Params[k]
		if !ok || v == nil {
			continue
		}
		if m, isMap := v.(map[string]any); isMap && len(m) == 0 {
			continue
		}
		val, err := tomlValue(v)
		if err != nil {
			return "", fmt.Errorf("%s: %w", k, err)
		}
		b.WriteString(tomlKey(k) + " = " + val + "\n")
	}
	return b.String(), nil
}

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func tomlKey(k string) string {
	if bareKey.MatchString(k) {
		return k
	}
	return tomlString(k)
}

// tomlString is a TOML basic string: JSON's escapes are TOML's.
func tomlString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// tomlValue writes a value as decoded from JSON: strings, numbers,
// booleans, lists and inline tables.
func tomlValue(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return tomlString(x), nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		if x == float64(int64(x)) {
			return strconv.FormatInt(int64(x), 10), nil
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case json.Number:
		return x.String(), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case []any:
		parts := make([]string, len(x))
		for i, item := range x {
			p, err := tomlValue(item)
			if err != nil {
				return "", err
			}
			parts[i] = p
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			p, err := tomlValue(x[k])
			if err != nil {
				return "", err
			}
			parts = append(parts, tomlKey(k)+" = "+p)
		}
		return "{ " + strings.Join(parts, ", ") + " }", nil
	}
	return "", fmt.Errorf("a value of type %T cannot be written in a flow", v)
}
