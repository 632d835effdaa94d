package applets

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callflow/callflow/applets/call"
)

// Queue holds the caller, with music on hold, until an agent of the teams
// is free, then rings that agent (or all free agents with ring_all) and
// bridges the caller to whoever answers. Callers are served by priority,
// then in order of arrival. While waiting the caller may hear their
// position and the estimated wait every announce_every, and may leave with
// one of exit_keys (outcome exit_key; the key is in the step's details and
// in the variable queue_exit_key).
//
//	applet = "queue"
//	teams = ["support"]
//	strategy = "longest_idle"  # ring_all, longest_idle, round_robin, fewest_calls, random, linear
//	ring_timeout = "15s"       # each try of an agent
//	retry = "5s"               # before the same agent is tried again
//	max_wait = "10m"           # then timeout
//	max_callers = 20           # more waiting: full (0: no limit)
//	music = "default"          # Asterisk music-on-hold class
//	announce_every = "60s"     # position (and wait, with announce_wait) every ...
//	announce_wait = true
//	exit_keys = "1"            # keys that leave the queue: exit_key
//	priority = 0               # higher is served first
//	join_empty = true          # join with no agent logged in (else no_agents)
//	leave_when_empty = false   # leave when the last agent logs out: no_agents
//	whisper_wait = true        # the agent hears the queue and the caller's wait first
//	callback_key = "2"         # leave keeping the place: called back (outcome callback)
//	callback_dial = "PJSIP/${number}@trunk"  # how the caller is called back
//	callback_attempts = 3      # calls to the caller before giving up
//	callback_retry = "2m"      # between them
//	callback_expires = "4h"    # no agent by then: given up
//	on = { timeout = "voicemail", exit_key = "voicemail", no_agents = "voicemail", full = "voicemail", callback = "see-you" }
//
// A callback keeps the caller's place while they hang up (the flow goes on
// with outcome callback, to say goodbye). When their turn comes the agent
// is rung first; once the agent answers, the caller is called back from
// the agent's phone and the two are bridged. The call's record gets the
// callback as a step of its own, with both legs. Only a node that can
// place calls (ARI) offers it, and only to a caller whose number is known.
var QueueDef = Definition{
	Name:     "queue",
	Summary:  "Hold callers with music until the next free agent of a team answers.",
	Group:    "connect",
	Outcomes: []string{"answered", "timeout", "full", "no_agents", "exit_key", "callback", "hangup"},
	Params:   QueueParams{},
	New:      newQueue,
}

// QueueParams are queue's parameters.
type QueueParams struct {
	Name           string   `toml:"name" doc:"the queue's name, shared by the steps that name it (default: workspace/flow/step)"`
	Teams          []string `toml:"teams" doc:"the teams whose agents take the calls"`
	Strategy       string   `toml:"strategy" doc:"which free agent rings first" enum:"ring_all,longest_idle,round_robin,fewest_calls,random,linear"`
	RingTimeout    Duration `toml:"ring_timeout" doc:"how long each try of an agent rings (default 15s)"`
	Retry          Duration `toml:"retry" doc:"before the same agent is rung again for this caller (default 5s)"`
	MaxWait        Duration `toml:"max_wait" doc:"the longest a caller waits: then timeout (default 10m)"`
	MaxCallers     int      `toml:"max_callers" doc:"more callers waiting: full (0: no limit)"`
	Music          string   `toml:"music" doc:"the music-on-hold class callers hear (default Asterisk's)"`
	AnnounceEvery  Duration `toml:"announce_every" doc:"how often a caller hears their position (none when left out)"`
	AnnounceWait   bool     `toml:"announce_wait" doc:"also announce the estimated wait"`
	ExitKeys       string   `toml:"exit_keys" doc:"keys that leave the queue: outcome exit_key"`
	Priority       int      `toml:"priority" doc:"callers of a higher priority are served first"`
	JoinEmpty      *bool    `toml:"join_empty" doc:"join with no agent logged in (default true; false: no_agents)"`
	LeaveWhenEmpty bool     `toml:"leave_when_empty" doc:"leave when the last agent logs out: no_agents"`
	CallerID       string   `toml:"caller_id" doc:"the number agents see (default the caller's)"`
	// WhisperWait has the agent hear the queue and how long the caller
	// waited (text to speech) before being connected.
	WhisperWait bool `toml:"whisper_wait" doc:"the agent hears the queue and the caller's wait first"`

	CallbackKey      string   `toml:"callback_key" doc:"a key that leaves the queue keeping the place: the caller is called back (outcome callback)"`
	CallbackDial     string   `toml:"callback_dial" doc:"the dial string that calls the caller back, with ${number} for their number, e.g. PJSIP/${number}@trunk"`
	CallbackAttempts int      `toml:"callback_attempts" doc:"calls to the caller before giving up (default 3)"`
	CallbackRetry    Duration `toml:"callback_retry" doc:"between calls to a caller who did not answer (default 2m)"`
	CallbackExpires  Duration `toml:"callback_expires" doc:"no agent free by then after the request: given up (default 4h)"`
}

