package presence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/internal/fresh"
	"github.com/callflow/callflow/store"
)

// State is an agent's presence.
type State string

const (
	Available State = "available"
	Busy      State = "busy" // ringing or talking, on a call of callflow's or per device state
	Paused    State = "paused"
	LoggedOut State = "logged_out"
	WrapUp    State = "wrap_up" // the seconds after a call before the next one
)

// Chosen reports whether an agent may choose s (busy and wrap-up follow calls).
func (s State) Chosen() bool { return s == Available || s == Paused || s == LoggedOut }

// Directory is where agents and teams are kept (the store).
type Directory interface {
	GetAgent(ctx context.Context, name string) (store.Agent, error)
	TeamAgents(ctx context.Context, team string) ([]store.Agent, error)
	ListAgents(ctx context.Context) ([]store.Agent, error)
	SetPresence(ctx context.Context, p store.Presence) error
	Presences(ctx context.Context) ([]store.Presence, error)
}

// SharedClaims are agents' claims kept where every node sees them (the
// store on PostgreSQL), so that two nodes never ring one agent at once.
type SharedClaims interface {
	ClaimAgents(ctx context.Context, node string, names []string, now, until time.Time) ([]string, error)
	ExtendAgents(ctx context.Context, node string, names []string, until time.Time) error
	ReleaseAgents(ctx context.Context, node string, names []string) error
	// WrapUpAgents keeps the claims through the agents' wrap-up.
	WrapUpAgents(ctx context.Context, node string, names []string, until time.Time) error
	// ClaimedAgents: who is claimed anywhere now, by which node, and
	// whether for a wrap-up.
	ClaimedAgents(ctx context.Context, now time.Time) (map[string]store.AgentClaim, error)
}

// elsewhereFresh is how long the list of agents other nodes hold is kept
// before it is read again (at once after SharedChanged).
const elsewhereFresh = 250 * time.Millisecond

// How long a shared claim lasts: ringing, then talking (renewed while the
// conversation goes on). A node that dies holds its agents that long at
// most.
const (
	sharedRing  = 2 * time.Minute
	sharedTalk  = 10 * time.Minute
	sharedWrite = 2 * time.Second // the longest a claim waits for the database
	// claimSkew is how long after a claim ran out the other nodes are told
	// to look again: their clocks may be that much behind this one's.
	claimSkew = 200 * time.Millisecond
)

// Options configure a Tracker.
type Options struct {
	// Shared, when set, also claims agents there, as Node.
	Shared    SharedClaims
	Node      string
	Directory Directory
	// WrapUp is how long an agent stays unavailable after a call.
	WrapUp time.Duration
	Now    func() time.Time
}

// Tracker holds every agent's presence on this node. Safe for concurrent use.
type Tracker struct {
	opts Options

	mu      sync.Mutex
	agents  map[string]*agent
	devices map[string]string // Asterisk device ("PJSIP/1001") → its state ("INUSE")
	subs    map[chan struct{}]struct{}

	// The agents other nodes ring or connect now (Options.Shared), as
	// last read.
	elsewhere fresh.Value[map[string]State] // Busy or WrapUp
}

type agent struct {
	chosen    State
	reason    string
	since     time.Time
	ringing   int // legs of callflow's ringing this agent now
	talking   int
	wrapUntil time.Time
	endpoints []string  // as last resolved, for device states
	lastEnd   time.Time // the end of the last call callflow put through
	calls     int       // calls answered on callsDay
	callsDay  string
}

// New makes a tracker; Load reads the presence agents chose before.
func New(opts Options) *Tracker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Tracker{opts: opts, agents: map[string]*agent{}, devices: map[string]string{}, subs: map[chan struct{}]struct{}{},
		elsewhere: fresh.Value[map[string]State]{For: elsewhereFresh}}
}

