package agi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/callflow/callflow/applets/call"
	"github.com/rs/zerolog"
)

// Options configure a Server.
type Options struct {
	// Listen is the address ListenAndServe binds (default
	// "127.0.0.1:4573": a FastAGI peer drives calls, so expose it only to
	// Asterisk).
	Listen  string
	Handler call.Handler
	// RecordingsDir is where RECORD FILE writes, as Asterisk sees it
	// (default /var/spool/asterisk/recording). It must be absolute:
	// Asterisk puts relative names under its sounds directory.
	RecordingsDir string
	// CommandTimeout bounds a quick command (ANSWER, GET VARIABLE...) and
	// is the margin added to commands that wait by design (WAIT FOR DIGIT,
	// RECORD FILE, EXEC Dial). A peer that does not answer in time ends
	// the call with ErrPeerTimeout. Default 10s.
	CommandTimeout time.Duration
	// MaxPlayback bounds one STREAM FILE (whose length only Asterisk
	// knows) and a RECORD FILE without a length. Default 10m.
	MaxPlayback time.Duration
	// MaxBridge bounds the conversation after a Dial is answered.
	// Default 4h.
	MaxBridge time.Duration
	Logger    zerolog.Logger
}

// Server is a FastAGI server: one goroutine per session plus one reader.
type Server struct {
	opts Options
	log  zerolog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	closing   bool
	health    Health
	wg        sync.WaitGroup
}

// Health is what the FastAGI side has learnt of Asterisk's setup, for
// /healthz.
type Health struct {
	// WhisperAcceptMissing: the last dial with an accept key found
	// Asterisk without the whisper-accept dialplan of
	// asterisk/extensions.conf, so such dials fail (outcome failed) until
	// it is added. Calls without an accept key are not affected.
	WhisperAcceptMissing bool
	// Message says what is wrong and how to fix it; "" when nothing is.
	Message string
}

// Health reports what calls have found wrong with Asterisk's setup.
func (s *Server) Health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

// noteAcceptDialplan records what a dial with an accept key found: the
// contexts missing from Asterisk's dialplan, none when all is well.
func (s *Server) noteAcceptDialplan(missing []string) {
	h := Health{}
	if len(missing) > 0 {
		h = Health{WhisperAcceptMissing: true, Message: "Asterisk's dialplan lacks " + strings.Join(missing, " and ") +
			": dials with an accept key (whisper_accept) fail so that no agent is connected without accepting;" +
			" copy them from asterisk/extensions.conf and run 'dialplan reload'"}
	}
	s.mu.Lock()
	was := s.health
	s.health = h
	s.mu.Unlock()
	switch {
	case h.WhisperAcceptMissing && !was.WhisperAcceptMissing:
		s.log.Error().Strs("missing", missing).Msg(h.Message)
	case !h.WhisperAcceptMissing && was.WhisperAcceptMissing:
		s.log.Info().Msg("whisper-accept dialplan found: dials with an accept key work again")
	}
}

// NewServer returns a server; it panics without a Handler.
func NewServer(opts Options) *Server {
	if opts.Handler == nil {
		panic("agi: Options.Handler is nil")
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:4573"
	}
	if opts.RecordingsDir == "" {
		opts.RecordingsDir = "/var/spool/asterisk/recording"
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = 10 * time.Second
	}
	if opts.MaxPlayback <= 0 {
		opts.MaxPlayback = 10 * time.Minute
	}
	if opts.MaxBridge <= 0 {
		opts.MaxBridge = 4 * time.Hour
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger.With().Str("transport", "agi").Logger(),
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
	}
	if len(opts.RecordingsDir) > 0 && opts.RecordingsDir[0] != '/' {
		s.log.Warn().Str("dir", opts.RecordingsDir).Msg("recordings dir is relative: Asterisk resolves it under its sounds directory")
	}
	return s
}

// ListenAndServe listens on Options.Listen and serves until ctx ends or
// Shutdown is called.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(context.WithoutCancel(ctx), "tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("agi: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts sessions on ln until ctx ends or Shutdown is called, then
// returns nil; calls in progress go on (Shutdown waits for them). ln is
// closed on return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	s.log.Info().Str("addr", ln.Addr().String()).Msg("FastAGI listening")
	// Sessions outlive ctx: a call in progress finishes unless Shutdown
	// runs out of time.
	base := context.WithoutCancel(ctx)
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || s.isClosing() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: wait, do not spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error().Err(err).Dur("retry_in", backoff).Msg("accept failed")
			select {
			case <-time.After(backoff):
				continue
			case <-ctx.Done():
				return nil
			}
		}
		backoff = 0
		if !s.startSession(base, conn) {
			conn.Close()
			return nil
		}
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) startSession(base context.Context, conn net.Conn) bool {
	sess := newSession(s, base, conn)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.sessions, sess)
			s.mu.Unlock()
		}()
		sess.serve()
	}()
	return true
}

// Shutdown stops accepting, waits for the sessions in progress until ctx
// ends, then closes those left (their handlers see a cancelled context and
// every command fails with ErrClosed) and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	n := len(s.sessions)
	for sess := range s.sessions {
		sess.fail(fmt.Errorf("%w: server shutting down", ErrClosed))
	}
	s.mu.Unlock()
	s.log.Warn().Int("sessions", n).Msg("shutdown: closed calls still in progress")
	return ctx.Err()
}