// Queue strategies, as app_queue names them where it has them.
var queueStrategies = map[string]bool{
	"ring_all": true, "longest_idle": true, "round_robin": true, "fewest_calls": true, "random": true, "linear": true,
}

type queueStep struct {
	p                                     QueueParams
	ringTimeout, retry, maxWait, announce time.Duration
	joinEmpty                             bool
	cbRetry, cbExpires                    time.Duration
	cbAttempts                            int
}

// queueRecheck is the longest a waiting caller goes without looking again
// whether an agent is free, in case a wake-up was missed; changes wake the
// callers at the head of the queue at once.
const queueRecheck = 15 * time.Second

func newQueue(p Params) (Applet, error) {
	q := &queueStep{}
	var errs problems
	errs.add(p.Decode(&q.p))
	if len(q.p.Teams) == 0 {
		errs.add(p.Errorf("teams", "name the team(s) whose agents take the calls: teams = [\"support\"]"))
	}
	for _, t := range q.p.Teams {
		if err := validTarget("team:" + t); err != nil || t == "" {
			errs.add(p.Errorf("teams", "team %q: a team's name, such as \"support\"", t))
		}
	}
	if q.p.Name != "" && !ValidName(q.p.Name) {
		errs.add(p.Errorf("name", "queue name %q: letters, digits, '_', '.', '-'", q.p.Name))
	}
	if q.p.Strategy == "" {
		q.p.Strategy = "ring_all"
	}
	if !queueStrategies[q.p.Strategy] {
		errs.add(p.Errorf("strategy", "strategy %q: use ring_all, longest_idle, round_robin, fewest_calls, random or linear", q.p.Strategy))
	}
	q.ringTimeout = orDefault(q.p.RingTimeout, 15*time.Second)
	if q.ringTimeout < time.Second || q.ringTimeout > 10*time.Minute {
		errs.add(p.Errorf("ring_timeout", "ring_timeout must be between 1s and 10m"))
	}
	q.retry = orDefault(q.p.Retry, 5*time.Second)
	if q.retry < 0 || q.retry > 5*time.Minute {
		errs.add(p.Errorf("retry", "retry must be between 0s and 5m"))
	}
	q.maxWait = orDefault(q.p.MaxWait, 10*time.Minute)
	if q.maxWait < time.Second || q.maxWait > 24*time.Hour {
		errs.add(p.Errorf("max_wait", "max_wait must be between 1s and 24h"))
	}
	if q.p.MaxCallers < 0 {
		errs.add(p.Errorf("max_callers", "max_callers must not be negative (0: no limit)"))
	}
	q.announce = q.p.AnnounceEvery.D()
	switch {
	case q.announce < 0 || q.announce != 0 && q.announce < time.Second:
		errs.add(p.Errorf("announce_every", "announce_every must be at least 1s (or left out: no announcements)"))
	case q.announce != 0 && q.announce < 10*time.Second:
		p.Warnf("announce_every", "announce_every = %s: callers hear their position very often (app_queue's least is 15s)", q.announce)
	}
	if q.p.AnnounceWait && q.announce == 0 {
		p.Warnf("announce_wait", "announce_wait without announce_every is never heard")
	}
	if q.p.ExitKeys != "" && !ValidKeys(q.p.ExitKeys) {
		errs.add(p.Errorf("exit_keys", "exit_keys %q: phone keys 0-9, * and #", q.p.ExitKeys))
	}
	q.joinEmpty = q.p.JoinEmpty == nil || *q.p.JoinEmpty
	q.validCallback(p, &errs)
	return q, errs.err()
}