// Load reads the recorded presence of every agent.
func (t *Tracker) Load(ctx context.Context) error {
	ps, err := t.opts.Directory.Presences(ctx)
	if err != nil {
		return fmt.Errorf("presence: load: %w", err)
	}
	t.mu.Lock()
	changed := false
	for _, p := range ps {
		a := t.agentLocked(p.Agent)
		if a.chosen != State(p.State) || a.reason != p.Reason {
			changed = true
		}
		a.chosen, a.reason, a.since = State(p.State), p.Reason, p.Since
	}
	t.mu.Unlock()
	if changed {
		t.changed() // another node's agent page: this node's queues look again
	}
	return nil
}

// agentLocked returns the entry of name, making it: an agent nobody set
// is available (teams ring their members without a login step first).
func (t *Tracker) agentLocked(name string) *agent {
	a := t.agents[name]
	if a == nil {
		a = &agent{chosen: Available, since: t.opts.Now()}
		t.agents[name] = a
	}
	return a
}

// Set records the state an agent chose; reason goes with a pause.
func (t *Tracker) Set(ctx context.Context, name string, s State, reason string) error {
	if !s.Chosen() {
		return fmt.Errorf("presence: %q is not a state an agent can choose (available, paused, logged_out)", s)
	}
	if s != Paused {
		reason = ""
	}
	if _, err := t.opts.Directory.GetAgent(ctx, name); err != nil {
		return fmt.Errorf("presence: agent %q: %w", name, err)
	}
	now := t.opts.Now()
	if err := t.opts.Directory.SetPresence(ctx, store.Presence{Agent: name, State: string(s), Reason: reason, Since: now}); err != nil {
		return fmt.Errorf("presence: agent %q: %w", name, err)
	}
	t.mu.Lock()
	a := t.agentLocked(name)
	a.chosen, a.reason, a.since = s, reason, now
	t.mu.Unlock()
	t.changed()
	return nil
}

// DeviceState records an Asterisk device state (from /deviceStates or a
// DeviceStateChanged event): an agent whose endpoint is in use is busy
// even when callflow did not place the call.
func (t *Tracker) DeviceState(device, state string) {
	t.mu.Lock()
	if state == "" || state == "NOT_INUSE" || state == "UNKNOWN" {
		delete(t.devices, device)
	} else {
		t.devices[device] = state
	}
	t.mu.Unlock()
	t.changed()
}

// deviceOf is the Asterisk device of a dial string: "PJSIP/1001" for
// "PJSIP/1001" and "PJSIP/1001/sip:..." alike; a trunk dial
// ("PJSIP/+1555@trunk") has no device state of its own.
func deviceOf(dial string) string {
	tech, res, _ := strings.Cut(dial, "/")
	res, _, _ = strings.Cut(res, "/")
	if strings.Contains(res, "@") {
		return ""
	}
	return tech + "/" + res
}

// busyDevice reports whether Asterisk says the device is taken.
func busyDevice(state string) bool {
	switch state {
	case "INUSE", "BUSY", "RINGING", "RINGINUSE", "ONHOLD":
		return true
	}
	return false
}

// stateLocked derives an agent's state now.
func (t *Tracker) stateLocked(a *agent, now time.Time) State {
	if a.chosen != Available {
		return a.chosen
	}
	if a.ringing > 0 || a.talking > 0 {
		return Busy
	}
	for _, e := range a.endpoints {
		if d := deviceOf(e); d != "" && busyDevice(t.devices[d]) {
			return Busy
		}
	}
	if now.Before(a.wrapUntil) {
		return WrapUp
	}
	return Available
}

