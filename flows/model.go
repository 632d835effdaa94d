package flows

import (
	"strconv"

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
	Workspace   string
	Settings    Settings
	Steps       []*Step

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
