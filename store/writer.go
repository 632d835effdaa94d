package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// op is one queued write; it is also the spool file's line format.
type op struct {
	Kind      string      `json:"kind"`
	Call      *CallRecord `json:"call,omitempty"`
	Voicemail *Voicemail  `json:"voicemail,omitempty"`
	Recording *Recording  `json:"recording,omitempty"`
	Over      *callsOver  `json:"over,omitempty"`
}

const (
	opCall      = "call"
	opVoicemail = "voicemail"
	opRecording = "recording"
	opOver      = "over"
)

// callsOver closes the records of calls whose conversation went on after
// the process that ran them stopped (see ConversationOver).
type callsOver struct {
	IDs   []string  `json:"ids"`
	Ended time.Time `json:"ended"`
}

// writer owns every asynchronous write. Records are accepted in order and
// written in that order: into the bounded channel while it has room, else
// (and until the overflow is drained, so order holds) into the spool file,
// or into memory when no spool file can be used. Nothing accepted is
// dropped: transient errors are retried with back-off, and records the
// database refuses for good go to the rejected file.
type writer struct {
	s    *Store
	ch   chan op
	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	closed   bool
	seq      uint64 // records accepted
	written  uint64 // records settled (committed or rejected), in order
	progress chan struct{}
	spilling bool
	spool    *spool // nil: overflow stays in memory
	memOnly  bool   // the spool failed; overflow in memory until drained
	mem      []op

	spilled, retries, rejected, batches atomic.Uint64

	stmts    writerStmts
	closeErr error
}

func newWriter(s *Store) (*writer, error) {
	w := &writer{
		s:        s,
		ch:       make(chan op, s.opts.QueueSize),
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		progress: make(chan struct{}),
	}
	if err := w.stmts.prepare(s.w); err != nil {
		return nil, err
	}
	path := s.opts.SpoolPath
	if path == "" {
		path = s.path + "-spool.jsonl"
	}
	sp, pending, err := openSpool(path)
	switch {
	case err != nil:
		// Overflow still works, in memory.
		s.log.Error().Err(err).Str("spool", path).Msg("store: spool file unusable; queue overflow will be kept in memory")
	case sp == nil:
		s.log.Warn().Str("spool", path).Msg("store: spool file is used by another process; queue overflow will be kept in memory")
	default:
		w.spool = sp
		if pending > 0 {
			// Left by a previous run: written before anything new.
			w.seq = uint64(pending)
			w.spilling = true
			s.log.Warn().Int("records", pending).Str("spool", path).Msg("store: replaying spooled writes")
		}
	}
	s.wr = w
	go w.run()
	return w, nil
}

func (w *writer) enqueue(o op) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.seq++
	if !w.spilling {
		select {
		case w.ch <- o:
			return nil
		default:
		}
		w.spilling = true
		w.s.log.Warn().Int("queue", cap(w.ch)).Msg("store: write queue full; spilling to the overflow")
	}
	w.spill(o)
	w.spilled.Add(1)
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return nil
}

// spill keeps o in the overflow. Called with mu held.
func (w *writer) spill(o op) {
	if w.spool != nil && !w.memOnly {
		err := w.spool.append(o)
		if err == nil {
			return
		}
		w.memOnly = true
		w.s.log.Error().Err(err).Msg("store: cannot append to the spool file; overflow kept in memory")
	}
	w.mem = append(w.mem, o)
	if n := len(w.mem); n&(n-1) == 0 { // log at powers of two, not per record
		w.s.log.Warn().Int("records", n).Msg("store: overflow held in memory")
	}
}

func (w *writer) depth() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int(w.seq - w.written)
}

func (w *writer) stats() WriterStats {
	w.mu.Lock()
	st := WriterStats{Enqueued: w.seq, Written: w.written, Depth: int(w.seq - w.written)}
	w.mu.Unlock()
	st.Spilled = w.spilled.Load()
	st.Retries = w.retries.Load()
	st.Rejected = w.rejected.Load()
	st.Batches = w.batches.Load()
	return st
}

func (w *writer) advance(n int) {
	if n == 0 {
		return
	}
	w.mu.Lock()
	w.written += uint64(n)
	close(w.progress)
	w.progress = make(chan struct{})
	w.mu.Unlock()
}