// Status is one agent's presence as staff see it.
type Status struct {
	Agent  string    `json:"agent"`
	State  State     `json:"state"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// Status returns an agent's presence now.
func (t *Tracker) Status(name string) Status {
	elsewhere := t.heldElsewhere(context.Background())
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.agentLocked(name)
	return Status{Agent: name, State: withElsewhere(t.stateLocked(a, t.opts.Now()), elsewhere[name]), Reason: a.reason, Since: a.since}
}

// Snapshot returns every agent the tracker knows, by name.
func (t *Tracker) Snapshot() []Status {
	elsewhere := t.heldElsewhere(context.Background())
	t.mu.Lock()
	now := t.opts.Now()
	out := make([]Status, 0, len(t.agents))
	for name, a := range t.agents {
		out = append(out, Status{Agent: name, State: withElsewhere(t.stateLocked(a, now), elsewhere[name]), Reason: a.reason, Since: a.since})
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Agent < out[j].Agent })
	return out
}

// Subscribe returns a channel that receives (without blocking the
// tracker) after each change, and a function that ends the subscription.
func (t *Tracker) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	t.mu.Lock()
	t.subs[ch] = struct{}{}
	t.mu.Unlock()
	return ch, func() {
		t.mu.Lock()
		delete(t.subs, ch)
		t.mu.Unlock()
	}
}

func (t *Tracker) changed() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for ch := range t.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Members lists the agents of team with their state now, in team order,
// for queues: who is logged in, who is free, who has been idle longest
// and who took fewest calls today. It implements applets.AgentStats.
func (t *Tracker) Members(ctx context.Context, team string) ([]applets.AgentInfo, error) {
	as, err := t.opts.Directory.TeamAgents(ctx, team)
	if err != nil {
		return nil, wrapUnknown("team:"+team, err)
	}
	elsewhere := t.heldElsewhere(ctx)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	day := now.Format("2006-01-02")
	out := make([]applets.AgentInfo, 0, len(as))
	for _, ag := range as {
		a := t.agentLocked(ag.Name)
		a.endpoints = ag.Endpoints
		// On another node's call: a queue here does not count on them.
		state := withElsewhere(t.stateLocked(a, now), elsewhere[ag.Name])
		info := applets.AgentInfo{Name: ag.Name, State: string(state), Endpoints: ag.Endpoints, IdleSince: a.since}
		if a.lastEnd.After(info.IdleSince) {
			info.IdleSince = a.lastEnd
		}
		if a.callsDay == day {
			info.Calls = a.calls
		}
		out = append(out, info)
	}
	return out, nil
}

// heldElsewhere returns the agents other nodes hold now, each busy (rung
// or talking) or in wrap-up: none without a shared store, or while it does
// not answer (the claim still decides).
func (t *Tracker) heldElsewhere(ctx context.Context) map[string]State {
	if t.opts.Shared == nil {
		return nil
	}
	held, _ := t.elsewhere.Get(func() (map[string]State, error) {
		ctx, cancel := context.WithTimeout(ctx, sharedWrite)
		defer cancel()
		claims, err := t.opts.Shared.ClaimedAgents(ctx, t.opts.Now())
		if err != nil {
			return nil, err
		}
		held := map[string]State{}
		for agent, c := range claims {
			switch {
			case c.Node == t.opts.Node:
			case c.WrapUp:
				held[agent] = WrapUp
			default:
				held[agent] = Busy
			}
		}
		return held, nil
	})
	return held
}

// withElsewhere is state as every node sees it: an agent available here
// is busy, or in wrap-up, on another node's call.
func withElsewhere(state State, elsewhere State) State {
	if state == Available && elsewhere != "" {
		return elsewhere
	}
	return state
}

// SharedChanged says another node may have claimed or freed an agent: the
// next Members reads who is held elsewhere again.
func (t *Tracker) SharedChanged() { t.elsewhere.Stale() }

// ErrUnknownTarget is a team or agent that does not exist.
var ErrUnknownTarget = errors.New("presence: no such team or agent")

// Resolve turns "team:NAME" or "agent:NAME" into the endpoints of the
// agents available now, in team order. It implements applets.Agents.
func (t *Tracker) Resolve(ctx context.Context, target string) ([]applets.AgentLeg, error) {
	kind, name, _ := strings.Cut(target, ":")
	var agents []store.Agent
	switch kind {
	case "team":
		as, err := t.opts.Directory.TeamAgents(ctx, name)
		if err != nil {
			return nil, wrapUnknown(target, err)
		}
		agents = as
	case "agent":
		a, err := t.opts.Directory.GetAgent(ctx, name)
		if err != nil {
			return nil, wrapUnknown(target, err)
		}
		agents = []store.Agent{a}
	default:
		return nil, fmt.Errorf("presence: %q is neither team:NAME nor agent:NAME", target)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	var legs []applets.AgentLeg
	for _, ag := range agents {
		a := t.agentLocked(ag.Name)
		a.endpoints = ag.Endpoints
		if t.stateLocked(a, now) != Available {
			continue
		}
		for _, e := range ag.Endpoints {
			legs = append(legs, applets.AgentLeg{Agent: ag.Name, Dial: e})
		}
	}
	return legs, nil
}

func wrapUnknown(target string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownTarget, target)
	}
	return fmt.Errorf("presence: %s: %w", target, err)
}

// Claim marks agents as ringing so that no other call rings them at the
// same time; it returns the agents it could claim (those still available).
func (t *Tracker) Claim(names []string) (applets.Claim, []string) {
	t.mu.Lock()
	now := t.opts.Now()
	c := &claim{t: t, ringing: map[string]bool{}}
	var got []string
	for _, n := range names {
		a := t.agentLocked(n)
		if c.ringing[n] || t.stateLocked(a, now) != Available {
			continue
		}
		a.ringing++
		c.ringing[n] = true
		got = append(got, n)
	}
	t.mu.Unlock()
	if t.opts.Shared != nil && len(got) > 0 {
		got = c.claimShared(got, now)
	}
	t.changed()
	return c, got
}

// claimShared claims got where every node sees it and gives back, here,
// the agents another node holds. A database that does not answer leaves
// the claim this node's own.
func (c *claim) claimShared(got []string, now time.Time) []string {
	t := c.t
	ctx, cancel := context.WithTimeout(context.Background(), sharedWrite)
	defer cancel()
	held, err := t.opts.Shared.ClaimAgents(ctx, t.opts.Node, got, now, now.Add(sharedRing))
	if err != nil {
		return got
	}
	c.shared = held
	mine := map[string]bool{}
	for _, n := range held {
		mine[n] = true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, n := range got {
		if mine[n] {
			out = append(out, n)
			continue
		}
		t.agentLocked(n).ringing-- // another node's now
		delete(c.ringing, n)
	}
	return out
}

// release gives back the shared claims on names (all but keep).
func (c *claim) release(keep string) {
	var names, left []string
	for _, n := range c.shared {
		if n == keep {
			left = append(left, n)
		} else {
			names = append(names, n)
		}
	}
	c.shared = left
	if len(names) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedWrite)
	defer cancel()
	_ = c.t.opts.Shared.ReleaseAgents(ctx, c.t.opts.Node, names) // else they run out
}

// renew keeps the talking agent's shared claim until Done.
func (c *claim) renew(name string, stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	tick := time.NewTicker(sharedTalk / 3)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), sharedWrite)
		_ = c.t.opts.Shared.ExtendAgents(ctx, c.t.opts.Node, []string{name}, time.Now().Add(sharedTalk))
		cancel()
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// claim is the agents one dial holds.
type claim struct {
	t        *Tracker
	mu       sync.Mutex
	ringing  map[string]bool
	answered string
	done     bool
	shared   []string      // claims held in Options.Shared
	talking  chan struct{} // closed at Done: the renewal stops
	renewed  chan struct{} // closed when it has
}

// Answered moves the answering agent to talking and frees the others.
func (c *claim) Answered(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || c.answered != "" {
		return
	}
	c.t.mu.Lock()
	for n := range c.ringing {
		c.t.agentLocked(n).ringing--
	}
	c.ringing = map[string]bool{}
	if name != "" {
		a := c.t.agentLocked(name)
		a.talking++
		if day := c.t.opts.Now().Format("2006-01-02"); a.callsDay != day {
			a.callsDay, a.calls = day, 0
		}
		a.calls++
		c.answered = name
	}
	c.t.mu.Unlock()
	if c.t.opts.Shared != nil {
		c.release(name)
		if name != "" && slices.Contains(c.shared, name) {
			c.talking, c.renewed = make(chan struct{}), make(chan struct{})
			go c.renew(name, c.talking, c.renewed)
		}
	}
	c.t.changed()
}

// Done frees every agent; the one who talked starts wrap-up.
func (c *claim) Done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.done = true
	c.t.mu.Lock()
	for n := range c.ringing {
		c.t.agentLocked(n).ringing--
	}
	if c.answered != "" {
		a := c.t.agentLocked(c.answered)
		a.talking--
		a.lastEnd = c.t.opts.Now()
		a.wrapUntil = a.lastEnd.Add(c.t.opts.WrapUp)
		if c.t.opts.WrapUp > 0 {
			// The end of wrap-up is a change too: queues wait for it.
			time.AfterFunc(c.t.opts.WrapUp, c.t.changed)
		}
	}
	c.t.mu.Unlock()
	if c.t.opts.Shared != nil {
		if c.talking != nil {
			close(c.talking)
			<-c.renewed // its last renewal must not outlast the wrap-up's
		}
		// The agent who talked stays claimed through wrap-up, so that no
		// other node rings them before it is over; the claim then runs out
		// and the other nodes are told to look again.
		keep := ""
		if wrap := c.t.opts.WrapUp; wrap > 0 && c.answered != "" && slices.Contains(c.shared, c.answered) {
			keep = c.answered
			ctx, cancel := context.WithTimeout(context.Background(), sharedWrite)
			_ = c.t.opts.Shared.WrapUpAgents(ctx, c.t.opts.Node, []string{keep}, time.Now().Add(wrap))
			cancel()
			time.AfterFunc(wrap+claimSkew, c.t.changed)
		}
		c.release(keep)
	}
	c.t.changed()
}

// numberOf is the number a dial string rings: "1001" for "PJSIP/1001",
// "+15550001" for "PJSIP/+15550001@trunk".
func numberOf(dial string) string {
	_, res, _ := strings.Cut(dial, "/")
	res, _, _ = strings.Cut(res, "/")
	res, _, _ = strings.Cut(res, "@")
	return res
}

// SetByCaller changes the presence of the agent calling from caller, for
// a login number (*45). It implements applets.Agents.
func (t *Tracker) SetByCaller(ctx context.Context, caller, action, reason string) (string, string, error) {
	agents, err := t.opts.Directory.ListAgents(ctx)
	if err != nil {
		return "", "", fmt.Errorf("presence: %w", err)
	}
	name := ""
	for _, a := range agents {
		for _, e := range a.Endpoints {
			if caller != "" && numberOf(e) == caller {
				name = a.Name
			}
		}
	}
	if name == "" {
		return "", "", applets.ErrNotAgent
	}
	var s State
	switch action {
	case "login":
		s = Available
	case "logout":
		s = LoggedOut
	case "pause":
		s = Paused
	case "toggle":
		s = Available
		if cur := t.Status(name).State; cur != LoggedOut && cur != Paused {
			s = LoggedOut
		}
	default:
		return "", "", fmt.Errorf("presence: unknown action %q", action)
	}
	if err := t.Set(ctx, name, s, reason); err != nil {
		return "", "", err
	}
	return name, string(s), nil
}

// Devices returns the Asterisk devices of every agent's endpoints, for
// the ARI transport to follow. It implements ari.DeviceWatcher.
func (t *Tracker) Devices(ctx context.Context) []string {
	agents, err := t.opts.Directory.ListAgents(ctx)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	t.mu.Lock()
	for _, a := range agents {
		t.agentLocked(a.Name).endpoints = a.Endpoints
		for _, e := range a.Endpoints {
			if d := deviceOf(e); d != "" && !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	t.mu.Unlock()
	return out
}
