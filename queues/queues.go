package queues

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/internal/fresh"
	"github.com/callflow/callflow/store"
)

// Options configure a Set.
type Options struct {
	// ServiceLevel is the wait within which an answered call counts as
	// answered in time (default 20s, as app_queue's servicelevel).
	ServiceLevel time.Duration
	Now          func() time.Time
	// Shared, when set, is the waiting list of every node (the store on
	// PostgreSQL): a caller's position counts the callers of all nodes, in
	// order of priority then arrival, so that nodes serving one queue
	// serve its callers in the order they called. Run must run.
	Shared Shared
	Node   string
	Log    zerolog.Logger
	// Days, when set, keeps this node's figures of the day (they outlive
	// a restart) and adds the other nodes' to them. Run must run.
	Days Days
	// Kept, without Shared, keeps this node's callbacks in the database
	// (SQLite): a callback outlives a restart, and Run gives the ones kept
	// to OnAdopt once the node is up again.
	Kept Kept
	// OnAdopt is given each callback this node takes over, with the ticket
	// that keeps the caller's place here: it calls them back. With Shared,
	// a node's that stopped renewing its places (it died) or let them go
	// (it stopped); with Kept, this node's own from before a restart.
	OnAdopt func(e store.QueueEntry, t applets.QueueTicket)
}

// Kept is where one node keeps its callbacks.
type Kept interface {
	QueueJoin(ctx context.Context, e store.QueueEntry) (int64, error)
	QueueLeave(ctx context.Context, id int64) error
	QueueKeptCallbacks(ctx context.Context, node string) ([]store.QueueEntry, error)
}

// Shared is a waiting list kept where every node sees it.
type Shared interface {
	QueueJoin(ctx context.Context, e store.QueueEntry) (int64, error)
	QueueLeave(ctx context.Context, id int64) error
	QueueMarkCallback(ctx context.Context, id int64, p store.CallbackPlace) error
	QueueAdoptCallbacks(ctx context.Context, node string, staleBefore time.Time) ([]store.QueueEntry, error)
	QueueRelease(ctx context.Context, id int64) error
	QueueRenew(ctx context.Context, ids []int64, staleBefore time.Time) error
	QueueList(ctx context.Context, staleBefore time.Time) ([]store.QueueEntry, error)
	QueuesChanged(ctx context.Context)
}

// The shared list: each node renews its callers every sharedRenew; a
// caller not renewed for sharedStale is a dead node's (ignored, then
// swept). The list read is kept sharedFresh at most, and read again at
// once after any change.
const (
	sharedRenew = 5 * time.Second
	sharedStale = 30 * time.Second
	sharedFresh = 250 * time.Millisecond
	// sharedTimeout bounds each request to the shared list: a database
	// away makes callers wait on this node's own list, not hang.
	sharedTimeout = 2 * time.Second
)

// Set is every queue of this node. Safe for concurrent use.
type Set struct {
	opts Options

	mu     sync.Mutex
	queues map[string]*queue
	seq    int64
	subs   map[chan struct{}]struct{}

	list     fresh.Value[map[string][]store.QueueEntry] // the shared list as last read (Options.Shared)
	announce chan struct{}                              // Poke's news for the other nodes, sent by Run
	bg       sync.WaitGroup                             // callers leaving the shared list

	// The figures of the day (Options.Days): the other nodes' as last read,
	// by queue, for othersDay; whether this node's changed since written,
	// and were taken back from before a restart.
	others       map[string]dayStats
	othersDay    string
	daysDirty    bool
	daysRestored bool
}

type queue struct {
	name    string
	waiting []*ticket
	day     string // the day the counters below are for
	stats   dayStats
}

type dayStats struct {
	answered, abandoned, timedOut, left int
	inLevel                             int           // answered within the service level
	waitSum                             time.Duration // of the answered
	longestAnswered                     time.Duration
}

type ticket struct {
	s      *Set
	q      *queue
	caller applets.QueueCaller
	seq    int64
	joined time.Time
	done   bool
	wake   chan struct{} // a value: look again, the turn may have come
	// callback: the caller hung up keeping the place, to be called back.
	callback bool
	row      int64 // the caller's row in the shared list (0: none)
	kept     int64 // the callback's row kept without a shared list (0: none)
}

