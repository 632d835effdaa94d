package ari

import (
	"bytes"
	"encoding/json"
	"strings"
)

// evKind is the small set of event types a call reacts to. Everything else
// is dropped in the reader before it costs a full decode.
type evKind uint8

const (
	evNone evKind = iota
	evStasisStart
	evStasisEnd
	evDestroyed
	evHangupRequest
	evDTMF
	evStateChange
	evDial
	evPlaybackStarted
	evPlaybackFinished
	evRecordingStarted
	evRecordingFinished
	evRecordingFailed
	evAppReplaced
	// evVanished is made by the reconcile after a reconnect, never by
	// Asterisk: the channel is no longer there.
	evVanished
	// evResync is made by the reconcile for a call whose channel is still
	// there: events of the gap may be lost, so waits check the state.
	evResync
	// evDeviceState is a DeviceStateChanged: no call's, the presence's.
	evDeviceState
)

var kindByType = map[string]evKind{
	"StasisStart":          evStasisStart,
	"StasisEnd":            evStasisEnd,
	"ChannelDestroyed":     evDestroyed,
	"ChannelHangupRequest": evHangupRequest,
	"ChannelDtmfReceived":  evDTMF,
	"ChannelStateChange":   evStateChange,
	"Dial":                 evDial,
	"PlaybackStarted":      evPlaybackStarted,
	"PlaybackFinished":     evPlaybackFinished,
	"RecordingStarted":     evRecordingStarted,
	"RecordingFinished":    evRecordingFinished,
	"RecordingFailed":      evRecordingFailed,
	"ApplicationReplaced":  evAppReplaced,
	"DeviceStateChanged":   evDeviceState,
}

// filterTypes are the event types asked for with the application's event
// filter; the same set the reader decodes.
func filterTypes() []string {
	out := make([]string, 0, len(kindByType))
	for t := range kindByType {
		out = append(out, t)
	}
	return out
}

func (k evKind) String() string {
	for t, kk := range kindByType {
		if kk == k {
			return t
		}
	}
	switch k {
	case evVanished:
		return "Vanished"
	case evResync:
		return "Resync"
	}
	return "none"
}

// event is what a call's queue holds: only the fields a call acts on, so a
// queued event costs a few dozen bytes.
type event struct {
	kind  evKind
	soft  bool
	cause int32
	dur   int32  // recording duration, seconds
	id    string // channel id (peer for Dial), or the bridge/channel a playback/recording targets
	ref   string // playback id or recording name
	state string // dial status, playback/recording state, channel state, digit
}

type wireCallerID struct {
	Name   string `json:"name"`
	Number string `json:"number"`
}

type wireChannel struct {
	ID       string       `json:"id"`
	Name     string       `json:"name"`
	State    string       `json:"state"`
	Caller   wireCallerID `json:"caller"`
	Dialplan struct {
		Context string `json:"context"`
		Exten   string `json:"exten"`
		AppName string `json:"app_name"`
		AppData string `json:"app_data"`
	} `json:"dialplan"`
}

// wireEvent is the union of the fields used from every event type, decoded
// in one pass (ari/v6's DecodeEvent decodes twice into larger structs).
type wireEvent struct {
	Type        string      `json:"type"`
	Application string      `json:"application"`
	Channel     wireChannel `json:"channel"`
	Peer        struct {
		ID string `json:"id"`
	} `json:"peer"`
	Args       []string `json:"args"`
	Digit      string   `json:"digit"`
	Dialstatus string   `json:"dialstatus"`
	Cause      int      `json:"cause"`
	Soft       bool     `json:"soft"`
	Playback   struct {
		ID        string `json:"id"`
		State     string `json:"state"`
		TargetURI string `json:"target_uri"`
	} `json:"playback"`
	Recording struct {
		Name      string `json:"name"`
		State     string `json:"state"`
		TargetURI string `json:"target_uri"`
		Cause     string `json:"cause"`
		Duration  int    `json:"duration"`
	} `json:"recording"`
}

var typeKey = []byte(`"type":"`)

// peekKind finds the event type without decoding the event. Asterisk's
// event objects carry no nested "type" key, so the first one is the event's.
func peekKind(b []byte) evKind {
	i := bytes.Index(b, typeKey)
	if i < 0 {
		return evNone
	}
	b = b[i+len(typeKey):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return evNone
	}
	return kindByType[string(b[:j])] // no allocation for a map lookup
}

// unmarshalWire decodes an event the scanner gave up on; w is reused by
// the reader, so it is cleared first.
func unmarshalWire(b []byte, w *wireEvent) error {
	*w = wireEvent{}
	return json.Unmarshal(b, w)
}

// targetID turns "channel:ID" or "bridge:ID" into ID.
func targetID(uri string) string {
	if i := strings.IndexByte(uri, ':'); i >= 0 {
		return uri[i+1:]
	}
	return uri
}
