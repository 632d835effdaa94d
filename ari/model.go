package ari

import (
	"encoding/json"
	"fmt"
	"time"
)

// The REST answers the transport reads, as Asterisk 20 writes them (the
// Channel and Bridge models of its ARI specification), only the fields
// used. They are read off the hot path: by the reconcile after a connect.

// channelData is a channel as GET /channels lists it.
type channelData struct {
	wireChannel
	// Created is when Asterisk made the channel: an adopted conversation
	// is ended at MaxCallDuration after it.
	Created ariTime `json:"creationtime"`
}

// bridgeData is a bridge as GET /bridges lists it.
type bridgeData struct {
	ID       string   `json:"id"`
	Creator  string   `json:"creator"`
	Channels []string `json:"channels"`
}

// ariTimeLayout is how Asterisk 20 writes a time ("Date" in its
// specification): "2026-11-21T10:00:00.123+0000". Parsing accepts any
// fraction of a second, or none, and "Z" for UTC.
const ariTimeLayout = "2006-01-02T15:04:05Z0700"

// ariTime is a time as Asterisk writes it; null leaves it zero.
type ariTime struct{ time.Time }

func (t *ariTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("ari: time %s: %w", b, err)
	}
	v, err := time.Parse(ariTimeLayout, s)
	if err != nil {
		return fmt.Errorf("ari: time %q: %w", s, err)
	}
	t.Time = v
	return nil
}
