package applets_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
	"github.com/rs/zerolog"
)

// A list of destinations written as one string ("PJSIP/a,PJSIP/b", as
// Asterisk's Dial takes them) is one error that spells out the list, not
// a second one saying the list is empty.
func TestDestinationsWrittenAsOneStringAreOneError(t *testing.T) {
	cases := []struct{ applet, to, want string }{
		{"multi_ring", `"PJSIP/tech1,PJSIP/tech2"`, `to = ["PJSIP/tech1", "PJSIP/tech2"]`},
		{"ring_in_order", `"PJSIP/alice, PJSIP/bob"`, `to = ["PJSIP/alice", "PJSIP/bob"]`},
		{"round_robin", `"PJSIP/carol&PJSIP/dave"`, `to = ["PJSIP/carol", "PJSIP/dave"]`},
		{"multi_ring", `"PJSIP/one"`, `to = ["PJSIP/one"]`},
	}
	for _, c := range cases {
		t.Run(c.applet+"/"+c.to, func(t *testing.T) {
			probs := lintSource(t, huntFlow(c.applet, "to = "+c.to), nil)
			if len(probs) != 1 || !strings.Contains(probs[0].Msg, "want a list") || !strings.Contains(probs[0].Msg, c.want) {
				t.Fatalf("want one error showing %s, got %v", c.want, probs)
			}
		})
	}
}

// An empty list, and a list not written at all, are still reported.
func TestEmptyDestinationsAreStillReported(t *testing.T) {
	for _, applet := range []string{"multi_ring", "ring_in_order", "round_robin"} {
		for _, params := range []string{"to = []", ""} {
			probs := lintSource(t, huntFlow(applet, params), nil)
			if !hasProblem(probs, flows.Error, "`to` is empty") {
				t.Errorf("%s with %q: got %v", applet, params, probs)
			}
		}
	}
}

// Templates are checked against what a template sees when the flow loads:
// a field that is not there is an error with its position, not a failed
// text on a call.
func TestTemplateFieldsAreCheckedAtLoad(t *testing.T) {
	cases := []struct {
		name, body string
		want       string // "" for valid
	}{
		{"caller", `Hi {{.Caller}}`, ""},
		{"any-var", `{{.Vars.account}}`, ""},
		{"method", `{{.Time.Format "15:04"}}`, ""},
		{"with-voicemail", `{{with .Voicemail}}{{.Mailbox}} {{.Recording.Duration.Seconds}}{{end}}`, ""},
		{"range-tags", `{{range $i, $t := .Tags}}{{if $i}}, {{end}}{{$t}}{{end}}`, ""},
		{"variable", `{{$v := .Voicemail}}{{if $v}}{{$v.Caller}}{{end}}`, ""},
		{"root-in-with", `{{with .Voicemail}}{{$.Flow}}{{end}}`, ""},
		{"function-result", `{{(index .Tags 0)}}{{printf "%s" .Caller | len}}`, ""},
		{"misspelt", `{{.Callr}}`, "a template has no .Callr (it has .Caller,"},
		{"misspelt-in-with", `{{with .Voicemail}}{{.Mailbx}}{{end}}`, "a voicemail has no .Mailbx"},
		{"misspelt-in-else", `{{with .Voicemail}}{{.Mailbox}}{{else}}{{.Mailbox}}{{end}}`, "a template has no .Mailbox"},
		{"misspelt-variable", `{{$v := .Voicemail}}{{$v.Mailbx}}`, "a voicemail has no .Mailbx"},
		{"misspelt-root", `{{with .Voicemail}}{{$.Flw}}{{end}}`, "a template has no .Flw"},
		{"field-of-text", `{{.Caller.Number}}`, "a string has no .Number"},
		{"field-of-var", `{{.Vars.account.id}}`, "a string has no .id"},
		{"field-of-tag", `{{range .Tags}}{{.Name}}{{end}}`, "a string has no .Name"},
		{"include", `{{template "x"}}`, "cannot include another template"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probs := lintSource(t, smsFlow(`to = ["caller"]`+"\nbody = '"+c.body+"'"), nil)
			if c.want == "" {
				if len(probs) > 0 {
					t.Fatalf("want no problem, got %v", probs)
				}
				return
			}
			if len(probs) != 1 || !hasProblem(probs, flows.Error, "body: bad template: ", c.want) || probs[0].Line != 7 {
				t.Fatalf("want one error at line 7 with %q, got %v", c.want, probs)
			}
		})
	}
}