// headWake is how many of a queue's first callers a change wakes at
// least: the ones an agent coming free can be for. The others hold on
// until their position reaches the head (or their next announcement):
// a thousand callers waiting do not all wake for each agent.
const headWake = 3

// New returns an empty set of queues.
func New(opts Options) *Set {
	if opts.ServiceLevel <= 0 {
		opts.ServiceLevel = 20 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Set{opts: opts, queues: map[string]*queue{}, subs: map[chan struct{}]struct{}{}, announce: make(chan struct{}, 1),
		list: fresh.Value[map[string][]store.QueueEntry]{For: sharedFresh}}
}

var _ applets.Queues = (*Set)(nil)

func (s *Set) queueLocked(name string) *queue {
	q := s.queues[name]
	if q == nil {
		q = &queue{name: name}
		s.queues[name] = q
	}
	if day := s.opts.Now().Format("2006-01-02"); q.day != day {
		q.day, q.stats = day, dayStats{}
	}
	return q
}

// Join puts c in queue name, behind the callers of its priority or higher.
func (s *Set) Join(name string, c applets.QueueCaller) applets.QueueTicket {
	s.mu.Lock()
	q := s.queueLocked(name)
	s.seq++
	t := &ticket{s: s, q: q, caller: c, seq: s.seq, joined: s.opts.Now(), wake: make(chan struct{}, 1)}
	q.waiting = append(q.waiting, t)
	sort.SliceStable(q.waiting, func(i, j int) bool {
		a, b := q.waiting[i], q.waiting[j]
		if a.caller.Priority != b.caller.Priority {
			return a.caller.Priority > b.caller.Priority
		}
		return a.seq < b.seq
	})
	s.changedLocked()
	s.mu.Unlock()
	if sh := s.opts.Shared; sh != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		row, err := sh.QueueJoin(ctx, store.QueueEntry{Queue: name, Call: c.ID, Node: s.opts.Node, Number: c.Number, Priority: c.Priority, Joined: t.joined})
		cancel()
		if err != nil {
			s.opts.Log.Warn().Err(err).Str("queue", name).Msg("queue: the shared list is away: this caller waits in this node's list")
		}
		s.mu.Lock()
		gone := t.done
		if !gone {
			t.row = row
		}
		s.mu.Unlock()
		if gone && row != 0 {
			s.leaveShared(row, false) // it left meanwhile
		}
		s.stale()
	}
	return t
}

// adopt makes this node's ticket for a place taken over from another node.
func (s *Set) adopt(e store.QueueEntry) applets.QueueTicket {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queueLocked(e.Queue)
	s.seq++
	t := &ticket{s: s, q: q, caller: applets.QueueCaller{ID: e.Call, Number: e.Number, Priority: e.Priority}, seq: s.seq,
		joined: e.Joined, wake: make(chan struct{}, 1), callback: true}
	if s.opts.Shared != nil {
		t.row = e.ID
	} else {
		t.kept = e.ID
	}
	q.waiting = append(q.waiting, t)
	sort.SliceStable(q.waiting, func(i, j int) bool {
		a, b := q.waiting[i], q.waiting[j]
		if a.caller.Priority != b.caller.Priority {
			return a.caller.Priority > b.caller.Priority
		}
		return a.joined.Before(b.joined)
	})
	s.changedLocked()
	return t
}

// leaveShared takes a row out of the shared list; one that stays (the
// database away) is swept once this node stops renewing it. With keep, a
// callback's row stays, let go for the next node to adopt (this one is
// stopping).
func (s *Set) leaveShared(row int64, keep bool) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	leave, failed := s.opts.Shared.QueueLeave, "queue: a caller's place not taken out of the shared list: it lapses in 30s"
	if keep {
		leave, failed = s.opts.Shared.QueueRelease, "queue: a callback not let go: another node takes it over in 30s"
	}
	if err := leave(ctx, row); err != nil {
		s.opts.Log.Warn().Err(err).Msg(failed)
	}
	s.stale()
}

// stale makes the next read of the shared list go to the database.
func (s *Set) stale() { s.list.Stale() }

