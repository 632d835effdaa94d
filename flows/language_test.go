package flows

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/rs/zerolog"
)

// brokenFlow has a step that does not decode (a bad duration) among
// problems that only the graph shows.
const brokenFlow = `
name = "Broken"
numbers = ["+15550002222"]
status = "draft"

[[steps]]
id = "menu"
applet = "menu"
prompt = ["sound:press-1"]
timeout = "five"
keys = { 1 = "sales", 2 = "gone" }
on = { timout = "menu" }

[[steps]]
id = "sales"
applet = "forward"
to = "PJSIP/sales"
on = { no_anwser = "vm" }
next = "nowhere"

[[steps]]
id = "sales"
applet = "hangup"

[[steps]]
id = "odd"
applet = "no-such-applet"
on = { whatever = "sales" }
`

// A step that does not decode must not hide the problems of the rest of
// the file: with Partial, Parse keeps the flow and Lint checks it.
func TestPartialParseReportsEveryProblemInOneRun(t *testing.T) {
	f, probs := Parse("broken.toml", []byte(brokenFlow), applets.Builtin(), ParseOptions{Partial: true})
	if f == nil {
		t.Fatalf("no flow: %v", probs)
	}
	probs = append(probs, LintFlow(f, LintOptions{})...)
	want := []string{
		`timeout: bad duration "five"`,
		`menu never produces outcome "timout"`,
		`key 2 goes to "gone"`,
		`forward never produces outcome "no_anwser"`,
		`on.no_anwser goes to "vm"`,
		`next goes to "nowhere"`,
		`step id "sales" is used twice`,
		`unknown applet "no-such-applet"`,
	}
	for _, w := range want {
		if !slices.ContainsFunc(probs, func(p Problem) bool { return p.Severity == Error && strings.Contains(p.Msg, w) }) {
			t.Errorf("missing %q in:\n%v", w, probs)
		}
	}
	// The outcomes of an unknown applet are unknown: not checked.
	if slices.ContainsFunc(probs, func(p Problem) bool { return strings.Contains(p.Msg, `"whatever"`) }) {
		t.Errorf("an unknown applet's outcome was judged: %v", probs)
	}
	if len(probs) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(probs), len(want), probs)
	}
}

// Without Partial a flow with errors is never handed out: it must not
// take calls.
func TestParseWithErrorsReturnsNoFlow(t *testing.T) {
	if f, probs := Parse("broken.toml", []byte(brokenFlow), applets.Builtin(), ParseOptions{}); f != nil || !probs.HasErrors() {
		t.Fatalf("flow %v, problems %v", f, probs)
	}
}

// A menu's timeout and invalid go back to the menu unless `on` routes
// them; max_retries takes `on`, then `next`, then the following step.
func TestMenuFailuresRouteBackToTheMenu(t *testing.T) {
	cases := []struct {
		name, extra string
		outcome     string
		target      string
		kind        RouteKind
	}{
		{"keys-only-timeout", "", "timeout", "menu", RouteTo},
		{"keys-only-invalid", "", "invalid", "menu", RouteTo},
		{"keys-only-max-retries", "", "max_retries", "after", RouteFallThrough},
		{"on-timeout", `on = { timeout = "after" }`, "timeout", "after", RouteTo},
		{"on-timeout-leaves-invalid", `on = { timeout = "after" }`, "invalid", "menu", RouteTo},
		{"next-timeout", `next = "bye"`, "timeout", "menu", RouteTo},
		{"next-max-retries", `next = "bye"`, "max_retries", "bye", RouteTo},
		{"key", "", "1", "bye", RouteTo},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := mustParse(t, "m", `name = "M"
[[steps]]
id = "menu"
applet = "menu"
prompt = ["sound:press-1"]
keys = { 1 = "bye" }
`+c.extra+`
[[steps]]
id = "after"
applet = "greeting"
play = ["sound:sorry"]
[[steps]]
id = "bye"
applet = "hangup"
`)
			target, kind := f.Route(f.Steps[0], c.outcome)
			if target != c.target || kind != c.kind {
				t.Fatalf("%s goes to %q (kind %d), want %q (kind %d)", c.outcome, target, kind, c.target, c.kind)
			}
		})
	}
}

