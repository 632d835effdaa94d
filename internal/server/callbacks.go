package server

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/store"
)

// adoptCallback calls back, from this node, a caller whose callback a
// node that is gone held: the flow's queue step makes the job. A flow or
// step that is no longer there gives the place up.
func (s *Server) adoptCallback(e store.QueueEntry, t applets.QueueTicket) {
	log := s.log.With().Str("call", e.Call).Str("flow", e.Place.Flow).Str("step", e.Place.Step).Logger()
	if s.callbacks == nil {
		t.Done("left", "")
		return
	}
	f, ok := s.registry.Current().ByName(e.Place.Flow)
	var st *flows.Step
	if ok {
		st, ok = f.Step(e.Place.Step)
	}
	var r applets.CallbackResumer
	if ok {
		r, ok = st.Run.(applets.CallbackResumer)
	}
	if !ok {
		log.Error().Str("number", e.Number).Msg("callback taken over, but its flow or queue step is gone: given up (call the number back by hand)")
		t.Done("left", "")
		return
	}
	env := &applets.Env{Flow: f.Info(), Step: st.ID, Services: s.dispatcher.Runner.Services, Log: log}
	if !s.callbacks.Adopt(r.ResumeCallback(env, e.Queue, t, e.Call, e.Number, e.Place.Called, e.Joined)) {
		t.Done(applets.QueueKept, "") // taken while stopping: let go again
	}
}

// callbacks runs this node's queue callbacks (applets.Callbacks). A job
// waits until the call that asked for it is over (its record reaches
// RecordCall: the caller is never rung while still on the line), then runs
// until it ends or the node stops. Its result is added to that call's
// record as a step, and the record written again: one call in the
// history, with the callback's legs.
//
// Callbacks waiting are kept in the database: a node that stops lets its
// callbacks go for the next node up (or itself after a restart) to call
// back; with SQLite, a node killed calls its own back when it is up again.
type callbacks struct {
	originate applets.Originator
	rows      callLog
	log       zerolog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	pending map[string]applets.CallbackJob // by call, until it is over
	running int
	stopped bool
	wg      sync.WaitGroup
}

func newCallbacks(o applets.Originator, rows callLog, log zerolog.Logger) *callbacks {
	ctx, cancel := context.WithCancel(context.Background())
	return &callbacks{originate: o, rows: rows, log: log, ctx: ctx, cancel: cancel, pending: map[string]applets.CallbackJob{}}
}

var _ applets.Callbacks = (*callbacks)(nil)

func (c *callbacks) Start(job applets.CallbackJob) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		c.log.Warn().Str("call", job.Call).Msg("callback not kept: shutting down")
		return
	}
	c.pending[job.Call] = job
}

// RecordCall is the end of a call: a callback it asked for starts now,
// and is added to the record just made when it ends.
func (c *callbacks) RecordCall(r *flows.CallRecord) {
	c.mu.Lock()
	job, ok := c.pending[r.ID]
	delete(c.pending, r.ID)
	c.mu.Unlock()
	if !ok {
		return
	}
	row := c.rows.fullRow(r)
	c.run(job, func(applets.CallbackResult) store.CallRecord { return row })
}

// Adopt runs now a callback taken over from a node that is gone (or from
// this node before a restart): its call is long over, and its record is
// read from the database when the callback ends. False: stopping, not run.
func (c *callbacks) Adopt(job applets.CallbackJob) bool {
	return c.run(job, func(res applets.CallbackResult) store.CallRecord {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 10*time.Second)
		defer cancel()
		row, err := c.rows.st.GetCall(ctx, job.Call, store.AllWorkspaces())
		if err != nil {
			// Its node died before writing it: the callback is recorded
			// on its own, under the call's id.
			c.log.Warn().Err(err).Str("call", job.Call).Msg("callback taken over: the call's record is missing")
			row = store.CallRecord{ID: job.Call, Flow: res.Flow, Started: res.Started, Ended: res.Ended, Outcome: "callback", Node: c.rows.node}
		}
		return row
	})
}

// run runs job in the background, unless stopping, and adds its result to
// the record row gives once it ends.
func (c *callbacks) run(job applets.CallbackJob, row func(applets.CallbackResult) store.CallRecord) bool {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return false
	}
	c.running++
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		res := job.Run(c.ctx, c.originate)
		c.finish(row(res), res)
		c.mu.Lock()
		c.running--
		c.mu.Unlock()
	}()
	return true
}

// Waiting is how many callbacks this node holds (asked for or running).
func (c *callbacks) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) + c.running
}

// finish writes the call's record again with the callback as its last step.
func (c *callbacks) finish(row store.CallRecord, res applets.CallbackResult) {
	details := maps.Clone(res.Details)
	if details == nil {
		details = map[string]any{}
	}
	details["callback"] = true
	row.Steps = append(slices.Clone(row.Steps), store.StepRecord{Flow: res.Flow, Step: res.Step, Applet: res.Applet,
		Outcome: res.Outcome, Started: res.Started, Ended: res.Ended, Details: details})
	row.Tags = slices.Clone(row.Tags)
	if !slices.Contains(row.Tags, "callback") { // once, when handed over
		row.Tags = append(row.Tags, "callback")
	}
	row.Vars = maps.Clone(row.Vars)
	if row.Vars == nil {
		row.Vars = map[string]string{}
	}
	row.Vars["queue_callback_outcome"] = res.Outcome
	for _, d := range res.Dials {
		row.TalkTime += d.TalkTime
		if d.Recording != "" && row.Recording == "" {
			row.Recording = d.Recording
		}
	}
	if err := c.rows.st.RecordCall(row); err != nil {
		c.log.Error().Err(err).Str("call", row.ID).Msg("callback not recorded")
	}
	c.rows.saveRecordings(row.ID, res.Dials)
}

// stop ends the callbacks still waiting, which let their places go (the
// calls in conversation were drained with the transport's), and waits
// until their records are written.
func (c *callbacks) stop() {
	c.mu.Lock()
	c.stopped = true
	if n := len(c.pending) + c.running; n > 0 {
		c.log.Warn().Int("callbacks", n).Msg("shutting down: callbacks still waiting keep their places for the next node up (or this one after a restart)")
	}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}
