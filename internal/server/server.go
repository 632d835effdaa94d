package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/agi"
	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/ari"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/mailer"
	"github.com/callflow/callflow/metrics"
	"github.com/callflow/callflow/presence"
	"github.com/callflow/callflow/queues"
	"github.com/callflow/callflow/speech"
	"github.com/callflow/callflow/store"
	"github.com/callflow/callflow/web"
	"github.com/callflow/callflow/webhooks"
)

// Deps replace what New would otherwise build from the configuration; the
// zero value builds everything. Tests and the load tool use them to watch
// a real server, never to skip a part of it.
type Deps struct {
	// Log is the process log; the zero Logger writes nothing.
	Log zerolog.Logger
	// Services: each field set here replaces the one built from the
	// configuration (a capturing mailer in a test, a clock).
	Services applets.Services
	// Sinks also receive every finished call, after the database and the
	// webhooks.
	Sinks []flows.TraceSink
	// OnLatency receives each ARI event-to-command latency (load tool).
	OnLatency func(time.Duration)
	// StandbyPoll and Heartbeat, when set, are how often a standby reads
	// its primary's heartbeat and how often a node writes its own (tests
	// watch a takeover at a finer grain than 1s).
	StandbyPoll, Heartbeat time.Duration
	// FlowChanges, when set, announces changes to the database's flows
	// (else the store's own feed, if it has one); the poll stays as backup.
	FlowChanges FlowChanges
}

// Server is everything `callflow serve` runs, wired together: the flows
// registry and its watcher, the dispatcher, the transports, the database,
// mail and webhooks, the web inbox and the periodic recovery work.
type Server struct {
	cfg        *config.Config
	log        zerolog.Logger
	store      *store.Store
	registry   *flows.Registry
	watcher    *flows.Watcher
	dbFlows    *databaseFlowsWatch
	dispatcher *flows.Dispatcher
	ari        *ari.App
	agi        *agi.Server
	http       *http.Server
	pprof      *http.Server
	hooks      *webhooks.Sender
	// share carries new voicemails whose audio goes into the database
	// (PostgreSQL); nil on SQLite.
	share    chan store.Voicemail
	mail     *mailer.Mailer
	presence *presence.Tracker
	queues   *queues.Set
	// callbacks call back queue callers (nil without ARI: none offered).
	callbacks *callbacks
	disks     map[string]string // name: directory, watched for free space

	stop      chan struct{} // closed by Shutdown
	stopOnce  sync.Once
	done      chan struct{} // closed when Run returns
	closeOnce sync.Once
	closeErr  error
}