// A whisper of one word is a sound, played like `play` everywhere else;
// a sentence is spoken.
func TestWhisperIsASoundUnlessItIsASentence(t *testing.T) {
	cases := []struct {
		whisper string
		media   []applets.Media
		text    string
		bad     bool
	}{
		{"custom/whisper-sales", []applets.Media{"sound:custom/whisper-sales"}, "", false},
		{"whisper-sales.wav", []applets.Media{"sound:whisper-sales"}, "", false},
		{"sound:custom/whisper", []applets.Media{"sound:custom/whisper"}, "", false},
		{"recording:whisper-1", []applets.Media{"recording:whisper-1"}, "", false},
		{"Call for Acme support", nil, "Call for Acme support", false},
		{"  Sales call  ", nil, "Sales call", false},
		{"https://example.com/w.wav", nil, "", true},
		{"", nil, "", false},
	}
	for _, c := range cases {
		media, text, err := Settings{Whisper: c.whisper}.WhisperMedia()
		if !slices.Equal(media, c.media) || text != c.text || (err != nil) != c.bad {
			t.Errorf("%q: media %v, text %q, err %v; want %v, %q, bad=%v", c.whisper, media, text, err, c.media, c.text, c.bad)
		}
	}
}

// dialSpecs keeps what each dial asked for.
type dialSpecs struct {
	*scripted.Call
	specs []applets.DialSpec
}

func (d *dialSpecs) Dial(ctx context.Context, spec applets.DialSpec) (applets.DialResult, error) {
	d.specs = append(d.specs, spec)
	return d.Call.Dial(ctx, spec)
}

// The agent hears a bare sound name as the sound, not spoken as text.
func TestWhisperSoundReachesTheDial(t *testing.T) {
	f := mustParse(t, "w", `name = "W"
[settings]
whisper = "custom/whisper-sales"
[[steps]]
id = "ring"
applet = "forward"
to = "PJSIP/101"
`)
	call := &dialSpecs{Call: scripted.New(scripted.Script{})}
	r := &Runner{Log: zerolog.Nop()}
	r.Run(context.Background(), call, NewSet(1, []*Flow{f}, nil), f, CallInfo{Transport: "test"})
	if len(call.specs) != 1 || !slices.Equal(call.specs[0].Whisper, []applets.Media{"sound:custom/whisper-sales"}) {
		t.Fatalf("dials %+v, want the whisper sound", call.specs)
	}
}

// A flow without status takes calls as soon as it is saved; check says so
// (a note), a reloading server does not repeat it.
func TestImpliedStatusIsANoteForCheck(t *testing.T) {
	cases := []struct {
		name, status string
		notes        bool
		want         bool
	}{
		{"no-status", "", true, true},
		{"published", `status = "published"`, true, false},
		{"draft", `status = "draft"`, true, false},
		{"server", "", false, false},
		{"database", "", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := mustParse(t, "s", "name = \"S\"\nnumbers = [\"+15550003333\"]\n"+c.status+"\n[[steps]]\nid = \"bye\"\napplet = \"hangup\"\n")
			if c.name == "database" {
				f.Source = "db" // its status is the database's, whatever the source says
			}
			probs := LintFlow(f, LintOptions{Notes: c.notes})
			got := slices.ContainsFunc(probs, func(p Problem) bool {
				return p.Severity == Note && strings.Contains(p.Msg, "takes calls as soon as it is saved") && strings.Contains(p.Msg, `status = "draft"`)
			})
			if got != c.want || probs.HasErrors() {
				t.Fatalf("note %v, want %v: %v", got, c.want, probs)
			}
		})
	}
}

// A step that ends in several dead ends gets one warning naming them all.
func TestDeadEndIsOneWarningPerStep(t *testing.T) {
	f := mustParse(t, "d", `name = "D"
numbers = ["+15550004444"]
[[steps]]
id = "vm"
applet = "voicemail"
mailbox = "sales"
`)
	probs := LintFlow(f, LintOptions{})
	if len(probs) != 1 || !strings.Contains(probs[0].Msg, `outcomes "recorded", "empty" fall off the end`) {
		t.Fatalf("want one dead-end warning for both outcomes, got %v", probs)
	}
}
