package applets

import (
	"context"
	"fmt"
	"net/mail"
	"path"
	"time"
)

// Email notifies people by email, optionally attaching the voicemail the
// caller just left. The message is queued and retried in the background:
// the caller never waits for a mail server. Outcomes: sent (queued), failed
// (no mail server configured, or a template error).
//
//	applet = "email"
//	to = ["support@acme.example"]
//	subject = "Voicemail from {{.Caller}}"   # text/template; default depends on voicemail
//	body = "..."                             # default: a summary of the call
//	attach_voicemail = true
var EmailDef = Definition{
	Name:     "email",
	Group:    "messaging",
	Summary:  "Send an email notification (optionally with the voicemail).",
	Outcomes: []string{"sent", "failed"},
	Params:   EmailParams{},
	New:      newEmail,
}

// EmailParams are email's parameters.
type EmailParams struct {
	To              []string `toml:"to" doc:"addresses, one a line"`
	Subject         Template `toml:"subject" doc:"subject template"`
	Body            Template `toml:"body" doc:"body template"`
	AttachVoicemail bool     `toml:"attach_voicemail" doc:"attach the call's voicemail"`
}

var (
	defaultSubjectVM   = MustTemplate(`Voicemail from {{.Caller}} ({{.Flow}})`)
	defaultSubjectCall = MustTemplate(`Call from {{.Caller}} ({{.Flow}})`)
	defaultBody        = MustTemplate(`Caller: {{.Caller}}
Called: {{.Called}}
Flow: {{.Flow}}
Time: {{.Time.Format "2006-01-02 15:04:05 MST"}}
{{with .Voicemail}}Voicemail: {{.Mailbox}}, {{.Recording.Duration}} ({{.Recording.Name}})
{{end}}{{with .Tags}}Tags: {{range $i, $t := .}}{{if $i}}, {{end}}{{$t}}{{end}}
{{end}}Call id: {{.CallID}}
`)
)

type email struct{ p EmailParams }

func newEmail(p Params) (Applet, error) {
	var e email
	var errs problems
	errs.add(p.Decode(&e.p))
	if len(e.p.To) == 0 {
		errs.add(p.Errorf("to", "email needs `to`: at least one address"))
	}
	for _, a := range e.p.To {
		if _, err := mail.ParseAddress(a); err != nil {
			errs.add(p.Errorf("to", "%q is not an email address", a))
		}
	}
	return &e, errs.err()
}

func (e *email) Facts() Facts { return Facts{} }

func (e *email) Run(ctx context.Context, env *Env) (Result, error) {
	if env.Services == nil || env.Services.Mail == nil {
		env.Note("error", "no mail server configured")
		return Result{Outcome: "failed"}, nil
	}
	data := env.Data()
	subject := e.p.Subject
	if subject.IsZero() {
		subject = defaultSubjectCall
		if data.Voicemail != nil {
			subject = defaultSubjectVM
		}
	}
	body := e.p.Body
	if body.IsZero() {
		body = defaultBody
	}
	msg := Email{To: e.p.To}
	var err error
	if msg.Subject, err = subject.Render(data); err != nil {
		return Result{Outcome: "failed"}, fmt.Errorf("email subject: %w", err)
	}
	if msg.Body, err = body.Render(data); err != nil {
		return Result{Outcome: "failed"}, fmt.Errorf("email body: %w", err)
	}
	if e.p.AttachVoicemail && data.Voicemail != nil {
		rec := data.Voicemail.Recording
		name := rec.Name
		if path.Ext(name) == "" {
			name += "." + orString(rec.Format, "wav")
		}
		msg.Attachments = append(msg.Attachments, Attachment{Name: path.Base(name), Path: rec.Path, Recording: rec.Name})
		env.Note("attached", rec.Name)
	}
	// Queueing must not wait on the call's context: the message outlives the call.
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := env.Services.Mail.Send(qctx, msg); err != nil {
		env.Note("error", err.Error())
		return Result{Outcome: "failed"}, nil
	}
	env.Note("to", e.p.To)
	return Result{Outcome: "sent"}, nil
}

func orString(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