// flush waits until every record accepted before the call is settled.
func (w *writer) flush(ctx context.Context) error {
	w.mu.Lock()
	target := w.seq
	for w.written < target {
		ch := w.progress
		w.mu.Unlock()
		select {
		case w.kick <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-w.done:
			w.mu.Lock()
			left := w.written < target
			w.mu.Unlock()
			if left {
				return fmt.Errorf("%w: records left in the spool for the next start", ErrClosed)
			}
			return nil
		}
		w.mu.Lock()
	}
	w.mu.Unlock()
	return nil
}

func (w *writer) close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	w.stmts.close()
	if w.spool != nil {
		if err := w.spool.close(); err != nil {
			w.closeErr = errors.Join(w.closeErr, err)
		}
	}
	return w.closeErr
}

// loop state shared by the run loop and its retries.
type loop struct {
	ctx      context.Context
	stopC    <-chan struct{} // nil once stopping
	deadline <-chan time.Time
	timer    *time.Timer
	expired  bool
}

func (w *writer) sawStop(l *loop) {
	l.stopC = nil
	l.timer = time.NewTimer(w.s.opts.CloseTimeout)
	l.deadline = l.timer.C
}

func (w *writer) run() {
	defer close(w.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := &loop{ctx: ctx, stopC: w.stop}
	defer func() {
		if l.timer != nil {
			l.timer.Stop()
		}
	}()
	max := w.s.opts.MaxBatch
	batch := make([]op, 0, max)
	var group *time.Timer // holds a batch open for GroupWindow; reused
	if w.s.opts.GroupWindow > 0 {
		group = time.NewTimer(w.s.opts.GroupWindow)
		group.Stop()
		defer group.Stop()
	}
	for {
		batch = batch[:0]
		// The channel holds older records than the overflow: it goes first.
		select {
		case o := <-w.ch:
			batch = append(batch, o)
		default:
		}
		if len(batch) == 0 {
			if w.overflowLen() > 0 {
				if !w.drainOverflow(l) {
					w.abandon(l, nil)
					return
				}
				continue
			}
			if l.stopC == nil {
				return // stopping and nothing left
			}
			select {
			case o := <-w.ch:
				batch = append(batch, o)
			case <-w.kick:
				continue
			case <-l.stopC:
				w.sawStop(l)
				continue
			}
		}
		batch = w.gather(l, batch, max, group)
		if !w.write(l, batch) {
			w.abandon(l, batch)
			return
		}
		w.advance(len(batch))
	}
}

// gather adds to batch what is queued, then, within the group window
// (group, stopped; nil for none), what arrives, up to max. A flush (kick)
// or stop ends the wait at once.
func (w *writer) gather(l *loop, batch []op, max int, group *time.Timer) []op {
	batch = w.takeQueued(batch, max)
	if group == nil || len(batch) >= max || l.stopC == nil {
		return batch
	}
	group.Reset(w.s.opts.GroupWindow)
	defer group.Stop()
	for len(batch) < max {
		select {
		case o := <-w.ch:
			batch = append(batch, o)
		case <-group.C:
			return batch
		case <-w.kick:
			return w.takeQueued(batch, max)
		case <-l.stopC:
			w.sawStop(l)
			return w.takeQueued(batch, max)
		}
	}
	return batch
}

// takeQueued adds to batch what is in the queue now, up to max, without
// waiting.
func (w *writer) takeQueued(batch []op, max int) []op {
	for len(batch) < max {
		select {
		case o := <-w.ch:
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

func (w *writer) overflowLen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.mem)
	if w.spool != nil {
		n += w.spool.pending
	}
	return n
}

// drainOverflow writes one batch from the spool file (or from memory once
// the file is done). It returns false when the close deadline passed.
func (w *writer) drainOverflow(l *loop) bool {
	max := w.s.opts.MaxBatch
	w.mu.Lock()
	var (
		ops      []op
		bad      []string
		consumed int64
		lines    int
		fromFile bool
		err      error
	)
	if w.spool != nil && w.spool.pending > 0 {
		fromFile = true
		ops, bad, consumed, lines, err = w.spool.read(max)
	} else {
		n := min(len(w.mem), max)
		ops = append([]op(nil), w.mem[:n]...)
	}
	w.mu.Unlock()
	if err != nil {
		// A spool that cannot be read is left for the next start;
		// retry after a pause rather than spin.
		w.s.log.Error().Err(err).Msg("store: reading the spool file")
		w.retries.Add(1)
		return w.pause(l, w.s.opts.RetryMax)
	}
	for _, b := range bad {
		w.rejectRaw(b, errors.New("unreadable spool line"))
	}
	if len(ops) > 0 && !w.write(l, ops) {
		// Spooled records stay in the file; abandon() moves the memory
		// overflow there.
		return false
	}
	w.mu.Lock()
	if fromFile {
		w.spool.consume(consumed, lines)
	} else {
		w.mem = w.mem[len(ops):]
	}
	if (w.spool == nil || w.spool.pending == 0) && len(w.mem) == 0 {
		if w.spool != nil {
			if err := w.spool.reset(); err != nil {
				w.s.log.Error().Err(err).Msg("store: truncating the spool file")
			}
		}
		w.mem = nil
		w.memOnly = false
		w.spilling = false
		w.s.log.Info().Msg("store: write overflow drained")
	}
	w.mu.Unlock()
	w.advance(len(ops) + len(bad))
	return true
}

// write commits ops, retrying transient failures with back-off; records
// refused for good are set aside one by one. It returns false when the
// close deadline passed first.
func (w *writer) write(l *loop, ops []op) bool {
	delay := w.s.opts.RetryMin
	for {
		err := w.s.applyBatch(l.ctx, ops)
		if err == nil {
			w.batches.Add(1)
			return true
		}
		if permanent(err) {
			if len(ops) == 1 {
				w.reject(ops[0], err)
				return true
			}
			for i := range ops {
				if !w.write(l, ops[i:i+1]) {
					return false
				}
			}
			return true
		}
		w.retries.Add(1)
		w.s.log.Warn().Err(err).Int("records", len(ops)).Dur("retry_in", delay).Msg("store: write failed; retrying")
		if !w.pause(l, delay) {
			return false
		}
		delay = min(delay*2, w.s.opts.RetryMax)
	}
}

// pause sleeps about d (with jitter, so two processes do not retry in
// step); false means the close deadline passed.
func (w *writer) pause(l *loop, d time.Duration) bool {
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-l.stopC:
			w.sawStop(l)
		case <-l.deadline:
			l.expired = true
			return false
		}
	}
}

