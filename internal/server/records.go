package server

import (
	"context"
	"maps"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/mailer"
	"github.com/callflow/callflow/store"
	"github.com/callflow/callflow/webhooks"
)

// sinks hands every finished call to each sink in turn.
type sinks []flows.TraceSink

func (s sinks) RecordCall(r *flows.CallRecord) {
	for _, sink := range s {
		sink.RecordCall(r)
	}
}

// CallStarted tells the sinks that want it of a call that begins.
func (s sinks) CallStarted(r *flows.CallRecord) {
	for _, sink := range s {
		if cs, ok := sink.(flows.CallStartSink); ok {
			cs.CallStarted(r)
		}
	}
}

// callLog hands finished calls to the store's queue (never blocking).
type callLog struct {
	st   *store.Store
	log  zerolog.Logger
	node string // this node's name, on every row it writes
}

// callRow is the call's row, without its steps.
func (c callLog) callRow(r *flows.CallRecord) store.CallRecord {
	return store.CallRecord{
		Node: c.node,
		ID:   r.ID, Transport: r.Transport, Flow: r.Flow, FlowVersion: r.FlowVersion, Workspace: r.Workspace,
		Called: r.Called, Caller: r.Caller, Started: r.Started, Answered: r.Answered, Ended: r.Ended,
		Outcome: r.Outcome, TalkTime: r.TalkTime, Qualified: r.Qualified, Abandoned: r.Abandoned,
		LastStep: r.LastStep, Tags: r.Tags, Vars: r.Vars,
	}
}

func (c callLog) RecordCall(r *flows.CallRecord) {
	rec := c.fullRow(r)
	if err := c.st.RecordCall(rec); err != nil {
		// The store spools what it cannot queue: an error means it is closed.
		c.log.Error().Err(err).Str("call", r.ID).Msg("call record not stored")
	}
	c.saveRecordings(r.ID, r.Dials)
}

// saveRecordings lists the whole-call recordings of dials with the call
// (queued after its row).
func (c callLog) saveRecordings(callID string, dials []applets.DialResult) {
	for _, d := range dials {
		if d.Recording == "" {
			continue
		}
		if err := c.st.SaveRecording(store.Recording{CallID: callID, Name: d.Recording, Duration: d.TalkTime, Created: d.Answered}); err != nil {
			c.log.Error().Err(err).Str("call", callID).Msg("recording not stored")
		}
	}
}

// fullRow is the call's row with its steps and events.
func (c callLog) fullRow(r *flows.CallRecord) store.CallRecord {
	rec := c.callRow(r)
	for _, s := range r.Steps {
		d := map[string]any{}
		maps.Copy(d, s.Details)
		if len(s.Actions) > 0 {
			d["actions"] = s.Actions
		}
		if s.Next != "" {
			d["next"] = s.Next
		}
		if s.Error != "" {
			d["error"] = s.Error
		}
		rec.Steps = append(rec.Steps, store.StepRecord{Flow: s.Flow, Step: s.Step, Applet: s.Applet, Outcome: s.Outcome, Started: s.Started, Ended: s.Ended, Details: d})
	}
	if r.Resumed {
		rec.Events = append(rec.Events, store.CallEvent{Seq: len(rec.Events) + 1, Kind: "resumed", At: r.Started,
			Data: map[string]any{"reason": "callflow restarted during the call; the flow started over"}})
	}
	for _, d := range r.Dials {
		if d.Recording != "" && rec.Recording == "" {
			rec.Recording = d.Recording
		}
	}
	return rec
}

// CallStarted stores the call as in progress: if callflow dies before the
// call ends, the row survives and is marked interrupted at the next start.
func (c callLog) CallStarted(r *flows.CallRecord) {
	rec := c.callRow(r)
	rec.Outcome = store.OutcomeInProgress
	if err := c.st.RecordCall(rec); err != nil {
		c.log.Error().Err(err).Str("call", r.ID).Msg("call start not stored")
	}
}

// voicemailLog hands voicemails to the store.
type voicemailLog struct {
	st *store.Store
	// share takes messages whose audio goes into the database (nil: the
	// audio stays in files); never waited on: the periodic pass copies
	// what it misses.
	share chan<- store.Voicemail
}

func (v voicemailLog) SaveVoicemail(ctx context.Context, vm applets.Voicemail) error {
	row := store.Voicemail{
		CallID: vm.CallID, Mailbox: vm.Mailbox, Workspace: vm.Workspace, Caller: vm.Caller, Called: vm.Called,
		Flow: vm.Flow, Step: vm.Step, Duration: vm.Recording.Duration, Recording: vm.Recording.Name,
		Path: vm.Recording.Path, Created: vm.Time,
	}
	if err := v.st.SaveVoicemail(row); err != nil {
		return err
	}
	if v.share != nil {
		select {
		case v.share <- row:
		default:
		}
	}
	return nil
}

// webhookOutbox keeps webhook retries in the store's outbox, where they
// outlive a restart and any node on the database may make them.
type webhookOutbox struct{ st *store.Store }

func (o webhookOutbox) Add(ctx context.Context, r webhooks.Retry) error {
	_, err := o.st.OutboxAdd(ctx, store.OutboxItem{Target: r.URL, Event: r.Event, Body: r.Body, Attempts: r.Attempts, Due: r.Due, Error: r.Error})
	return err
}

func (o webhookOutbox) Claim(ctx context.Context, node string, now time.Time, lease time.Duration, max int) ([]webhooks.Retry, error) {
	items, err := o.st.OutboxClaim(ctx, store.OutboxWebhook, node, now, lease, max)
	out := make([]webhooks.Retry, len(items))
	for i, it := range items {
		out[i] = webhooks.Retry{ID: it.ID, URL: it.Target, Event: it.Event, Body: it.Body, Attempts: it.Attempts, Due: it.Due, Error: it.Error}
	}
	return out, err
}

func (o webhookOutbox) Done(ctx context.Context, id int64) error { return o.st.OutboxDone(ctx, id) }

func (o webhookOutbox) Again(ctx context.Context, id int64, attempts int, due time.Time, lastErr string) error {
	return o.st.OutboxRetry(ctx, id, attempts, due, lastErr)
}

// mailOutbox keeps email retries in the store's outbox, beside the
// webhooks', where any node on the database may send them.
type mailOutbox struct{ st *store.Store }

func (o mailOutbox) Add(ctx context.Context, r mailer.Retry) error {
	_, err := o.st.OutboxAdd(ctx, store.OutboxItem{Kind: store.OutboxEmail, Target: r.To, Body: r.Job, Attempts: r.Attempts, Due: r.Due, Error: r.Error})
	return err
}

func (o mailOutbox) Claim(ctx context.Context, node string, now time.Time, lease time.Duration, max int) ([]mailer.Retry, error) {
	items, err := o.st.OutboxClaim(ctx, store.OutboxEmail, node, now, lease, max)
	out := make([]mailer.Retry, len(items))
	for i, it := range items {
		out[i] = mailer.Retry{ID: it.ID, To: it.Target, Job: it.Body, Attempts: it.Attempts, Due: it.Due, Error: it.Error}
	}
	return out, err
}

func (o mailOutbox) Done(ctx context.Context, id int64) error { return o.st.OutboxDone(ctx, id) }

func (o mailOutbox) Again(ctx context.Context, id int64, attempts int, due time.Time, lastErr string) error {
	return o.st.OutboxRetry(ctx, id, attempts, due, lastErr)
}
