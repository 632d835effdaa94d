package flows

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/callflow/callflow/internal/tomlpos"
)

// LintOptions tune the checks that look outside the flow files.
type LintOptions struct {
	// SoundsDir, when set, is searched for every sound a flow plays.
	SoundsDir string
	// DefaultMaxSteps is the step budget of flows that set none.
	DefaultMaxSteps int
	// CheckWAV, when set, vets a WAV sound (Asterisk plays 8 kHz mono
	// 16-bit WAV without resampling; anything else is flagged).
	CheckWAV func(path string) error
	// Notes adds notes: what is right but worth saying to the author
	// (check); a server reloading flows leaves them out.
	Notes bool
}

func (f *Flow) problem(pos tomlpos.Pos, sev Severity, format string, args ...any) Problem {
	return Problem{File: f.File, Line: pos.Line, Col: pos.Col, Severity: sev, Msg: fmt.Sprintf(format, args...)}
}

// LintFlow checks one flow's graph.
func LintFlow(f *Flow, opts LintOptions) Problems {
	var probs Problems
	add := func(pos tomlpos.Pos, sev Severity, format string, args ...any) {
		probs = append(probs, f.problem(pos, sev, format, args...))
	}
	if f.Status == Published && len(f.Numbers) == 0 {
		add(f.namePos(), Warning, "flow %q is published but has no numbers: no call can reach it", f.Name)
	}
	if opts.Notes && f.StatusImplied && f.Source == "file" { // the database keeps its own status
		add(f.namePos(), Note, "no status: published, so it takes calls as soon as it is saved; write status = \"draft\" while editing")
	}
	probs = append(probs, f.lintWhisper(opts)...)

	for _, s := range f.Steps {
		outcomes := map[string]bool{}
		for _, o := range s.Facts.Outcomes {
			outcomes[o] = true
		}
		if s.Facts.Legacy != "" {
			add(s.appletPos(), Warning, "step %q: %s", s.ID, s.Facts.Legacy)
		}
		if s.Facts.Ends && s.Next != "" {
			add(s.nextPos(), Warning, "step %q: a %s step ends the call here; `next` is never used", s.ID, s.Applet)
		}
		for _, o := range sortedOn(s.On) {
			switch {
			case outcomes[o] || s.outcomes == outcomesUnknown:
			case s.outcomes == outcomesPartial:
				add(s.onPos(o), Error, "step %q: %s never produces outcome %q (it produces: %s, as far as its parameters could be read)", s.ID, s.Applet, o, orNone(s.Facts.Outcomes))
			default:
				add(s.onPos(o), Error, "step %q: %s never produces outcome %q (it produces: %s)", s.ID, s.Applet, o, orNone(s.Facts.Outcomes))
			}
			if _, ok := f.Step(s.On[o]); !ok {
				add(s.onPos(o), Error, "step %q: on.%s goes to %q, which is no step in this flow", s.ID, o, s.On[o])
			}
		}
		for _, o := range sortedOn(s.Facts.Routes) {
			if _, ok := f.Step(s.Facts.Routes[o]); !ok {
				add(s.pos(), Error, "step %q: key %s goes to %q, which is no step in this flow", s.ID, o, s.Facts.Routes[o])
			}
		}
		if s.Next != "" {
			if _, ok := f.Step(s.Next); !ok {
				add(s.nextPos(), Error, "step %q: next goes to %q, which is no step in this flow", s.ID, s.Next)
			}
		}
		probs = append(probs, f.lintMedia(s, opts)...)
	}
	// The graph's shape is only known when every step is.
	if probs.HasErrors() || len(f.Steps) == 0 || slices.ContainsFunc(f.Steps, func(s *Step) bool { return s.broken }) {
		return probs
	}

	reached := f.reachable()
	for _, s := range f.Steps {
		if !reached[s.ID] {
			add(s.pos(), Warning, "step %q (%s) is unreachable: no step routes to it", s.ID, s.Applet)
			continue
		}
		var dead []string
		for _, o := range s.Facts.Outcomes {
			if _, kind := f.Route(s, o); kind == RouteOffEnd {
				dead = append(dead, strconv.Quote(o))
			}
		}
		switch len(dead) {
		case 0:
		case 1:
			add(s.pos(), Warning, "dead end: step %q outcome %s falls off the end of the flow and the call hangs up without a word (route it with `on` or `next`, or end with a hangup step)", s.ID, dead[0])
		default:
			add(s.pos(), Warning, "dead end: step %q outcomes %s fall off the end of the flow and the call hangs up without a word (route them with `on` or `next`, or end with a hangup step)", s.ID, strings.Join(dead, ", "))
		}
	}
	budget := f.Settings.MaxSteps
	if budget == 0 {
		budget = max(opts.DefaultMaxSteps, 0)
		if budget == 0 {
			budget = 100
		}
	}
	for _, loop := range f.unboundedLoops(reached) {
		ids := make([]string, len(loop))
		for i, s := range loop {
			ids[i] = s.ID
		}
		add(loop[0].pos(), Warning, "loop %s -> %s waits for no caller input and counts nothing: only the step budget (%d) ends it (add a menu, or a set step with counter and limit)", loopPath(ids), ids[0], budget)
	}
	return probs
}

