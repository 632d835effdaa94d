package queues

import (
	"sort"
	"sync"
	"time"

	"github.com/callflow/callflow/applets"
)

// Options configure a Set.
type Options struct {
	// ServiceLevel is the wait within which an answered call counts as
	// answered in time (default 20s, as app_queue's servicelevel).
	ServiceLevel time.Duration
	Now          func() time.Time
}

// Set is every queue of this node. Safe for concurrent use.
type Set struct {
	opts Options

	mu     sync.Mutex
	queues map[string]*queue
	seq    int64
	subs   map[chan struct{}]struct{}
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
	return &Set{opts: opts, queues: map[string]*queue{}, subs: map[chan struct{}]struct{}{}}
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
	return t
}

// Waiting is how many callers wait in name.
func (s *Set) Waiting(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queues[name]; q != nil {
		return len(q.waiting)
	}
	return 0
}

// AverageWait is the mean wait of the callers of name answered today.
func (s *Set) AverageWait(name string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queueLocked(name)
	if q.stats.answered == 0 {
		return 0
	}
	return q.stats.waitSum / time.Duration(q.stats.answered)
}

// Poke wakes the first max(free, headWake) callers of every queue to look
// again: free agents may have come (free: how many are available now).
func (s *Set) Poke(free int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.queues {
		wakeHead(q, max(free, headWake))
	}
	s.changedLocked()
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
func (t *ticket) MarkCallback() {
	t.s.mu.Lock()
	t.callback = true
	t.s.changedLocked()
	t.s.mu.Unlock()
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
	q := s.queueLocked(t.q.name)
	for i, w := range q.waiting {
		if w == t {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			if i < headWake {
				wakeHead(q, headWake) // callers moved up to the head
			}
			break
		}
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
}

// Snapshot lists every queue, by name.
func (s *Set) Snapshot() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	out := make([]Status, 0, len(s.queues))
	for name := range s.queues {
		q := s.queueLocked(name)
		st := Status{Name: name, Waiting: []WaitingCaller{}, Answered: q.stats.answered, Abandoned: q.stats.abandoned,
			TimedOut: q.stats.timedOut, Left: q.stats.left, ServiceLevel: 1, ServiceLevelS: s.opts.ServiceLevel.Seconds()}
		for i, t := range q.waiting {
			w := now.Sub(t.joined)
			st.Longest = max(st.Longest, w)
			st.Waiting = append(st.Waiting, WaitingCaller{Position: i + 1, Call: t.caller.ID, Number: t.caller.Number, WaitedS: w.Seconds(), Priority: t.caller.Priority, Callback: t.callback})
		}
		st.LongestS = st.Longest.Seconds()
		if q.stats.answered > 0 {
			st.AverageS = (q.stats.waitSum / time.Duration(q.stats.answered)).Seconds()
			st.ServiceLevel = float64(q.stats.inLevel) / float64(q.stats.answered)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
