package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/callflow/callflow/internal/tomlpos"
)

// Config is the whole of callflow.toml. Field tags give the TOML keys; the
// environment variable of each key is derived from them (see EnvKeys).
// Fields tagged secret:"true" are hidden by Redacted.
type Config struct {
	// FlowsDir holds the flow files. Relative paths are relative to the
	// working directory of the process, like every path here.
	FlowsDir string `toml:"flows_dir"`
	// SoundsDir is where Asterisk finds sounds; "" means unknown, and then
	// flows' sound files cannot be checked.
	SoundsDir string `toml:"sounds_dir"`
	// Database is the SQLite file, or a postgres:// URL of a database
	// that several nodes share.
	Database string `toml:"database" redact:"url"`
	// DataDir holds this node's own files (the store's spool, the mail
	// spool, the TTS cache); "" is the SQLite file's directory, or
	// "callflow-data" with PostgreSQL.
	DataDir string `toml:"data_dir"`
	// RecordingsDir is where Asterisk writes recordings.
	RecordingsDir string `toml:"recordings_dir"`
	// DefaultCountry is the calling code (digits, no "+") that turns national
	// numbers into E.164.
	DefaultCountry string `toml:"default_country"`
	// Workspace is the workspace numbers and flows belong to by default.
	Workspace string `toml:"workspace"`

	Node     Node     `toml:"node"`
	ARI      ARI      `toml:"ari"`
	AGI      AGI      `toml:"agi"`
	HTTP     HTTP     `toml:"http"`
	Log      Log      `toml:"log"`
	Calls    Calls    `toml:"calls"`
	SMTP     SMTP     `toml:"smtp"`
	SMS      SMS      `toml:"sms"`
	Agents   Agents   `toml:"agents"`
	TTS      TTS      `toml:"tts"`
	Sounds   Sounds   `toml:"sounds"`
	Webhooks Webhooks `toml:"webhooks"`
	Debug    Debug    `toml:"debug"`
	Postgres Postgres `toml:"postgres"`
}

// Node names this callflow process among the nodes sharing a database.
type Node struct {
	// Name is shown with each call it handled, in /healthz and /metrics;
	// "" is the host name.
	Name string `toml:"name"`
}

// NodeName is Node.Name, or the host name.
func (c *Config) NodeName() string {
	if c.Node.Name != "" {
		return c.Node.Name
	}
	return hostName()
}

// Postgres tunes the connection to PostgreSQL (database = "postgres://...").
type Postgres struct {
	// PoolSize is the most connections this node opens for reads (the
	// writer has one more).
	PoolSize int `toml:"pool_size"`
	// StatementTimeout ends any statement that runs longer.
	StatementTimeout tomlpos.Duration `toml:"statement_timeout"`
}

// IsPostgres reports whether Database is a PostgreSQL URL.
func (c *Config) IsPostgres() bool {
	return strings.HasPrefix(c.Database, "postgres://") || strings.HasPrefix(c.Database, "postgresql://")
}

// DatabaseShown is Database for messages: a URL's password hidden.
func (c *Config) DatabaseShown() string {
	if !c.IsPostgres() {
		return c.Database
	}
	u, err := url.Parse(c.Database)
	if err != nil {
		return "(a postgres:// URL that does not parse)"
	}
	return u.Redacted()
}

// LocalDir is where this node keeps its own files (DataDir).
func (c *Config) LocalDir() string {
	switch {
	case c.DataDir != "":
		return c.DataDir
	case c.IsPostgres():
		return "callflow-data"
	}
	return filepath.Dir(c.Database)
}

// ARI is the connection to Asterisk's REST interface.
type ARI struct {
	URL string `toml:"url" redact:"url"`
	// WebsocketURL is "" to derive it from URL; see EventsURL.
	WebsocketURL   string           `toml:"websocket_url" redact:"url"`
	App            string           `toml:"app"`
	Username       string           `toml:"username"`
	Password       string           `toml:"password" secret:"true"`
	RequestTimeout tomlpos.Duration `toml:"request_timeout"`
	ReconnectMin   tomlpos.Duration `toml:"reconnect_min"`
	ReconnectMax   tomlpos.Duration `toml:"reconnect_max"`
	// EventFilter asks Asterisk to send only the events callflow handles.
	EventFilter bool `toml:"event_filter"`
	Enabled     bool `toml:"enabled"`
	// StandbyFor is the application of the primary node this node stands
	// by for on the same Asterisk: "" for a primary. A standby takes the
	// calls the primary leaves in Stasis when it dies.
	StandbyFor string `toml:"standby_for"`
	// TakeoverAfter is how long the primary's heartbeat must stand still
	// before a standby takes its calls.
	TakeoverAfter tomlpos.Duration `toml:"takeover_after"`
}

// AGI is the FastAGI server.
type AGI struct {
	// Listen is host:port, or "" for no FastAGI server.
	Listen         string           `toml:"listen"`
	CommandTimeout tomlpos.Duration `toml:"command_timeout"`
}

