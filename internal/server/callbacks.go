package server

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/store"
)

// callbacks runs this node's queue callbacks (applets.Callbacks). A job
// waits until the call that asked for it is over (its record reaches
// RecordCall: the caller is never rung while still on the line), then runs
// until it ends or the node stops. Its result is added to that call's
// record as a step, and the record written again: one call in the
// history, with the callback's legs.
//
// Callbacks waiting live in this process: a node that is killed loses
// them, and their calls' records show the request (outcome callback) with
// no step after it, for staff to call back by hand.
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

// RecordCall is the end of a call: a callback it asked for starts now.
func (c *callbacks) RecordCall(r *flows.CallRecord) {
	c.mu.Lock()
	job, ok := c.pending[r.ID]
	delete(c.pending, r.ID)
	if ok && c.stopped {
		ok = false
	}
	if ok {
		c.running++
		c.wg.Add(1)
	}
	c.mu.Unlock()
	if !ok {
		return
	}
	row := c.rows.fullRow(r)
	go func() {
		defer c.wg.Done()
		res := job.Run(c.ctx, c.originate)
		c.finish(row, res)
		c.mu.Lock()
		c.running--
		c.mu.Unlock()
	}()
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
	row.Tags = append(slices.Clone(row.Tags), "callback")
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

// stop ends the callbacks still waiting (the calls in conversation were
// drained with the transport's) and waits until their records are written.
func (c *callbacks) stop() {
	c.mu.Lock()
	c.stopped = true
	if n := len(c.pending) + c.running; n > 0 {
		c.log.Warn().Int("callbacks", n).Msg("shutting down: callbacks still waiting are given up (their calls' records say so)")
	}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}