// New builds a server from the configuration: it opens the database and
// builds every part, but takes no call until Run. A server that is never
// run must be closed.
func New(cfg *config.Config, deps Deps) (*Server, error) {
	log := deps.Log
	if _, err := os.Stat(cfg.FlowsDir); err != nil {
		return nil, fmt.Errorf("flows directory: %w", err)
	}
	sopts := StoreOptions(cfg)
	sopts.Log = log.With().Str("component", "store").Logger()
	st, err := store.Open(context.Background(), cfg.Database, sopts)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	s := &Server{
		cfg: cfg, log: log, store: st, registry: flows.NewRegistry(),
		disks: map[string]string{"recordings": cfg.RecordingsDir, "database": cfg.LocalDir()},
		stop:  make(chan struct{}), done: make(chan struct{}),
	}
	notInService := notInServiceMedia(cfg)
	lint := flows.LintOptions{SoundsDir: cfg.SoundsDir, DefaultMaxSteps: cfg.Calls.MaxSteps, CheckWAV: speech.CheckTelephony}
	parse := flows.ParseOptions{Country: cfg.DefaultCountry}
	s.watcher = &flows.Watcher{
		Loader: &flows.Loader{
			Dir: cfg.FlowsDir, Applets: applets.Builtin(), Parse: parse, Lint: lint,
			Extra: DatabaseFlows(st, parse, lint),
		},
		Registry: s.registry,
		Log:      log.With().Str("component", "flows").Logger(),
		OnReload: s.reportNodeFlows,
	}
	s.dbFlows = &databaseFlowsWatch{changed: st.FlowsChanged, load: func() { s.watcher.Load() }, interval: flowsPoll,
		feed: deps.FlowChanges, log: log.With().Str("component", "flows").Logger()}
	if feed, ok := any(st).(FlowChanges); ok && s.dbFlows.feed == nil {
		s.dbFlows.feed = feed // a database that announces its changes
	}

	if st.SharesAudio() {
		s.share = make(chan store.Voicemail, 256)
	}
	popts := presence.Options{Directory: st, WrapUp: cfg.Agents.WrapUp.D(), Node: cfg.NodeName()}
	if cfg.IsPostgres() {
		popts.Shared = st // nodes share the agents: one node rings an agent at a time
	}
	s.presence = presence.New(popts)
	qopts := queues.Options{Node: cfg.NodeName(), Log: log.With().Str("component", "queues").Logger(),
		Days: st} // the day's figures outlive a restart, and are every node's
	if cfg.IsPostgres() {
		qopts.Shared = st // nodes share each queue's waiting list: callers in order of arrival
	} else {
		qopts.Kept = st // one node's callbacks outlive its restart
	}
	if cfg.ARI.Enabled {
		// Callbacks of a node gone, or of this one before a restart, are
		// called back from here.
		qopts.OnAdopt = s.adoptCallback
	}
	s.queues = queues.New(qopts)
	if err := s.presence.Load(context.Background()); err != nil {
		log.Warn().Err(err).Msg("agents' presence not read: every agent starts available")
	}
	m := metrics.New()
	calls := callLog{st: st, log: log, node: cfg.NodeName()}
	if cfg.ARI.Enabled {
		// Its originator is the ARI application, made below (it needs the
		// dispatcher, which needs the services).
		s.callbacks = newCallbacks(nil, calls, log.With().Str("component", "callbacks").Logger())
	}
	svc := s.services(deps.Services)
	s.hooks = webhooks.New(webhooks.Options{
		Timeout: cfg.Webhooks.Timeout.D(), MaxAttempts: cfg.Webhooks.MaxAttempts, Secret: cfg.Webhooks.HMACSecret,
		Mail: svc.Mail, Log: log.With().Str("component", "webhooks").Logger(),
		Outbox: webhookOutbox{st}, Node: cfg.NodeName(),
	})
	sinks := append(sinks{calls, s.hooks, m}, deps.Sinks...)
	if s.callbacks != nil {
		sinks = append(sinks, s.callbacks) // after the record is queued: a callback rewrites it
	}
	s.dispatcher = &flows.Dispatcher{
		Registry: s.registry,
		Runner: &flows.Runner{
			Services:       svc,
			Sink:           sinks,
			Log:            log,
			MaxSteps:       cfg.Calls.MaxSteps,
			MaxDuration:    cfg.Calls.MaxDuration.D(),
			QualifiedAfter: cfg.Calls.QualifiedAfter.D(),
		},
		Country:      cfg.DefaultCountry,
		NotInService: notInService,
		Log:          log,
	}
	if cfg.ARI.Enabled {
		s.ari = ari.New(ari.Options{
			URL:               cfg.ARI.URL,
			WebsocketURL:      cfg.ARI.WebsocketURL,
			App:               cfg.ARI.App,
			Username:          cfg.ARI.Username,
			Password:          cfg.ARI.Password,
			RequestTimeout:    cfg.ARI.RequestTimeout.D(),
			ReconnectMin:      cfg.ARI.ReconnectMin.D(),
			ReconnectMax:      cfg.ARI.ReconnectMax.D(),
			EventFilter:       cfg.ARI.EventFilter,
			SharedCallIDs:     cfg.IsPostgres(),
			StandbyFor:        cfg.ARI.StandbyFor,
			TakeoverAfter:     cfg.ARI.TakeoverAfter.D(),
			StandbyPoll:       deps.StandbyPoll,
			HeartbeatInterval: deps.Heartbeat,
			Node:              cfg.NodeName(),
			PrimaryDead:       s.primaryDead,
			ConversationOver:  s.conversationOver,
			DrainTimeout:      cfg.Calls.DrainTimeout.D(),
			MaxCallDuration:   cfg.Calls.MaxDuration.D(),
			NotInService:      notInService,
			Devices:           s.presence,
			OnLatency:         deps.OnLatency,
			Logger:            log.With().Str("component", "ari").Logger(),
		}, s.dispatcher)
		s.callbacks.originate = s.ari
	}
	if cfg.AGI.Listen != "" {
		s.agi = agi.NewServer(agi.Options{
			Listen:         cfg.AGI.Listen,
			Handler:        s.dispatcher,
			RecordingsDir:  cfg.RecordingsDir,
			CommandTimeout: cfg.AGI.CommandTimeout.D(),
			Logger:         log.With().Str("component", "agi").Logger(),
		})
	}
	m.Observe(s.gauges())
	if cfg.HTTP.Listen != "" {
		h, err := web.New(web.Options{
			Store:      st,
			Presence:   s.presence,
			Queues:     s.queues,
			Flows:      s.registry.Current,
			Reload:     s.dbFlows.reload,
			Lint:       lint,
			Audio:      s.voicemailAudio().open,
			AudioDirs:  audioDirs(cfg),
			Health:     s.Health,
			Metrics:    m.Handler(),
			SessionKey: []byte(cfg.HTTP.SessionKey),
			BaseURL:    cfg.HTTP.BaseURL,
			Secure:     strings.HasPrefix(cfg.HTTP.BaseURL, "https://"),
			// Unset keeps the web's default, loopback proxies.
			TrustedProxies: nonEmpty(cfg.HTTP.TrustedProxies),
			Country:        cfg.DefaultCountry,
			Sounds:         soundOptions(cfg, svc.Speech),
			Log:            log.With().Str("component", "web").Logger(),
		})
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("web: %w", err)
		}
		s.http = &http.Server{Addr: cfg.HTTP.Listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
		s.http.RegisterOnShutdown(h.CloseStreams)
	}
	if cfg.Debug.PprofListen != "" {
		s.pprof = &http.Server{Addr: cfg.Debug.PprofListen, Handler: pprofHandler(), ReadHeaderTimeout: 10 * time.Second}
	}
	return s, nil
}

