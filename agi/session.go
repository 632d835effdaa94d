package agi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callflow/callflow/applets/call"
	"github.com/rs/zerolog"
)

// Errors besides call.ErrHangup and call.ErrTimeout. Every error a
// Call returns names the command it was running.
var (
	// ErrProtocol: the peer sent something that is not AGI; the session
	// is closed.
	ErrProtocol = errors.New("agi: protocol error")
	// ErrPeerTimeout: Asterisk did not answer a command in time; the
	// session is closed.
	ErrPeerTimeout = errors.New("agi: no reply from Asterisk in time")
	// ErrRejected: Asterisk refused a command (510 unknown, 520 usage).
	ErrRejected = errors.New("agi: command rejected")
	// ErrClosed: the session is over on this side (handler returned,
	// context ended mid-command, server shut down).
	ErrClosed = errors.New("agi: session closed")
	// ErrCommandTooLong: the command would exceed what Asterisk reads of
	// one line; nothing was sent.
	ErrCommandTooLong = errors.New("agi: command longer than Asterisk accepts")
)

const hangupLine = "HANGUP\n"

var errSessionEnded = fmt.Errorf("%w: handler returned", ErrClosed)

// session is one FastAGI connection.
type session struct {
	srv    *Server
	conn   net.Conn
	br     *bufio.Reader
	log    zerolog.Logger
	ctx    context.Context
	cancel context.CancelCauseFunc

	cmdMu   sync.Mutex // one command in flight
	wbuf    []byte
	pending atomic.Bool // a command waits for its reply
	replies chan reply  // capacity 1: at most one reply is ever owed

	hungUp     atomic.Bool
	dead       chan struct{} // closed once the connection is unusable
	deadOnce   sync.Once
	err        error // why dead was closed; written before the close
	readerDone chan struct{}
}

// markHangup records that the caller is gone and cancels the call's context.
func (s *session) markHangup() {
	if s.hungUp.CompareAndSwap(false, true) {
		s.log.Debug().Msg("caller hung up")
		s.cancel(call.ErrHangup)
	}
}

// fail ends the session: the connection is closed, the call's context
// cancelled and every later command returns err. The first reason wins.
func (s *session) fail(err error) {
	s.deadOnce.Do(func() {
		s.err = err
		// Cancel first: whoever sees dead closed sees the context ended.
		s.cancel(err)
		close(s.dead)
		s.conn.Close()
	})
}

// deadErr is the error for cmd on a session that has ended.
func (s *session) deadErr(cmd string) error {
	if s.hungUp.Load() {
		return cmdErr(cmd, call.ErrHangup)
	}
	return cmdErr(cmd, s.err)
}

func cmdErr(cmd string, err error) error {
	return fmt.Errorf("agi %s: %w", clip(cmd), err)
}

// readLoop is the session's only reader: async HANGUP lines cancel the call,
// replies go to the command in flight, anything else ends the session.
func (s *session) readLoop() {
	defer close(s.readerDone)
	for {
		line, err := readLine(s.br)
		if err != nil {
			select {
			case <-s.dead: // closed on this side
				return
			default:
			}
			if errors.Is(err, errLineTooLong) {
				s.protocolError("line too long", "")
				return
			}
			// Asterisk closes the socket when the channel is gone
			// (or itself is): for the flow that is a hang-up.
			s.markHangup()
			if !errors.Is(err, io.EOF) {
				s.log.Debug().Err(err).Msg("connection lost")
			}
			s.fail(fmt.Errorf("%w: connection closed by Asterisk", call.ErrHangup))
			return
		}
		switch classify(line) {
		case lineBlank:
		case lineHangup:
			s.markHangup()
		case lineReply:
			r, err := parseReply(line)
			if err != nil {
				s.protocolError(err.Error(), line)
				return
			}
			if !s.deliver(r, line) {
				return
			}
		case lineMultiline:
			r, ok := s.readMultiline(line)
			if !ok || !s.deliver(r, line) {
				return
			}
		default:
			s.protocolError("not an AGI line", line)
			return
		}
	}
}

// readMultiline reads "520-..." up to its "520 ..." end line.
func (s *session) readMultiline(first string) (reply, bool) {
	code := first[:3]
	var b strings.Builder
	b.WriteString(first[4:])
	for n := 0; ; n++ {
		line, err := readLine(s.br)
		if err != nil {
			s.protocolError("multi-line reply cut short: "+err.Error(), first)
			return reply{}, false
		}
		if n >= maxUsageLines || b.Len() > maxLine {
			s.protocolError("multi-line reply too long", first)
			return reply{}, false
		}
		if strings.HasPrefix(line, code+" ") {
			b.WriteString(" / ")
			b.WriteString(line[4:])
			r, err := parseReply(line)
			if err != nil {
				s.protocolError(err.Error(), line)
				return reply{}, false
			}
			r.text = b.String()
			return r, true
		}
		b.WriteString(" / ")
		b.WriteString(strings.TrimSpace(line))
	}
}

