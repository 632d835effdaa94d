package applets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/callflow/callflow/internal/vmname"
)

// Voicemail records a message for a mailbox. A caller who hangs up while
// recording still leaves the message if it has audio.
//
//	applet = "voicemail"
//	mailbox = "support"
//	prompt = ["sound:vm-intro"]  # played before the beep; [] for none
//	say = "Leave a message."     # spoken instead of the default prompt
//	beep = true
//	max_length = "3m"
//	max_silence = "5s"           # this much silence ends the message
//	finish_key = "#"
var VoicemailDef = Definition{
	Name:     "voicemail",
	Group:    "record & voicemail",
	Summary:  "Record a message for a mailbox.",
	Outcomes: []string{"recorded", "empty"},
	Params:   VoicemailParams{},
	New:      newVoicemail,
}

// VoicemailParams are voicemail's parameters.
type VoicemailParams struct {
	Mailbox    string     `toml:"mailbox" doc:"mailbox the message goes to"`
	Prompt     *MediaList `toml:"prompt" doc:"sounds played before the beep"`
	Say        string     `toml:"say" doc:"text spoken before the beep"`
	Beep       *bool      `toml:"beep" doc:"beep before recording (default true)"`
	MaxLength  Duration   `toml:"max_length" doc:"longest message"`
	MaxSilence Duration   `toml:"max_silence" doc:"silence that ends the message"`
	FinishKey  *string    `toml:"finish_key" doc:"key that ends the message"`
}

type voicemail struct {
	p         VoicemailParams
	prompt    []Media
	beep      bool
	finishKey string
}

func newVoicemail(p Params) (Applet, error) {
	v := &voicemail{prompt: []Media{"sound:vm-intro"}, beep: true, finishKey: "#"}
	var errs problems
	errs.add(p.Decode(&v.p))
	if v.p.Mailbox == "" && !p.Has("mailbox") {
		errs.add(p.Errorf("", "voicemail needs a `mailbox`"))
	} else if !ValidName(v.p.Mailbox) {
		errs.add(p.Errorf("mailbox", "mailbox %q: use letters, digits, '_', '.' and '-'", v.p.Mailbox))
	}
	switch {
	case v.p.Prompt != nil:
		v.prompt = *v.p.Prompt // say, if any, follows it
	case v.p.Say != "":
		v.prompt = nil // the text is the prompt: no stock intro before it
	}
	if v.p.Beep != nil {
		v.beep = *v.p.Beep
	}
	if v.p.FinishKey != nil {
		v.finishKey = *v.p.FinishKey
		if v.finishKey != "" && (len(v.finishKey) != 1 || !ValidKeys(v.finishKey)) {
			errs.add(p.Errorf("finish_key", "finish_key must be one key: 0-9, * or #"))
		}
	}
	if v.p.MaxLength != 0 && (v.p.MaxLength.D() < time.Second || v.p.MaxLength.D() > time.Hour) {
		errs.add(p.Errorf("max_length", "max_length must be between 1s and 1h"))
	}
	if v.p.MaxSilence != 0 && v.p.MaxSilence.D() < time.Second {
		errs.add(p.Errorf("max_silence", "max_silence must be at least 1s"))
	}
	return v, errs.err()
}

func (v *voicemail) Facts() Facts {
	return Facts{Media: v.prompt, Mailboxes: []string{v.p.Mailbox}}
}

func (v *voicemail) Run(ctx context.Context, env *Env) (Result, error) {
	if err := env.Answer(ctx); err != nil {
		return Result{}, err
	}
	prompt, err := env.Media(ctx, v.prompt, v.p.Say)
	if err != nil {
		return Result{}, fmt.Errorf("voicemail: %w", err)
	}
	if len(prompt) > 0 {
		if _, err := env.Call.Play(ctx, PlaySpec{Media: prompt}); err != nil {
			return Result{}, err
		}
	}
	started := env.Now()
	rec, err := env.Call.Record(ctx, RecordSpec{
		Name:        vmname.Name(v.p.Mailbox, env.Call.ID(), started),
		MaxDuration: orDefault(v.p.MaxLength, 3*time.Minute),
		MaxSilence:  orDefault(v.p.MaxSilence, 5*time.Second),
		Beep:        v.beep,
		FinishKey:   v.finishKey,
	})
	if err != nil && !errors.Is(err, ErrHangup) {
		return Result{}, err
	}
	hungUp := err
	if rec.Empty() {
		return Result{Outcome: "empty"}, hungUp
	}
	vm := Voicemail{
		CallID:    env.Call.ID(),
		Mailbox:   v.p.Mailbox,
		Workspace: env.Flow.Workspace,
		Caller:    env.Call.Caller(),
		Called:    env.Call.Called(),
		Flow:      env.Flow.Name,
		Step:      env.Step,
		Recording: rec,
		Time:      started,
	}
	env.State.Voicemails = append(env.State.Voicemails, vm)
	env.Note("mailbox", v.p.Mailbox)
	if env.Services != nil && env.Services.Voicemail != nil {
		// The sink queues and retries; a failure here is already logged
		// there and reconciled at start-up, so the caller is not punished.
		if serr := env.Services.Voicemail.SaveVoicemail(context.WithoutCancel(ctx), vm); serr != nil {
			env.Log.Error().Err(serr).Str("recording", rec.Name).Msg("voicemail not stored yet")
		}
	}
	return Result{Outcome: "recorded"}, hungUp
}
