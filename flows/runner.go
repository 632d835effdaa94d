package flows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/rs/zerolog"
)

// Runner walks flows for calls. One Runner serves every call; it keeps no
// per-call state of its own.
type Runner struct {
	Services *applets.Services
	Sink     TraceSink
	Log      zerolog.Logger
	// MaxSteps is the step budget of flows that set none (default 100).
	MaxSteps int
	// MaxDuration ends a call that goes on longer (default 4h).
	MaxDuration time.Duration
	// QualifiedAfter is the talk time that makes a call qualified in
	// flows that set none (default 30s).
	QualifiedAfter time.Duration
	// Clock, when set, stamps the trace (the simulator's scripted time).
	Clock func() time.Time
}

// CallInfo identifies a call to the runner.
type CallInfo struct {
	Transport string
	// Resumed: the call was picked up again after callflow restarted in
	// the middle of it, and the flow starts over.
	Resumed bool
}

var (
	errMaxDuration = errors.New("maximum call duration reached")
	errStepBudget  = errors.New("step budget spent")
)

func (r *Runner) now() time.Time {
	if r.Clock != nil {
		return r.Clock()
	}
	return time.Now()
}

// Run walks flow (from set) for call until the call ends, hangs up what
// is left, hands the record to the sink and returns it. It never returns
// an error: everything that went wrong is in the record.
func (r *Runner) Run(ctx context.Context, call applets.Call, set *Set, flow *Flow, info CallInfo) *CallRecord {
	maxDur := r.MaxDuration
	if flow.Settings.MaxDuration > 0 {
		maxDur = flow.Settings.MaxDuration.D()
	}
	if maxDur <= 0 {
		maxDur = 4 * time.Hour
	}
	ctx, cancel := context.WithTimeoutCause(ctx, maxDur, errMaxDuration)
	defer cancel()

	rec := &CallRecord{
		ID: call.ID(), Transport: info.Transport, Flow: flow.Name, FlowVersion: flow.Version,
		Workspace: flow.Workspace, Caller: call.Caller(), Called: call.Called(), Started: r.now(), Resumed: info.Resumed,
		Notify: Notify{PostCallWebhook: flow.Settings.PostCallWebhook, AbandonedWebhook: flow.Settings.AbandonedWebhook, AbandonedEmail: flow.Settings.AbandonedEmail},
	}
	log := r.Log.With().Str("call", call.ID()).Str("flow", flow.Name).Logger()
	log.Info().Str("caller", rec.Caller).Str("called", rec.Called).Str("version", flow.Version).Str("transport", info.Transport).Msg("call started")
	if s, ok := r.Sink.(CallStartSink); ok {
		s.CallStarted(rec)
	}

	tc := &tracedCall{Call: call}
	svc := tc.services(r.Services)
	state := applets.NewState()
	budget := flow.Settings.MaxSteps
	if budget <= 0 {
		budget = r.MaxSteps
	}
	if budget <= 0 {
		budget = 100
	}
	cur := flow
	step := cur.Steps[0]
	ended := false
	for n := 1; ; n++ {
		if n > budget {
			rec.Outcome = "step_budget"
			rec.Error = fmt.Sprintf("%v after %d steps", errStepBudget, budget)
			log.Warn().Int("budget", budget).Str("step", step.ID).Msg("step budget spent: hanging up")
			break
		}
		slog := log.With().Str("step", step.ID).Logger()
		env := &applets.Env{Call: tc, Flow: flowInfo(cur), Step: step.ID, State: state, Services: svc, Log: slog}
		st := StepTrace{Seq: n, Flow: cur.Name, Step: step.ID, Applet: step.Applet, Started: r.now()}
		tc.begin(state)
		res, err := step.Run.Run(stepContext(ctx, n), env)
		st.Ended = r.now()
		st.Details = env.TakeDetails()
		st.Actions = tc.take(st.Details)
		rec.LastStep = step.ID
		outcome := res.Outcome

		if err != nil && (errors.Is(err, applets.ErrHangup) || ctx.Err() != nil) {
			maxed := errors.Is(context.Cause(ctx), errMaxDuration)
			switch {
			case maxed:
				// The step was cut short; the caller did not hang up.
				outcome = "max_duration"
			case outcome == "":
				outcome = "hangup"
			}
			st.Outcome = outcome
			rec.Steps = append(rec.Steps, st)
			rec.Outcome = "hangup"
			ended = true
			if maxed {
				rec.Outcome = "max_duration"
				rec.Error = errMaxDuration.Error()
				// The caller is still there: hang up below, as for the
				// step budget. Left to the transport, a FastAGI caller
				// went on in the dialplan after AGI().
				ended = false
				slog.Warn().Str("applet", step.Applet).Dur("max_duration", maxDur).Msg("maximum call duration reached: hanging up")
				break
			}
			slog.Info().Str("applet", step.Applet).Str("outcome", outcome).Dur("took", st.Ended.Sub(st.Started)).Msg("step ended: caller gone")
			break
		}
		if err != nil {
			// A step that fails moves the call on, as hosted builders do:
			// its `next`, else the following step.
			err = fmt.Errorf("flow %q step %q call %s: %w", cur.Name, step.ID, call.ID(), err)
			st.Error = err.Error()
			slog.Error().Err(err).Str("applet", step.Applet).Msg("step failed")
			outcome = "error"
		}
		st.Outcome = outcome

		if res.Transfer != "" {
			next, ok := set.ByName(res.Transfer)
			if !ok {
				st.Error = fmt.Sprintf("transfer to unknown flow %q", res.Transfer)
				rec.Steps = append(rec.Steps, st)
				rec.Outcome, rec.Error = "error", st.Error
				slog.Error().Str("to", res.Transfer).Msg("transfer to a flow that does not exist: hanging up")
				break
			}
			st.Next = next.Name + "/" + next.Steps[0].ID
			rec.Steps = append(rec.Steps, st)
			slog.Info().Str("applet", step.Applet).Str("to", next.Name).Msg("transferred")
			cur, step = next, next.Steps[0]
			log = log.With().Str("to_flow", next.Name).Logger()
			continue
		}
		if res.End {
			rec.Steps = append(rec.Steps, st)
			rec.Outcome = "completed"
			ended = tc.hungUp
			slog.Info().Str("applet", step.Applet).Str("outcome", outcome).Msg("step ended the call")
			break
		}
		var target string
		var kind RouteKind
		if outcome == "error" {
			target, kind = cur.errorRoute(step)
		} else {
			target, kind = cur.Route(step, outcome)
		}
		if kind == RouteTo || kind == RouteFallThrough {
			st.Next = target
		}
		rec.Steps = append(rec.Steps, st)
		slog.Info().Str("applet", step.Applet).Str("outcome", outcome).Str("next", st.Next).Dur("took", st.Ended.Sub(st.Started)).Msg("step")
		if kind == RouteEnd || kind == RouteOffEnd {
			rec.Outcome = "completed"
			break
		}
		step, _ = cur.Step(target)
	}

	if !ended && !tc.hungUp {
		hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := call.Hangup(hctx, "normal"); err != nil && !errors.Is(err, applets.ErrHangup) {
			log.Debug().Err(err).Msg("hangup at the end of the flow")
		}
		hcancel()
	}
	r.finish(rec, state, flow)
	log.Info().Str("outcome", rec.Outcome).Str("last_step", rec.LastStep).Int("steps", len(rec.Steps)).
		Dur("talk_time", rec.TalkTime).Bool("abandoned", rec.Abandoned).Msg("call ended")
	if r.Sink != nil {
		r.Sink.RecordCall(rec)
	}
	return rec
}