// HTTP is the web inbox and API.
type HTTP struct {
	// Listen is host:port, or "" for no web server.
	Listen string `toml:"listen"`
	// BaseURL is how users reach the server, for links in mail; "" when
	// unknown.
	BaseURL string `toml:"base_url" redact:"url"`
	// SessionKey signs session cookies; "" means a random key per start.
	SessionKey string `toml:"session_key" secret:"true"`
	// TrustedProxies are addresses or CIDR prefixes whose
	// X-Forwarded-For is believed.
	TrustedProxies []string `toml:"trusted_proxies"`
}

// Log is the process log.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn or error
	Format string `toml:"format"` // json or console
}

// Calls bounds every call.
type Calls struct {
	// MaxSteps stops a call whose flow loops.
	MaxSteps     int              `toml:"max_steps"`
	MaxDuration  tomlpos.Duration `toml:"max_duration"`
	DrainTimeout tomlpos.Duration `toml:"drain_timeout"`
	// ReconcileInterval is how often stored recordings are checked for
	// voicemails the database lacks.
	ReconcileInterval tomlpos.Duration `toml:"reconcile_interval"`
	// NotInService is the media played when a number has no published flow.
	NotInService []string `toml:"not_in_service"`
	// QualifiedAfter applies to flows that do not set their own.
	QualifiedAfter tomlpos.Duration `toml:"qualified_after"`
}

// Mail transport security values of SMTP.TLS.
const (
	SMTPStartTLS = "starttls"
	SMTPTLS      = "tls"
	SMTPNone     = "none"
)

// SMTP sends mail; Host "" means no mail.
type SMTP struct {
	Host     string           `toml:"host"`
	Port     int              `toml:"port"`
	Username string           `toml:"username"`
	Password string           `toml:"password" secret:"true"`
	From     string           `toml:"from"`
	TLS      string           `toml:"tls"`
	Timeout  tomlpos.Duration `toml:"timeout"`
	// RetryAfter is the wait before the first retry of a message the
	// server turned away for now, doubled for each further one (up to 10
	// minutes, six attempts in all).
	RetryAfter tomlpos.Duration `toml:"retry_after"`
}

// Agents are the people teams and queues ring.
type Agents struct {
	// WrapUp is how long an agent is left alone after a call.
	WrapUp tomlpos.Duration `toml:"wrap_up"`
}

// SMS sends text messages through Asterisk's message API.
type SMS struct {
	Technology string `toml:"technology"`
	// Endpoint is the endpoint resource (trunk) texts go out through, for
	// sms steps that name none; "" sends to technology:number.
	Endpoint string `toml:"endpoint"`
	From     string `toml:"from"`
}

// TTS turns text into sound files.
type TTS struct {
	// Command is an argv template: {text} and {out} are replaced.
	Command []string `toml:"command"`
	// Convert is an argv template with {in} and {out} that makes the
	// command's output playable by Asterisk; empty when it already is.
	Convert []string `toml:"convert"`
	// CacheDir is "" for <sounds_dir>/tts; see (*Config).TTSCacheDir.
	CacheDir string `toml:"cache_dir"`
}

// Sounds are the prompts admins upload on the web, into
// <sounds_dir>/callflow/<workspace>/<name>.wav.
type Sounds struct {
	// MaxLength is the longest prompt accepted.
	MaxLength tomlpos.Duration `toml:"max_length"`
	// MaxUploadMB is the largest file accepted, in megabytes.
	MaxUploadMB int `toml:"max_upload_mb"`
}

// SoundsUploadDir is where uploaded sounds go: <sounds_dir>/callflow, or
// "" when sounds_dir is unknown (no uploads).
func (c *Config) SoundsUploadDir() string {
	if c.SoundsDir == "" {
		return ""
	}
	return filepath.Join(c.SoundsDir, "callflow")
}

// Webhooks posts call events to other systems.
type Webhooks struct {
	Timeout     tomlpos.Duration `toml:"timeout"`
	MaxAttempts int              `toml:"max_attempts"`
	// HMACSecret signs each delivery; "" means unsigned.
	HMACSecret string `toml:"hmac_secret" secret:"true"`
}

// Debug holds what only someone measuring callflow turns on.
type Debug struct {
	// PprofListen serves Go's profiler (/debug/pprof/) at this loopback
	// host:port; "" (the default) serves nothing. It shows the process's
	// memory and goroutines, so it is refused on any other address.
	PprofListen string `toml:"pprof_listen"`
}

func dur(d time.Duration) tomlpos.Duration { return tomlpos.Duration(d) }

