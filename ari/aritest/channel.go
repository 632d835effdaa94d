package aritest

import (
	"fmt"
	"strings"
	"time"
)

type callerID struct {
	Name   string `json:"name"`
	Number string `json:"number"`
}

type dialplanCEP struct {
	Context  string `json:"context"`
	Exten    string `json:"exten"`
	Priority int64  `json:"priority"`
	AppName  string `json:"app_name"`
	AppData  string `json:"app_data"`
}

// channelJSON is the ARI Channel model, fields in Asterisk's order.
type channelJSON struct {
	ID           string      `json:"id"`
	Name         string      `json:"name"`
	State        string      `json:"state"`
	ProtocolID   string      `json:"protocol_id"`
	Caller       callerID    `json:"caller"`
	Connected    callerID    `json:"connected"`
	Accountcode  string      `json:"accountcode"`
	Dialplan     dialplanCEP `json:"dialplan"`
	Creationtime string      `json:"creationtime"`
	Language     string      `json:"language"`
}

type chanKind int

const (
	kindInbound chanKind = iota
	kindCreate
	kindOriginate
)

func (k chanKind) String() string {
	switch k {
	case kindInbound:
		return "inbound"
	case kindCreate:
		return "create"
	default:
		return "originate"
	}
}

// mediaOp is a command in a channel's control queue: Asterisk runs
// playbacks, recordings and /continue one after the other on the channel.
type mediaOp interface {
	start()
	// abort ends the op because the channel went away; running tells
	// whether it had started.
	abort(running bool)
}

type channel struct {
	s    *Server
	seq  int
	snap channelJSON
	kind chanKind

	// agent legs
	endpoint   string
	agent      AgentBehavior
	hasAgent   bool
	tech       string
	dialstring string
	dialed     bool
	orig       origination

	app      string
	inStasis bool
	subs     map[string]int
	vars     map[string]string

	gone      bool
	hangingUp bool
	cause     int

	bridge      *bridge
	bridgePeer  string
	inhibitCOLP bool
	moh         bool

	q   opQueue
	rec *recording

	timers []*timer

	caller     *Caller
	talk       time.Duration
	originator string
	formats    string
	highRate   bool
	continued  string
	lat        *latTracker
}

var causeText = map[int]string{
	0:   "Unknown",
	1:   "Unallocated (unassigned) number",
	16:  "Normal Clearing",
	17:  "User busy",
	18:  "No user responding",
	19:  "User alerting, no answer",
	21:  "Call Rejected",
	26:  "Answered elsewhere",
	28:  "Invalid number format",
	31:  "Normal, unspecified",
	34:  "Circuit/channel congestion",
	38:  "Network out of order",
	58:  "Bearer capability not available",
	127: "Interworking, unspecified",
}

func causeTxt(c int) string {
	if t, ok := causeText[c]; ok {
		return t
	}
	return "Unknown"
}

func (c *channel) id() string { return c.snap.ID }

func (c *channel) post() []kv { return []kv{{"channel", c.snap}} }

func (s *Server) newChannelLocked(kind chanKind, id string) *channel {
	s.chanSeq++
	if id == "" {
		// Asterisk's uniqueid: [systemname-]epoch.sequence
		id = fmt.Sprintf("%d.%d", time.Now().Unix(), s.chanSeq)
		if s.opts.SystemName != "" {
			id = s.opts.SystemName + "-" + id
		}
	}
	c := &channel{
		s:    s,
		seq:  s.chanSeq,
		kind: kind,
		subs: map[string]int{},
		vars: map[string]string{},
		lat:  &latTracker{},
		snap: channelJSON{
			ID:           id,
			Creationtime: astTime(time.Now()),
			Language:     "en",
		},
	}
	s.channels[id] = c
	s.history = append(s.history, c)
	return c
}

func (s *Server) nextNameSeqLocked() int {
	s.nameSeq++
	return s.nameSeq
}

// channelByIDLocked finds a live channel by id or by name, as
// ast_channel_get_by_name does.
func (s *Server) channelByIDLocked(id string) *channel {
	if c := s.channels[id]; c != nil {
		return c
	}
	if id == "" {
		return nil
	}
	for _, c := range s.channels {
		if c.snap.Name == id {
			return c
		}
	}
	return nil
}

func (c *channel) afterLocked(d time.Duration, fn func()) {
	t := c.s.afterLocked(d, func() {
		if c.gone {
			return
		}
		fn()
	})
	if t != nil {
		c.timers = append(c.timers, t)
	}
}

func (c *channel) stopTimersLocked() {
	for _, t := range c.timers {
		c.s.stopTimerLocked(t)
	}
	c.timers = nil
}

func (c *channel) notifyLocked() {
	if c.caller != nil {
		c.caller.notifyLocked()
	}
}

func (c *channel) markGoneLocked() {
	if c.gone {
		return
	}
	c.gone = true
	if c.s.opts.OnAgentLeg != nil && c.endpoint != "" {
		c.s.opts.OnAgentLeg(c.endpoint, "gone")
	}
	c.stopTimersLocked()
	if c.caller != nil {
		c.caller.goneLocked()
	}
}

func (c *channel) infoLocked() ChannelInfo {
	rate := 8000
	if c.highRate {
		rate = 192000
	}
	vars := map[string]string{}
	for k, v := range c.vars {
		vars[k] = v
	}
	ci := ChannelInfo{
		ID:          c.snap.ID,
		Name:        c.snap.Name,
		State:       c.snap.State,
		Endpoint:    c.endpoint,
		Inbound:     c.kind == kindInbound,
		Kind:        c.kind.String(),
		InStasis:    c.inStasis,
		Originator:  c.originator,
		Formats:     c.formats,
		SampleRate:  rate,
		Continued:   c.continued,
		Vars:        vars,
		Gone:        c.gone,
		HangupCause: c.cause,
	}
	if c.inStasis {
		ci.App = c.app
	}
	if c.bridge != nil {
		ci.Bridge = c.bridge.id
		ci.MusicOnHold = c.bridge.moh
	}
	ci.MusicOnHold = ci.MusicOnHold || c.moh
	return ci
}

func (s *Server) setStateLocked(c *channel, state string) {
	if c.snap.State == state {
		return
	}
	c.snap.State = state
	if state == "Up" && c.caller != nil {
		c.caller.answered = true
	}
	s.chanEventLocked(c, "ChannelStateChange", nil, c.post())
}

func (s *Server) setVarLocked(c *channel, name, value string) {
	c.vars[name] = value
	s.chanEventLocked(c, "ChannelVarset", []kv{{"variable", name}, {"value", value}}, c.post())
}

// enterStasisLocked puts the channel into the application and sends StasisStart.
func (s *Server) enterStasisLocked(c *channel, appName string, args []string) {
	if args == nil {
		args = []string{}
	}
	c.app = appName
	c.inStasis = true
	c.subs[appName]++
	s.chanEventLocked(c, "StasisStart", nil, []kv{{"args", args}, {"channel", c.snap}})
}

// leaveStasisLocked sends StasisEnd and drops the Stasis subscription.
func (s *Server) leaveStasisLocked(c *channel) {
	if !c.inStasis {
		return
	}
	s.chanEventLocked(c, "StasisEnd", nil, c.post())
	c.inStasis = false
	c.subs[c.app]--
}

func (c *channel) subscribed() bool {
	for _, n := range c.subs {
		if n > 0 {
			return true
		}
	}
	return false
}

// hangup describes how a channel goes away.
type hangup struct {
	noRequest bool // no ChannelHangupRequest (e.g. an unanswered originate leg)
	reqCause  int  // cause in ChannelHangupRequest
	soft      bool // soft hangup (ARI DELETE, dial timeout)
	cause     int  // hangup cause reported by ChannelDestroyed
}

// hangupLocked tears a channel down with the event sequence of Asterisk 20:
// ChannelHangupRequest, the end of its playback or recording, leaving its
// bridge, StasisEnd, then, for applications still subscribed to the channel
// (channels they created, or originators of /channels/create),
// STASISSTATUS and ChannelDestroyed.
func (s *Server) hangupLocked(c *channel, h hangup) {
	if c.gone || c.hangingUp {
		return
	}
	c.hangingUp = true
	c.cause = h.cause
	c.stopTimersLocked()
	if !h.noRequest {
		pre := []kv{{"cause", h.reqCause}}
		if h.soft {
			pre = append(pre, kv{"soft", true})
		}
		s.chanEventLocked(c, "ChannelHangupRequest", pre, c.post())
	}
	ops, running := c.q.drain()
	for i, op := range ops {
		op.abort(i == 0 && running)
	}
	if c.bridge != nil {
		s.leaveBridgeLocked(c, c.bridge)
	}
	wasInStasis := c.inStasis
	s.leaveStasisLocked(c)
	if c.subscribed() {
		if wasInStasis {
			s.setVarLocked(c, "STASISSTATUS", "SUCCESS")
		}
		if c.kind == kindInbound {
			// The dialplan hangs the inbound leg up once Stasis() returns.
			s.chanEventLocked(c, "ChannelHangupRequest", []kv{{"cause", c.cause}, {"soft", true}}, c.post())
		}
		c.snap.Dialplan.AppName, c.snap.Dialplan.AppData = "", ""
		s.chanEventLocked(c, "ChannelDestroyed", nil, []kv{{"cause", c.cause}, {"cause_txt", causeTxt(c.cause)}, {"channel", c.snap}})
	} else {
		c.snap.Dialplan.AppName, c.snap.Dialplan.AppData = "", ""
	}
	delete(s.channels, c.id())
	c.markGoneLocked()
	s.logf("channel %s (%s) gone, cause %d", c.id(), c.snap.Name, c.cause)
}

