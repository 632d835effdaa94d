package applets_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
	"github.com/rs/zerolog"
)

func sentTo(sim *flows.Simulation) []string {
	var out []string
	for _, m := range sim.Call.Sent() {
		out = append(out, m.To)
	}
	return out
}

func TestSMS(t *testing.T) {
	set := loadFlows(t, "sms.toml")
	cases := []struct {
		name, from, outcome string
		to                  []string
	}{
		{"caller-and-number", "+15557654321", "sent", []string{"pjsip:+15557654321@trunk", "pjsip:+15551112222@trunk"}},
		{"caller-is-the-number", "+15551112222", "sent", []string{"pjsip:+15551112222@trunk"}},
		{"anonymous-caller", "anonymous", "failed", []string{"pjsip:+15551112222@trunk"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim, trace := simulate(t, set, "sms", scripted.Script{From: c.from}, nil)
			if got := sim.Record.Steps[0].Outcome; got != c.outcome {
				t.Errorf("outcome %q, want %q\n%s", got, c.outcome, trace)
			}
			if got := strings.Join(sentTo(sim), " "); got != strings.Join(c.to, " ") {
				t.Errorf("sent to %s, want %s", got, c.to)
			}
			for _, m := range sim.Call.Sent() {
				if m.From != "+15550001000" || m.Body != "Thanks for calling sms, "+c.from+"!" {
					t.Errorf("message %+v", m)
				}
			}
			golden(t, goldenFile("sms", c.name), trace)
		})
	}
}

func smsFlow(params string) string {
	return "name = \"m\"\nstatus = \"draft\"\n[[steps]]\nid = \"text\"\napplet = \"sms\"\n" + params + "\n[[steps]]\nid = \"end\"\napplet = \"hangup\"\n"
}

func TestSMSEndpointURI(t *testing.T) {
	cases := []struct{ params, want string }{
		{`to = ["caller"]` + "\nendpoint = \"trunk\"", "pjsip:+15557654321@trunk"},
		{`to = ["caller"]`, "pjsip:+15557654321"},
		{`to = ["+442079460000"]` + "\ntechnology = \"SIP\"\nendpoint = \"provider-1\"", "sip:+442079460000@provider-1"},
		{`to = ["15551234567"]` + "\ntechnology = \"xmpp\"", "xmpp:15551234567"},
	}
	for _, c := range cases {
		set := setFromSource(t, smsFlow(c.params+"\nbody = \"hi\""))
		sim, trace := simulate(t, set, "m", scripted.Script{}, nil)
		if got := strings.Join(sentTo(sim), " "); got != c.want {
			t.Errorf("%s: sent to %q, want %q\n%s", c.params, got, c.want, trace)
		}
	}
}

func TestSMSTemplate(t *testing.T) {
	set := setFromSource(t, `name = "m"
status = "draft"
workspace = "acme"
[[steps]]
id = "mark"
applet = "set"
vars = { agent = "Dana" }
tags = ["vip"]
[[steps]]
id = "text"
applet = "sms"
to = ["caller"]
from = "+15559990000"
body = "{{.Vars.agent}} will call you back on {{.Caller}} ({{.Workspace}}/{{.Flow}}, {{.Time.Format \"Jan 2\"}}){{range .Tags}} #{{.}}{{end}}"
`)
	sim, trace := simulate(t, set, "m", scripted.Script{}, nil)
	sent := sim.Call.Sent()
	if len(sent) != 1 {
		t.Fatalf("sent %d\n%s", len(sent), trace)
	}
	want := "Dana will call you back on +15557654321 (acme/m, Dec 18) #vip"
	if sent[0].Body != want || sent[0].From != "+15559990000" {
		t.Fatalf("body %q from %q, want %q", sent[0].Body, sent[0].From, want)
	}
}

// failingSend is a call whose texts to one number fail.
type failingSend struct {
	*scripted.Call
	bad string
}

func (f failingSend) Send(ctx context.Context, m applets.Message) error {
	if strings.Contains(m.To, f.bad) {
		return fmt.Errorf("ari: send: 404 endpoint not found")
	}
	return f.Call.Send(ctx, m)
}