// services are the applets' services: the configured ones, each replaced
// by the field the caller set.
func (s *Server) services(over applets.Services) *applets.Services {
	cfg, log := s.cfg, s.log
	svc := &applets.Services{
		Voicemail: voicemailLog{st: s.store, share: s.share},
		Counters:  &sharedCounters{db: s.store, log: log.With().Str("component", "counters").Logger()},
		HTTP:      &http.Client{Timeout: 10 * time.Second},
		SoundsDir: cfg.SoundsDir,
		SMS:       applets.SMSDefaults{Technology: cfg.SMS.Technology, Endpoint: cfg.SMS.Endpoint, From: cfg.SMS.From},
		Agents:    s.presence,
		Queues:    s.queues,
	}
	if s.callbacks != nil {
		svc.Callbacks = s.callbacks
	}
	if over.Speech == nil {
		ttsDir := cfg.TTSCacheDir()
		if ttsDir == "" {
			ttsDir = filepath.Join(cfg.LocalDir(), "tts")
		}
		if abs, err := filepath.Abs(ttsDir); err == nil {
			ttsDir = abs // Asterisk plays sound:/absolute/path
		}
		sp, err := speech.New(speech.Options{Command: cfg.TTS.Command, Convert: cfg.TTS.Convert, CacheDir: ttsDir,
			Logger: log.With().Str("component", "tts").Logger()})
		if err != nil {
			log.Warn().Err(err).Msg("text to speech unavailable: steps that say text will fail")
		} else {
			svc.Speech = sp
		}
	}
	if over.Mail == nil && cfg.SMTP.Host != "" {
		s.mail = mailer.New(mailer.Options{
			Host: cfg.SMTP.Host, Port: cfg.SMTP.Port, Username: cfg.SMTP.Username, Password: cfg.SMTP.Password,
			From: cfg.SMTP.From, TLS: cfg.SMTP.TLS, Timeout: cfg.SMTP.Timeout.D(), Backoff: cfg.SMTP.RetryAfter.D(),
			Spool: filepath.Join(cfg.LocalDir(), "mail-spool"),
			// Voicemails recorded over ARI live in Asterisk (or, sent by
			// another node, in the database).
			Fetch:  s.fetchRecording,
			Outbox: mailOutbox{s.store}, Node: cfg.NodeName(),
			Logger: log.With().Str("component", "mail").Logger(),
		})
		svc.Mail = s.mail
	}
	svc.Voicemail = overridden(svc.Voicemail, over.Voicemail)
	svc.Counters = overridden(svc.Counters, over.Counters)
	svc.HTTP = overridden(svc.HTTP, over.HTTP)
	svc.Mail = overridden(svc.Mail, over.Mail)
	svc.Speech = overridden(svc.Speech, over.Speech)
	if over.Clock != nil {
		svc.Clock = over.Clock
	}
	svc.SoundsDir = overridden(svc.SoundsDir, over.SoundsDir)
	svc.SMS = overridden(svc.SMS, over.SMS)
	svc.Agents = overridden(svc.Agents, over.Agents)
	svc.Queues = overridden(svc.Queues, over.Queues)
	svc.Callbacks = overridden(svc.Callbacks, over.Callbacks)
	return svc
}

