package webhooks

// The flow's post_call_webhook gets a JSON summary of every call, and
// abandoned calls (the caller left before reaching anyone) go to
// abandoned_webhook and abandoned_email.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/flows"
)

// Options configure delivery.
type Options struct {
	Client      *http.Client  // default: a client with Timeout
	Timeout     time.Duration // one attempt (default 5s)
	MaxAttempts int           // default 6
	Backoff     time.Duration // first retry delay, doubling, capped at 5m (default 2s)
	// Secret signs each body: X-Callflow-Signature: sha256=<hex HMAC>.
	Secret string
	// Mail sends abandoned-call emails (nil: none).
	Mail    applets.Mailer
	Log     zerolog.Logger
	Workers int // concurrent deliveries (default 4)
	// Outbox keeps deliveries that failed, for their retries, in the
	// database: a restart does not lose them, and any node sharing the
	// database may make them, one node each. nil: retries in memory.
	Outbox Outbox
	// Node names this node in the outbox's leases.
	Node string
	// Poll is how often the Outbox is asked for retries that are due
	// (default 1s).
	Poll time.Duration
}

// Retry is a delivery waiting in the Outbox.
type Retry struct {
	ID       int64
	URL      string
	Event    string
	Body     []byte
	Attempts int
	Due      time.Time
	Error    string
}

// Outbox is where deliveries wait for their retries (the store).
type Outbox interface {
	Add(ctx context.Context, r Retry) error
	// Claim leases to node, until now+lease, up to max retries that are due.
	Claim(ctx context.Context, node string, now time.Time, lease time.Duration, max int) ([]Retry, error)
	Done(ctx context.Context, id int64) error
	Again(ctx context.Context, id int64, attempts int, due time.Time, lastErr string) error
}

// Sender delivers in the background. It is a flows.TraceSink.
type Sender struct {
	opts Options

	mu      sync.Mutex
	queue   []*job
	wake    chan struct{}
	closed  bool
	pending int
	idle    chan struct{} // closed and replaced when pending reaches 0
	stop    chan struct{}
	wg      sync.WaitGroup

	stats Stats
}

// Stats count deliveries.
type Stats struct {
	Delivered, Failed, Retries int64
}

type job struct {
	url      string
	kind     string
	body     []byte
	attempts int
	notAfter time.Time // not before: retry time
	outboxID int64     // claimed from the Outbox (0: from this process)
}

// New starts the workers; Close stops them.
func New(opts Options) *Sender {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 6
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 2 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: opts.Timeout}
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	s := &Sender{opts: opts, wake: make(chan struct{}, 1), stop: make(chan struct{}), idle: make(chan struct{})}
	close(s.idle)
	for range opts.Workers {
		s.wg.Add(1)
		go s.worker()
	}
	if opts.Outbox != nil {
		s.wg.Add(1)
		go s.pollOutbox()
	}
	return s
}

// lease is how long a claimed retry is this node's: long enough for an
// attempt; a node that dies holding one frees it when the lease ends.
func (s *Sender) lease() time.Duration { return 2*s.opts.Timeout + 10*time.Second }