// Default returns the settings used for every key the file and the
// environment leave out.
func Default() *Config {
	return &Config{
		FlowsDir:       "flows",
		Database:       "callflow.db",
		Postgres:       Postgres{PoolSize: 8, StatementTimeout: dur(30 * time.Second)},
		RecordingsDir:  "/var/spool/asterisk/recording",
		DefaultCountry: "1",
		Workspace:      "default",
		ARI: ARI{
			URL:            "http://127.0.0.1:8088/ari",
			App:            "callflow",
			Username:       "callflow",
			RequestTimeout: dur(5 * time.Second),
			ReconnectMin:   dur(500 * time.Millisecond),
			ReconnectMax:   dur(10 * time.Second),
			EventFilter:    true,
			Enabled:        true,
			TakeoverAfter:  dur(3 * time.Second),
		},
		AGI: AGI{CommandTimeout: dur(10 * time.Second)},
		HTTP: HTTP{
			Listen:         "127.0.0.1:8080",
			TrustedProxies: []string{},
		},
		Log: Log{Level: "info", Format: "json"},
		Calls: Calls{
			MaxSteps:          100,
			MaxDuration:       dur(4 * time.Hour),
			DrainTimeout:      dur(30 * time.Second),
			ReconcileInterval: dur(time.Minute),
			NotInService:      []string{"sound:ss-noservice"},
			QualifiedAfter:    dur(30 * time.Second),
		},
		SMTP: SMTP{
			Port:       587,
			From:       "callflow@localhost",
			TLS:        SMTPStartTLS,
			Timeout:    dur(10 * time.Second),
			RetryAfter: dur(30 * time.Second),
		},
		SMS: SMS{Technology: "pjsip"},
		TTS: TTS{
			Command: []string{"espeak-ng", "-w", "{out}", "--", "{text}"},
			Convert: []string{"sox", "{in}", "-r", "8000", "-c", "1", "-b", "16", "{out}"},
		},
		Sounds:   Sounds{MaxLength: dur(5 * time.Minute), MaxUploadMB: 50},
		Webhooks: Webhooks{Timeout: dur(5 * time.Second), MaxAttempts: 6},
	}
}

// Load reads the file at path over the defaults (path "" reads no file),
// applies the CALLFLOW_* environment variables and validates the result.
// Problems in the file are reported as file:line:col, problems in the
// environment name the variable; all problems found are returned together.
func Load(path string) (*Config, error) {
	return load(path, os.Environ())
}

func load(path string, environ []string) (*Config, error) {
	c := Default()
	var doc *tomlpos.Document
	if path != "" {
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		doc, err = tomlpos.Parse(src)
		if err != nil {
			return nil, fileError(path, err)
		}
		if errs := doc.Decode("", doc.Root, c); len(errs) > 0 {
			for i, e := range errs {
				errs[i] = fileError(path, e)
			}
			return nil, errors.Join(errs...)
		}
	}
	fromEnv, err := c.applyEnv(environ)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, locate(err, path, doc, fromEnv)
	}
	return c, nil
}

// fileError puts the file name in front of a tomlpos error's line:col.
func fileError(path string, err error) error {
	return fmt.Errorf("%s:%w", path, err)
}

// locate turns validation errors into errors that say where the bad value
// came from: the variable that set it, or its place in the file.
func locate(err error, path string, doc *tomlpos.Document, fromEnv map[string]string) error {
	var fes []*FieldError
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			if fe, ok := e.(*FieldError); ok {
				fes = append(fes, fe)
			}
		}
	} else if fe, ok := err.(*FieldError); ok {
		fes = append(fes, fe)
	}
	if len(fes) == 0 {
		return err
	}
	out := make([]error, 0, len(fes))
	for _, fe := range fes {
		out = append(out, locateOne(fe, path, doc, fromEnv))
	}
	return errors.Join(out...)
}

func locateOne(fe *FieldError, path string, doc *tomlpos.Document, fromEnv map[string]string) error {
	for _, key := range append([]string{fe.Key}, fe.related...) {
		for k := key; k != ""; k = parentKey(k) {
			if v, ok := fromEnv[k]; ok {
				return &EnvError{Var: v, Err: fe}
			}
			if doc != nil {
				if p, ok := doc.Index.Lookup(k); ok {
					return fileError(path, &tomlpos.Error{Pos: p, Path: fe.Key, Msg: fe.Error()})
				}
			}
		}
	}
	return fe
}

// parentKey strips the last element ("[2]" or ".key") of a key path.
func parentKey(k string) string {
	if i := strings.LastIndexAny(k, ".["); i >= 0 {
		return k[:i]
	}
	return ""
}

// EventsURL is the websocket URL ARI events arrive on: WebsocketURL, or
// URL with ws/wss for http/https and "/events" appended.
func (a ARI) EventsURL() string {
	if a.WebsocketURL != "" {
		return a.WebsocketURL
	}
	u, err := url.Parse(a.URL)
	if err != nil {
		return ""
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	case "http":
		u.Scheme = "ws"
	}
	return u.JoinPath("events").String()
}

// TTSCacheDir is where synthesised speech is kept: tts.cache_dir, or
// <sounds_dir>/tts, or "" when neither is known.
func (c *Config) TTSCacheDir() string {
	if c.TTS.CacheDir != "" {
		return c.TTS.CacheDir
	}
	if c.SoundsDir != "" {
		return filepath.Join(c.SoundsDir, "tts")
	}
	return ""
}

// hostName is the default node name: the host's short name, or "callflow"
// when the host has none (or a name no metric label can hold).
func hostName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "callflow"
	}
	h, _, _ = strings.Cut(h, ".")
	if !nodeName(h) {
		return "callflow"
	}
	return h
}
