package applets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The queue's callback: a caller who presses callback_key hangs up keeping
// their place; their ticket stays in the queue and a background job (run by
// Services.Callbacks once the call is over) waits for their turn, rings the
// agent, then calls the caller back from the agent's phone.

const (
	defaultCallbackAttempts = 3
	defaultCallbackRetry    = 2 * time.Minute
	defaultCallbackExpires  = 4 * time.Hour
	// callbackRing is how long the caller's phone rings when called back.
	callbackRing = 30 * time.Second
	// notRungRetry is how soon the agent's phone is tried again when it
	// could not be rung at all (Asterisk away, restarting).
	notRungRetry = 5 * time.Second
)

// errAgentNotRung: the agent's phone could not be rung (the transport
// away). The caller keeps their place and it is tried again.
var errAgentNotRung = errors.New("callback: the agent's phone not rung")

func (q *queueStep) validCallback(p Params, errs *problems) {
	q.cbAttempts = q.p.CallbackAttempts
	if q.cbAttempts == 0 {
		q.cbAttempts = defaultCallbackAttempts
	}
	q.cbRetry = orDefault(q.p.CallbackRetry, defaultCallbackRetry)
	q.cbExpires = orDefault(q.p.CallbackExpires, defaultCallbackExpires)
	if q.p.CallbackKey == "" {
		if q.p.CallbackDial != "" {
			p.Warnf("callback_dial", "callback_dial without callback_key: no caller can ask for a callback")
		}
		return
	}
	if len(q.p.CallbackKey) != 1 || !ValidKeys(q.p.CallbackKey) {
		errs.add(p.Errorf("callback_key", "callback_key %q: one phone key, 0-9, * or #", q.p.CallbackKey))
	}
	if strings.Contains(q.p.ExitKeys, q.p.CallbackKey) {
		errs.add(p.Errorf("callback_key", "callback_key %q is also one of exit_keys: a key does one thing", q.p.CallbackKey))
	}
	switch {
	case q.p.CallbackDial == "":
		errs.add(p.Errorf("callback_dial", "callback_key needs callback_dial, how the caller is called back: callback_dial = \"PJSIP/${number}@trunk\""))
	case !strings.Contains(q.p.CallbackDial, "${number}"):
		errs.add(p.Errorf("callback_dial", "callback_dial %q: put ${number} where the caller's number goes, e.g. PJSIP/${number}@trunk", q.p.CallbackDial))
	default:
		if err := validTarget(strings.ReplaceAll(q.p.CallbackDial, "${number}", "5551230000")); err != nil {
			errs.add(p.Errorf("callback_dial", "callback_dial %q: %v", q.p.CallbackDial, err))
		}
	}
	if q.cbAttempts < 1 || q.cbAttempts > 10 {
		errs.add(p.Errorf("callback_attempts", "callback_attempts must be between 1 and 10"))
	}
	if q.cbRetry < 10*time.Second || q.cbRetry > time.Hour {
		errs.add(p.Errorf("callback_retry", "callback_retry must be between 10s and 1h"))
	}
	if q.cbExpires < time.Minute || q.cbExpires > 7*24*time.Hour {
		errs.add(p.Errorf("callback_expires", "callback_expires must be between 1m and 168h"))
	}
}

// offersCallback: the step has a callback key, the node can place calls
// and the caller's number is one to call back.
func (q *queueStep) offersCallback(env *Env) bool {
	return q.p.CallbackKey != "" && q.noCallbackReason(env) == ""
}

func (q *queueStep) noCallbackReason(env *Env) string {
	switch {
	case env.Services.Callbacks == nil:
		return "this node cannot place calls (ARI)"
	case !callbackNumber(env.Call.Caller()):
		return "the caller's number is unknown"
	}
	return ""
}

// callbackNumber: a number a phone can ring (no "anonymous", no name).
func callbackNumber(n string) bool {
	n = strings.TrimPrefix(n, "+")
	return len(n) >= 3 && strings.Trim(n, "0123456789") == ""
}

