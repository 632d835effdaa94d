package flows

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/internal/tomlpos"
)

// Status of a flow: only published flows take calls.
const (
	Published = "published"
	Draft     = "draft"
)

// Flow is one decoded flow file.
type Flow struct {
	// ID is the flow's identity in the database (its name may change);
	// a file flow may name one, for `callflow flows import`.
	ID          string
	Name        string
	Description string
	Numbers     []string // normalised
	Status      string
	// StatusImplied: the file wrote no status, so the flow is published
	// (it takes calls as soon as it is saved).
	StatusImplied bool
	Workspace     string
	Settings      Settings
	Steps         []*Step

	File    string // where it came from (a path, or "db:NAME@REV")
	Source  string // "file" or "db"
	Version string // content hash: calls record which version they ran
	Raw     []byte // the source text

	byID      map[string]int
	numberIdx []int // numbers[i] came from the file's numbers[numberIdx[i]]
	// doc answers where things were written, only when a problem is
	// reported: looking positions up for every step of every flow was a
	// fifth of the cost of loading.
	doc *tomlpos.Document
}

// at is where path was written in the flow's file.
func (f *Flow) at(path string) tomlpos.Pos {
	if f.doc == nil {
		return tomlpos.Pos{Line: 1, Col: 1}
	}
	return f.doc.Pos(path)
}

func (f *Flow) namePos() tomlpos.Pos { return f.at("name") }

func (f *Flow) numberPos(i int) tomlpos.Pos {
	if i < len(f.numberIdx) {
		return f.at("numbers[" + strconv.Itoa(f.numberIdx[i]) + "]")
	}
	return f.at("numbers")
}

// Settings apply to the whole flow (the Settings tab of hosted builders).
type Settings struct {
	Record           bool             `toml:"record"`
	Whisper          string           `toml:"whisper"`
	WhisperAccept    string           `toml:"whisper_accept"`
	QualifiedAfter   tomlpos.Duration `toml:"qualified_after"`
	PostCallWebhook  string           `toml:"post_call_webhook"`
	AbandonedWebhook string           `toml:"abandoned_webhook"`
	AbandonedEmail   []string         `toml:"abandoned_email"`
	MaxSteps         int              `toml:"max_steps"`
	MaxDuration      tomlpos.Duration `toml:"max_duration"`
}

// WhisperMedia is what the agent hears before the caller is put through:
// one word is a sound (a media URI or a bare sound name, as in `play`),
// words with spaces between them are text for the speech engine.
func (s Settings) WhisperMedia() (media []applets.Media, text string, err error) {
	w := strings.TrimSpace(s.Whisper)
	switch {
	case w == "":
		return nil, "", nil
	case strings.ContainsAny(w, " \t\r\n"):
		return nil, w, nil
	}
	m, err := applets.ParseMedia(w)
	if err != nil {
		return nil, "", err
	}
	return []applets.Media{m}, "", nil
}

// Step is one configured applet in a flow.
type Step struct {
	ID     string
	Applet string
	Next   string
	On     map[string]string
	Note   string

	Run   applets.Applet
	Facts applets.Facts
	Index int

	flow *Flow
	path string // "steps[i]" in the file
	// broken: the step's applet or parameters have errors. It is kept so
	// that the rest of the flow is checked in the same run; a flow with a
	// broken step never takes calls.
	broken bool
	// outcomes says how much is known of a broken step's outcomes.
	outcomes outcomeKnowledge
}

// outcomeKnowledge: a broken step may not know all its outcomes.
type outcomeKnowledge int

const (
	outcomesKnown outcomeKnowledge = iota
	// outcomesPartial: some are named by parameters that did not decode.
	outcomesPartial
	// outcomesUnknown: no applet, or an unknown one.
	outcomesUnknown
)

// keepBroken marks s broken and gives it what can be known of its
// outcomes: those the applet still reports and those it always has.
// def and a may be nil (no applet, an unknown applet).
func (s *Step) keepBroken(def *applets.Definition, a applets.Applet) *Step {
	s.broken = true
	if a != nil {
		s.Facts = def.FactsOf(a)
		s.Facts.Outcomes = slices.Clone(s.Facts.Outcomes) // appended to below
	}
	if def == nil {
		s.outcomes = outcomesUnknown
		return s
	}
	for _, o := range def.Outcomes {
		if strings.HasPrefix(o, "<") {
			s.outcomes = outcomesPartial // named by the step's parameters
			continue
		}
		if !slices.Contains(s.Facts.Outcomes, o) {
			s.Facts.Outcomes = append(s.Facts.Outcomes, o)
		}
	}
	return s
}

func (s *Step) pos() tomlpos.Pos       { return s.flow.at(s.path) }
func (s *Step) appletPos() tomlpos.Pos { return s.flow.at(s.path + ".applet") }
func (s *Step) nextPos() tomlpos.Pos   { return s.flow.at(s.path + ".next") }
func (s *Step) onPos(outcome string) tomlpos.Pos {
	return s.flow.at(tomlpos.JoinPath(s.path+".on", outcome))
}

// Step returns the step with id.
func (f *Flow) Step(id string) (*Step, bool) {
	i, ok := f.byID[id]
	if !ok {
		return nil, false
	}
	return f.Steps[i], true
}

// RouteKind says how an outcome leaves a step.
type RouteKind int

const (
	// RouteTo goes to Target through keys, on or next.
	RouteTo RouteKind = iota
	// RouteFallThrough goes to the following step in the file.
	RouteFallThrough
	// RouteEnd hangs up after a terminal outcome (a conversation happened)
	// or an ending step (hangup, transfer).
	RouteEnd
	// RouteOffEnd falls past the last step: the call hangs up silently.
	RouteOffEnd
	// RouteTransfer leaves for another flow (a transfer step).
	RouteTransfer
)

// Route tells where outcome leads from step s in flow f.
func (f *Flow) Route(s *Step, outcome string) (target string, kind RouteKind) {
	if s.Facts.Ends {
		return "", RouteEnd
	}
	if t, ok := s.Facts.Routes[outcome]; ok {
		return t, RouteTo
	}
	if t, ok := s.On[outcome]; ok {
		return t, RouteTo
	}
	if slices.Contains(s.Facts.Retry, outcome) {
		// Another go at the same step (a menu after a wrong key or
		// silence): the step itself counts the attempts and gives up.
		return s.ID, RouteTo
	}
	for _, term := range s.Facts.Terminal {
		if term == outcome {
			return "", RouteEnd
		}
	}
	if s.Next != "" {
		return s.Next, RouteTo
	}
	if s.Index+1 < len(f.Steps) {
		return f.Steps[s.Index+1].ID, RouteFallThrough
	}
	return "", RouteOffEnd
}

// unknownParam words the error for a key the applet does not know; a flow
// setting written on a step says where it belongs.
func unknownParam(applet, key, msg string) string {
	if slices.Contains(tomlpos.Fields(reflect.TypeOf(Settings{})), key) {
		return fmt.Sprintf("unknown %s parameter %q: %s is a flow setting: set it under [settings]", applet, key, key)
	}
	return strings.Replace(msg, "unknown key", "unknown "+applet+" parameter", 1)
}
