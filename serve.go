package main

import (
	"context"
	"errors"
	"flag"
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
	"github.com/callflow/callflow/speech"
	"github.com/callflow/callflow/store"
	"github.com/callflow/callflow/web"
	"github.com/callflow/callflow/webhooks"
)

func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file")
	flowsDir := fs.String("flows", "", "flows directory (overrides the config)")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *flowsDir != "" {
		cfg.FlowsDir = *flowsDir
	}
	log, err := newLogger(cfg.Log, stdout)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	return serve(ctx, cfg, log)
}

func newLogger(c config.Log, w io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("log level: %w", err)
	}
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

// server is everything `callflow serve` runs, wired together.
type server struct {
	cfg        *config.Config
	log        zerolog.Logger
	registry   *flows.Registry
	watcher    *flows.Watcher
	dispatcher *flows.Dispatcher
	ari        *ari.App
	agi        *agi.Server
	http       *http.Server
	// live holds the ids of the calls in progress, so the voicemail
	// reconcile leaves alone a message still being recorded.
	live sync.Map
}

// handle runs a call on either transport.
func (s *server) handle(ctx context.Context, call applets.Call, r flows.Route, transport string) {
	s.live.Store(call.ID(), struct{}{})
	defer s.live.Delete(call.ID())
	s.dispatcher.Handle(ctx, call, r, transport)
}

// inProgress reports whether a call of this process is in progress.
func (s *server) inProgress(callID string) bool {
	_, ok := s.live.Load(callID)
	return ok
}

func newServer(cfg *config.Config, log zerolog.Logger, sink flows.TraceSink, svc *applets.Services) *server {
	return newServerWith(cfg, log, sink, svc, serverExtras{})
}

// serverExtras are knobs for the load tool, not for configuration.
type serverExtras struct {
	onLatency func(time.Duration) // ARI event-to-command latency
}

func newServerWith(cfg *config.Config, log zerolog.Logger, sink flows.TraceSink, svc *applets.Services, extras serverExtras) *server {
	s := &server{cfg: cfg, log: log, registry: flows.NewRegistry()}
	s.watcher = &flows.Watcher{
		Loader: &flows.Loader{
			Dir:     cfg.FlowsDir,
			Applets: applets.Builtin(),
			Parse:   flows.ParseOptions{Country: cfg.DefaultCountry},
			Lint:    flows.LintOptions{SoundsDir: cfg.SoundsDir, DefaultMaxSteps: cfg.Calls.MaxSteps, CheckWAV: checkTelephonyWAV},
		},
		Registry: s.registry,
		Log:      log.With().Str("component", "flows").Logger(),
	}
	var notInService []applets.Media
	for _, m := range cfg.Calls.NotInService {
		if media, err := applets.ParseMedia(m); err == nil {
			notInService = append(notInService, media)
		}
	}
	s.dispatcher = &flows.Dispatcher{
		Registry: s.registry,
		Runner: &flows.Runner{
			Services:       svc,
			Sink:           sink,
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
			URL:             cfg.ARI.URL,
			WebsocketURL:    cfg.ARI.WebsocketURL,
			App:             cfg.ARI.App,
			Username:        cfg.ARI.Username,
			Password:        cfg.ARI.Password,
			RequestTimeout:  cfg.ARI.RequestTimeout.D(),
			ReconnectMin:    cfg.ARI.ReconnectMin.D(),
			ReconnectMax:    cfg.ARI.ReconnectMax.D(),
			EventFilter:     cfg.ARI.EventFilter,
			DrainTimeout:    cfg.Calls.DrainTimeout.D(),
			MaxCallDuration: cfg.Calls.MaxDuration.D(),
			NotInService:    notInService,
			OnLatency:       extras.onLatency,
			Logger:          log.With().Str("component", "ari").Logger(),
		}, ariHandler{s})
	}
	if cfg.AGI.Listen != "" {
		s.agi = agi.NewServer(agi.Options{
			Listen:         cfg.AGI.Listen,
			Handler:        agiHandler{s},
			RecordingsDir:  cfg.RecordingsDir,
			CommandTimeout: cfg.AGI.CommandTimeout.D(),
			Logger:         log.With().Str("component", "agi").Logger(),
		})
	}
	return s
}

// ariHandler runs Stasis calls.
type ariHandler struct{ s *server }

func (h ariHandler) HandleCall(ctx context.Context, call *ari.Call, in ari.Inbound) {
	h.s.handle(ctx, call, flows.Route{FlowName: in.FlowName, Number: calledNumber(in, h.s.cfg.DefaultCountry), Resumed: in.Resumed}, "ari")
}

// calledNumber is the dialled number: number=, else the extension, else a
// positional Stasis argument that is a number (Stasis(app,inbound,${EXTEN})).
func calledNumber(in ari.Inbound, country string) string {
	if _, err := flows.NormalizeNumber(in.Number, country); err == nil {
		return in.Number
	}
	for _, a := range in.Args {
		if strings.Contains(a, "=") {
			continue
		}
		if _, err := flows.NormalizeNumber(a, country); err == nil {
			return a
		}
	}
	return in.Number
}