// {{...}} in a parameter that no template fills in would be used as
// written (a destination dialled with braces): it is an error that says so.
func TestTemplateInAPlainParameterIsAnError(t *testing.T) {
	cases := []struct{ name, applet, params, key string }{
		{"forward-to", "forward", `to = "PJSIP/{{.Vars.agent}}"`, "`to`"},
		{"multi-ring-to", "multi_ring", `to = ["PJSIP/1", "PJSIP/{{.Vars.agent}}"]`, "`to[1]`"},
		{"hunt-target", "ring_in_order", `to = [{ target = "PJSIP/{{.Vars.agent}}" }]`, "`to[0].target`"},
		{"set-var", "set", `vars = { agent = "{{.Caller}}" }`, "`vars.agent`"},
		{"greeting-say", "greeting", `say = "Hello {{.Caller}}"`, "`say`"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probs := lintSource(t, huntFlow(c.applet, c.params), nil)
			if !hasProblem(probs, flows.Error, c.key+" is not a template", "used as written") {
				t.Fatalf("want an error naming %s, got %v", c.key, probs)
			}
		})
	}
	if probs := lintSource(t, smsFlow(`to = ["caller"]`+"\nbody = \"Hi {{.Caller}}\""), nil); len(probs) > 0 {
		t.Fatalf("a template where templates work: %v", probs)
	}
}

// Voicemail's `say` replaces the stock intro; with `prompt` it follows it.
func TestVoicemailSayReplacesTheDefaultPrompt(t *testing.T) {
	cases := []struct {
		name, params string
		want         string // the play action before the recording
	}{
		{"default", "", `play sound:vm-intro`},
		{"say", `say = "Leave a message for sales."`, `play tts:"Leave a message for sales."`},
		{"prompt-and-say", `prompt = ["sound:custom/sales"]` + "\nsay = \"After the tone.\"", `play sound:custom/sales,tts:"After the tone."`},
		{"no-prompt", `prompt = []`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := setFromSource(t, huntFlow("voicemail", "mailbox = \"sales\"\n"+c.params))
			sim, trace := simulate(t, set, "h", scripted.Script{}, nil)
			var plays []string
			for _, a := range sim.Call.Log() {
				if strings.HasPrefix(a, "play ") {
					plays = append(plays, a)
				}
			}
			want := []string{c.want}
			if c.want == "" {
				want = nil
			}
			if !slices.Equal(plays, want) {
				t.Fatalf("played %q, want %q\n%s", plays, want, trace)
			}
		})
	}
}

// playSpecs keeps what the applet asked to play.
type playSpecs struct {
	*scripted.Call
	specs []applets.PlaySpec
}

func (p *playSpecs) Play(ctx context.Context, spec applets.PlaySpec) (string, error) {
	p.specs = append(p.specs, spec)
	return p.Call.Play(ctx, spec)
}

// A caller who knows the menu may press a key during the invalid prompt:
// it stops the prompt and is kept for the menu that follows.
func TestMenuInvalidPromptLetsTheCallerKeyAhead(t *testing.T) {
	set := loadFlows(t, "menu-keys-only.toml")
	flow, _ := set.ByName("menu-keys-only")
	call := &playSpecs{Call: scripted.New(scripted.Script{Inputs: keys("5"), Start: defaultAt})}
	env := &applets.Env{Call: call, Flow: applets.FlowInfo{Name: flow.Name}, Step: "menu", State: applets.NewState(), Log: zerolog.Nop()}
	res, err := flow.Steps[0].Run.Run(context.Background(), env)
	if err != nil || res.Outcome != "invalid" {
		t.Fatalf("outcome %q, %v; want invalid", res.Outcome, err)
	}
	if len(call.specs) != 1 || call.specs[0].BargeIn != applets.AnyKey || call.specs[0].Media[0] != "sound:custom/not-an-option" {
		t.Fatalf("played %+v, want the invalid prompt with every key barging in", call.specs)
	}
}

// A caller who hangs up during the invalid prompt ends the call there.
func TestMenuCallerHangsUpDuringInvalidPrompt(t *testing.T) {
	set := loadFlows(t, "menu-keys-only.toml")
	// actions: answer, gather, play (the invalid prompt)
	sim, trace := simulate(t, set, "menu-keys-only", scripted.Script{Inputs: keys("5"), HangupAt: 3}, nil)
	if got := stepOutcomes(sim.Record); got != "menu:hangup" || sim.Record.Outcome != "hangup" {
		t.Fatalf("steps %s, call %s\n%s", got, sim.Record.Outcome, trace)
	}
}