// requestCallback hands the caller's place to a callback job and tells the
// caller's flow to go on (outcome callback).
func (q *queueStep) requestCallback(env *Env, name string, ticket QueueTicket, joined time.Time) Result {
	number := env.Call.Caller()
	markCallback(ticket, CallbackPlace{Workspace: env.Flow.Workspace, Flow: env.Flow.Name, Step: env.Step, Called: env.Call.Called()})
	env.Services.Callbacks.Start(q.ResumeCallback(env, name, ticket, env.Call.ID(), number, env.Call.Called(), joined))
	env.Note("callback", number)
	env.State.Vars["queue_callback"] = number
	return Result{Outcome: "callback"}
}

func markCallback(t QueueTicket, p CallbackPlace) {
	if m, ok := t.(interface{ MarkCallback(CallbackPlace) }); ok {
		m.MarkCallback(p)
	}
}

// ResumeCallback is the job that calls back number for the place t
// keeps: for a request just made, or one taken over from a node gone
// (env has no call then: its flow, step and services).
func (q *queueStep) ResumeCallback(env *Env, name string, t QueueTicket, callID, number, called string, joined time.Time) CallbackJob {
	job := &callbackJob{
		q: q, call: callID, name: name, ticket: t, joined: joined,
		number: number, called: called,
		dial: strings.ReplaceAll(q.p.CallbackDial, "${number}", number),
		env: &Env{Flow: env.Flow, Step: env.Step, State: NewState(), Services: env.Services,
			Log: env.Log.With().Str("callback", number).Logger()},
	}
	return CallbackJob{Call: callID, Run: job.run}
}

// callbackJob is one caller's callback, run once their call is over.
type callbackJob struct {
	q              *queueStep
	call           string // the call that asked
	name           string
	ticket         QueueTicket
	joined         time.Time
	number, called string
	dial           string // the caller's dial string
	env            *Env   // no call: the flow, the step and the services
	legs           []map[string]any
	dials          []DialResult
}

func (j *callbackJob) run(ctx context.Context, o Originator) CallbackResult {
	env := j.env
	res := CallbackResult{Step: env.Step, Applet: "queue", Flow: env.Flow.Name, Started: env.Now()}
	outcome, err := j.wait(ctx, o)
	if err != nil {
		env.Log.Warn().Err(err).Msg("callback given up")
		env.Note("error", err.Error())
	}
	res.Outcome, res.Ended, res.Dials = outcome, env.Now(), j.dials
	env.Note("callback", j.number)
	env.Note("queue", j.name)
	env.Note("legs", j.legs)
	res.Details = env.TakeDetails()
	env.Log.Info().Str("outcome", outcome).Int("legs", len(j.legs)).Dur("after", res.Ended.Sub(j.joined)).Str("queue", j.name).Msg("callback over")
	return res
}

// wait keeps the caller's place until their turn, rings the agent, calls
// the caller back; a caller who does not answer is tried again, back in
// the queue, up to callback_attempts.
func (j *callbackJob) wait(ctx context.Context, o Originator) (string, error) {
	env, q := j.env, j.q
	expires := env.Now().Add(q.cbExpires)
	tried := map[string]time.Time{}
	attempts := 0
	outcome := "interrupted"
	ticket := j.ticket
	defer func() {
		switch {
		case outcome == "expired":
			ticket.Done("timeout", "")
		case outcome == "interrupted" && ctx.Err() != nil:
			ticket.Done(QueueKept, "") // the node stops: the next one calls back
		case outcome == "interrupted" || outcome == "no_answer":
			ticket.Done("left", "") // a no-op once an agent answered
		}
	}()
	for {
		now := env.Now()
		if !now.Before(expires) {
			outcome = "expired"
			return outcome, nil
		}
		changed := ticket.Changed()
		if _, agents, _ := q.turn(ctx, env, j.name, ticket, tried, now); agents != nil {
			st, rung, err := j.ring(ctx, o, agents, ticket)
			for _, a := range rung {
				tried[a] = env.Now()
			}
			switch {
			case ctx.Err() != nil:
				return outcome, nil
			case errors.Is(err, errAgentNotRung):
				env.Log.Warn().Err(err).Dur("retry_in", notRungRetry).Msg("callback: tried again soon, the place kept")
				if !pause(ctx, notRungRetry, nil) {
					return outcome, nil
				}
				continue
			case err != nil:
				return outcome, err
			case st == Answered:
				outcome = "answered"
				return outcome, nil
			case st != "":
				// The agent took it and the caller did not answer: their
				// place is spent; they come back later, at the back.
				attempts++
				if attempts >= q.cbAttempts {
					outcome = "no_answer"
					return outcome, nil
				}
				if !pause(ctx, q.cbRetry, nil) {
					return outcome, nil
				}
				ticket = env.Services.Queues.Join(j.name, QueueCaller{ID: j.call, Number: j.number, Priority: q.p.Priority})
				markCallback(ticket, CallbackPlace{Workspace: env.Flow.Workspace, Flow: env.Flow.Name, Step: env.Step, Called: j.called})
				continue
			}
			if len(rung) > 0 {
				continue // nobody answered: the next free agent at once
			}
		}
		if !pause(ctx, min(q.recheck(tried, now), expires.Sub(now)), changed) {
			return outcome, nil
		}
	}
}

