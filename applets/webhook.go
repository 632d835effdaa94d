package applets

import "context"

// Webhook is the legacy in-flow webhook step of older flow builders. It is
// accepted so imported flows load, warned about by the linter, and skipped
// at run time: use the flow's post_call_webhook setting, or passthru.
//
//	applet = "webhook"
//	url = "https://crm.example/hook"
var WebhookDef = Definition{
	Name:     "webhook",
	Group:    "HTTP & bidding",
	Summary:  "Legacy: skipped at run time (use post_call_webhook or passthru).",
	Outcomes: []string{"skipped"},
	Params:   WebhookParams{},
	New:      newWebhook,
}

// WebhookParams are the legacy step's parameters.
type WebhookParams struct {
	URL     string            `toml:"url" doc:"address to send the call's data to"`
	Method  string            `toml:"method" doc:"HTTP method" enum:"POST,GET"`
	Body    string            `toml:"body" doc:"request body template"`
	Headers map[string]string `toml:"headers" doc:"request headers"`
}

type webhook struct{ p WebhookParams }

func newWebhook(p Params) (Applet, error) {
	var w webhook
	if err := p.Decode(&w.p); err != nil {
		return nil, err
	}
	return &w, nil
}

func (w *webhook) Facts() Facts {
	return Facts{Legacy: "webhook steps are deprecated and skipped at run time; use the flow's post_call_webhook setting or a passthru step"}
}

func (w *webhook) Run(ctx context.Context, env *Env) (Result, error) {
	env.Log.Warn().Str("url", w.p.URL).Msg("legacy webhook step skipped")
	return Result{Outcome: "skipped"}, nil
}
