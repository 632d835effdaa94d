package ari

import (
	"context"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets/call"
)

// Options configure the Stasis application.
type Options struct {
	// URL is the ARI base, e.g. "http://127.0.0.1:8088/ari".
	URL string
	// WebsocketURL is the event socket, e.g. "ws://127.0.0.1:8088/ari/events";
	// derived from URL when empty.
	WebsocketURL string
	// App is the Stasis application name (the first argument of Stasis()).
	App                string
	Username, Password string

	// RequestTimeout bounds every REST request (default 5s).
	RequestTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the reconnect backoff (500ms..10s).
	ReconnectMin, ReconnectMax time.Duration
	// EventFilter asks Asterisk to send only the event types used here,
	// which saves Asterisk CPU.
	EventFilter bool
	// SharedCallIDs warns, at each connection, when Asterisk has no
	// systemname: its channel ids (epoch.sequence) are then the same as
	// another box's, and callflow nodes sharing a database would record
	// two calls under one id.
	SharedCallIDs bool
	// DrainTimeout is how long Shutdown lets calls in progress finish
	// before hanging them up (default 30s).
	DrainTimeout time.Duration
	// MaxCallDuration ends a conversation an earlier process bridged
	// (see orphans.go) once its caller has been in for this long, as the
	// runner ends its own calls (default 4h).
	MaxCallDuration time.Duration
	// NotInService is for the handler to play when it cannot take a call.
	NotInService []call.Media
	// MaxConns caps the REST connections to Asterisk (default 64), which
	// must stay below http.conf's sessionlimit (100 by default).
	MaxConns int
	// StandbyFor is the application of the primary this node stands by
	// for on the same Asterisk ("" for a primary): see standby.go.
	StandbyFor string
	// TakeoverAfter is how long the primary's heartbeat must stand still
	// before the standby takes its calls (default 3s, at least two
	// heartbeats: the primary's HeartbeatInterval must be this node's).
	TakeoverAfter time.Duration
	// HeartbeatInterval is how often this node says it serves its
	// application, and StandbyPoll how often a standby reads its
	// primary's (1s each by default).
	HeartbeatInterval, StandbyPoll time.Duration
	// Node is this node's name, written beside its heartbeat so that its
	// standby knows whose call records a death leaves open.
	Node string
	// PrimaryDead, for a standby, is called once the calls a dead primary
	// left are moved here, with the primary's node name ("" if unknown):
	// the records of the calls it was running and nobody resumed can be
	// closed. It runs in the standby's watch; keep it short.
	PrimaryDead func(ctx context.Context, node string)
	// ConversationOver is called when a conversation an earlier process
	// (or a dead primary) bridged, and this one watched, is over: its
	// channels (the caller's is the call's id) and when it ended.
	ConversationOver func(channels []string, ended time.Time)
	// OnLatency, when set, receives for every request a call makes the time
	// since that call's latest event arrived (benchmarks, the load tool).
	OnLatency func(time.Duration)
	// Devices, when set, are the agents' phones whose Asterisk device
	// states callflow follows (busy on calls it did not place).
	Devices DeviceWatcher

	Logger zerolog.Logger
}

func (o *Options) setDefaults() {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = 500 * time.Millisecond
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = 10 * time.Second
	}
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = o.ReconnectMin
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.MaxCallDuration <= 0 {
		o.MaxCallDuration = 4 * time.Hour
	}
	if o.TakeoverAfter <= 0 {
		o.TakeoverAfter = 3 * time.Second
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = heartbeatEvery
	}
	if o.StandbyPoll <= 0 {
		o.StandbyPoll = standbyPoll
	}
	// A heartbeat between two beats is not a dead one.
	o.TakeoverAfter = max(o.TakeoverAfter, 2*o.HeartbeatInterval)
	if o.MaxConns <= 0 {
		o.MaxConns = 64
	}
	if o.App == "" {
		o.App = "callflow"
	}
	o.URL = strings.TrimRight(o.URL, "/")
	if o.WebsocketURL == "" {
		o.WebsocketURL = deriveWS(o.URL)
	}
}

// deriveWS turns "http://h:8088/ari" into "ws://h:8088/ari/events".
func deriveWS(base string) string {
	switch {
	case strings.HasPrefix(base, "https://"):
		base = "wss://" + strings.TrimPrefix(base, "https://")
	case strings.HasPrefix(base, "http://"):
		base = "ws://" + strings.TrimPrefix(base, "http://")
	}
	return base + "/events"
}

// inbound is what the dialplan and the channel said about a call that
// entered the application.
type inbound struct {
	// Args are the Stasis() arguments after the application name.
	Args []string
	// Exten and Context are where the dialplan was when it ran Stasis().
	Exten, Context string
	// Number and FlowName are the call's route (call.Route).
	Number, FlowName string
	CallerNumber     string
	CallerName       string
	ChannelName      string
	// Resumed is set for an answered caller found in the application
	// after a restart with no call of this process owning it: whatever
	// the flow was doing is lost, so it starts over.
	Resumed bool
}

// route is what the call handler is told of the call.
func (in inbound) route() call.Inbound {
	return call.Inbound{Transport: call.TransportARI, FlowName: in.FlowName, Number: in.Number, Resumed: in.Resumed}
}

// Health is a snapshot of the transport's state.
type Health struct {
	Connected bool
	// Replaced is set once another websocket took the application name
	// over (ApplicationReplaced): two instances share an app name.
	Replaced    bool
	ActiveCalls int
	Reconnects  int
	LastError   string
	// Draining: shutting down, new calls go back to the dialplan.
	Draining bool
	// SystemName is Asterisk's systemname (asterisk.conf), as its
	// /asterisk/info said at the last connection.
	SystemName string
	// App is this node's application; StandbyFor the primary's when this
	// node is a standby.
	App, StandbyFor string
	// PrimaryAlive: the primary's heartbeat moves (a standby only).
	PrimaryAlive bool
	// AdoptedChannels counts the channels taken from a dead primary, in
	// Takeovers times.
	AdoptedChannels, Takeovers int
}

// dialedMarker is the first Stasis argument of the agent legs this process
// creates, so that their StasisStart is never taken for an inbound call.
const dialedMarker = "dialed"

func parseInbound(args []string, exten, context, callerNum, callerName, chanName string) inbound {
	in := inbound{Args: args, Exten: exten, Context: context, CallerNumber: callerNum, CallerName: callerName, ChannelName: chanName}
	in.FlowName, in.Number = call.Route(args, exten)
	return in
}

// DeviceWatcher follows device states: Devices names the devices
// ("PJSIP/1001") to subscribe to on each connect; DeviceState receives
// their state then and on every DeviceStateChanged.
type DeviceWatcher interface {
	Devices(ctx context.Context) []string
	DeviceState(device, state string)
}
