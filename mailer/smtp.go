package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
)

// attempt makes one delivery attempt of j. rejected lists recipients the
// server refused for good (the others still get the message). On the last
// attempt, attachments that cannot be read are left out with a note.
func (m *Mailer) attempt(ctx context.Context, j *job, last bool, log zerolog.Logger) (rejected []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()

	parts, notes, err := m.openAttachments(ctx, j, last, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, p := range parts {
			p.r.Close()
		}
	}()

	c, raw, err := m.dial(ctx)
	if err != nil {
		return nil, err
	}
	// Closing the socket unblocks whatever the client is waiting for when
	// the attempt's time is up or the mailer closes.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	defer c.Close()
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
	}()

	if err := m.auth(c, raw); err != nil {
		return nil, err
	}

	var to []string
	for _, a := range j.Email.To {
		if !slices.Contains(j.Rejected, a) {
			to = append(to, a)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return nil, classify("MAIL FROM", err)
	}
	accepted := 0
	for _, a := range to {
		if err := c.Rcpt(addrSpec(a)); err != nil {
			if isPermanent(err) {
				log.Warn().Err(err).Str("recipient", a).Msg("recipient refused")
				rejected = append(rejected, a)
				continue
			}
			return rejected, fmt.Errorf("RCPT TO %s: %w", a, err)
		}
		accepted++
	}
	if accepted == 0 {
		return rejected, permanent(errors.New("every recipient was refused"))
	}
	w, err := c.Data()
	if err != nil {
		return rejected, classify("DATA", err)
	}
	if err := m.writeMessage(w, j, parts, notes); err != nil {
		// Not closing w: the final dot would deliver a truncated message.
		return rejected, fmt.Errorf("writing message: %w", err)
	}
	if err := w.Close(); err != nil {
		return rejected, classify("end of DATA", err)
	}
	_ = c.Quit()
	return rejected, nil
}

// dial connects, says EHLO and sets up TLS as configured. raw is the TCP
// connection underneath.
func (m *Mailer) dial(ctx context.Context) (_ *smtp.Client, _ net.Conn, err error) {
	addr := net.JoinHostPort(m.opts.Host, strconv.Itoa(m.opts.Port))
	d := net.Dialer{Timeout: m.opts.Timeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	defer func() {
		if err != nil {
			raw.Close()
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
			}
		}
	}()
	conn := raw
	if m.opts.TLS == TLSImplicit {
		tc := tls.Client(raw, m.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, m.opts.Host)
	if err != nil {
		return nil, nil, fmt.Errorf("greeting from %s: %w", addr, err)
	}
	if err := c.Hello(m.opts.Hostname); err != nil {
		c.Close()
		return nil, nil, classify("EHLO", err)
	}
	if m.opts.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			c.Close()
			return nil, nil, fmt.Errorf("%s does not offer STARTTLS, which TLS = %q requires", addr, TLSStartTLS)
		}
		if err := c.StartTLS(m.tlsConfig()); err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("STARTTLS with %s: %w", addr, err)
		}
	}
	return c, raw, nil
}

func (m *Mailer) tlsConfig() *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.opts.TLSConfig != nil {
		cfg = m.opts.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = m.opts.Host
	}
	return cfg
}

// auth logs in when a username is set, never sending the password in
// clear beyond the loopback interface.
func (m *Mailer) auth(c *smtp.Client, raw net.Conn) error {
	if m.opts.Username == "" {
		return nil
	}
	_, secure := c.TLSConnectionState()
	if !secure && !isLoopback(raw.RemoteAddr()) {
		return permanent(fmt.Errorf("refusing to send the SMTP password to %s without TLS", m.opts.Host))
	}
	ok, mechs := c.Extension("AUTH")
	if !ok {
		return permanent(fmt.Errorf("%s does not offer AUTH but a username is set", m.opts.Host))
	}
	var a smtp.Auth
	switch offered := strings.Fields(strings.ToUpper(mechs)); {
	case slices.Contains(offered, "PLAIN"):
		a = plainAuth{m.opts.Username, m.opts.Password}
	case slices.Contains(offered, "LOGIN"):
		a = &loginAuth{user: m.opts.Username, pass: m.opts.Password}
	default:
		return permanent(fmt.Errorf("%s offers AUTH %s; PLAIN or LOGIN is needed", m.opts.Host, mechs))
	}
	if err := c.Auth(a); err != nil {
		return classify("AUTH", err)
	}
	return nil
}

func isLoopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}

// plainAuth is AUTH PLAIN (RFC 4616). net/smtp's own refuses any
// non-TLS server not named "localhost"; the TLS policy lives in auth.
type plainAuth struct{ user, pass string }

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected challenge in AUTH PLAIN")
	}
	return nil, nil
}

// loginAuth is AUTH LOGIN: the username, then the password, each when the
// server asks (whatever its prompts say, as they vary between servers).
type loginAuth struct {
	user, pass string
	step       int
}

func (a *loginAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	a.step = 0
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(_ []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	a.step++
	switch a.step {
	case 1:
		return []byte(a.user), nil
	case 2:
		return []byte(a.pass), nil
	}
	return nil, errors.New("unexpected challenge in AUTH LOGIN")
}

// isPermanent reports a 5xx reply.
func isPermanent(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500 && te.Code < 600
}

// classify names the failed command, marking 5xx replies permanent.
func classify(cmd string, err error) error {
	err = fmt.Errorf("%s: %w", cmd, err)
	if isPermanent(err) {
		return permanent(err)
	}
	return err
}

// part is an attachment opened for this attempt.
type part struct {
	name string
	r    io.ReadCloser
}

// openAttachments opens every attachment. A failure fails the attempt (the
// recording may not be stored yet), except on the last attempt, where the
// attachment is left out and a note says so.
func (m *Mailer) openAttachments(ctx context.Context, j *job, last bool, log zerolog.Logger) (parts []part, notes []string, err error) {
	for _, a := range j.Email.Attachments {
		r, err := m.openAttachment(ctx, a.Path, a.Recording)
		if err == nil {
			parts = append(parts, part{name: a.Name, r: r})
			continue
		}
		if !last {
			for _, p := range parts {
				p.r.Close()
			}
			return nil, nil, fmt.Errorf("attachment %s: %w", a.Name, err)
		}
		log.Warn().Err(err).Str("attachment", a.Name).Msg("sending email without its attachment")
		notes = append(notes, fmt.Sprintf("The attachment %s could not be included: %v.", a.Name, err))
	}
	return parts, notes, nil
}

func (m *Mailer) openAttachment(ctx context.Context, path, recording string) (io.ReadCloser, error) {
	var perr error
	if path != "" {
		f, err := os.Open(path)
		if err == nil {
			return f, nil
		}
		perr = err
	}
	if recording == "" || m.opts.Fetch == nil {
		return nil, perr
	}
	r, err := m.opts.Fetch(ctx, recording)
	if err == nil && r == nil {
		err = errors.New("nothing fetched")
	}
	if err != nil {
		if perr != nil {
			return nil, fmt.Errorf("%w; fetching recording %s: %w", perr, recording, err)
		}
		return nil, fmt.Errorf("fetching recording %s: %w", recording, err)
	}
	return r, nil
}