func (q *queueStep) Facts() Facts {
	return Facts{Terminal: []string{"answered"}, Input: true}
}

// queueName is the queue's name: its own, or the workspace, flow and step.
func (q *queueStep) queueName(env *Env) string {
	if q.p.Name != "" {
		return q.p.Name
	}
	ws := env.Flow.Workspace
	if ws == "" {
		ws = "default"
	}
	return ws + "/" + env.Flow.Name + "/" + env.Step
}

func (q *queueStep) Run(ctx context.Context, env *Env) (Result, error) {
	svc := env.Services
	if svc == nil || svc.Agents == nil || svc.Queues == nil {
		return Result{}, errors.New("queue: needs the agents directory and the queues (callflow serve with a database)")
	}
	name := q.queueName(env)
	env.Note("queue", name)
	members, err := q.members(ctx, env)
	if err != nil {
		return Result{}, fmt.Errorf("queue %s: %w", name, err)
	}
	if !q.joinEmpty && loggedIn(members) == 0 {
		env.Note("agents", "none logged in")
		return Result{Outcome: "no_agents"}, nil
	}
	if q.p.MaxCallers > 0 && svc.Queues.Waiting(name) >= q.p.MaxCallers {
		env.Note("waiting", svc.Queues.Waiting(name))
		return Result{Outcome: "full"}, nil
	}
	if err := env.Call.Answer(ctx); err != nil {
		return Result{}, err
	}
	env.State.Answered = true
	joined := env.Now()
	keys := q.p.ExitKeys
	if q.offersCallback(env) {
		keys += q.p.CallbackKey
	} else if q.p.CallbackKey != "" {
		env.Note("callback", "not offered: "+q.noCallbackReason(env))
	}
	ticket := svc.Queues.Join(name, QueueCaller{ID: env.Call.ID(), Number: env.Call.Caller(), Priority: q.p.Priority})
	env.Note("position", ticket.Position())
	outcome := "hangup"
	// The caller leaves the queue the moment an agent answers (the
	// transport says so from its own goroutine): the wait ends there, and
	// the callers behind move up during the conversation.
	var once sync.Once
	var waited time.Duration
	handedOff := false // the place went to a callback: it keeps the ticket
	answered := func(agent string) {
		once.Do(func() {
			waited = env.Now().Sub(joined)
			ticket.Done("answered", agent)
		})
	}
	defer func() {
		once.Do(func() {
			waited = env.Now().Sub(joined)
			if !handedOff {
				ticket.Done(outcome, "")
			}
		})
		env.Note("waited_s", waited.Round(time.Second).Seconds())
	}()
	leave := func(key string, err error) (Result, error) {
		if err == nil && key != "" && key == q.p.CallbackKey && strings.Contains(keys, key) {
			handedOff = true
			outcome = "callback"
			return q.requestCallback(env, name, ticket, joined), nil
		}
		return q.left(env, key, err, &outcome)
	}

	deadline := joined.Add(q.maxWait)
	nextAnnounce := time.Time{}
	if q.announce > 0 {
		nextAnnounce = joined // the caller hears where they are at once
	}
	tried := map[string]time.Time{} // agent → when last rung for this caller
	for {
		now := env.Now()
		if !now.Before(deadline) {
			outcome = "timeout"
			return Result{Outcome: outcome}, nil
		}
		changed := ticket.Changed() // before looking, so no change is missed
		members, agents, err := q.turn(ctx, env, name, ticket, tried, now)
		if q.p.LeaveWhenEmpty && err == nil && loggedIn(members) == 0 {
			outcome = "no_agents"
			env.Note("agents", "none logged in")
			return Result{Outcome: outcome}, nil
		}
		if agents != nil {
			res, who, err := q.ring(ctx, env, agents, answered, q.whisper(ctx, env, env.Now().Sub(joined)))
			if res.Status == Answered {
				answered(res.agent) // a transport that could not tell earlier
				outcome = "answered"
				env.Note("agent", res.agent)
				return Result{Outcome: outcome}, err
			}
			if err != nil {
				return Result{}, err
			}
			for _, a := range who {
				tried[a] = env.Now()
			}
			if len(who) > 0 {
				continue // the next free agent at once; a retry waits below
			}
			// Another call took them first: wait for the next change.
		}
		if !nextAnnounce.IsZero() && !now.Before(nextAnnounce) {
			// An agent coming free for this caller cuts the announcement
			// short: the caller would rather talk than hear their place.
			nextAnnounce = now.Add(q.announce)
			actx, stop := context.WithCancel(ctx)
			if i, ok := env.Call.(call.Interrupter); ok && i.CanInterrupt() {
				stop()
				actx, stop = wakeable(ctx, changed)
			}
			key, err := q.announcePosition(actx, env, ticket.Position(), svc.Queues.AverageWait(name), keys)
			woken := actx.Err() != nil && ctx.Err() == nil
			stop()
			if woken && !errors.Is(err, ErrHangup) {
				continue
			}
			if key != "" || err != nil {
				return leave(key, err)
			}
		}
		wait := min(q.recheck(tried, now), deadline.Sub(now))
		if fa, ok := svc.Agents.(interface{ FreeAt() time.Time }); ok && fa.FreeAt().After(now) {
			wait = min(wait, fa.FreeAt().Sub(now)) // the simulator's agents
		}
		if !nextAnnounce.IsZero() {
			wait = min(wait, max(nextAnnounce.Sub(now), 0))
		}
		hctx, cancel := wakeable(ctx, changed)
		key, err := env.Call.Hold(hctx, HoldSpec{Music: q.p.Music, Keys: keys, Timeout: wait})
		cancel()
		switch {
		case key != "":
			return leave(key, nil)
		case errors.Is(err, ErrTimeout), err != nil && ctx.Err() == nil && hctx.Err() != nil && !errors.Is(err, ErrHangup):
			// waited, or woken by a change: look again
		case err != nil:
			return Result{Outcome: "hangup"}, err
		}
	}
}