// StoreOptions are the store's options from the config: with PostgreSQL
// the spool is a file of this node's data_dir, made if missing.
func StoreOptions(cfg *config.Config) store.Options {
	var o store.Options
	if cfg.IsPostgres() {
		dir := cfg.LocalDir()
		_ = os.MkdirAll(dir, 0o750) // Open reports the spool it cannot make
		o.SpoolPath = filepath.Join(dir, "store-spool.jsonl")
		o.PoolSize = cfg.Postgres.PoolSize
		o.StatementTimeout = cfg.Postgres.StatementTimeout.D()
	}
	return o
}

// reportNodeFlows records which version of each file flow this node now
// runs, for the flow page of every node sharing the database.
func (s *Server) reportNodeFlows(set *flows.Set, _ flows.Problems) {
	var out []store.NodeFlow
	for _, f := range set.Flows() {
		if f.Source == "file" {
			out = append(out, store.NodeFlow{Flow: f.Name, Version: f.Version, File: f.File})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.ReportNodeFlows(ctx, s.cfg.NodeName(), out); err != nil {
		s.log.Warn().Err(err).Msg("cannot record which flow versions this node runs")
	}
}

// overridden is over where Deps set it, else base.
func overridden[T comparable](base, over T) T {
	var zero T
	if over != zero {
		return over
	}
	return base
}

// fetchRecording reads a recording Asterisk stored (ARI voicemails), or,
// with a database that keeps the messages' audio, the copy there (an
// email retried by a node on another box).
func (s *Server) fetchRecording(ctx context.Context, name string) (io.ReadCloser, error) {
	err := fmt.Errorf("recording %s: ARI is disabled: %w", name, os.ErrNotExist)
	if s.ari != nil {
		var rc io.ReadCloser
		if rc, err = s.ari.FetchRecording(ctx, name); err == nil {
			return rc, nil
		}
	}
	if s.store.SharesAudio() {
		if rc, serr := s.store.OpenAudio(ctx, name); serr == nil {
			return rc, nil
		}
	}
	return nil, err
}

// presencePoll is how often a node on PostgreSQL reads the agents'
// presence again without being told of a change.
const presencePoll = 5 * time.Second

// wakeQueues wakes the callers waiting in queues whenever an agent's
// presence changes (a call ended, an agent logged in), until ctx ends.
func (s *Server) wakeQueues(ctx context.Context) error {
	changed, stop := s.presence.Subscribe()
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			free := 0
			for _, a := range s.presence.Snapshot() {
				if a.State == presence.Available {
					free++
				}
			}
			s.queues.Poke(free)
		}
	}
}

