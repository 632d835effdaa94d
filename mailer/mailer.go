package mailer

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/rs/zerolog"
)

// TLS modes.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS; refused if not offered
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // no encryption (a relay on the same host or LAN)
)

// Defaults.
const (
	DefaultMaxAttempts = 6
	DefaultBackoff     = 30 * time.Second
	DefaultQueueSize   = 1000
	DefaultTimeout     = time.Minute
	// MaxBackoff caps the doubling delay between attempts.
	MaxBackoff = 10 * time.Minute
)

var (
	// ErrQueueFull is returned by Send when the queue holds QueueSize
	// messages and there is no spool to put more in.
	ErrQueueFull = errors.New("mailer: queue full")
	// ErrClosed is returned by Send and Flush after Close.
	ErrClosed = errors.New("mailer: closed")
)

// Options configure a Mailer.
type Options struct {
	Host string
	// Port defaults to 587 for starttls, 465 for tls and 25 for none.
	Port int
	// Username turns on AUTH (PLAIN, else LOGIN). The password is only sent
	// over TLS, or to a server on the loopback interface.
	Username, Password string
	// From is the sender, "Name <addr>" or "addr".
	From string
	// TLS is "starttls" (default), "tls" or "none".
	TLS string
	// TLSConfig replaces the default TLS settings (a private CA, say).
	// ServerName defaults to Host.
	TLSConfig *tls.Config
	// Hostname is sent in EHLO and used in Message-IDs; default os.Hostname.
	Hostname string
	// Timeout bounds one delivery attempt, from connect to QUIT; default 1m.
	Timeout time.Duration
	// MaxAttempts is the number of delivery attempts before giving up; default 6.
	MaxAttempts int
	// Backoff is the delay before the first retry, doubled for each
	// further one and capped at MaxBackoff; default 30s.
	Backoff time.Duration
	// QueueSize is how many messages are held in memory; default 1000.
	QueueSize int
	// Fetch reads a stored recording by name, for attachments without a
	// Path (or whose Path cannot be opened).
	Fetch  func(ctx context.Context, recording string) (io.ReadCloser, error)
	Logger zerolog.Logger
	// Spool, if set, is a directory where queued messages are kept as
	// files until delivered or given up, so a restart does not lose them.
	// It also takes messages beyond QueueSize.
	Spool string
	// Outbox, if set, keeps the emails whose attempt failed until their
	// retry, in the database: any node sharing it may send them, one node
	// each (Node names this one), and Poll is how often it is asked for
	// the retries that are due (default 1s).
	Outbox Outbox
	Node   string
	Poll   time.Duration
}