// wakeable is ctx, also cancelled when the ticket says to look again;
// stop releases it.
func wakeable(ctx context.Context, changed <-chan struct{}) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-changed:
			cancel()
		case <-wctx.Done():
		}
	}()
	return wctx, cancel
}

// left ends the wait on an exit key, or on the error an announcement met.
func (q *queueStep) left(env *Env, key string, err error, outcome *string) (Result, error) {
	if err != nil {
		return Result{Outcome: "hangup"}, err
	}
	*outcome = "exit_key"
	env.Note("key", key)
	env.State.Vars["queue_exit_key"] = key
	return Result{Outcome: "exit_key"}, nil
}

// members are the agents of the step's teams (each once, in team order)
// with their state; a directory without states lists the agents free now.
// turn reads the team now and, when the caller's turn has come (their
// place is within the free agents not tried lately), the agents to ring
// in strategy order; nil when it has not. err: the team could not be read.
func (q *queueStep) turn(ctx context.Context, env *Env, name string, t QueueTicket, tried map[string]time.Time, now time.Time) (members, ring []AgentInfo, err error) {
	members, err = q.members(ctx, env)
	if err != nil {
		env.Log.Warn().Err(err).Msg("queue: agents unknown for now")
	}
	free := q.free(members, tried, now)
	if pos := t.Position(); pos > 0 && pos <= len(free) {
		ring = q.pick(ctx, env, name, free, members, pos)
	}
	return members, ring, err
}

