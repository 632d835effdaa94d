package mailer

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// Retry is an email waiting in the Outbox for its next attempt.
type Retry struct {
	ID       int64
	To       string // the recipients, for people reading the table
	Job      []byte // the message and what its attempts found (JSON)
	Attempts int
	Due      time.Time
	Error    string
}

// Outbox is where emails wait for their retries when they must outlive
// this process and may be delivered by any node sharing the database (the
// store's outbox). A first attempt is always made here, from the queue.
type Outbox interface {
	Add(ctx context.Context, r Retry) error
	// Claim leases to node, until now+lease, up to max emails that are due.
	Claim(ctx context.Context, node string, now time.Time, lease time.Duration, max int) ([]Retry, error)
	Done(ctx context.Context, id int64) error
	Again(ctx context.Context, id int64, attempts int, due time.Time, lastErr string) error
}

// claimBatch is how many emails from the Outbox this node holds at once:
// few, so that a claimed email is tried well within its lease.
const claimBatch = 4

// lease is how long a claimed email is this node's: a few attempts' time;
// a node that dies holding one frees it when the lease ends.
func (m *Mailer) lease() time.Duration { return 3*m.opts.Timeout + 10*time.Second }

// pollOutbox claims the emails that are due from the Outbox until ctx ends.
func (m *Mailer) pollOutbox(ctx context.Context) {
	defer m.pollers.Done()
	t := time.NewTicker(m.opts.Poll)
	defer t.Stop()
	for {
		m.claim(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Mailer) claim(ctx context.Context) {
	m.mu.Lock()
	held := 0
	for _, j := range m.pending {
		if j.outboxID != 0 {
			held++
		}
	}
	m.mu.Unlock()
	if held >= claimBatch {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	due, err := m.opts.Outbox.Claim(cctx, m.opts.Node, time.Now(), m.lease(), claimBatch-held)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn().Err(err).Msg("email retries: cannot read the outbox")
		}
		return
	}
	if len(due) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range due {
		var j job
		if err := json.Unmarshal(r.Job, &j); err != nil || j.ID == "" || len(j.Email.To) == 0 {
			// Not ours to guess at: given up, with the reason logged.
			m.log.Error().Err(err).Int64("outbox", r.ID).Msg("unreadable email in the outbox; dropped")
			go m.outboxDone(r.ID)
			continue
		}
		j.outboxID, j.Attempts, j.Next = r.ID, r.Attempts, time.Now()
		m.pending = append(m.pending, &j)
	}
	m.changedLocked()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Mailer) outboxDone(id int64) {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.Timeout)
	defer cancel()
	if err := m.opts.Outbox.Done(ctx, id); err != nil {
		m.log.Warn().Err(err).Int64("outbox", id).Msg("email outbox unavailable")
	}
}

// toOutbox records an attempt's result in the Outbox: an email sent or
// given up leaves it, a failed one waits there for its retry at due. It
// reports whether the Outbox now holds the retry (else the email stays in
// this process's queue and spool).
func (m *Mailer) toOutbox(j *job, attempts int, rejected []string, final bool, due time.Time, failed error) bool {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.Timeout)
	defer cancel()
	ob := m.opts.Outbox
	var err error
	switch {
	case final:
		err = ob.Done(ctx, j.outboxID)
	case j.outboxID != 0:
		err = ob.Again(ctx, j.outboxID, attempts, due, failed.Error())
	default:
		m.mu.Lock()
		next := *j
		m.mu.Unlock()
		next.Attempts, next.Rejected, next.Next = attempts, append(append([]string(nil), next.Rejected...), rejected...), due
		var body []byte
		if body, err = json.Marshal(&next); err == nil {
			err = ob.Add(ctx, Retry{To: strings.Join(next.Email.To, ", "), Job: body, Attempts: attempts, Due: due, Error: failed.Error()})
		}
	}
	if err != nil {
		// Kept here instead (a claimed one is claimed again when its lease
		// ends, and may then be sent twice).
		m.log.Warn().Err(err).Str("email", j.ID).Msg("email outbox unavailable")
		return false
	}
	return !final
}