// errorRoute is where a failed step goes: its next, else the following
// step, else the end.
func (f *Flow) errorRoute(s *Step) (string, RouteKind) {
	if s.Next != "" {
		return s.Next, RouteTo
	}
	if s.Index+1 < len(f.Steps) {
		return f.Steps[s.Index+1].ID, RouteFallThrough
	}
	return "", RouteOffEnd
}

func (r *Runner) finish(rec *CallRecord, state *applets.State, flow *Flow) {
	rec.Ended = r.now()
	rec.Tags = state.TagList()
	if len(state.Vars) > 0 {
		rec.Vars = state.Vars
	}
	rec.Voicemails = state.Voicemails
	rec.Dials = state.Dials
	for _, d := range state.Dials {
		if d.Status == applets.Answered {
			if rec.Answered.IsZero() {
				rec.Answered = d.Answered
			}
			rec.TalkTime += d.TalkTime
		}
	}
	qualified := r.QualifiedAfter
	if flow.Settings.QualifiedAfter > 0 {
		qualified = flow.Settings.QualifiedAfter.D()
	}
	if qualified <= 0 {
		qualified = 30 * time.Second
	}
	rec.Qualified = rec.TalkTime >= qualified
	reachedAgent := !rec.Answered.IsZero() || rec.TalkTime > 0
	rec.Abandoned = rec.Outcome == "hangup" && !reachedAgent && len(state.Voicemails) == 0
}

// Info is what a step of f knows of its flow.
func (f *Flow) Info() applets.FlowInfo { return flowInfo(f) }

func flowInfo(f *Flow) applets.FlowInfo {
	fi := applets.FlowInfo{Name: f.Name, Workspace: f.Workspace, Version: f.Version, Record: f.Settings.Record, WhisperAccept: f.Settings.WhisperAccept}
	fi.Whisper, fi.WhisperText, _ = f.Settings.WhisperMedia() // a bad one never loads
	return fi
}
