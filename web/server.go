package web

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/store"
)

// Options configure the web server. Store is required; everything else has
// a default.
type Options struct {
	Store *store.Store
	// Presence is the agents' presence; nil serves no /api/agents.
	Presence Presence
	// Queues are this node's queues; nil serves no /queues.
	Queues Queues
	// Flows returns the set serving calls now.
	Flows func() *flows.Set
	// Reload asks for a reload after a database flow changed.
	Reload func()
	// Lint are the checks the builder runs on a flow as it is edited
	// (the server's own, so that it says what a reload would).
	Lint flows.LintOptions
	// Audio opens a voicemail's WAV (8 kHz 16-bit mono) and says when it
	// was last modified. Default: the file at the voicemail's Path. Its
	// errors say why a message cannot be played: wrap ErrAudioNotFound
	// (or fs.ErrNotExist) when the recording is gone, ErrAudioUnavailable
	// when Asterisk cannot be reached. The voicemail's Path is either ""
	// or a file inside AudioDirs: a row pointing elsewhere reaches Audio
	// with Path "", to be found by its Recording name.
	Audio func(ctx context.Context, vm store.Voicemail) (io.ReadSeekCloser, time.Time, error)
	// RecordingAudio opens a whole-call recording, with the same errors
	// and Path rule as Audio. Default: Audio, given the recording's name
	// and path as a voicemail's.
	RecordingAudio func(ctx context.Context, rec store.Recording) (io.ReadSeekCloser, time.Time, error)
	// AudioDirs are the directories recordings may be served from (the
	// recordings directory, local copies of Asterisk's). A stored path
	// outside them, symlinks resolved, is never opened. None: no stored
	// path is trusted.
	AudioDirs []string
	// Health reports the transports' health; /healthz answers 200 when
	// its "ok" is true, else 503.
	Health func() map[string]any
	// Metrics is served at /metrics without authentication: scrape it from
	// localhost or keep the port private.
	Metrics http.Handler
	// SessionKey signs session cookies; random (sessions end on restart)
	// when nil.
	SessionKey []byte
	// BaseURL is the public address, for absolute links ("" is fine).
	BaseURL string
	// Secure sets the Secure flag on every cookie. Without it, cookies
	// are Secure when the request came over TLS: directly, or through a
	// trusted proxy sending X-Forwarded-Proto: https.
	Secure bool
	// TrustedProxies are the addresses and CIDRs of reverse proxies whose
	// X-Forwarded-For and X-Forwarded-Proto are believed (default
	// loopback: 127.0.0.0/8 and ::1). An empty, non-nil list trusts none.
	TrustedProxies []string
	Log            zerolog.Logger
	Now            func() time.Time

	// Location is where dates are shown and days begin (default Local).
	Location *time.Location
	// Country is the calling code for national numbers typed by admins
	// (flows.NormalizeNumber); default "1".
	Country string
	// ClientIP names the client for login rate limits (default: the
	// connection's address, or through TrustedProxies the client's in
	// X-Forwarded-For).
	ClientIP func(r *http.Request) string
	// SessionTTL is how long a login lasts (default 12h).
	SessionTTL time.Duration
	// PollInterval is how often open pages ask for new voicemail
	// (default 30s).
	PollInterval time.Duration
	// Sounds configure the sounds page (uploads off when Sounds.Dir is "").
	Sounds SoundOptions
}

// Server is the web app. It starts no goroutines: dropping it is enough.
type Server struct {
	opts      Options
	st        *store.Store
	log       zerolog.Logger
	key       []byte
	loc       *time.Location
	mux       *http.ServeMux
	pages     *pages
	static    *staticFiles
	patterns  []string // every route, for tests and docs
	limiter   *limiter
	revoked   *revocations
	proxies   []netip.Prefix
	audioDirs []string
	zones     *zoneCache
	// verifying bounds concurrent password checks (bcrypt is CPU-bound):
	// a flood of logins gets 429 instead of queueing.
	verifying chan struct{}
	// streamsDone ends the live streams at shutdown (CloseStreams).
	streamsDone chan struct{}
	streamsOnce sync.Once
}