// Validate reports what is wrong with the options (defaults applied).
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if o.Host == "" {
		errs = append(errs, errors.New("mailer: no SMTP host"))
	}
	if o.Port <= 0 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("mailer: bad port %d", o.Port))
	}
	switch o.TLS {
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		errs = append(errs, fmt.Errorf("mailer: TLS must be %q, %q or %q, not %q", TLSStartTLS, TLSImplicit, TLSNone, o.TLS))
	}
	if o.From == "" {
		errs = append(errs, errors.New("mailer: no From address"))
	} else if _, err := mail.ParseAddress(o.From); err != nil {
		errs = append(errs, fmt.Errorf("mailer: From %q: %w", o.From, err))
	}
	if strings.ContainsAny(o.Hostname, " \t\r\n<>@") {
		errs = append(errs, fmt.Errorf("mailer: bad hostname %q", o.Hostname))
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.TLS == "" {
		o.TLS = TLSStartTLS
	}
	o.TLS = strings.ToLower(o.TLS)
	if o.Port == 0 {
		switch o.TLS {
		case TLSImplicit:
			o.Port = 465
		case TLSNone:
			o.Port = 25
		default:
			o.Port = 587
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
		if o.Hostname == "" || strings.ContainsAny(o.Hostname, " \t\r\n<>@") {
			o.Hostname = "localhost"
		}
	}
	return o
}

// Stats are the queue's counters, for metrics.
type Stats struct {
	Queued   int   // waiting for delivery, retries and spooled overflow included
	Retrying int   // of the queued, those that failed at least once
	Sent     int64 // delivered since New
	Failed   int64 // given up since New
}

// Mailer is an applets.Mailer: Send queues, a background goroutine delivers.
type Mailer struct {
	opts   Options
	from   *mail.Address
	cfgErr error
	log    zerolog.Logger

	mu        sync.Mutex
	pending   []*job // arrival order; includes the one being delivered
	overflow  int    // spooled messages not loaded yet
	closed    bool
	sent      int64
	failed    int64
	changed   chan struct{} // closed and replaced on every change, for Flush
	wake      chan struct{}
	cancel    context.CancelFunc
	done      chan struct{}
	pollers   sync.WaitGroup
	closeOnce sync.Once
}

var _ applets.Mailer = (*Mailer)(nil)

// New returns a Mailer and starts its delivery goroutine; Close stops it.
// Invalid options are logged, and every Send then fails with the reason.
func New(opts Options) *Mailer {
	opts = opts.withDefaults()
	m := &Mailer{
		opts:    opts,
		log:     opts.Logger.With().Str("component", "mailer").Logger(),
		changed: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if m.cfgErr = opts.Validate(); m.cfgErr != nil {
		m.log.Error().Err(m.cfgErr).Msg("email disabled: bad mail settings")
	} else {
		m.from, _ = mail.ParseAddress(opts.From)
	}
	if opts.Spool != "" && m.cfgErr == nil {
		if err := m.openSpool(); err != nil {
			m.log.Error().Err(err).Str("spool", opts.Spool).Msg("mail spool unusable; queueing in memory only")
			m.opts.Spool = ""
		}
	} else {
		m.opts.Spool = ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.run(ctx)
	if opts.Outbox != nil && m.cfgErr == nil {
		m.pollers.Add(1)
		go m.pollOutbox(ctx)
	}
	return m
}

// Send validates m and queues it for delivery. It never waits for the
// mail server.
func (m *Mailer) Send(ctx context.Context, e applets.Email) error {
	if m.cfgErr != nil {
		return m.cfgErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	j, err := m.newJob(e)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	room := len(m.pending) < m.opts.QueueSize
	if m.opts.Spool != "" {
		// Written under the lock so the worker's refill never sees a file
		// that Send is about to queue as well.
		if err := m.writeSpool(j); err != nil {
			if !room {
				return fmt.Errorf("%w, and spooling failed: %v", ErrQueueFull, err)
			}
			m.log.Warn().Err(err).Str("email", j.ID).Msg("email not spooled; kept in memory only")
		} else if !room {
			// The file is the message: the worker loads it when there is room.
			m.overflow++
		}
	} else if !room {
		return ErrQueueFull
	}
	if room {
		m.pending = append(m.pending, j)
	}
	m.log.Debug().Str("email", j.ID).Strs("to", j.Email.To).Str("subject", j.Email.Subject).Msg("email queued")
	m.changedLocked()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return nil
}

// Stats returns the queue's counters.
func (m *Mailer) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Stats{Queued: len(m.pending) + m.overflow, Sent: m.sent, Failed: m.failed}
	for _, j := range m.pending {
		if j.Attempts > 0 {
			s.Retrying++
		}
	}
	return s
}

// Flush waits until every queued message is delivered or given up, or ctx
// ends. Messages waiting for a retry are waited for.
func (m *Mailer) Flush(ctx context.Context) error {
	for {
		m.mu.Lock()
		empty := len(m.pending) == 0 && m.overflow == 0
		closed := m.closed
		ch := m.changed
		m.mu.Unlock()
		if empty {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops delivery, aborting an attempt in progress, and waits for the
// delivery goroutine to end. Spooled messages are delivered after the next
// start; others are dropped (logged). For a clean shutdown call Flush first.
func (m *Mailer) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		m.cancel()
		<-m.done
		m.pollers.Wait()
		m.mu.Lock()
		defer m.mu.Unlock()
		var lost int
		for _, j := range m.pending {
			if j.file == "" && j.outboxID == 0 { // a claimed one is the outbox's again when its lease ends
				lost++
			}
		}
		if lost > 0 {
			m.log.Warn().Int("emails", lost).Msg("mailer closed with undelivered emails; they are lost")
		}
		m.changedLocked()
	})
	return nil
}

func (m *Mailer) changedLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// job is one queued message; it is also the spool file's content.
type job struct {
	ID       string        `json:"id"`
	Created  time.Time     `json:"created"`
	Email    applets.Email `json:"email"`
	Rejected []string      `json:"rejected,omitempty"` // recipients refused for good
	Attempts int           `json:"attempts"`
	Next     time.Time     `json:"next"`

	file     string // spool file, "" if only in memory
	outboxID int64  // claimed from the Outbox (0: queued here)
}

func (m *Mailer) newJob(e applets.Email) (*job, error) {
	if len(e.To) == 0 {
		return nil, errors.New("mailer: no recipient")
	}
	out := applets.Email{Subject: e.Subject, Body: e.Body}
	for _, to := range e.To {
		a, err := mail.ParseAddress(to)
		if err != nil {
			return nil, fmt.Errorf("mailer: recipient %q: %w", to, err)
		}
		if a.Name == "" {
			out.To = append(out.To, a.Address)
		} else {
			out.To = append(out.To, a.String())
		}
	}
	for _, a := range e.Attachments {
		if a.Path == "" && a.Recording == "" {
			return nil, fmt.Errorf("mailer: attachment %q has neither a path nor a recording", a.Name)
		}
		if a.Path == "" && m.opts.Fetch == nil {
			return nil, fmt.Errorf("mailer: attachment %q: no way to fetch recording %q", a.Name, a.Recording)
		}
		a.Name = attachmentName(a)
		out.Attachments = append(out.Attachments, a)
	}
	now := time.Now()
	return &job{ID: newID(now), Created: now, Email: out, Next: now}, nil
}

// attachmentName is the file name the recipient sees.
func attachmentName(a applets.Attachment) string {
	name := a.Name
	if name == "" && a.Path != "" {
		name = filepath.Base(a.Path)
	}
	if name == "" {
		name = path.Base(a.Recording)
		if path.Ext(name) == "" {
			name += ".wav"
		}
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
			return '_'
		}
		return r
	}, name)
	if name == "" || name == "." || name == ".." {
		name = "attachment.wav"
	}
	return name
}

// newID is sortable by time, so the spool is loaded oldest first.
func newID(t time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405.000000000") + "-" + hex.EncodeToString(b[:])
}

// run delivers queued messages, one at a time, earliest due first.
func (m *Mailer) run(ctx context.Context) {
	defer close(m.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		if ctx.Err() != nil {
			return
		}
		m.refill()
		j, wait := m.next(time.Now())
		if j != nil {
			m.deliver(ctx, j)
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-m.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// next returns the message due now, or how long until one is (0: none queued).
func (m *Mailer) next(now time.Time) (*job, time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var first *job
	for _, j := range m.pending {
		if first == nil || j.Next.Before(first.Next) {
			first = j
		}
	}
	if first == nil {
		return nil, 0
	}
	if d := first.Next.Sub(now); d > 0 {
		return nil, d
	}
	return first, 0
}

func (m *Mailer) deliver(ctx context.Context, j *job) {
	attempt := j.Attempts + 1
	last := attempt >= m.opts.MaxAttempts
	log := m.log.With().Str("email", j.ID).Strs("to", j.Email.To).Str("subject", j.Email.Subject).
		Int("attempt", attempt).Int("max_attempts", m.opts.MaxAttempts).Logger()
	rejected, err := m.attempt(ctx, j, last, log)
	if ctx.Err() != nil && err != nil {
		// Shutting down: this attempt does not count.
		return
	}
	var perm *permanentError
	final := err == nil || errors.As(err, &perm) || last
	wait := backoff(m.opts.Backoff, attempt)
	// The outbox first, without the lock: it is a database round trip.
	kept := false
	if m.opts.Outbox != nil && (j.outboxID != 0 || !final) {
		kept = m.toOutbox(j, attempt, rejected, final, time.Now().Add(wait), err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.changedLocked()
	j.Attempts = attempt
	j.Rejected = append(j.Rejected, rejected...)
	switch {
	case err == nil:
		m.sent++
		m.dropLocked(j)
		log.Info().Strs("refused", j.Rejected).Msg("email sent")
	case final:
		m.failed++
		m.dropLocked(j)
		log.Error().Err(err).Msg("email delivery failed; giving up")
	case kept:
		// The database holds it now, for whichever node comes first.
		m.dropLocked(j)
		log.Warn().Err(err).Dur("retry_in", wait).Msg("email delivery failed; kept in the outbox for a retry")
	default:
		j.Next = time.Now().Add(wait)
		log.Warn().Err(err).Dur("retry_in", wait).Msg("email delivery failed; will retry")
		if j.file != "" {
			if err := m.writeSpool(j); err != nil {
				log.Warn().Err(err).Msg("could not update spooled email")
			}
		}
	}
}

func (m *Mailer) dropLocked(j *job) {
	for i, p := range m.pending {
		if p == j {
			m.pending = append(m.pending[:i], m.pending[i+1:]...)
			break
		}
	}
	m.removeSpool(j)
}

// backoff is the delay after the given failed attempt (1-based).
func backoff(first time.Duration, attempt int) time.Duration {
	d := first
	for i := 1; i < attempt && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// permanentError marks a failure that retrying cannot fix (a 5xx reply,
// credentials that would go out in clear).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }
