package aritest

import (
	"fmt"
	"strings"
	"time"
)

// AgentMode is how the far end of an agent leg reacts when dialled.
type AgentMode int

const (
	// AgentAnswer rings for RingFor, then answers.
	AgentAnswer AgentMode = iota
	// AgentNoAnswer rings forever.
	AgentNoAnswer
	// AgentBusy rejects the call as busy (cause 17).
	AgentBusy
	// AgentCongestion rejects the call with congestion (cause 34).
	AgentCongestion
)

// AgentBehavior scripts an agent endpoint.
type AgentBehavior struct {
	Mode AgentMode
	// RingFor is how long the agent's phone rings before it answers
	// (AgentAnswer) or rejects the call (AgentBusy, AgentCongestion).
	RingFor time.Duration
	// HangupAfter: after answering, the agent hangs up after this long (0:
	// stays until the other side hangs up). For AgentBusy and
	// AgentCongestion, how long the leg lingers after the rejection before
	// it is hung up (the Busy()/Congestion() tone).
	HangupAfter time.Duration
	// Keys are DTMF the agent presses KeysAfter its answer, e.g. "1" to
	// accept a whispered call.
	Keys      string
	KeysAfter time.Duration
}

// splitEndpoint splits "tech/resource" as ARI does.
func splitEndpoint(ep string) (tech, resource string, ok bool) {
	tech, resource, found := strings.Cut(ep, "/")
	if !found || tech == "" || resource == "" {
		return "", "", false
	}
	return tech, resource, true
}

// newAgentChannelLocked allocates the channel of an agent leg, named and
// located in the dialplan like the channel driver would.
func (s *Server) newAgentChannelLocked(kind chanKind, endpoint, id string, b AgentBehavior) *channel {
	tech, res, _ := splitEndpoint(endpoint)
	c := s.newChannelLocked(kind, id)
	c.endpoint = endpoint
	c.agent = b
	c.hasAgent = true
	c.tech = tech
	c.dialstring = res
	c.snap.State = "Down"
	seq := s.nextNameSeqLocked()
	if strings.EqualFold(tech, "Local") {
		target, _, _ := strings.Cut(res, "/")
		exten, ctx, found := strings.Cut(target, "@")
		if !found {
			ctx = "default"
		}
		c.snap.Name = fmt.Sprintf("Local/%s-%08x;1", target, seq)
		c.snap.Dialplan = dialplanCEP{Context: ctx, Exten: exten, Priority: 1}
	} else {
		base := res
		if _, host, found := strings.Cut(res, "@"); found {
			base = host
		}
		if i := strings.IndexAny(base, "/:;"); i >= 0 {
			base = base[:i]
		}
		c.snap.Name = fmt.Sprintf("%s/%s-%08x", tech, base, seq)
		c.snap.Dialplan = dialplanCEP{Context: "default", Exten: "s", Priority: 1}
	}
	return c
}

func splitAppArgs(appArgs string) []string {
	if appArgs == "" {
		return []string{}
	}
	return strings.Split(appArgs, ",")
}

// createdEnterStasisLocked runs Stasis() on a channel made by
// /channels/create, as the channel thread Asterisk starts for it does.
func (s *Server) createdEnterStasisLocked(c *channel, appName, appArgs string) {
	if !c.alive() {
		return
	}
	if appName == "" || !s.appActiveLocked(appName) {
		// Stasis() fails and the channel thread hangs the channel up.
		s.hangupLocked(c, hangup{noRequest: true, cause: 16})
		return
	}
	appData := appName
	if appArgs != "" {
		appData += "," + appArgs
	}
	c.snap.Dialplan.AppName, c.snap.Dialplan.AppData = "Stasis", appData
	s.chanEventLocked(c, "ChannelDialplan", nil, []kv{{"dialplan_app", "Stasis"}, {"dialplan_app_data", appData}, {"channel", c.snap}})
	s.setVarLocked(c, "STASISSTATUS", "")
	s.enterStasisLocked(c, appName, splitAppArgs(appArgs))
}

func (s *Server) dialEventLocked(c *channel, status, dialstring string) {
	s.chanEventLocked(c, "Dial", nil, []kv{
		{"dialstatus", status},
		{"forward", ""},
		{"dialstring", dialstring},
		{"peer", c.snap},
	})
}