// abandon runs when Close gave up waiting for the database: whatever is
// still in memory goes to the spool file, replayed by the next Open.
func (w *writer) abandon(l *loop, batch []op) {
	w.mu.Lock()
	defer w.mu.Unlock()
	left := w.takeQueued(append([]op(nil), batch...), math.MaxInt)
	left = append(left, w.mem...)
	w.mem = nil
	lost := 0
	for _, o := range left {
		if w.spool == nil || w.spool.append(o) != nil {
			lost++
		}
	}
	pending := len(left)
	if w.spool != nil {
		pending = w.spool.pending
	}
	w.s.log.Error().Int("spooled", pending-lost).Int("lost", lost).Msg("store: database unavailable at close; writes left in the spool")
	w.closeErr = fmt.Errorf("store: database unavailable at close: %d writes left in the spool for the next start", pending-lost)
	if lost > 0 {
		w.closeErr = fmt.Errorf("%w; %d writes could not be spooled", w.closeErr, lost)
	}
}

// reject sets a record aside in PATH-rejected.jsonl with its error.
func (w *writer) reject(o op, cause error) {
	b, err := json.Marshal(o)
	if err != nil {
		b, _ = json.Marshal(fmt.Sprintf("%+v", o))
	}
	w.rejectRaw(string(b), cause)
}