// gauges are what /metrics reads at each scrape.
func (s *Server) gauges() metrics.Gauges {
	g := metrics.Gauges{
		CallsInProgress:     func() float64 { return float64(s.dispatcher.Active()) },
		StoreQueueDepth:     func() float64 { return float64(s.store.QueueDepth()) },
		RecordingsFreeBytes: freeBytes(s.cfg.RecordingsDir),
		DatabaseFreeBytes:   freeBytes(s.cfg.LocalDir()),
	}
	g.Queues = func() []metrics.QueueFigures {
		var out []metrics.QueueFigures
		for _, q := range s.queues.Snapshot() {
			cb := 0
			for _, w := range q.Waiting {
				if w.Callback {
					cb++
				}
			}
			out = append(out, metrics.QueueFigures{Name: q.Name, Waiting: len(q.Waiting), Callbacks: cb, LongestWait: q.Longest, Answered: q.Answered, Abandoned: q.Abandoned})
		}
		return out
	}
	g.Agents = func() map[string]int {
		out := map[string]int{}
		for _, st := range []presence.State{presence.Available, presence.Busy, presence.Paused, presence.LoggedOut, presence.WrapUp} {
			out[string(st)] = 0
		}
		for _, a := range s.presence.Snapshot() {
			out[string(a.State)]++
		}
		return out
	}
	g.Node = map[string]string{"node": s.cfg.NodeName(), "app": "", "role": s.role(), "standby_for": ""}
	if s.ari != nil {
		g.Node["app"], g.Node["standby_for"] = s.cfg.ARI.App, s.cfg.ARI.StandbyFor
		if s.cfg.ARI.StandbyFor != "" {
			g.PrimaryAlive = func() float64 { return boolFloat(s.ari.Health().PrimaryAlive) }
			g.AdoptedChannels = func() float64 { return float64(s.ari.Health().AdoptedChannels) }
		}
		g.ARIReconnects = func() float64 { return float64(s.ari.Health().Reconnects) }
		g.ARIConnected = func() float64 { return boolFloat(s.ari.Health().Connected) }
	}
	return g
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// role is "standby" for a node standing by for another's application,
// else "primary".
func (s *Server) role() string {
	if s.ari != nil && s.cfg.ARI.StandbyFor != "" {
		return "standby"
	}
	return "primary"
}

func notInServiceMedia(cfg *config.Config) []applets.Media {
	var out []applets.Media
	for _, m := range cfg.Calls.NotInService {
		if media, err := applets.ParseMedia(m); err == nil {
			out = append(out, media)
		}
	}
	return out
}

// ARI reports whether the ARI transport is connected and its state; nil
// when ARI is disabled.
func (s *Server) ARI() *ari.App { return s.ari }

// Store is the server's database.
func (s *Server) Store() *store.Store { return s.store }

// Run takes calls until ctx ends or Shutdown is called, then stops in
// order: first no new calls, then calls in progress drain (for
// [calls] drain_timeout), then the rest. It closes the server.
func (s *Server) Run(ctx context.Context) error {
	defer close(s.done)
	defer s.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()

	s.recoverAtStart(ctx)
	s.dbFlows.reload()
	var wg sync.WaitGroup
	errc := make(chan error, 5)
	bg, cancelBG := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBG()
	goRun := func(name string, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(bg); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	goRun("flows", s.watcher.Run)
	goRun("database flows", s.dbFlows.Run)
	goRun("queues", s.wakeQueues)
	goRun("queue upkeep", func(ctx context.Context) error {
		// The queues' upkeep (callbacks kept or taken over, the day's
		// figures); on PostgreSQL also another node's news (a caller left,
		// an agent freed): who is held elsewhere is read again, then the
		// queues here look again.
		in := s.store.QueueChanges(ctx)
		if in == nil {
			s.queues.Run(ctx, nil) // SQLite: each node's own queues, its callbacks kept
			return nil
		}
		changes, done := make(chan struct{}, 1), make(chan struct{})
		go func() {
			defer close(done)
			for range in { // until ctx ends
				s.presence.SharedChanged()
				select {
				case changes <- struct{}{}:
				default:
				}
			}
		}()
		s.queues.Run(ctx, changes)
		<-done
		return nil
	})
	goRun("shared presence", func(ctx context.Context) error {
		// An agent's choice made on another node's page is in force here
		// at once (PostgreSQL; nil channel, and nothing to do, on SQLite).
		changes := s.store.PresenceChanges(ctx)
		if changes == nil {
			return nil
		}
		// The poll is the backup for a notification missed (the listening
		// connection lost, or not yet made).
		poll := time.NewTicker(presencePoll)
		defer poll.Stop()
		for {
			select {
			case _, ok := <-changes:
				if !ok {
					return nil
				}
			case <-poll.C:
			}
			if err := s.presence.Load(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn().Err(err).Msg("agents' presence not read again")
			}
		}
	})
	if s.ari != nil {
		goRun("ari", s.ari.Run)
	}
	if s.agi != nil {
		goRun("agi", s.agi.ListenAndServe)
	}
	for _, hs := range []*http.Server{s.http, s.pprof} {
		if hs == nil {
			continue
		}
		ln, err := net.Listen("tcp", hs.Addr)
		if err != nil {
			cancelBG()
			wg.Wait()
			return fmt.Errorf("http: %w", err)
		}
		goRun("http", func(context.Context) error { return hs.Serve(ln) })
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.recoverPeriodically(ctx)
	}()
	if s.share != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.shareNewAudio(ctx)
		}()
	}
	s.log.Info().Str("role", s.role()).Str("flows", s.cfg.FlowsDir).Bool("ari", s.ari != nil).Str("agi", s.cfg.AGI.Listen).Msg("callflow serving")

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		s.log.Error().Err(runErr).Msg("stopping")
	}
	s.drain()
	cancelBG()
	wg.Wait()
	s.flushOutgoing()
	s.log.Info().Msg("stopped")
	return runErr
}