// shared returns the shared list of every queue, read again when older
// than sharedFresh or changed since; nil when it cannot be read.
func (s *Set) shared() map[string][]store.QueueEntry {
	list, err := s.list.Get(func() (map[string][]store.QueueEntry, error) {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		defer cancel()
		rows, err := s.opts.Shared.QueueList(ctx, time.Now().Add(-sharedStale))
		if err != nil {
			return nil, err
		}
		list := map[string][]store.QueueEntry{}
		for _, e := range rows {
			list[e.Queue] = append(list[e.Queue], e)
		}
		return list, nil
	})
	if err != nil {
		s.opts.Log.Warn().Err(err).Msg("queue: the shared list is away: positions from this node's list")
	}
	return list
}

// Run keeps this node's callers in the shared list (renewing them,
// sweeping dead nodes'), tells the other nodes of Poke's news, and wakes
// this node's callers at the head when changes says another node changed
// something (PostgreSQL notifications). Without Options.Shared it calls
// back the callbacks kept before a restart. With Options.Days it writes
// and reads the figures of the day. It returns when ctx ends.
func (s *Set) Run(ctx context.Context, changes <-chan struct{}) {
	defer s.bg.Wait()
	defer s.flushDays()
	s.syncDays(ctx) // today's figures from before a restart, at once
	if s.opts.Shared == nil {
		s.runLocal(ctx)
		return
	}
	renew := time.NewTicker(sharedRenew)
	defer renew.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			s.mu.Lock()
			var rows []int64
			for _, q := range s.queues {
				for _, t := range q.waiting {
					if t.row != 0 {
						rows = append(rows, t.row)
					}
				}
			}
			s.mu.Unlock()
			rctx, cancel := context.WithTimeout(ctx, sharedTimeout)
			if s.opts.OnAdopt != nil {
				// Before the sweep: callbacks of a dead node are taken over,
				// not dropped.
				adopted, err := s.opts.Shared.QueueAdoptCallbacks(rctx, s.opts.Node, time.Now().Add(-sharedStale))
				if err != nil && ctx.Err() == nil {
					s.opts.Log.Warn().Err(err).Msg("queue: callbacks of nodes gone not taken over for now")
				}
				for _, e := range adopted {
					s.opts.Log.Warn().Str("queue", e.Queue).Str("call", e.Call).Str("number", e.Number).Msg("queue: a callback of a node stopped or gone taken over")
					s.opts.OnAdopt(e, s.adopt(e))
				}
			}
			if err := s.opts.Shared.QueueRenew(rctx, rows, time.Now().Add(-sharedStale)); err != nil && ctx.Err() == nil {
				s.opts.Log.Warn().Err(err).Msg("queue: this node's callers not renewed in the shared list")
			}
			cancel()
			s.syncDays(ctx)
		case <-s.announce:
			actx, cancel := context.WithTimeout(ctx, sharedTimeout)
			s.opts.Shared.QueuesChanged(actx)
			cancel()
		case _, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			s.stale()
			s.mu.Lock()
			for _, q := range s.queues {
				wakeHead(q, headWake)
			}
			s.changedLocked()
			s.mu.Unlock()
		}
	}
}

// runLocal, without a shared list, calls back the callbacks kept before
// a restart once the node is up (at its first tick), and keeps the
// figures of the day in step.
func (s *Set) runLocal(ctx context.Context) {
	tick := time.NewTicker(sharedRenew)
	defer tick.Stop()
	adopted := s.opts.Kept == nil || s.opts.OnAdopt == nil
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !adopted {
			adopted = true
			s.adoptKept(ctx)
		}
		s.syncDays(ctx)
	}
}

// adoptKept gives OnAdopt the callbacks this node kept before a restart.
func (s *Set) adoptKept(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	kept, err := s.opts.Kept.QueueKeptCallbacks(rctx, s.opts.Node)
	cancel()
	if err != nil && ctx.Err() == nil {
		s.opts.Log.Error().Err(err).Msg("queue: callbacks kept before the restart not read: they are called back after the next one")
	}
	for _, e := range kept {
		s.opts.Log.Info().Str("queue", e.Queue).Str("call", e.Call).Str("number", e.Number).Msg("queue: a callback kept over the restart resumed")
		s.opts.OnAdopt(e, s.adopt(e))
	}
}

