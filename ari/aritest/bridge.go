package aritest

import (
	"fmt"
	"strings"
	"time"
)

// bridgeJSON is the ARI Bridge model, fields in Asterisk's order.
type bridgeJSON struct {
	ID           string   `json:"id"`
	Technology   string   `json:"technology"`
	BridgeType   string   `json:"bridge_type"`
	BridgeClass  string   `json:"bridge_class"`
	Creator      string   `json:"creator"`
	Name         string   `json:"name"`
	Channels     []string `json:"channels"`
	Creationtime string   `json:"creationtime"`
	VideoMode    string   `json:"video_mode"`
}

type bridge struct {
	s         *Server
	id        string
	name      string
	typ       string
	created   string
	members   []*channel
	subs      map[string]int
	moh       bool
	announcer string
	recs      []*recording
	q         opQueue
	lat       *latTracker
	gone      bool
}

func (b *bridge) alive() bool { return !b.gone }

func (b *bridge) json() bridgeJSON {
	j := bridgeJSON{
		ID:           b.id,
		Technology:   "simple_bridge",
		BridgeType:   "mixing",
		BridgeClass:  "stasis",
		Creator:      "Stasis",
		Name:         b.name,
		Channels:     []string{},
		Creationtime: b.created,
		VideoMode:    "talker",
	}
	for _, m := range b.members {
		j.Channels = append(j.Channels, m.id())
	}
	n := len(b.members)
	if b.moh {
		n++
	}
	if b.typ == "holding" {
		j.Technology, j.BridgeType, j.VideoMode = "holding_bridge", "holding", "none"
	} else if n > 2 {
		j.Technology = "softmix"
	}
	return j
}

// validBridgeType reports whether a comma-separated bridge type is one
// Asterisk accepts, and the main type.
func validBridgeType(t string) (string, bool) {
	if t == "" {
		return "mixing", true
	}
	main := ""
	for _, p := range strings.Split(t, ",") {
		switch strings.TrimSpace(p) {
		case "mixing", "holding":
			if main == "" {
				main = strings.TrimSpace(p)
			}
		case "dtmf_events", "proxy_media", "video_sfu", "video_single", "sdp_label":
		default:
			return "", false
		}
	}
	if main == "" {
		main = "mixing"
	}
	return main, true
}

func (s *Server) newBridgeLocked(id, name, typ string) *bridge {
	b := &bridge{
		s:       s,
		id:      id,
		name:    name,
		typ:     typ,
		created: astTime(time.Now()),
		subs:    map[string]int{},
		lat:     &latTracker{},
	}
	s.bridges[id] = b
	return b
}

// partyNames are the names of everything in the bridge that counts as a
// peer, including the music-on-hold announcer.
func (b *bridge) partyNames() []string {
	var names []string
	for _, m := range b.members {
		names = append(names, m.snap.Name)
	}
	if b.moh {
		names = append(names, b.announcer)
	}
	return names
}

func (s *Server) notifyBridgeLocked(b *bridge) {
	for _, m := range b.members {
		m.notifyLocked()
	}
}

// updatePeersLocked refreshes BRIDGEPEER and, in two-party bridges, the
// connected line of each member, sending events only for changes.
func (s *Server) updatePeersLocked(b *bridge) {
	names := b.partyNames()
	if len(names) < 2 {
		return
	}
	for i, m := range b.members {
		var others []string
		for j, n := range names {
			if j != i {
				others = append(others, n)
			}
		}
		peer := strings.Join(others, ",")
		if m.bridgePeer != peer {
			m.bridgePeer = peer
			s.setVarLocked(m, "BRIDGEPEER", peer)
		}
	}
	if len(names) != 2 {
		return
	}
	for _, m := range b.members {
		var other callerID
		for _, o := range b.members {
			if o != m {
				other = o.snap.Caller
			}
		}
		if m.inhibitCOLP || m.snap.Connected == other {
			continue
		}
		m.snap.Connected = other
		s.chanEventLocked(m, "ChannelConnectedLine", nil, m.post())
	}
}

// enterBridgeLocked adds a channel in Stasis to a bridge. The channel's
// application becomes a subscriber of the bridge, as Asterisk subscribes
// the controlling application when it adds a channel.
func (s *Server) enterBridgeLocked(c *channel, b *bridge, inhibitCOLP bool) {
	if c.bridge == b {
		return
	}
	if s.opts.OnAgentLeg != nil && c.endpoint != "" {
		s.opts.OnAgentLeg(c.endpoint, "bridged")
	}
	if c.bridge != nil {
		s.leaveBridgeLocked(c, c.bridge)
	}
	if c.app != "" && b.subs[c.app] == 0 {
		b.subs[c.app] = 1
	}
	b.members = append(b.members, c)
	c.bridge = b
	c.inhibitCOLP = inhibitCOLP
	s.bridgeEventLocked(b, "ChannelEnteredBridge", []kv{{"bridge", b.json()}, {"channel", c.snap}}, c.lat)
	s.updatePeersLocked(b)
	s.notifyBridgeLocked(b)
	s.logf("channel %s entered bridge %s", c.id(), b.id)
}

// leaveBridgeLocked removes a channel from its bridge.
func (s *Server) leaveBridgeLocked(c *channel, b *bridge) {
	idx := -1
	for i, m := range b.members {
		if m == c {
			idx = i
		}
	}
	if idx < 0 {
		return
	}
	b.members = append(b.members[:idx:idx], b.members[idx+1:]...)
	c.bridge = nil
	if c.bridgePeer != "" {
		c.bridgePeer = ""
		s.setVarLocked(c, "BRIDGEPEER", "")
	}
	s.bridgeEventLocked(b, "ChannelLeftBridge", []kv{{"bridge", b.json()}, {"channel", c.snap}}, c.lat)
	s.updatePeersLocked(b)
	if len(b.members) == 0 {
		// The bridge recorder is a lonely channel: it leaves when alone.
		for _, r := range append([]*recording(nil), b.recs...) {
			s.finishRecordingLocked(r, endHangup)
		}
	}
	s.notifyBridgeLocked(b)
	c.notifyLocked()
	s.logf("channel %s left bridge %s", c.id(), b.id)
}

func (s *Server) destroyBridgeLocked(b *bridge) {
	for _, m := range append([]*channel(nil), b.members...) {
		s.leaveBridgeLocked(m, b)
	}
	b.moh = false
	for _, r := range append([]*recording(nil), b.recs...) {
		s.finishRecordingLocked(r, endHangup)
	}
	b.gone = true
	ops, running := b.q.drain()
	for i, op := range ops {
		op.abort(i == 0 && running)
	}
	s.bridgeEventLocked(b, "BridgeDestroyed", []kv{{"bridge", b.json()}}, nil)
	delete(s.bridges, b.id)
	s.logf("bridge %s destroyed", b.id)
}

func (s *Server) startBridgeMOHLocked(b *bridge) {
	if b.moh {
		return
	}
	b.moh = true
	b.announcer = fmt.Sprintf("Announcer/ARI_MOH-%08x;2", s.nextNameSeqLocked())
	s.updatePeersLocked(b)
}

func (s *Server) stopBridgeMOHLocked(b *bridge) bool {
	if !b.moh {
		return false
	}
	b.moh = false
	b.announcer = ""
	s.updatePeersLocked(b)
	return true
}