// ring rings the agents' phones with no caller on the line; once one
// answers, the caller leaves the queue and is called back from that phone.
// It returns how the call to the caller went ("" when no agent answered)
// and the agents rung.
func (j *callbackJob) ring(ctx context.Context, o Originator, agents []AgentInfo, ticket QueueTicket) (DialStatus, []string, error) {
	env, q := j.env, j.q
	claim, got, targets, agentOf := claimAgents(env, agents)
	if claim != nil {
		defer claim.Done()
	}
	if len(targets) == 0 {
		return "", got, nil
	}
	agentCall, res, release, err := o.Originate(ctx, OriginateSpec{Targets: targets, RingTimeout: q.ringTimeout, CallerID: j.number, Number: j.called})
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", errAgentNotRung, err) // nobody rung: nobody to skip next time
	}
	if res.Status != "" {
		j.dials = append(j.dials, res)
	}
	if agentCall == nil {
		j.legs = append(j.legs, map[string]any{"leg": "agent", "targets": targets, "status": string(res.Status)})
		return "", got, nil
	}
	defer release()
	agent := agentOf[res.Target]
	if claim != nil {
		claim.Answered(agent)
	}
	ticket.Done("answered", agent) // the place is used: the callers behind move up
	j.legs = append(j.legs, map[string]any{"leg": "agent", "agent": agent, "target": res.Target, "status": string(res.Status)})
	env.Log.Info().Str("agent", agent).Msg("callback: agent answered, calling the caller back")

	// The agent hears whom they are calling back, then the ringing.
	if m := j.whisper(ctx); len(m) > 0 {
		if _, err := agentCall.Play(ctx, PlaySpec{Media: m}); err != nil {
			j.legs[len(j.legs)-1]["hung_up"] = "during the whisper"
			return NoAnswer, got, nil
		}
	}
	back, err := agentCall.Dial(ctx, DialSpec{Targets: []string{j.dial}, RingTimeout: callbackRing, CallerID: j.called, Record: env.Flow.Record})
	if back.Status != "" {
		j.dials = append(j.dials, back)
	}
	leg := map[string]any{"leg": "caller", "target": j.dial, "status": string(back.Status)}
	if back.Status == Answered {
		leg["talk_s"] = back.TalkTime.Round(time.Second).Seconds()
		if back.Recording != "" {
			leg["recording"] = back.Recording
		}
	}
	j.legs = append(j.legs, leg)
	switch {
	case back.Status == Answered:
		return Answered, got, nil
	case errors.Is(err, ErrHangup):
		leg["status"] = "agent hung up"
		return NoAnswer, got, nil
	case err != nil:
		return "", got, err
	}
	if back.Status == "" {
		return Failed, got, nil
	}
	return back.Status, got, nil
}

// whisper is what the agent hears before the caller is called back: the
// flow's whisper, then that this is a callback, the queue and the wait.
func (j *callbackJob) whisper(ctx context.Context) []Media {
	env, q := j.env, j.q
	waited := env.Now().Sub(j.joined)
	out := append([]Media(nil), env.Flow.Whisper...)
	text := strings.TrimSpace(env.Flow.WhisperText + " Callback. " + q.spokenName(env) + ". Asked " + fmt.Sprintf("%d minutes ago.", int(waited.Minutes())))
	m, err := env.Media(ctx, nil, text)
	if err != nil {
		env.Log.Warn().Err(err).Msg("callback whisper not spoken")
	}
	return append(out, m...)
}

// pause waits d, or until woken; false when ctx ended first.
func pause(ctx context.Context, d time.Duration, woken <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-woken:
	case <-ctx.Done():
		return false
	}
	return true
}