// Waiting is how many callers wait in name (on every node, with a shared
// list).
func (s *Set) Waiting(name string) int {
	var list []store.QueueEntry
	if s.opts.Shared != nil {
		list = s.shared()[name]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(list)
	if q := s.queues[name]; q != nil {
		for _, t := range q.waiting {
			if list == nil || t.row == 0 {
				n++ // not in the shared list, or the list unread
			}
		}
	}
	return n
}

// AverageWait is the mean wait of the callers of name answered today.
func (s *Set) AverageWait(name string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dayLocked(s.queueLocked(name))
	if d.answered == 0 {
		return 0
	}
	return d.waitSum / time.Duration(d.answered)
}

// Poke wakes the first max(free, headWake) callers of every queue to look
// again: free agents may have come (free: how many are available now).
// With a shared list the other nodes are told too.
func (s *Set) Poke(free int) {
	s.mu.Lock()
	for _, q := range s.queues {
		wakeHead(q, max(free, headWake))
	}
	s.changedLocked()
	s.mu.Unlock()
	if s.opts.Shared != nil {
		select {
		case s.announce <- struct{}{}:
		default:
		}
	}
}

// wakeHead wakes the first n callers of q.
func wakeHead(q *queue, n int) {
	for i, t := range q.waiting {
		if i >= n {
			return
		}
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// changedLocked tells the live views.
func (s *Set) changedLocked() {
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Subscribe returns a channel told of every change, for live views, and
// the function that ends the subscription.
func (s *Set) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

func (t *ticket) Position() int {
	s := t.s
	if s.opts.Shared != nil {
		s.mu.Lock()
		row := t.row
		s.mu.Unlock()
		if row != 0 {
			for i, e := range s.shared()[t.q.name] {
				if e.ID == row {
					return i + 1
				}
			}
		}
		// Not in the list read (the database away, or just joined): this
		// node's own order.
	}
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	for i, w := range t.q.waiting {
		if w == t {
			return i + 1
		}
	}
	return 0
}

// MarkCallback says the caller hung up keeping their place: they are
// called back when their turn comes (shown as such to staff).
func (t *ticket) MarkCallback(p applets.CallbackPlace) {
	s := t.s
	s.mu.Lock()
	t.callback = true
	row, keep := t.row, s.opts.Shared == nil && s.opts.Kept != nil && t.kept == 0 && !t.done
	s.changedLocked()
	s.mu.Unlock()
	if keep {
		t.keep(p)
	}
	if row != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		defer cancel()
		if err := s.opts.Shared.QueueMarkCallback(ctx, row, store.CallbackPlace(p)); err != nil {
			s.opts.Log.Warn().Err(err).Msg("queue: callback not marked in the shared list")
		}
		s.stale()
	}
}

// keep writes the callback into the database, to outlive a restart.
func (t *ticket) keep(p applets.CallbackPlace) {
	s := t.s
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	id, err := s.opts.Kept.QueueJoin(ctx, store.QueueEntry{Queue: t.q.name, Call: t.caller.ID, Node: s.opts.Node, Number: t.caller.Number,
		Priority: t.caller.Priority, Callback: true, Joined: t.joined, Place: store.CallbackPlace(p)})
	if err != nil {
		s.opts.Log.Warn().Err(err).Str("queue", t.q.name).Msg("queue: callback not kept in the database: a restart loses it")
		return
	}
	s.mu.Lock()
	gone := t.done
	if !gone {
		t.kept = id
	}
	s.mu.Unlock()
	if gone { // done meanwhile
		if err := s.opts.Kept.QueueLeave(ctx, id); err != nil {
			s.opts.Log.Warn().Err(err).Msg("queue: a callback done stays in the database")
		}
	}
}

// Changed has a value when the caller should look again: their turn may
// have come (an agent came free, callers ahead left).
func (t *ticket) Changed() <-chan struct{} { return t.wake }

// Done takes the caller out of the queue and counts how it left:
// answered (within the service level or not), hangup (abandoned), timeout,
// or another way out (a key, full, no agents).
func (t *ticket) Done(outcome, agent string) {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.done {
		return
	}
	t.done = true
	row, kept := t.row, t.kept
	t.row, t.kept = 0, 0
	q := s.queueLocked(t.q.name)
	for i, w := range q.waiting {
		if w == t {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			if row != 0 {
				// The callers behind look again once the shared list has
				// lost this one; not under the lock, and not in the way of
				// an answered caller's bridge: a database round trip.
				s.bg.Add(1)
				go func() {
					defer s.bg.Done()
					s.leaveShared(row, outcome == applets.QueueKept)
					s.mu.Lock()
					wakeHead(q, headWake)
					s.changedLocked()
					s.mu.Unlock()
				}()
			} else if i < headWake {
				wakeHead(q, headWake) // callers moved up to the head
			}
			break
		}
	}
	if kept != 0 && outcome != applets.QueueKept {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
			defer cancel()
			if err := s.opts.Kept.QueueLeave(ctx, kept); err != nil {
				s.opts.Log.Warn().Err(err).Str("queue", q.name).Msg("queue: a callback done stays in the database: it is called again after a restart")
			}
		}()
	}
	if outcome == applets.QueueKept {
		s.changedLocked()
		return // not a way out of the queue: the place is the next node's
	}
	waited := s.opts.Now().Sub(t.joined)
	switch outcome {
	case "answered":
		q.stats.answered++
		q.stats.waitSum += waited
		q.stats.longestAnswered = max(q.stats.longestAnswered, waited)
		if waited <= s.opts.ServiceLevel {
			q.stats.inLevel++
		}
	case "hangup":
		q.stats.abandoned++
	case "timeout":
		q.stats.timedOut++
	default:
		q.stats.left++
	}
	s.daysDirty = true
	s.changedLocked()
}

// Status is one queue as staff see it.
type Status struct {
	Name      string          `json:"name"`
	Waiting   []WaitingCaller `json:"waiting"`
	Longest   time.Duration   `json:"-"`
	LongestS  float64         `json:"longest_wait_s"`
	Answered  int             `json:"answered_today"`
	Abandoned int             `json:"abandoned_today"`
	TimedOut  int             `json:"timed_out_today"`
	Left      int             `json:"left_today"`
	AverageS  float64         `json:"average_wait_s"`
	// ServiceLevel is the share of today's answered calls answered within
	// ServiceLevelS seconds (1 when none yet).
	ServiceLevel  float64 `json:"service_level"`
	ServiceLevelS float64 `json:"service_level_s"`
}

// WaitingCaller is one caller in a queue now.
type WaitingCaller struct {
	Position int     `json:"position"`
	Call     string  `json:"call"`
	Number   string  `json:"number"`
	WaitedS  float64 `json:"waited_s"`
	Priority int     `json:"priority"`
	// Callback: hung up keeping the place, to be called back.
	Callback bool `json:"callback,omitempty"`
	// Node is the node that holds the caller (with a shared list).
	Node string `json:"node,omitempty"`
}

// Snapshot lists every queue, by name: with a shared list, the callers of
// every node (the day's figures stay this node's).
func (s *Set) Snapshot() []Status {
	var list map[string][]store.QueueEntry
	if s.opts.Shared != nil {
		list = s.shared()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	for name := range list {
		s.queueLocked(name)
	}
	out := make([]Status, 0, len(s.queues))
	for name := range s.queues {
		q := s.queueLocked(name)
		day := s.dayLocked(q)
		st := Status{Name: name, Waiting: []WaitingCaller{}, Answered: day.answered, Abandoned: day.abandoned,
			TimedOut: day.timedOut, Left: day.left, ServiceLevel: 1, ServiceLevelS: s.opts.ServiceLevel.Seconds()}
		add := func(call, number, node string, joined time.Time, prio int, callback bool) {
			w := now.Sub(joined)
			st.Longest = max(st.Longest, w)
			st.Waiting = append(st.Waiting, WaitingCaller{Position: len(st.Waiting) + 1, Call: call, Number: number, WaitedS: w.Seconds(),
				Priority: prio, Callback: callback, Node: node})
		}
		for _, e := range list[name] {
			add(e.Call, e.Number, e.Node, e.Joined, e.Priority, e.Callback)
		}
		for _, t := range q.waiting {
			if list == nil || t.row == 0 {
				add(t.caller.ID, t.caller.Number, s.opts.Node, t.joined, t.caller.Priority, t.callback)
			}
		}
		st.LongestS = st.Longest.Seconds()
		if day.answered > 0 {
			st.AverageS = (day.waitSum / time.Duration(day.answered)).Seconds()
			st.ServiceLevel = float64(day.inLevel) / float64(day.answered)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
