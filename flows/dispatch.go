package flows

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/call"
	"github.com/rs/zerolog"
)

// Dispatcher is the call.Handler of both transports: it finds the flow
// for an inbound call and runs it, and owns the one set of calls in
// progress. A number with no published flow gets the not-in-service
// message, never silence.
type Dispatcher struct {
	Registry *Registry
	Runner   *Runner
	Country  string
	// NotInService is played to callers of numbers without a flow
	// (default Asterisk's "ss-noservice").
	NotInService []applets.Media
	Log          zerolog.Logger

	active atomic.Int64
	live   sync.Map // call id -> struct{}: the calls being handled now
}

// Active is the number of calls being handled now.
func (d *Dispatcher) Active() int64 { return d.active.Load() }

// InProgress reports whether a call is being handled now (a voicemail
// reconcile leaves alone the message such a call is still recording).
func (d *Dispatcher) InProgress(callID string) bool {
	_, ok := d.live.Load(callID)
	return ok
}

// Lookup finds an inbound call's flow in set: the flow name wins, then
// the number.
func (d *Dispatcher) Lookup(set *Set, r call.Inbound) (*Flow, bool) {
	if r.FlowName != "" {
		f, ok := set.ByName(r.FlowName)
		return f, ok && f.Status == Published
	}
	n, err := NormalizeNumber(r.Number, d.Country)
	if err != nil {
		return nil, false
	}
	return set.ByNumber(n)
}

// HandleCall runs the call to its end (call.Handler).
func (d *Dispatcher) HandleCall(ctx context.Context, c call.Call, in call.Inbound) {
	d.Handle(ctx, c, in)
}

// Handle runs the call to its end and returns its record.
func (d *Dispatcher) Handle(ctx context.Context, c call.Call, r call.Inbound) *CallRecord {
	d.active.Add(1)
	defer d.active.Add(-1)
	d.live.Store(c.ID(), struct{}{})
	defer d.live.Delete(c.ID())
	set := d.Registry.Current() // the call keeps this version to the end
	if f, ok := d.Lookup(set, r); ok {
		return d.Runner.Run(ctx, c, set, f, CallInfo{Transport: r.Transport, Resumed: r.Resumed})
	}
	return d.notInService(ctx, c, r)
}

func (d *Dispatcher) notInService(ctx context.Context, c call.Call, r call.Inbound) *CallRecord {
	now := time.Now()
	rec := &CallRecord{ID: c.ID(), Transport: r.Transport, Caller: c.Caller(), Called: c.Called(), Started: now, Outcome: "not_in_service"}
	if r.FlowName != "" {
		rec.Error = "no published flow named " + r.FlowName
	} else {
		rec.Error = "no published flow for number " + r.Number
	}
	d.Log.Warn().Str("call", c.ID()).Str("caller", rec.Caller).Str("number", r.Number).Str("flow", r.FlowName).Msg("not in service: " + rec.Error)
	media := d.NotInService
	if len(media) == 0 {
		media = []applets.Media{"sound:ss-noservice"}
	}
	st := StepTrace{Seq: 1, Step: "not-in-service", Applet: "hangup", Started: now}
	err := c.Answer(ctx)
	if err == nil {
		_, err = c.Play(ctx, applets.PlaySpec{Media: media})
	}
	st.Outcome = "hangup"
	if err != nil && !errors.Is(err, applets.ErrHangup) {
		st.Error = err.Error()
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	_ = c.Hangup(hctx, "normal")
	cancel()
	st.Ended = time.Now()
	rec.Steps = []StepTrace{st}
	rec.LastStep = st.Step
	rec.Ended = st.Ended
	if d.Runner != nil && d.Runner.Sink != nil {
		d.Runner.Sink.RecordCall(rec)
	}
	return rec
}