func (w *writer) rejectRaw(record string, cause error) {
	w.rejected.Add(1)
	path := w.s.rejectedPath()
	w.s.log.Error().Err(cause).Str("file", path).Msg("store: record refused by the database; kept in the rejected file")
	line, _ := json.Marshal(struct {
		At     time.Time       `json:"at"`
		Error  string          `json:"error"`
		Record json.RawMessage `json:"record"`
	}{time.Now().UTC(), cause.Error(), json.RawMessage(validJSON(record))})
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err == nil {
		_, err = f.Write(append(line, '\n'))
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		w.s.log.Error().Err(err).Str("record", record).Msg("store: cannot write the rejected file")
	}
}

func validJSON(s string) []byte {
	if json.Valid([]byte(s)) {
		return []byte(s)
	}
	b, _ := json.Marshal(s)
	return b
}

// permanentError marks a record that can never be written as it is.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// permanent reports whether retrying err cannot help. Anything else (busy,
// locked, I/O, full disk, read-only file) may heal and is retried.
func permanent(err error) bool {
	var pe permanentError
	if errors.As(err, &pe) {
		return true
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrConstraint, sqlite3.ErrMismatch, sqlite3.ErrTooBig, sqlite3.ErrRange:
			return true
		}
	}
	// PostgreSQL: data exceptions (22) and integrity violations (23) are
	// the record's fault; the rest (connections, restarts) may heal.
	code := pgCode(err)
	return strings.HasPrefix(code, "22") || strings.HasPrefix(code, "23")
}

// transient reports whether a synchronous write may succeed if tried again.
func transient(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
	}
	// PostgreSQL: serialization failures and deadlocks (40), and a lost or
	// refused connection (08).
	code := pgCode(err)
	return strings.HasPrefix(code, "40") || strings.HasPrefix(code, "08")
}

// RecordCall queues a finished call's record (steps and events included).
// It never blocks; the only error is ErrClosed or an invalid record. The
// record's slices and maps are handed over: do not change them afterwards.
// Recording the same call ID again replaces the earlier record.
func (s *Store) RecordCall(rec CallRecord) error {
	if rec.ID == "" {
		return fmt.Errorf("%w: call record without an id", ErrInvalid)
	}
	if rec.Started.IsZero() {
		rec.Started = s.now()
	}
	return s.wr.enqueue(op{Kind: opCall, Call: &rec})
}

// ConversationOver queues closing the records of the calls among ids
// whose process stopped while they were in a conversation that another
// process (a restart, a standby) then watched to its end: they are left
// in progress or interrupted, and become completed, ended at ended. It
// never blocks.
func (s *Store) ConversationOver(ids []string, ended time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	return s.wr.enqueue(op{Kind: opOver, Over: &callsOver{IDs: ids, Ended: ended}})
}

// SaveVoicemail queues a voicemail. It never blocks. Saving the same
// recording again (a retry, a reconcile) fills blanks and never adds a row.
func (s *Store) SaveVoicemail(vm Voicemail) error {
	if vm.Recording == "" {
		return fmt.Errorf("%w: voicemail without a recording name", ErrInvalid)
	}
	if vm.Created.IsZero() {
		vm.Created = s.now()
	}
	return s.wr.enqueue(op{Kind: opVoicemail, Voicemail: &vm})
}

// SaveRecording queues a whole-call recording. It never blocks.
func (s *Store) SaveRecording(r Recording) error {
	if r.Name == "" {
		return fmt.Errorf("%w: recording without a name", ErrInvalid)
	}
	if r.Created.IsZero() {
		r.Created = s.now()
	}
	return s.wr.enqueue(op{Kind: opRecording, Recording: &r})
}

// Flush waits until everything queued before it is written.
func (s *Store) Flush(ctx context.Context) error { return s.wr.flush(ctx) }

// QueueDepth is the number of records accepted and not yet written.
func (s *Store) QueueDepth() int { return s.wr.depth() }

// WriterStats describe the asynchronous writer.
func (s *Store) WriterStats() WriterStats { return s.wr.stats() }

// rejectedPath is the file of records the database refused: beside the
// SQLite file, or beside the spool file of a PostgreSQL node.
func (s *Store) rejectedPath() string {
	if s.pg {
		return strings.TrimSuffix(s.opts.SpoolPath, "-spool.jsonl") + "-rejected.jsonl"
	}
	return s.path + "-rejected.jsonl"
}