func TestSMSFailingSend(t *testing.T) {
	set := loadFlows(t, "sms.toml")
	flow, _ := set.ByName("sms")
	call := failingSend{Call: scripted.New(scripted.Script{From: "+15557654321", To: "+15550001000", Start: defaultAt}), bad: "+15551112222"}
	env := &applets.Env{Call: call, Flow: applets.FlowInfo{Name: "sms"}, Step: "text", State: applets.NewState(), Log: zerolog.Nop()}
	res, err := flow.Steps[0].Run.Run(context.Background(), env)
	if err != nil || res.Outcome != "failed" {
		t.Fatalf("outcome %q, %v; want failed", res.Outcome, err)
	}
	d := env.TakeDetails()
	if d["texts"] != 1 {
		t.Errorf("texts = %v, want 1 (the caller's went out)", d["texts"])
	}
	if errs := fmt.Sprint(d["errors"]); !strings.Contains(errs, "pjsip:+15551112222@trunk: ari: send: 404") {
		t.Errorf("errors = %s", errs)
	}
}

// A template that fails only on the call (a tag that is not there) sends
// nothing; fields it cannot see are refused at load time (TestTemplateFieldsAreCheckedAtLoad).
func TestSMSTemplateErrorFails(t *testing.T) {
	set := setFromSource(t, smsFlow(`to = ["caller"]`+"\nbody = \"{{index .Tags 3}}\""))
	sim, trace := simulate(t, set, "m", scripted.Script{}, nil)
	if sim.Record.Steps[0].Outcome != "failed" || len(sim.Call.Sent()) != 0 || !strings.Contains(trace, "error=template") {
		t.Fatalf("want failed without a text:\n%s", trace)
	}
}

func TestSMSCallerHangsUp(t *testing.T) {
	set := loadFlows(t, "sms.toml")
	sim, trace := simulate(t, set, "sms", scripted.Script{HangupAt: 1}, nil)
	if sim.Record.Outcome != "hangup" || sim.Record.Steps[0].Outcome != "hangup" {
		t.Fatalf("call %s\n%s", sim.Record.Outcome, trace)
	}
}

func TestSMSChecks(t *testing.T) {
	cases := []struct {
		name   string
		params string
		sev    flows.Severity
		parts  []string
	}{
		{"valid", `to = ["caller", "+15551234567"]` + "\nbody = \"hi {{.Caller}}\"\ntechnology = \"pjsip\"\nendpoint = \"trunk\"", "", nil},
		{"no-to", `body = "hi"`, flows.Error, []string{"needs `to`"}},
		{"bad-to", `to = ["the caller"]` + "\nbody = \"hi\"", flows.Error, []string{`"the caller": write "caller" or a number`}},
		{"no-body", `to = ["caller"]`, flows.Error, []string{"needs a `body`"}},
		{"empty-body", `to = ["caller"]` + "\nbody = \" \"", flows.Error, []string{"body is empty"}},
		{"bad-template", `to = ["caller"]` + "\nbody = \"{{.Caller\"", flows.Error, []string{"bad template"}},
		{"bad-technology", `to = ["caller"]` + "\nbody = \"hi\"\ntechnology = \"iax2\"", flows.Error, []string{"pjsip, sip or xmpp"}},
		{"bad-endpoint", `to = ["caller"]` + "\nbody = \"hi\"\nendpoint = \"trunk@evil\"", flows.Error, []string{`endpoint "trunk@evil"`}},
		{"bad-from", `to = ["caller"]` + "\nbody = \"hi\"\nfrom = \"caller\"", flows.Error, []string{`from "caller"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probs := lintSource(t, smsFlow(c.params), nil)
			if c.sev == "" {
				if len(probs) > 0 {
					t.Fatalf("want no problem, got %v", probs)
				}
				return
			}
			if !hasProblem(probs, c.sev, c.parts...) {
				t.Fatalf("want a %s with %q, got %v", c.sev, c.parts, probs)
			}
		})
	}
}