func (q *queueStep) members(ctx context.Context, env *Env) ([]AgentInfo, error) {
	seen := map[string]bool{}
	var out []AgentInfo
	stats, _ := env.Services.Agents.(AgentStats)
	for _, team := range q.p.Teams {
		var infos []AgentInfo
		if stats != nil {
			ms, err := stats.Members(ctx, team)
			if err != nil {
				return nil, err
			}
			infos = ms
		} else {
			legs, err := env.Services.Agents.Resolve(ctx, "team:"+team)
			if err != nil {
				return nil, err
			}
			byName := map[string]int{}
			for _, l := range legs {
				i, ok := byName[l.Agent]
				if !ok {
					i = len(infos)
					byName[l.Agent] = i
					infos = append(infos, AgentInfo{Name: l.Agent, State: "available"})
				}
				infos[i].Endpoints = append(infos[i].Endpoints, l.Dial)
			}
		}
		for _, m := range infos {
			if !seen[m.Name] {
				seen[m.Name] = true
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// recheck is how long a caller holds before looking again: queueRecheck,
// or until an agent rung for them may be rung again, if sooner.
func (q *queueStep) recheck(tried map[string]time.Time, now time.Time) time.Duration {
	wait := queueRecheck
	for _, t := range tried {
		if left := t.Add(q.retry).Sub(now); left > 0 {
			wait = min(wait, left)
		}
	}
	return max(wait, 100*time.Millisecond)
}

func loggedIn(ms []AgentInfo) int {
	n := 0
	for _, m := range ms {
		if m.State != "logged_out" {
			n++
		}
	}
	return n
}

// free are the available agents not rung for this caller within retry.
func (q *queueStep) free(ms []AgentInfo, tried map[string]time.Time, now time.Time) []AgentInfo {
	var out []AgentInfo
	for _, m := range ms {
		if m.State != "available" || len(m.Endpoints) == 0 {
			continue
		}
		if t, ok := tried[m.Name]; ok && now.Sub(t) < q.retry {
			continue
		}
		out = append(out, m)
	}
	return out
}

// pick is whom the caller at pos rings: every free agent with ring_all;
// else the pos-th free agent in the strategy's order, so that the callers
// at the head, woken together, ring different agents rather than race for
// the same one.
func (q *queueStep) pick(ctx context.Context, env *Env, name string, free, all []AgentInfo, pos int) []AgentInfo {
	ordered := q.order(ctx, env, name, free, all)
	if q.p.Strategy == "ring_all" {
		return ordered
	}
	k := min(max(pos, 1), len(ordered)) - 1
	return ordered[k : k+1]
}

// order puts the free agents in the order the strategy rings them.
func (q *queueStep) order(ctx context.Context, env *Env, name string, free, all []AgentInfo) []AgentInfo {
	out := append([]AgentInfo(nil), free...)
	switch q.p.Strategy {
	case "longest_idle":
		sort.SliceStable(out, func(i, j int) bool { return out[i].IdleSince.Before(out[j].IdleSince) })
	case "fewest_calls":
		sort.SliceStable(out, func(i, j int) bool { return out[i].Calls < out[j].Calls })
	case "random":
		rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	case "round_robin":
		// The turn goes round every member (free or not), kept in the
		// database: the free agents from it on, in team order.
		if c := env.Services.Counters; c != nil && len(all) > 0 {
			if pos, err := c.Next(ctx, "queue/"+name, len(all)); err == nil {
				isFree := map[string]int{}
				for i, m := range free {
					isFree[m.Name] = i
				}
				out = out[:0]
				for k := range all {
					if i, ok := isFree[all[(pos+k)%len(all)].Name]; ok {
						out = append(out, free[i])
					}
				}
			}
		}
	}
	return out // ring_all, linear: team order
}

// rung is how a try of agents ended.
type rung struct {
	DialResult
	agent string
}

// ring claims the agents and rings their endpoints; it returns the result
// and the agents rung.
func (q *queueStep) ring(ctx context.Context, env *Env, agents []AgentInfo, answered func(agent string), whisper []Media) (rung, []string, error) {
	claim, got, targets, agentOf := claimAgents(env, agents)
	if claim != nil {
		defer claim.Done()
	}
	if len(targets) == 0 {
		return rung{}, got, nil
	}
	spec := DialSpec{Targets: targets, RingTimeout: q.ringTimeout, CallerID: q.p.CallerID, Music: q.music(),
		Whisper: whisper, Accept: env.Flow.WhisperAccept, Record: env.Flow.Record}
	spec.OnAnswer = func(target string) {
		if claim != nil {
			claim.Answered(agentOf[target])
		}
		answered(agentOf[target])
	}
	res, err := env.Call.Dial(ctx, spec)
	if res.Status != "" {
		env.State.Dials = append(env.State.Dials, res)
	}
	if res.Status == Answered && claim != nil {
		claim.Answered(agentOf[res.Target])
	}
	return rung{DialResult: res, agent: agentOf[res.Target]}, got, err
}

// claimAgents claims the agents (each at all their endpoints) as
// claimLegs does.
func claimAgents(env *Env, agents []AgentInfo) (Claim, []string, []string, map[string]string) {
	var legs []AgentLeg
	for _, a := range agents {
		for _, e := range a.Endpoints {
			legs = append(legs, AgentLeg{Agent: a.Name, Dial: e})
		}
	}
	return claimLegs(env, legs)
}

// whisper is what the agent hears before the caller: the flow's whisper,
// then, with whisper_wait, the queue and the caller's wait.
func (q *queueStep) whisper(ctx context.Context, env *Env, waited time.Duration) []Media {
	out := append([]Media(nil), env.Flow.Whisper...)
	text := env.Flow.WhisperText
	if q.p.WhisperWait {
		mins := int((waited + 30*time.Second) / time.Minute)
		wait := fmt.Sprintf("%d minutes", mins)
		switch {
		case mins == 1:
			wait = "1 minute"
		case waited < time.Minute:
			wait = fmt.Sprintf("%d seconds", int(waited.Seconds()))
		}
		text = strings.TrimSpace(text + " " + q.spokenName(env) + ". Waited " + wait + ".")
	}
	if text != "" {
		m, err := env.Media(ctx, nil, text)
		if err != nil {
			env.Log.Warn().Err(err).Msg("queue whisper not spoken")
		}
		out = append(out, m...)
	}
	return out
}

// spokenName is the queue as people name it: its name, else its flow's.
func (q *queueStep) spokenName(env *Env) string {
	if q.p.Name != "" {
		return q.p.Name
	}
	return env.Flow.Name
}

// music is what the caller hears while an agent rings: the queue's music,
// not ringing, so the wait sounds the same.
func (q *queueStep) music() string {
	if q.p.Music == "" {
		return "default"
	}
	return q.p.Music
}

// announcePosition tells the caller their place (and the estimated wait);
// an exit key stops it and is returned.
func (q *queueStep) announcePosition(ctx context.Context, env *Env, pos int, avg time.Duration, keys string) (string, error) {
	var media []Media
	if pos == 1 {
		media = append(media, "sound:queue-youarenext")
	} else if pos > 1 {
		media = append(media, "sound:queue-thereare", Media("number:"+strconv.Itoa(pos)), "sound:queue-callswaiting")
	}
	if q.p.AnnounceWait && avg >= time.Minute {
		media = append(media, "sound:queue-holdtime", Media("number:"+strconv.Itoa(int((avg+30*time.Second)/time.Minute))), "sound:queue-minutes")
	}
	if len(media) == 0 {
		return "", nil
	}
	env.Note("announced", strings.TrimSpace(fmt.Sprintf("position %d", pos)))
	key, err := env.Call.Play(ctx, PlaySpec{Media: media, BargeIn: keys})
	if key != "" && !strings.Contains(keys, key) {
		key = ""
	}
	return key, err
}
