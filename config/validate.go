package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FieldError is a value that is not allowed, named by its key path.
type FieldError struct {
	Key string // "log.level", "http.trusted_proxies[1]"
	Msg string

	// related are other keys the problem involves, for pointing at
	// whichever of them the admin actually wrote.
	related []string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Validate checks values the types alone cannot: enumerations, ranges,
// addresses and URLs. It returns every problem found.
func (c *Config) Validate() error {
	v := &validator{}

	v.nonEmpty("flows_dir", c.FlowsDir)
	v.nonEmpty("database", c.Database)
	if c.IsPostgres() {
		if _, err := url.Parse(c.Database); err != nil {
			v.fail("database", "not a valid postgres:// URL")
		}
		if c.Postgres.PoolSize < 1 || c.Postgres.PoolSize > 1000 {
			v.fail("postgres.pool_size", "must be 1 to 1000, got %d", c.Postgres.PoolSize)
		}
		v.positive("postgres.statement_timeout", c.Postgres.StatementTimeout.D())
	}
	v.nonEmpty("recordings_dir", c.RecordingsDir)
	if !countryCode(c.DefaultCountry) {
		v.fail("default_country", "must be a calling code of 1 to 3 digits without \"+\" (1, 44, 353), got %q", c.DefaultCountry)
	}
	v.nonEmpty("workspace", c.Workspace)

	if c.Node.Name != "" && !nodeName(c.Node.Name) {
		v.fail("node.name", "want 1 to 63 letters, digits, \".\", \"-\" or \"_\" (it names the node in metrics), got %q", c.Node.Name)
	}
	if c.ARI.Enabled {
		v.url("ari.url", c.ARI.URL, false, "http", "https")
		v.url("ari.websocket_url", c.ARI.WebsocketURL, true, "ws", "wss")
		v.nonEmpty("ari.app", c.ARI.App)
		v.nonEmpty("ari.username", c.ARI.Username)
	}
	if c.ARI.StandbyFor != "" {
		if c.ARI.StandbyFor == c.ARI.App {
			v.failRelated("ari.standby_for", []string{"ari.app"},
				"a standby needs an application of its own: ari.app is %q too (Asterisk gives one application to one connection)", c.ARI.App)
		}
		if strings.ContainsAny(c.ARI.StandbyFor, ",/ ") {
			v.fail("ari.standby_for", "want a Stasis application name (no comma, slash or space), got %q", c.ARI.StandbyFor)
		}
	}
	if c.ARI.TakeoverAfter.D() < 2*time.Second {
		v.fail("ari.takeover_after", "must be at least 2s (two of the primary's heartbeats, one a second), got %s", c.ARI.TakeoverAfter.D())
	}
	v.positive("ari.request_timeout", c.ARI.RequestTimeout.D())
	v.positive("ari.reconnect_min", c.ARI.ReconnectMin.D())
	v.positive("ari.reconnect_max", c.ARI.ReconnectMax.D())
	if c.ARI.ReconnectMin > c.ARI.ReconnectMax {
		v.failRelated("ari.reconnect_min", []string{"ari.reconnect_max"},
			"%s is more than ari.reconnect_max %s", c.ARI.ReconnectMin, c.ARI.ReconnectMax)
	}

	v.listen("agi.listen", c.AGI.Listen)
	v.positive("agi.command_timeout", c.AGI.CommandTimeout.D())

	v.listen("http.listen", c.HTTP.Listen)
	v.url("http.base_url", c.HTTP.BaseURL, true, "http", "https")
	for i, p := range c.HTTP.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			v.fail(fmt.Sprintf("http.trusted_proxies[%d]", i), "want an IP address or CIDR prefix such as 10.0.0.0/8, got %q", p)
		}
	}

	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "json", "console")

	if c.Calls.MaxSteps < 1 {
		v.fail("calls.max_steps", "must be at least 1, got %d", c.Calls.MaxSteps)
	}
	v.positive("calls.max_duration", c.Calls.MaxDuration.D())
	v.positive("calls.drain_timeout", c.Calls.DrainTimeout.D())
	v.positive("calls.reconcile_interval", c.Calls.ReconcileInterval.D())
	for i, m := range c.Calls.NotInService {
		kind, rest, ok := strings.Cut(m, ":")
		if !ok || rest == "" || !slices.Contains(mediaKinds, kind) {
			v.fail(fmt.Sprintf("calls.not_in_service[%d]", i), "want media such as \"sound:ss-noservice\" (kinds: %s), got %q", strings.Join(mediaKinds, ", "), m)
		}
	}
	v.positive("calls.qualified_after", c.Calls.QualifiedAfter.D())

	if c.SMTP.Port < 1 || c.SMTP.Port > 65535 {
		v.fail("smtp.port", "must be 1-65535, got %d", c.SMTP.Port)
	}
	if c.SMTP.From != "" || c.SMTP.Host != "" {
		if _, err := mail.ParseAddress(c.SMTP.From); err != nil {
			v.failRelated("smtp.from", []string{"smtp.host"}, "want a mail address such as callflow@example.com, got %q", c.SMTP.From)
		}
	}
	v.oneOf("smtp.tls", c.SMTP.TLS, SMTPStartTLS, SMTPTLS, SMTPNone)
	v.positive("smtp.timeout", c.SMTP.Timeout.D())
	v.positive("smtp.retry_after", c.SMTP.RetryAfter.D())

	v.nonEmpty("sms.technology", c.SMS.Technology)

	if len(c.TTS.Command) == 0 || c.TTS.Command[0] == "" {
		v.fail("tts.command", "must name a program, e.g. [\"espeak-ng\", \"-w\", \"{out}\", \"{text}\"]")
	} else {
		v.mentions("tts.command", c.TTS.Command, "{out}")
	}
	if len(c.TTS.Convert) > 0 {
		if c.TTS.Convert[0] == "" {
			v.fail("tts.convert", "must name a program, or be [] for none")
		} else {
			v.mentions("tts.convert", c.TTS.Convert, "{in}", "{out}")
		}
	}

	v.positive("sounds.max_length", c.Sounds.MaxLength.D())
	if c.Sounds.MaxUploadMB < 1 || c.Sounds.MaxUploadMB > 1024 {
		v.fail("sounds.max_upload_mb", "must be 1-1024, got %d", c.Sounds.MaxUploadMB)
	}

	v.positive("webhooks.timeout", c.Webhooks.Timeout.D())
	if c.Webhooks.MaxAttempts < 1 {
		v.fail("webhooks.max_attempts", "must be at least 1, got %d", c.Webhooks.MaxAttempts)
	}
	v.listen("debug.pprof_listen", c.Debug.PprofListen)
	if c.Debug.PprofListen != "" && !loopback(c.Debug.PprofListen) {
		v.fail("debug.pprof_listen", "must be a loopback address such as 127.0.0.1:6060, got %q", c.Debug.PprofListen)
	}
	return joinErrors(v.errs)
}