// deliver hands r to the command waiting for it. A reply nobody asked for
// means the two sides disagree on what answers what.
func (s *session) deliver(r reply, line string) bool {
	// Asterisk sends HANGUP right after the -1 of a command the caller
	// hung up in; noting it first spares the command a probe.
	for s.br.Buffered() >= len(hangupLine) {
		if b, _ := s.br.Peek(len(hangupLine)); string(b) != hangupLine {
			break
		}
		_, _ = s.br.Discard(len(hangupLine))
		s.markHangup()
	}
	if !s.pending.CompareAndSwap(true, false) {
		s.protocolError("reply without a command", line)
		return false
	}
	s.replies <- r
	return true
}

func (s *session) protocolError(why, line string) {
	s.log.Error().Str("line", clip(line)).Str("error", why).Msg("malformed FastAGI line: closing the session")
	s.fail(fmt.Errorf("%w: %s: %q", ErrProtocol, why, clip(line)))
}

// do sends one command and waits up to timeout for its reply. A 511 (dead
// channel) is ErrHangup, 510/520 are ErrRejected; a 200 reply is returned
// for the command to read. do waits for the reply of a hung-up call even
// when ctx has ended (Asterisk answers at once on a dead channel); when ctx
// ends for another reason the command cannot be taken back, so the session
// is closed.
func (s *session) do(ctx context.Context, timeout time.Duration, cmd string) (reply, error) {
	if len(cmd) > maxCommand {
		return reply{}, cmdErr(cmd, ErrCommandTooLong)
	}
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	select {
	case <-s.dead:
		return reply{}, s.deadErr(cmd)
	default:
	}

	s.pending.Store(true)
	s.wbuf = append(append(s.wbuf[:0], cmd...), '\n')
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.srv.opts.CommandTimeout))
	if _, err := s.conn.Write(s.wbuf); err != nil {
		s.pending.Store(false)
		select {
		case <-s.dead: // closed on this side
		default:
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Asterisk stopped reading.
				s.fail(ErrPeerTimeout)
				break
			}
			s.markHangup()
			s.fail(fmt.Errorf("%w: connection lost: %v", call.ErrHangup, err))
		}
		return reply{}, s.deadErr(cmd)
	}

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	done := ctx.Done()
	for {
		select {
		case r := <-s.replies:
			return s.check(cmd, r)
		case <-s.dead:
			return reply{}, s.deadErr(cmd)
		case <-timer.C:
			s.log.Error().Str("command", clip(cmd)).Dur("after", timeout).Msg("Asterisk did not answer: closing the session")
			s.fail(ErrPeerTimeout)
			return reply{}, cmdErr(cmd, ErrPeerTimeout)
		case <-done:
			if s.ctx.Err() != nil {
				// Hung up (Asterisk answers a dead channel at once) or
				// failing (dead is about to close).
				done = nil
				continue
			}
			s.fail(fmt.Errorf("%w: context ended during a command: %v", ErrClosed, context.Cause(ctx)))
			return reply{}, cmdErr(cmd, ctx.Err())
		}
	}
}

func (s *session) check(cmd string, r reply) (reply, error) {
	switch r.code {
	case 200:
		return r, nil
	case 511:
		s.markHangup()
		return r, cmdErr(cmd, call.ErrHangup)
	default:
		return r, cmdErr(cmd, fmt.Errorf("%w: %d %s", ErrRejected, r.code, clip(r.text)))
	}
}

// serve runs one session: environment, reader, handler.
func (ss *session) serve() {
	defer ss.conn.Close()
	srv := ss.srv
	_ = ss.conn.SetReadDeadline(time.Now().Add(srv.opts.CommandTimeout))
	env, err := readEnv(ss.br)
	if err != nil {
		lvl := zerolog.WarnLevel
		if errors.Is(err, io.EOF) {
			lvl = zerolog.DebugLevel // a port check, not a call
		}
		ss.log.WithLevel(lvl).Err(err).Str("remote", ss.conn.RemoteAddr().String()).Msg("bad FastAGI session start")
		ss.fail(err)
		return
	}
	_ = ss.conn.SetReadDeadline(time.Time{})
	req, err := ParseRequest(env)
	ss.log = ss.log.With().Str("call", req.UniqueID).Str("channel", req.Channel).Logger()
	if err != nil {
		ss.log.Warn().Err(err).Msg("FastAGI request refused")
		ss.fail(err)
		return
	}
	ss.log.Debug().Str("flow", req.FlowName).Str("number", req.Number).Str("from", req.CallerID).Msg("call")

	go ss.readLoop()
	call := &Call{s: ss, req: req}
	func() {
		defer func() {
			if p := recover(); p != nil {
				ss.log.Error().Interface("panic", p).Bytes("stack", debug.Stack()).Msg("call handler panicked")
			}
		}()
		srv.opts.Handler.HandleCall(ss.ctx, call, req.route())
	}()
	ss.fail(errSessionEnded)
	<-ss.readerDone
}

func newSession(srv *Server, base context.Context, conn net.Conn) *session {
	ctx, cancel := context.WithCancelCause(base)
	return &session{
		srv:  srv,
		conn: conn,
		// Asterisk's lines are short; a longer one is gathered piecewise
		// (up to maxLine), so a small buffer keeps idle calls cheap.
		br:         bufio.NewReaderSize(conn, 1024),
		log:        srv.log,
		ctx:        ctx,
		cancel:     cancel,
		replies:    make(chan reply, 1),
		dead:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
}
