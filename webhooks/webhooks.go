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
	s := &Sender{opts: opts, wake: make(chan struct{}, 1), stop: make(chan struct{}), idle: make(chan struct{})}
	close(s.idle)
	for range opts.Workers {
		s.wg.Add(1)
		go s.worker()
	}
	return s
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
	s.mu.Lock()
	defer s.mu.Unlock()
	log := s.opts.Log.With().Str("url", j.url).Str("event", j.kind).Int("attempt", j.attempts).Logger()
	switch {
	case err == nil:
		s.stats.Delivered++
		log.Debug().Msg("webhook delivered")
	case j.attempts >= s.opts.MaxAttempts || s.closed:
		s.stats.Failed++
		log.Error().Err(err).Msg("webhook given up")
	default:
		s.stats.Retries++
		delay := s.opts.Backoff << (j.attempts - 1)
		if delay > 5*time.Minute || delay <= 0 {
			delay = 5 * time.Minute
		}
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

// Close stops the workers; what is still queued is logged and dropped
// (call Flush first to give it a chance).
func (s *Sender) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	left := len(s.queue)
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	s.opts.Client.CloseIdleConnections()
	if left > 0 {
		s.opts.Log.Warn().Int("undelivered", left).Msg("webhooks still queued at shutdown")
	}
}