// New builds the server.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("web: Options.Store is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Country == "" {
		opts.Country = "1"
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 30 * time.Second
	}
	if opts.Audio == nil {
		opts.Audio = FileAudio
	}
	if opts.RecordingAudio == nil {
		opts.RecordingAudio = recordingAsVoicemail(opts.Audio)
	}
	if opts.TrustedProxies == nil {
		opts.TrustedProxies = defaultTrustedProxies
	}
	proxies, err := parsePrefixes(opts.TrustedProxies)
	if err != nil {
		return nil, err
	}
	dirs, err := absDirs(opts.AudioDirs)
	if err != nil {
		return nil, err
	}
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
	key := opts.SessionKey
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("web: session key: %w", err)
		}
	}
	s := &Server{
		opts:        opts,
		streamsDone: make(chan struct{}),
		st:          opts.Store,
		log:         opts.Log,
		key:         key,
		loc:         opts.Location,
		mux:         http.NewServeMux(),
		limiter:     newLimiter(opts.Now),
		revoked:     &revocations{m: map[string]time.Time{}},
		verifying:   make(chan struct{}, 4),
		proxies:     proxies,
		audioDirs:   dirs,
		zones:       newZoneCache(),
	}
	if s.opts.ClientIP == nil {
		s.opts.ClientIP = s.defaultClientIP
	}
	if s.static, err = newStatic(); err != nil {
		return nil, err
	}
	if s.pages, err = s.parsePages(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

func (s *Server) now() time.Time { return s.opts.Now() }

func (s *Server) set() *flows.Set {
	if s.opts.Flows != nil {
		if set := s.opts.Flows(); set != nil {
			return set
		}
	}
	return flows.NewSet(0, nil, nil)
}

func (s *Server) reload() {
	if s.opts.Reload != nil {
		s.opts.Reload()
	}
}

// routes registers every handler. Everything but the public paths passes
// the authentication gate in ServeHTTP first.
func (s *Server) routes() {
	s.handle("GET /login", s.loginPage)
	s.handle("POST /login", s.loginSubmit)
	s.handle("GET /healthz", s.healthz)
	s.handle("GET /metrics", s.metrics)
	s.handle("GET /static/", s.static.ServeHTTP)
	s.handle("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, s.static.url("favicon.svg"), http.StatusMovedPermanently)
	})

	s.handle("POST /logout", s.logout)
	s.handle("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/voicemails", http.StatusSeeOther)
	})

	s.handle("GET /voicemails", s.voicemailsPage)
	s.handle("GET /voicemails/{id}", s.voicemailPage)
	s.handle("GET /voicemails/{id}/audio", s.voicemailAudio)
	s.handle("GET /voicemails/{id}/download", s.voicemailAudio)
	s.handle("POST /voicemails/{id}/heard", s.voicemailHeardForm)
	s.handle("POST /voicemails/{id}/delete", s.voicemailDeleteForm)
	s.handle("POST /voicemails/{id}/restore", s.voicemailRestoreForm)

	s.handle("GET /calls", s.callsPage)
	s.handle("GET /calls/{id}", s.callPage)
	s.handle("GET /calls/{id}/recordings/{name}/audio", s.callRecordingAudio)
	s.handle("GET /calls/{id}/recordings/{name}/download", s.callRecordingAudio)

	s.handle("GET /flows", s.flowsPage)
	s.handle("GET /flows/{name}", s.flowPage)
	s.handle("GET /flows/{name}/diagram.svg", s.flowDiagramSVG)
	s.handle("GET /flows/{name}/history", s.flowHistoryPage)
	s.handle("GET /flows/new", s.newFlowPage)
	s.handle("POST /flows/new", s.newFlowForm)
	s.handle("GET /flows/{name}/edit", s.builderPage)
	s.handle("POST /flows/{name}/copy", s.copyFileFlow)
	s.handle("POST /flows/{name}/{action}", s.flowActionForm)

	s.handle("GET /stats", s.statsPage)
	s.inventoryRoutes()

	s.handle("GET /account", s.accountPage)
	s.handle("POST /account/{action}", s.accountForm)
	s.handle("GET /users", s.usersPage)
	s.handle("POST /users", s.userCreateForm)
	s.handle("GET /users/{name}", s.userPage)
	s.handle("POST /users/{name}/{action}", s.userForm)

	s.handle("GET /api/me", s.apiMe)
	s.handle("GET /api/voicemails", s.apiVoicemails)
	s.handle("GET /api/voicemails/summary", s.apiVoicemailSummary)
	s.handle("GET /api/voicemails/{id}", s.apiVoicemail)
	s.handle("DELETE /api/voicemails/{id}", s.apiVoicemailDelete)
	s.handle("GET /api/voicemails/{id}/audio", s.voicemailAudio)
	s.handle("POST /api/voicemails/{id}/heard", s.apiVoicemailHeard)
	s.handle("DELETE /api/voicemails/{id}/heard", s.apiVoicemailHeard)
	s.handle("POST /api/voicemails/{id}/restore", s.apiVoicemailRestore)
	s.handle("GET /api/calls", s.apiCalls)
	s.handle("GET /api/calls/{id}", s.apiCall)
	s.handle("GET /api/calls/{id}/recordings/{name}/audio", s.callRecordingAudio)
	s.handle("GET /api/flows", s.apiFlows)
	s.handle("POST /api/flows", s.apiFlowCreate)
	s.handle("POST /api/flows/validate", s.apiFlowValidate)
	s.handle("POST /api/flows/compose", s.apiFlowCompose)
	s.handle("PUT /api/flows/{name}", s.apiFlowSave)
	s.handle("POST /api/flows/{name}/simulate", s.apiFlowSimulate)
	s.handle("GET /api/applets", s.apiApplets)
	s.handle("GET /api/flows/{name}", s.apiFlow)
	s.handle("DELETE /api/flows/{name}", s.apiFlowDelete)
	s.handle("GET /api/flows/{name}/history", s.apiFlowHistory)
	s.handle("GET /api/flows/{name}/dot", s.apiFlowDOT)
	s.handle("POST /api/flows/{name}/publish", s.apiFlowAction)
	s.handle("POST /api/flows/{name}/unpublish", s.apiFlowAction)
	s.handle("POST /api/flows/{name}/duplicate", s.apiFlowAction)
	s.handle("POST /api/flows/{name}/rollback", s.apiFlowAction)
	s.handle("POST /api/flows/{name}/numbers", s.apiFlowAction)
	s.handle("DELETE /api/flows/{name}/numbers", s.apiFlowAction)
	s.handle("GET /api/stats", s.apiStats)
	s.handle("GET /api/agents", s.apiAgents)
	s.handle("GET /agent", s.agentPage)
	s.handle("POST /agent", s.agentForm)
	s.handle("GET /queues", s.queuesPage)
	s.handle("GET /api/queues", s.apiQueues)
	s.handle("GET /api/queues/events", s.queueEvents)
	s.handle("POST /api/agents/{name}/presence", s.apiAgentPresence)
}