// agiHandler runs FastAGI calls.
type agiHandler struct{ s *server }

func (h agiHandler) HandleCall(ctx context.Context, call *agi.Call, req agi.Request) {
	h.s.handle(ctx, call, flows.Route{FlowName: req.FlowName, Number: req.Number}, "agi")
}

// run starts every part and stops them in order when ctx ends: first no
// new calls, then calls in progress drain, then the rest.
func (s *server) run(ctx context.Context) error {
	s.watcher.Load()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	bg, cancelBG := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBG()

	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.watcher.Run(bg); err != nil {
			errc <- err
		}
	}()
	if s.ari != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ari.Run(bg); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("ari: %w", err)
			}
		}()
	}
	if s.agi != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.agi.ListenAndServe(bg); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("agi: %w", err)
			}
		}()
	}
	if s.http != nil {
		ln, err := net.Listen("tcp", s.http.Addr)
		if err != nil {
			cancelBG()
			wg.Wait()
			return fmt.Errorf("http: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http: %w", err)
			}
		}()
	}
	s.log.Info().Str("flows", s.cfg.FlowsDir).Bool("ari", s.ari != nil).Str("agi", s.cfg.AGI.Listen).Msg("callflow serving")

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		s.log.Error().Err(runErr).Msg("stopping")
	}
	s.log.Info().Dur("drain", s.cfg.Calls.DrainTimeout.D()).Msg("shutting down: no new calls; draining calls in progress")
	drain, cancel := context.WithTimeout(context.Background(), s.cfg.Calls.DrainTimeout.D()+5*time.Second)
	defer cancel()
	var sd sync.WaitGroup
	if s.ari != nil {
		sd.Add(1)
		go func() {
			defer sd.Done()
			if err := s.ari.Shutdown(drain); err != nil {
				s.log.Warn().Err(err).Msg("ari shutdown")
			}
		}()
	}
	if s.agi != nil {
		sd.Add(1)
		go func() {
			defer sd.Done()
			if err := s.agi.Shutdown(drain); err != nil {
				s.log.Warn().Err(err).Msg("agi shutdown")
			}
		}()
	}
	sd.Wait()
	if s.http != nil {
		hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.http.Shutdown(hctx)
		cancel()
	}
	cancelBG()
	wg.Wait()
	s.log.Info().Msg("stopped")
	return runErr
}