// pollOutbox moves the retries that are due from the Outbox to the queue.
func (s *Sender) pollOutbox() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.Poll)
	defer t.Stop()
	for {
		s.claim()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

func (s *Sender) claim() {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	due, err := s.opts.Outbox.Claim(ctx, s.opts.Node, time.Now(), s.lease(), 2*s.opts.Workers)
	if err != nil {
		s.opts.Log.Warn().Err(err).Msg("webhook retries: cannot read the outbox")
		return
	}
	if len(due) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range due {
		if s.pending == 0 {
			s.idle = make(chan struct{})
		}
		s.pending++
		s.queue = append(s.queue, &job{url: r.URL, kind: r.Event, body: r.Body, attempts: r.Attempts, outboxID: r.ID})
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Summary is the JSON a post-call webhook receives.
type Summary struct {
	Event       string            `json:"event"` // "call.ended" or "call.abandoned"
	CallID      string            `json:"call_id"`
	Transport   string            `json:"transport"`
	Flow        string            `json:"flow"`
	FlowVersion string            `json:"flow_version"`
	Workspace   string            `json:"workspace"`
	Caller      string            `json:"caller"`
	Called      string            `json:"called"`
	Started     time.Time         `json:"started"`
	Answered    *time.Time        `json:"answered,omitempty"`
	Ended       time.Time         `json:"ended"`
	TalkSeconds float64           `json:"talk_seconds"`
	Qualified   bool              `json:"qualified"`
	Abandoned   bool              `json:"abandoned"`
	Outcome     string            `json:"outcome"`
	LastStep    string            `json:"last_step"`
	Tags        []string          `json:"tags"`
	Vars        map[string]string `json:"vars,omitempty"`
	Voicemails  []string          `json:"voicemails,omitempty"`
	Recordings  []string          `json:"recordings,omitempty"`
	Steps       []SummaryStep     `json:"steps"`
	Bids        any               `json:"bids,omitempty"`
}

// SummaryStep is one step of the trace.
type SummaryStep struct {
	Flow    string         `json:"flow"`
	Step    string         `json:"step"`
	Applet  string         `json:"applet"`
	Outcome string         `json:"outcome"`
	Next    string         `json:"next,omitempty"`
	Started time.Time      `json:"started"`
	Ended   time.Time      `json:"ended"`
	Details map[string]any `json:"details,omitempty"`
}

// Summarize turns a call record into the webhook's JSON.
func Summarize(r *flows.CallRecord, event string) Summary {
	s := Summary{
		Event: event, CallID: r.ID, Transport: r.Transport, Flow: r.Flow, FlowVersion: r.FlowVersion, Workspace: r.Workspace,
		Caller: r.Caller, Called: r.Called, Started: r.Started, Ended: r.Ended, TalkSeconds: r.TalkTime.Seconds(),
		Qualified: r.Qualified, Abandoned: r.Abandoned, Outcome: r.Outcome, LastStep: r.LastStep, Tags: r.Tags, Vars: r.Vars,
	}
	if s.Tags == nil {
		s.Tags = []string{}
	}
	if !r.Answered.IsZero() {
		a := r.Answered
		s.Answered = &a
	}
	for _, vm := range r.Voicemails {
		s.Voicemails = append(s.Voicemails, vm.Recording.Name)
	}
	for _, d := range r.Dials {
		if d.Recording != "" {
			s.Recordings = append(s.Recordings, d.Recording)
		}
	}
	for _, st := range r.Steps {
		s.Steps = append(s.Steps, SummaryStep{Flow: st.Flow, Step: st.Step, Applet: st.Applet, Outcome: st.Outcome, Next: st.Next,
			Started: st.Started, Ended: st.Ended, Details: st.Details})
		if b, ok := st.Details["bids"]; ok {
			s.Bids = b
		}
	}
	return s
}

// RecordCall queues the call's webhooks and emails; it never blocks.
func (s *Sender) RecordCall(r *flows.CallRecord) {
	if r.Notify.PostCallWebhook != "" {
		s.post(r.Notify.PostCallWebhook, "call.ended", Summarize(r, "call.ended"))
	}
	if !r.Abandoned {
		return
	}
	if r.Notify.AbandonedWebhook != "" {
		s.post(r.Notify.AbandonedWebhook, "call.abandoned", Summarize(r, "call.abandoned"))
	}
	s.mu.Lock()
	mail := s.opts.Mail
	s.mu.Unlock()
	if len(r.Notify.AbandonedEmail) > 0 && mail != nil {
		body := fmt.Sprintf("A caller hung up before reaching anyone.\n\nCaller: %s\nCalled: %s\nFlow: %s\nLast step: %s\nStarted: %s\nEnded: %s\nCall id: %s\n",
			r.Caller, r.Called, r.Flow, r.LastStep, r.Started.Format(time.RFC1123), r.Ended.Format(time.RFC1123), r.ID)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := mail.Send(ctx, applets.Email{To: r.Notify.AbandonedEmail, Subject: "Abandoned call from " + r.Caller + " (" + r.Flow + ")", Body: body}); err != nil {
			s.opts.Log.Error().Err(err).Str("call", r.ID).Msg("abandoned-call email not queued")
		}
	}
}

func (s *Sender) post(url, kind string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.opts.Log.Error().Err(err).Str("url", url).Msg("webhook body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.opts.Log.Warn().Str("url", url).Msg("webhook dropped: shutting down")
		return
	}
	if s.pending == 0 {
		s.idle = make(chan struct{})
	}
	s.pending++
	s.queue = append(s.queue, &job{url: url, kind: kind, body: body})
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next takes the first job that is due, or says how long to wait.
func (s *Sender) next(now time.Time) (*job, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wait := time.Duration(-1)
	for i, j := range s.queue {
		if !j.notAfter.After(now) {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			return j, 0
		}
		if d := j.notAfter.Sub(now); wait < 0 || d < wait {
			wait = d
		}
	}
	return nil, wait
}

func (s *Sender) worker() {
	defer s.wg.Done()
	for {
		j, wait := s.next(time.Now())
		if j == nil {
			var timer <-chan time.Time
			var t *time.Timer
			if wait >= 0 {
				t = time.NewTimer(wait)
				timer = t.C
			}
			select {
			case <-s.stop:
				if t != nil {
					t.Stop()
				}
				return
			case <-s.wake:
			case <-timer:
			}
			if t != nil {
				t.Stop()
			}
			continue
		}
		s.deliver(j)
	}
}

func (s *Sender) deliver(j *job) {
	j.attempts++
	err := s.attempt(j)
	final := err == nil || j.attempts >= s.opts.MaxAttempts
	delay := s.opts.Backoff << (j.attempts - 1)
	if delay > 5*time.Minute || delay <= 0 {
		delay = 5 * time.Minute
	}
	// The outbox first, without the lock: it is a database round trip.
	kept := false
	if ob := s.opts.Outbox; ob != nil && (j.outboxID != 0 || !final) {
		kept = s.toOutbox(ob, j, final, time.Now().Add(delay), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	log := s.opts.Log.With().Str("url", j.url).Str("event", j.kind).Int("attempt", j.attempts).Logger()
	switch {
	case err == nil:
		s.stats.Delivered++
		log.Debug().Msg("webhook delivered")
	case final || s.closed && !kept:
		s.stats.Failed++
		log.Error().Err(err).Msg("webhook given up")
	case kept:
		s.stats.Retries++
		log.Warn().Err(err).Dur("retry_in", delay).Msg("webhook failed; kept in the outbox for a retry")
	default:
		s.stats.Retries++
		j.notAfter = time.Now().Add(delay)
		s.queue = append(s.queue, j)
		log.Warn().Err(err).Dur("retry_in", delay).Msg("webhook failed; will retry")
		select {
		case s.wake <- struct{}{}:
		default:
		}
		return
	}
	s.pending--
	if s.pending == 0 {
		close(s.idle)
	}
}

// toOutbox records an attempt's result in the outbox: a delivery made or
// given up leaves it, a failed one waits there for its retry at due. It
// reports whether the outbox now holds the retry.
func (s *Sender) toOutbox(ob Outbox, j *job, final bool, due time.Time, failed error) bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	var err error
	switch {
	case final:
		err = ob.Done(ctx, j.outboxID)
	case j.outboxID != 0:
		err = ob.Again(ctx, j.outboxID, j.attempts, due, failed.Error())
	default:
		err = ob.Add(ctx, Retry{URL: j.url, Event: j.kind, Body: j.body, Attempts: j.attempts, Due: due, Error: failed.Error()})
	}
	if err != nil {
		// Kept in memory instead (a claimed one is claimed again when its
		// lease ends, and may then be made twice).
		s.opts.Log.Warn().Err(err).Str("url", j.url).Msg("webhook outbox unavailable")
		j.outboxID = 0
		return false
	}
	return !final
}

func (s *Sender) attempt(j *job) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url, bytes.NewReader(j.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "callflow")
	req.Header.Set("X-Callflow-Event", j.kind)
	req.Header.Set("X-Callflow-Attempt", strconv.Itoa(j.attempts))
	if s.opts.Secret != "" {
		mac := hmac.New(sha256.New, []byte(s.opts.Secret))
		mac.Write(j.body)
		req.Header.Set("X-Callflow-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// Stats returns delivery counts.
func (s *Sender) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Flush waits until every queued delivery succeeded or gave up, or ctx ends.
func (s *Sender) Flush(ctx context.Context) error {
	s.mu.Lock()
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the workers; what is still queued goes to the Outbox, or
// without one is logged and dropped (call Flush first to give it a chance).
func (s *Sender) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	s.opts.Client.CloseIdleConnections()
	s.mu.Lock()
	left := s.queue
	s.queue = nil
	s.mu.Unlock()
	kept := 0
	if ob := s.opts.Outbox; ob != nil {
		// Left for the next start or another node. Claimed ones are still
		// in the outbox, theirs again when the lease ends.
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		defer cancel()
		for _, j := range left {
			if j.outboxID != 0 || ob.Add(ctx, Retry{URL: j.url, Event: j.kind, Body: j.body, Attempts: j.attempts, Due: time.Now()}) == nil {
				kept++
			}
		}
	}
	if n := len(left) - kept; n > 0 {
		s.opts.Log.Warn().Int("undelivered", n).Msg("webhooks still queued at shutdown")
	}
}