func (s *Server) handle(pattern string, h http.HandlerFunc) {
	s.patterns = append(s.patterns, pattern)
	s.mux.HandleFunc(pattern, h)
}

// public paths are served without a login.
func public(path string) bool {
	return path == "/login" || path == "/healthz" || path == "/metrics" || path == "/favicon.ico" || strings.HasPrefix(path, "/static/")
}

func isAPI(path string) bool { return path == "/api" || strings.HasPrefix(path, "/api/") }

// maxBody bounds request bodies: forms and JSON here are small.
const maxBody = 1 << 20

// ServeHTTP sets the security headers, authenticates (every path but the
// public ones), checks CSRF on state changes made with a session cookie,
// and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, s.bodyLimit(r))
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error().Interface("panic", v).Str("path", r.URL.Path).Msg("web: handler panicked")
			s.fail(w, r, http.StatusInternalServerError, "internal error")
		}
	}()

	if !public(r.URL.Path) {
		a, status, msg := s.authenticate(w, r)
		if a == nil {
			s.unauthenticated(w, r, status, msg)
			return
		}
		if s.refuseUpload(w, r, a) {
			return
		}
		if !a.token && unsafeMethod(r.Method) && !s.csrfOK(r, a) {
			s.fail(w, r, http.StatusForbidden, "missing or bad CSRF token")
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), authKey{}, a))
	}
	handler, pattern := s.mux.Handler(r)
	if pattern == "" {
		// The mux's own 404 and 405 answers, in our format.
		cw := &codeCatcher{header: http.Header{}}
		handler.ServeHTTP(cw, r)
		if allow := cw.header.Get("Allow"); allow != "" {
			h.Set("Allow", allow)
		}
		code := cw.code
		if code == 0 || code == http.StatusOK {
			code = http.StatusNotFound
		}
		msg := "not found"
		if code == http.StatusMethodNotAllowed {
			msg = "method not allowed"
		}
		s.fail(w, r, code, msg)
		return
	}
	s.mux.ServeHTTP(w, r) // matches again, filling r.PathValue
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// codeCatcher swallows a plain-text answer, keeping its status.
type codeCatcher struct {
	header http.Header
	code   int
}