func serve(ctx context.Context, cfg *config.Config, log zerolog.Logger) error {
	if _, err := os.Stat(cfg.FlowsDir); err != nil {
		return fmt.Errorf("flows directory: %w", err)
	}
	st, err := store.Open(ctx, cfg.Database, store.Options{Log: log.With().Str("component", "store").Logger()})
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error().Err(err).Msg("closing the database")
		}
	}()
	markInterrupted(ctx, st, log)
	svc := &applets.Services{
		Voicemail: voicemailLog{st},
		Counters:  st,
		HTTP:      &http.Client{Timeout: 10 * time.Second},
		SoundsDir: cfg.SoundsDir,
		SMS:       applets.SMSDefaults{Technology: cfg.SMS.Technology, Endpoint: cfg.SMS.Endpoint, From: cfg.SMS.From},
	}
	ttsDir := cfg.TTSCacheDir()
	if ttsDir == "" {
		ttsDir = filepath.Join(filepath.Dir(cfg.Database), "tts")
	}
	if abs, err := filepath.Abs(ttsDir); err == nil {
		ttsDir = abs // Asterisk plays sound:/absolute/path
	}
	if sp, err := speech.New(speech.Options{Command: cfg.TTS.Command, Convert: cfg.TTS.Convert, CacheDir: ttsDir,
		Logger: log.With().Str("component", "tts").Logger()}); err != nil {
		log.Warn().Err(err).Msg("text to speech unavailable: steps that say text will fail")
	} else {
		svc.Speech = sp
	}
	hooks := webhooks.New(webhooks.Options{
		Timeout: cfg.Webhooks.Timeout.D(), MaxAttempts: cfg.Webhooks.MaxAttempts, Secret: cfg.Webhooks.HMACSecret,
		Log: log.With().Str("component", "webhooks").Logger(),
	})
	var s *server
	gauges := metrics.Gauges{
		CallsInProgress:     func() float64 { return float64(s.dispatcher.Active()) },
		StoreQueueDepth:     func() float64 { return float64(st.QueueDepth()) },
		RecordingsFreeBytes: freeBytes(cfg.RecordingsDir),
		DatabaseFreeBytes:   freeBytes(databaseDir(cfg.Database)),
	}
	if cfg.ARI.Enabled {
		gauges.ARIReconnects = func() float64 { return float64(s.ari.Health().Reconnects) }
		gauges.ARIConnected = func() float64 {
			if s.ari.Health().Connected {
				return 1
			}
			return 0
		}
	}
	m := metrics.New(gauges)
	s = newServer(cfg, log, sinks{callLog{st: st, log: log}, hooks, m}, svc)
	s.watcher.Loader.Extra = databaseFlows(st, s.watcher.Loader.Parse, s.watcher.Loader.Lint)
	if cfg.HTTP.Listen != "" {
		h, err := web.New(web.Options{
			Store:      st,
			Flows:      s.registry.Current,
			Reload:     func() { s.watcher.Load() },
			Audio:      voicemailAudio{dir: filepath.Join(filepath.Dir(cfg.Database), "voicemail"), ari: s.ari}.open,
			Health:     s.health,
			Metrics:    m.Handler(),
			SessionKey: []byte(cfg.HTTP.SessionKey),
			BaseURL:    cfg.HTTP.BaseURL,
			Secure:     strings.HasPrefix(cfg.HTTP.BaseURL, "https://"),
			Country:    cfg.DefaultCountry,
			Log:        log.With().Str("component", "web").Logger(),
		})
		if err != nil {
			return fmt.Errorf("web: %w", err)
		}
		s.http = &http.Server{Addr: cfg.HTTP.Listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	}
	rlog := log.With().Str("component", "reconcile").Logger()
	rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
	reconcileVoicemails(rctx, st, s.ari, cfg.RecordingsDir, time.Time{}, s.inProgress, rlog)
	rcancel()
	// Recordings still going when an earlier run died end later.
	disks := map[string]string{"recordings": cfg.RecordingsDir, "database": databaseDir(cfg.Database)}
	warnLowDisk(log, disks)
	periodic, stopPeriodic := context.WithCancel(ctx)
	var periodicDone sync.WaitGroup
	periodicDone.Add(1)
	go func() {
		defer periodicDone.Done()
		t := time.NewTicker(cfg.Calls.ReconcileInterval.D())
		defer t.Stop()
		for {
			select {
			case <-periodic.Done():
				return
			case <-t.C:
				// Recent ones only: the start-up pass saw the rest.
				rctx, rcancel := context.WithTimeout(periodic, 15*time.Second)
				reconcileVoicemails(rctx, st, s.ari, cfg.RecordingsDir, time.Now().Add(-2*time.Hour), s.inProgress, rlog)
				rcancel()
				warnLowDisk(log, disks)
			}
		}
	}()
	var mail *mailer.Mailer
	if cfg.SMTP.Host != "" {
		opts := mailer.Options{
			Host: cfg.SMTP.Host, Port: cfg.SMTP.Port, Username: cfg.SMTP.Username, Password: cfg.SMTP.Password,
			From: cfg.SMTP.From, TLS: cfg.SMTP.TLS, Timeout: cfg.SMTP.Timeout.D(),
			Spool:  filepath.Join(filepath.Dir(cfg.Database), "mail-spool"),
			Logger: log.With().Str("component", "mail").Logger(),
		}
		if s.ari != nil {
			opts.Fetch = s.ari.FetchRecording // voicemails recorded over ARI live in Asterisk
		}
		mail = mailer.New(opts)
		svc.Mail = mail
	}
	hooks.SetMailer(svc.Mail)
	err = s.run(ctx)
	stopPeriodic()
	periodicDone.Wait()
	hctx, hcancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = hooks.Flush(hctx)
	hcancel()
	hooks.Close()
	if mail != nil {
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = mail.Flush(fctx)
		cancel()
		mail.Close()
	}
	return err
}

// markInterrupted closes the calls an earlier process left in progress
// (it was killed mid-call), once the records it spooled are written.
func markInterrupted(ctx context.Context, st *store.Store, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := st.Flush(ctx); err != nil {
		log.Warn().Err(err).Msg("calls left in progress by an earlier run not checked: the database is busy")
		return
	}
	n, err := st.MarkInterrupted(ctx)
	if err != nil {
		log.Warn().Err(err).Msg("calls left in progress by an earlier run not checked")
		return
	}
	if n > 0 {
		log.Warn().Int("calls", n).Msg("calls an earlier run left in progress (it stopped without ending them) are marked interrupted")
	}
}

// health is /healthz: ok while every enabled transport can take calls.
func (s *server) health() map[string]any {
	out := map[string]any{"calls_in_progress": s.dispatcher.Active()}
	ok := true
	if s.ari != nil {
		h := s.ari.Health()
		out["ari"] = map[string]any{"connected": h.Connected, "replaced": h.Replaced, "reconnects": h.Reconnects,
			"active_calls": h.ActiveCalls, "draining": h.Draining, "last_error": h.LastError}
		ok = ok && h.Connected && !h.Replaced && !h.Draining
	}
	// A full disk does not stop calls, so it does not make ok false; it
	// is reported for monitoring.
	disk := map[string]any{}
	if r := diskReport(s.cfg.RecordingsDir); r != nil {
		disk["recordings"] = r
	}
	if r := diskReport(databaseDir(s.cfg.Database)); r != nil {
		disk["database"] = r
	}
	if len(disk) > 0 {
		out["disk"] = disk
	}
	set := s.registry.Current()
	out["flows"] = map[string]any{"loaded": len(set.Flows()), "version": set.Version, "problems": len(set.Problems)}
	out["ok"] = ok
	return out
}