// maxLoopShown bounds the steps a loop warning names: a loop through a
// hundred thousand steps made a megabyte message.
const maxLoopShown = 20

func loopPath(ids []string) string {
	if len(ids) <= maxLoopShown {
		return strings.Join(ids, " -> ")
	}
	return fmt.Sprintf("%s -> ... (%d more steps) -> %s", strings.Join(ids[:maxLoopShown-1], " -> "), len(ids)-maxLoopShown, ids[len(ids)-1])
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none: it ends the call"
	}
	return strings.Join(s, ", ")
}

func sortedOn(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// edges lists the steps a step can lead to, in outcome order.
func (f *Flow) edges(s *Step) []*Step {
	var out []*Step
	seen := map[string]bool{}
	for _, e := range StepEdges(f, s) {
		if (e.Kind == RouteTo || e.Kind == RouteFallThrough) && !seen[e.To] {
			if ts, ok := f.Step(e.To); ok {
				seen[e.To] = true
				out = append(out, ts)
			}
		}
	}
	return out
}

func (f *Flow) reachable() map[string]bool {
	reached := map[string]bool{}
	if len(f.Steps) == 0 {
		return reached
	}
	queue := []*Step{f.Steps[0]}
	reached[f.Steps[0].ID] = true
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, t := range f.edges(s) {
			if !reached[t.ID] {
				reached[t.ID] = true
				queue = append(queue, t)
			}
		}
	}
	return reached
}

// unboundedLoops finds cycles (strongly connected components, Tarjan) in
// which no step waits for the caller or counts visits.
func (f *Flow) unboundedLoops(reached map[string]bool) [][]*Step {
	index := map[*Step]int{}
	low := map[*Step]int{}
	onStack := map[*Step]bool{}
	var stack []*Step
	var out [][]*Step
	n := 0
	var visit func(s *Step)
	visit = func(s *Step) {
		index[s], low[s] = n, n
		n++
		stack = append(stack, s)
		onStack[s] = true
		for _, t := range f.edges(s) {
			if _, seen := index[t]; !seen {
				visit(t)
				low[s] = min(low[s], low[t])
			} else if onStack[t] {
				low[s] = min(low[s], index[t])
			}
		}
		if low[s] != index[s] {
			return
		}
		var comp []*Step
		for {
			t := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[t] = false
			comp = append(comp, t)
			if t == s {
				break
			}
		}
		if len(comp) == 1 && !selfLoop(f, comp[0]) {
			return
		}
		for _, c := range comp {
			if c.Facts.Input || c.Facts.Bounded {
				return
			}
		}
		sort.Slice(comp, func(i, j int) bool { return comp[i].Index < comp[j].Index })
		out = append(out, comp)
	}
	for _, s := range f.Steps {
		if _, seen := index[s]; !seen && reached[s.ID] {
			visit(s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0].Index < out[j][0].Index })
	return out
}

func selfLoop(f *Flow, s *Step) bool {
	for _, t := range f.edges(s) {
		if t == s {
			return true
		}
	}
	return false
}