// drain stops taking calls and waits for the calls in progress.
func (s *Server) drain() {
	s.log.Info().Dur("drain", s.cfg.Calls.DrainTimeout.D()).Msg("shutting down: no new calls; draining calls in progress")
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Calls.DrainTimeout.D()+5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	if s.ari != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ari.Shutdown(ctx); err != nil {
				s.log.Warn().Err(err).Msg("ari shutdown")
			}
		}()
	}
	if s.agi != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.agi.Shutdown(ctx); err != nil {
				s.log.Warn().Err(err).Msg("agi shutdown")
			}
		}()
	}
	wg.Wait()
	if s.callbacks != nil {
		s.callbacks.stop()
	}
	for _, hs := range []*http.Server{s.http, s.pprof} {
		if hs != nil {
			hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = hs.Shutdown(hctx)
			cancel()
		}
	}
}

// flushOutgoing gives webhooks and mail queued by the last calls a
// moment to go out; what is left waits in their spools.
func (s *Server) flushOutgoing() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.hooks.Flush(ctx)
	if s.mail != nil {
		_ = s.mail.Flush(ctx)
	}
}

// Shutdown asks Run to stop and waits until it has, or until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close releases what New opened: webhooks, mail and the database. Run
// closes the server itself; Close is for a server that never ran.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.hooks.Close()
		if s.mail != nil {
			s.mail.Close()
		}
		if err := s.store.Close(); err != nil {
			s.log.Error().Err(err).Msg("closing the database")
			s.closeErr = err
		}
	})
	return s.closeErr
}

// Health is /healthz: ok while every enabled transport can take calls.
func (s *Server) Health() map[string]any {
	out := map[string]any{"calls_in_progress": s.dispatcher.Active()}
	node := map[string]any{"name": s.cfg.NodeName(), "role": s.role()}
	out["node"] = node
	ok := true
	if s.ari != nil {
		h := s.ari.Health()
		node["app"] = h.App
		if h.StandbyFor != "" {
			node["standby_for"], node["primary_alive"] = h.StandbyFor, h.PrimaryAlive
			node["adopted_channels"], node["takeovers"] = h.AdoptedChannels, h.Takeovers
		}
		out["ari"] = map[string]any{"connected": h.Connected, "replaced": h.Replaced, "reconnects": h.Reconnects,
			"active_calls": h.ActiveCalls, "draining": h.Draining, "last_error": h.LastError, "asterisk_system_name": h.SystemName}
		ok = ok && h.Connected && !h.Replaced && !h.Draining
	}
	if s.agi != nil {
		// A missing whisper-accept subroutine fails only the dials that
		// need it (they never connect an unaccepted agent), so like a full
		// disk it is reported, not made "not ok".
		h := s.agi.Health()
		out["agi"] = map[string]any{"listen": s.cfg.AGI.Listen, "whisper_accept_missing": h.WhisperAcceptMissing, "message": h.Message}
	}
	// A full disk does not stop calls, so it does not make ok false; it
	// is reported for monitoring.
	disk := map[string]any{}
	for name, dir := range s.disks {
		if r := diskReport(dir); r != nil {
			disk[name] = r
		}
	}
	if len(disk) > 0 {
		out["disk"] = disk
	}
	set := s.registry.Current()
	out["flows"] = map[string]any{"loaded": len(set.Flows()), "version": set.Version, "problems": len(set.Problems)}
	out["ok"] = ok
	return out
}

func nonEmpty(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	return list
}