// nodeName reports whether name fits a metric label and a log field as is.
func nodeName(name string) bool {
	if name == "" || len(name) > 63 {
		return false
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_'
		if !ok {
			return false
		}
	}
	return true
}

// loopback reports whether a host:port names only this machine.
func loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// mediaKinds are the media URI kinds Asterisk can play.
var mediaKinds = []string{"sound", "recording", "tone", "digits", "number", "characters"}

// TrustedPrefixes returns TrustedProxies parsed; a bare address becomes a
// single-address prefix. Entries that do not parse are left out (Validate
// reports them).
func (h HTTP) TrustedPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(h.TrustedProxies))
	for _, s := range h.TrustedProxies {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func countryCode(s string) bool {
	if len(s) < 1 || len(s) > 3 || s[0] == '0' {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

type validator struct{ errs []error }

func (v *validator) fail(key, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) failRelated(key string, related []string, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...), related: related})
}

func (v *validator) nonEmpty(key, s string) {
	if strings.TrimSpace(s) == "" {
		v.fail(key, "must not be empty")
	}
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.fail(key, "must be more than zero, got %s", d)
	}
}

func (v *validator) oneOf(key, s string, allowed ...string) {
	if !slices.Contains(allowed, s) {
		v.fail(key, "must be one of %s, got %q", strings.Join(allowed, ", "), s)
	}
}

func (v *validator) url(key, s string, optional bool, schemes ...string) {
	if s == "" && optional {
		return
	}
	u, err := url.Parse(s)
	if err != nil || !slices.Contains(schemes, u.Scheme) || u.Host == "" {
		v.fail(key, "want an absolute %s:// URL, got %q", strings.Join(schemes, "/"), s)
	}
}

func (v *validator) listen(key, s string) {
	if s == "" {
		return
	}
	_, port, err := net.SplitHostPort(s)
	if err == nil {
		// Port 0 is allowed: the system picks a free port, which tests use.
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		v.fail(key, "want host:port such as \"127.0.0.1:8080\" or \":8080\", or \"\" for off, got %q", s)
	}
}

func (v *validator) mentions(key string, argv []string, placeholders ...string) {
	joined := strings.Join(argv, "\x00")
	for _, p := range placeholders {
		if !strings.Contains(joined, p) {
			v.fail(key, "must contain %s", p)
		}
	}
}

// joinErrors is errors.Join that keeps a single error as itself, so its
// message reads the same and a type switch on it works.
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}