// dialLocked is POST /channels/{id}/dial on an agent leg.
func (s *Server) dialLocked(c *channel, caller *channel, timeoutSec int) {
	c.dialed = true
	if caller != nil {
		c.snap.Connected = caller.snap.Caller
		c.snap.Language = caller.snap.Language
		s.chanEventLocked(c, "ChannelConnectedLine", nil, c.post())
	}
	s.dialEventLocked(c, "", c.dialstring)
	if timeoutSec > 0 {
		// No Dial NOANSWER on timeout: the leg is soft-hung-up with cause 19.
		c.afterLocked(s.sim(time.Duration(timeoutSec)*time.Second), func() {
			if c.snap.State != "Up" {
				s.hangupLocked(c, hangup{reqCause: 32, soft: true, cause: 19})
			}
		})
	}
	s.runAgentLocked(c, false)
}

// runAgentLocked plays the agent's script once its leg is called.
// Originated legs repeat the dialstring in every Dial event; /dial'ed
// legs only in the first.
func (s *Server) runAgentLocked(c *channel, originated bool) {
	b := c.agent
	ds := ""
	if originated {
		ds = c.dialstring
	}
	ring := func() {
		s.setStateLocked(c, "Ringing")
		s.dialEventLocked(c, "RINGING", ds)
	}
	switch b.Mode {
	case AgentAnswer:
		ring()
		c.afterLocked(s.sim(b.RingFor), func() { s.agentAnswerLocked(c, originated) })
	case AgentNoAnswer:
		ring()
	case AgentBusy, AgentCongestion:
		status, cause := "BUSY", 17
		if b.Mode == AgentCongestion {
			status, cause = "CONGESTION", 34
		}
		reject := func() {
			s.dialEventLocked(c, status, ds)
			if originated {
				// The dialling thread destroys the unanswered leg; a Local
				// leg reports no cause of its own.
				destroy := cause
				if strings.EqualFold(c.tech, "Local") {
					destroy = 0
				}
				s.hangupLocked(c, hangup{noRequest: true, cause: destroy})
				return
			}
			c.afterLocked(s.sim(b.HangupAfter), func() {
				s.hangupLocked(c, hangup{reqCause: cause, cause: cause})
			})
		}
		if b.RingFor > 0 {
			ring()
			c.afterLocked(s.sim(b.RingFor), reject)
		} else {
			reject()
		}
	}
}

func (s *Server) agentAnswerLocked(c *channel, originated bool) {
	if !c.alive() {
		return
	}
	s.setStateLocked(c, "Up")
	ds := ""
	if originated {
		ds = c.dialstring
	}
	s.dialEventLocked(c, "ANSWER", ds)
	if originated {
		o := c.orig
		if o.app != "" {
			if !s.appActiveLocked(o.app) {
				s.hangupLocked(c, hangup{noRequest: true, cause: 16})
				return
			}
			appData := o.app
			if o.appArgs != "" {
				appData += "," + o.appArgs
			}
			s.setVarLocked(c, "STASISSTATUS", "")
			c.snap.Dialplan.AppName, c.snap.Dialplan.AppData = "Stasis", appData
			s.enterStasisLocked(c, o.app, splitAppArgs(o.appArgs))
		} else {
			c.snap.Dialplan = dialplanCEP{Context: o.context, Exten: o.exten, Priority: int64(o.priority)}
		}
	}
	b := c.agent
	if b.Keys != "" {
		c.afterLocked(s.sim(b.KeysAfter), func() { s.pressLocked(c, b.Keys, 100) })
	}
	if b.HangupAfter > 0 {
		c.afterLocked(s.sim(b.HangupAfter), func() {
			s.hangupLocked(c, hangup{reqCause: 16, cause: 16})
		})
	}
}

// origination remembers where an originated leg goes once answered.
type origination struct {
	app      string
	appArgs  string
	context  string
	exten    string
	priority int
}

// originateLocked dials an originated leg: Dial events, then StasisStart
// only when the far end answers.
func (s *Server) originateLocked(c *channel, timeoutSec int) {
	s.dialEventLocked(c, "", c.dialstring)
	if timeoutSec == 0 {
		timeoutSec = 30
	}
	if timeoutSec > 0 {
		c.afterLocked(s.sim(time.Duration(timeoutSec)*time.Second), func() {
			if c.snap.State != "Up" {
				s.hangupLocked(c, hangup{noRequest: true, cause: 19})
			}
		})
	}
	s.runAgentLocked(c, true)
}
