package applets

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// SMS sends a text message to the caller or to fixed numbers through
// Asterisk's message support (ARI endpoints/sendMessage, or MessageSend
// over AGI). Each number becomes an endpoint URI: technology, number and,
// when the step names one, the endpoint (trunk) that carries texts:
// "pjsip:+15551234567@trunk". Outcomes: sent, failed (any text not sent).
//
//	applet = "sms"
//	to = ["caller", "+15551112222"]     # "caller" is the caller's number
//	from = ""                           # default: the number the caller dialled
//	body = "Thanks for calling {{.Flow}}! Reply STOP to opt out."
//	technology = "pjsip"                # pjsip, sip or xmpp
//	endpoint = "trunk"                  # "" sends to pjsip:<number>
var SMSDef = Definition{
	Name:     "sms",
	Group:    "messaging",
	Summary:  "Send a text message to the caller or fixed numbers.",
	Outcomes: []string{"sent", "failed"},
	Params:   SMSParams{},
	New:      newSMS,
}

// SMSParams are sms's parameters.
type SMSParams struct {
	To         []string `toml:"to" doc:"numbers to text, one a line"`
	From       string   `toml:"from" doc:"sending number"`
	Body       Template `toml:"body" doc:"text template"`
	Technology string   `toml:"technology" doc:"Asterisk message technology (default from [sms])"`
	Endpoint   string   `toml:"endpoint" doc:"Asterisk message endpoint (default from [sms])"`
}

var (
	smsNumberRe   = regexp.MustCompile(`^\+?[0-9]{3,15}$`)
	smsEndpointRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)
)

type sms struct {
	p    SMSParams
	tech string
}

func newSMS(p Params) (Applet, error) {
	s := &sms{tech: "pjsip"}
	var errs problems
	errs.add(p.Decode(&s.p))
	if len(s.p.To) == 0 {
		errs.add(p.Errorf("to", "sms needs `to`: \"caller\" or numbers"))
	}
	for i, t := range s.p.To {
		if t != "caller" && !smsNumberRe.MatchString(t) {
			errs.add(p.Errorf(fmt.Sprintf("to[%d]", i), "%q: write \"caller\" or a number such as \"+15551234567\"", t))
		}
	}
	if s.p.From != "" && !smsNumberRe.MatchString(s.p.From) {
		errs.add(p.Errorf("from", "from %q: a number such as \"+15551234567\"", s.p.From))
	}
	if s.p.Body.IsZero() && !p.Has("body") {
		errs.add(p.Errorf("", "sms needs a `body`"))
	} else if !s.p.Body.IsZero() && strings.TrimSpace(s.p.Body.Source) == "" {
		errs.add(p.Errorf("body", "body is empty"))
	}
	if s.p.Technology != "" {
		s.tech = strings.ToLower(s.p.Technology)
		if s.tech != "pjsip" && s.tech != "sip" && s.tech != "xmpp" {
			errs.add(p.Errorf("technology", "technology must be pjsip, sip or xmpp"))
		}
	}
	if s.p.Endpoint != "" && !smsEndpointRe.MatchString(s.p.Endpoint) {
		errs.add(p.Errorf("endpoint", "endpoint %q: the name of an Asterisk endpoint, such as \"trunk\"", s.p.Endpoint))
	}
	return s, errs.err()
}

func (s *sms) Facts() Facts { return Facts{} }

// uri is the endpoint URI a text to number goes to: the step's
// technology and endpoint, else the configured defaults.
func (s *sms) uri(env *Env, number string) string {
	tech, endpoint := s.tech, s.p.Endpoint
	if env.Services != nil {
		if s.p.Technology == "" && env.Services.SMS.Technology != "" {
			tech = strings.ToLower(env.Services.SMS.Technology)
		}
		if endpoint == "" {
			endpoint = env.Services.SMS.Endpoint
		}
	}
	u := tech + ":" + number
	if endpoint != "" {
		u += "@" + endpoint
	}
	return u
}

func (s *sms) Run(ctx context.Context, env *Env) (Result, error) {
	body, err := s.p.Body.Render(env.Data())
	if err != nil {
		env.Note("error", "template: "+err.Error())
		return Result{Outcome: "failed"}, nil
	}
	from := s.p.From
	if from == "" && env.Services != nil {
		from = env.Services.SMS.From
	}
	if from == "" {
		from = digitsOnly(env.Call.Called())
	}
	sent := 0
	var failures []string
	seen := map[string]bool{}
	for _, t := range s.p.To {
		number := t
		if t == "caller" {
			number = digitsOnly(env.Call.Caller())
			if !smsNumberRe.MatchString(number) {
				// Withheld or not a phone number: nobody to text back.
				failures = append(failures, fmt.Sprintf("caller %q has no number to text", env.Call.Caller()))
				continue
			}
		}
		to := s.uri(env, number)
		if seen[to] {
			continue
		}
		seen[to] = true
		// A message gateway that hangs must not hold the caller.
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := env.Call.Send(sctx, Message{To: to, From: from, Body: body})
		cancel()
		if err != nil && (errors.Is(err, ErrHangup) || ctx.Err() != nil) {
			env.Note("texts", sent)
			return Result{}, err
		}
		if err != nil {
			env.Log.Warn().Err(err).Str("to", to).Msg("text not sent")
			failures = append(failures, to+": "+err.Error())
			continue
		}
		sent++
	}
	env.Note("texts", sent)
	if len(failures) > 0 {
		env.Note("errors", failures)
		return Result{Outcome: "failed"}, nil
	}
	return Result{Outcome: "sent"}, nil
}