func (c *channel) alive() bool { return !c.gone && !c.hangingUp }

// opQueue is a control queue: Asterisk runs a channel's playbacks,
// recordings and /continue one after the other, in request order.
type opQueue struct {
	ops     []mediaOp
	running bool
	pumping bool
}

func (q *opQueue) push(op mediaOp, alive func() bool) {
	q.ops = append(q.ops, op)
	q.pump(alive)
}

func (q *opQueue) pump(alive func() bool) {
	if q.pumping {
		return
	}
	q.pumping = true
	defer func() { q.pumping = false }()
	for !q.running && len(q.ops) > 0 && alive() {
		q.running = true
		q.ops[0].start()
	}
}

// done removes a finished command and starts the next one.
func (q *opQueue) done(op mediaOp, alive func() bool) {
	if len(q.ops) > 0 && q.ops[0] == op && q.running {
		q.ops = q.ops[1:]
		q.running = false
	} else {
		for i, o := range q.ops {
			if o == op {
				q.ops = append(q.ops[:i:i], q.ops[i+1:]...)
				break
			}
		}
	}
	q.pump(alive)
}

func (q *opQueue) drain() ([]mediaOp, bool) {
	ops, running := q.ops, q.running
	q.ops, q.running = nil, false
	return ops, running
}

// variable returns a channel variable or dialplan function value.
func (c *channel) variable(name string) (string, bool, bool) {
	up := strings.ToUpper(name)
	switch up {
	case "CALLERID(NUM)":
		return c.snap.Caller.Number, true, true
	case "CALLERID(NAME)":
		return c.snap.Caller.Name, true, true
	case "CALLERID(ALL)":
		if c.snap.Caller.Name == "" {
			return "<" + c.snap.Caller.Number + ">", true, true
		}
		return fmt.Sprintf("\"%s\" <%s>", c.snap.Caller.Name, c.snap.Caller.Number), true, true
	case "CONNECTEDLINE(NUM)":
		return c.snap.Connected.Number, true, true
	case "CONNECTEDLINE(NAME)":
		return c.snap.Connected.Name, true, true
	case "CHANNEL(NAME)":
		return c.snap.Name, true, true
	case "CHANNEL(UNIQUEID)", "UNIQUEID":
		return c.snap.ID, true, true
	case "CHANNEL(LANGUAGE)":
		return c.snap.Language, true, true
	case "CHANNEL(STATE)":
		return c.snap.State, true, true
	case "EXTEN":
		return c.snap.Dialplan.Exten, true, true
	case "CONTEXT":
		return c.snap.Dialplan.Context, true, true
	}
	if strings.Contains(name, "(") {
		return "", false, false
	}
	v, ok := c.vars[name]
	return v, ok, true
}

// parseCallerID splits `"Name" <number>` like ast_callerid_parse.
func parseCallerID(s string) (name, num string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ""
	}
	if i := strings.LastIndex(s, "<"); i >= 0 {
		if j := strings.Index(s[i:], ">"); j > 0 {
			num = strings.TrimSpace(s[i+1 : i+j])
			name = strings.TrimSpace(s[:i])
			name = strings.Trim(name, "\"")
			return strings.TrimSpace(name), num
		}
	}
	isNum := true
	for _, r := range s {
		if !strings.ContainsRune("0123456789+*#-() .", r) {
			isNum = false
			break
		}
	}
	if isNum {
		return "", strings.NewReplacer("-", "", "(", "", ")", "", " ", "", ".", "").Replace(s)
	}
	return strings.Trim(s, "\""), ""
}