// lintWhisper checks the flow's whisper: a sound it names must be there,
// and it is no template.
func (f *Flow) lintWhisper(opts LintOptions) Problems {
	w := f.Settings.Whisper
	if w == "" {
		return nil
	}
	pos := f.at("settings.whisper")
	if strings.Contains(w, "{{") {
		return Problems{f.problem(pos, Error, "whisper is not a template: the {{...}} in it would be spoken as written")}
	}
	media, _, err := f.Settings.WhisperMedia()
	if err != nil {
		return Problems{f.problem(pos, Error, "whisper: %v; write a sound such as \"custom/whisper-sales\", or a sentence to speak", err)}
	}
	if opts.SoundsDir == "" || len(media) == 0 || media[0].SoundFile() == "" {
		return nil
	}
	if soundFile(opts.SoundsDir, media[0].SoundFile()) == "" {
		return Problems{f.problem(pos, Warning, "whisper: sound %q not found in %s", media[0].SoundFile(), opts.SoundsDir)}
	}
	return nil
}

var soundExts = []string{".wav", ".WAV", ".gsm", ".ulaw", ".alaw", ".sln", ".sln16", ".g722", ".g729"}

func (f *Flow) lintMedia(s *Step, opts LintOptions) Problems {
	if opts.SoundsDir == "" {
		return nil
	}
	var probs Problems
	for _, m := range s.Facts.Media {
		name := m.SoundFile()
		if name == "" {
			continue
		}
		file := soundFile(opts.SoundsDir, name)
		if file == "" {
			probs = append(probs, f.problem(s.pos(), Warning, "step %q: sound %q not found in %s", s.ID, name, opts.SoundsDir))
			continue
		}
		if opts.CheckWAV != nil && strings.EqualFold(filepath.Ext(file), ".wav") {
			if err := opts.CheckWAV(file); err != nil {
				probs = append(probs, f.problem(s.pos(), Warning, "step %q: sound %q: %v", s.ID, file, err))
			}
		}
	}
	return probs
}

// soundFile finds the file Asterisk would play for a sound, or "".
func soundFile(dir, name string) string {
	candidates := []string{filepath.Join(dir, name), filepath.Join(dir, "en", name)}
	if filepath.IsAbs(name) {
		candidates = []string{name}
	}
	for _, c := range candidates {
		for _, ext := range soundExts {
			if _, err := os.Stat(c + ext); err == nil {
				return c + ext
			}
		}
	}
	return ""
}

// LintSet checks what no single flow can see: names and numbers claimed
// twice, transfers to flows that do not exist. It returns the problems and
// the flows that have errors.
func LintSet(all []*Flow) (Problems, map[*Flow]bool) {
	var probs Problems
	bad := map[*Flow]bool{}
	byName := map[string][]*Flow{}
	byNumber := map[string][]*Flow{}
	for _, f := range all {
		byName[strings.ToLower(f.Name)] = append(byName[strings.ToLower(f.Name)], f)
		for _, n := range f.Numbers {
			byNumber[n] = append(byNumber[n], f)
		}
	}
	for _, fs := range byName {
		if len(fs) < 2 {
			continue
		}
		for _, f := range fs {
			others := otherFiles(f, fs)
			probs = append(probs, f.problem(f.namePos(), Error, "flow name %q is also used by %s", f.Name, others))
			bad[f] = true
		}
	}
	for n, fs := range byNumber {
		if len(fs) < 2 {
			continue
		}
		for _, f := range fs {
			pos := f.at("numbers")
			for i, fn := range f.Numbers {
				if fn == n {
					pos = f.numberPos(i)
				}
			}
			probs = append(probs, f.problem(pos, Error, "number %s is also claimed by flow %q (%s): a number belongs to exactly one flow", n, otherName(f, fs), otherFiles(f, fs)))
			bad[f] = true
		}
	}
	for _, f := range all {
		for _, s := range f.Steps {
			if s.Facts.Transfer == "" {
				continue
			}
			if len(byName[strings.ToLower(s.Facts.Transfer)]) == 0 {
				probs = append(probs, f.problem(s.pos(), Error, "step %q: transfer to flow %q, which does not exist", s.ID, s.Facts.Transfer))
				bad[f] = true
			}
		}
	}
	return probs, bad
}

// otherFiles names the other files, a few of them: a thousand copies of
// one flow must not make a million-name report.
func otherFiles(f *Flow, fs []*Flow) string {
	var out []string
	for _, o := range fs {
		if o != f {
			out = append(out, o.File)
		}
	}
	sort.Strings(out)
	if len(out) > 3 {
		return fmt.Sprintf("%s and %d other files", strings.Join(out[:3], ", "), len(out)-3)
	}
	return strings.Join(out, ", ")
}

func otherName(f *Flow, fs []*Flow) string {
	for _, o := range fs {
		if o != f {
			return o.Name
		}
	}
	return ""
}