func (c *codeCatcher) Header() http.Header         { return c.header }
func (c *codeCatcher) Write(b []byte) (int, error) { return len(b), nil }
func (c *codeCatcher) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}

func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if isAPI(r.URL.Path) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="callflow"`)
		writeError(w, status, msg)
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	http.Error(w, msg, status)
}

// fail answers an error in the caller's format: JSON under /api/, a page
// otherwise.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if isAPI(r.URL.Path) || strings.HasSuffix(r.URL.Path, "/audio") {
		writeError(w, code, msg)
		return
	}
	s.renderError(w, r, code, msg)
}

// internal logs err and answers 500 without detail.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("web: request failed")
	s.fail(w, r, http.StatusInternalServerError, "internal error")
}

// healthz answers the transports' health: in full to a logged-in user or
// a request made on this host; to anyone else only ok or not ok per part,
// since the details (Asterisk's URL, errors, paths, disk sizes) help an
// attacker more than a monitor.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	var h map[string]any
	if s.opts.Health != nil {
		h = s.opts.Health()
	}
	if h == nil {
		h = map[string]any{"ok": true}
	}
	code := http.StatusServiceUnavailable
	ok, _ := h["ok"].(bool)
	if ok {
		code = http.StatusOK
	}
	if !s.local(r) && !s.signedIn(w, r) {
		h = healthSummary(h, ok)
	}
	writeJSON(w, code, h)
}

// healthSummary keeps ok and, for each part (an object in the report),
// "ok" or "not ok": its own "ok" when it has one, else not ok when
// anything inside says ok false, connected false, replaced, draining or
// low.
func healthSummary(h map[string]any, ok bool) map[string]any {
	parts := map[string]string{}
	for k, v := range h {
		if m, isMap := v.(map[string]any); isMap {
			parts[k] = map[bool]string{true: "ok", false: "not ok"}[partOK(m)]
		}
	}
	return map[string]any{"ok": ok, "parts": parts}
}

func partOK(m map[string]any) bool {
	if ok, has := m["ok"].(bool); has {
		return ok
	}
	for k, v := range m {
		switch x := v.(type) {
		case bool:
			bad := (k == "connected" && !x) || ((k == "replaced" || k == "draining" || k == "low") && x)
			if bad {
				return false
			}
		case map[string]any:
			if !partOK(x) {
				return false
			}
		}
	}
	return true
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.opts.Metrics == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Del("Cache-Control")
	s.opts.Metrics.ServeHTTP(w, r)
}
