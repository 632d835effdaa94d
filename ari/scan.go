package ari

import "unicode/utf8"

// A scanner for the few fields of an ARI event that calls use. It does not
// allocate: values are slices of the message, valid until the next read.
// Anything it does not expect (an escaped string in a field it keeps, a
// null, a fraction) makes it give up, and the event goes through
// encoding/json instead.

type rawChannel struct {
	id, name, state                  []byte
	callerName, callerNumber         []byte
	context, exten, appName, appData []byte
}

type rawEvent struct {
	kind       evKind
	ch         rawChannel
	peerID     []byte
	args       [][]byte
	digit      []byte
	dialstatus []byte
	cause      int
	soft       bool
	pbID       []byte
	pbState    []byte
	pbTarget   []byte
	recName    []byte
	recState   []byte
	recTarget  []byte
	recDur     int
}

func (r *rawEvent) reset() {
	args := r.args[:0]
	*r = rawEvent{}
	r.args = args
}

// routing returns the id an event is routed by, its playback or recording
// name, and its state (dial status, digit, playback/recording state or
// channel state).
func (r *rawEvent) routing() (id, ref, state []byte) {
	switch r.kind {
	case evDial:
		return r.peerID, nil, r.dialstatus
	case evDTMF:
		return r.ch.id, nil, r.digit
	case evPlaybackStarted, evPlaybackFinished:
		return targetBytes(r.pbTarget), r.pbID, r.pbState
	case evRecordingStarted, evRecordingFinished, evRecordingFailed:
		return targetBytes(r.recTarget), r.recName, r.recState
	}
	return r.ch.id, nil, r.ch.state
}

func targetBytes(uri []byte) []byte {
	for i, c := range uri {
		if c == ':' {
			return uri[i+1:]
		}
	}
	return uri
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) consume(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string; esc reports escapes or invalid UTF-8 in it, which
// only encoding/json decodes faithfully.
func (s *scanner) str() (v []byte, esc, ok bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, false
	}
	s.i++
	start := s.i
	high := false
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v = s.b[start:s.i]
			s.i++
			if high && !esc && !utf8.Valid(v) {
				esc = true
			}
			return v, esc, true
		case c >= 0x80:
			high = true
			s.i++
		case c == '\\':
			esc = true
			s.i += 2
		case c < 0x20:
			return nil, false, false
		default:
			s.i++
		}
	}
	return nil, false, false
}

// into reads a string kept as is; an escaped one is left to encoding/json.
func (s *scanner) into(dst *[]byte) bool {
	v, esc, ok := s.str()
	if !ok || esc {
		return false
	}
	*dst = v
	return true
}

func (s *scanner) int(dst *int) bool {
	s.ws()
	neg := false
	if s.i < len(s.b) && s.b[s.i] == '-' {
		neg = true
		s.i++
	}
	start, n := s.i, 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		n = n*10 + int(s.b[s.i]-'0')
		s.i++
		if s.i-start > 15 {
			return false
		}
	}
	if s.i == start {
		return false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return false
		}
	}
	if neg {
		n = -n
	}
	*dst = n
	return true
}

func (s *scanner) lit(w string) bool {
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

func (s *scanner) bool(dst *bool) bool {
	s.ws()
	switch {
	case s.lit("true"):
		*dst = true
	case s.lit("false"):
		*dst = false
	default:
		return false
	}
	return true
}

// skip passes over any value.
func (s *scanner) skip() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		_, _, ok := s.str()
		return ok
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, _, ok := s.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	default:
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.i > start
			}
			s.i++
		}
		return false
	}
}

// object calls field for each key; field must consume the value.
func (s *scanner) object(field func(key []byte) bool) bool {
	if !s.consume('{') {
		return false
	}
	if s.consume('}') {
		return true
	}
	for {
		k, esc, ok := s.str()
		if !ok || esc || !s.consume(':') || !field(k) {
			return false
		}
		if s.consume(',') {
			continue
		}
		return s.consume('}')
	}
}

func (s *scanner) channel(c *rawChannel) bool {
	return s.object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return s.into(&c.id)
		case "name":
			return s.into(&c.name)
		case "state":
			return s.into(&c.state)
		case "caller":
			return s.object(func(k []byte) bool {
				switch string(k) {
				case "name":
					return s.into(&c.callerName)
				case "number":
					return s.into(&c.callerNumber)
				}
				return s.skip()
			})
		case "dialplan":
			return s.object(func(k []byte) bool {
				switch string(k) {
				case "context":
					return s.into(&c.context)
				case "exten":
					return s.into(&c.exten)
				case "app_name":
					return s.into(&c.appName)
				case "app_data":
					return s.into(&c.appData)
				}
				return s.skip()
			})
		}
		return s.skip()
	})
}

// scanEvent fills r from b; false means "use encoding/json".
func scanEvent(b []byte, r *rawEvent) bool {
	r.reset()
	s := scanner{b: b}
	ok := s.object(func(k []byte) bool {
		switch string(k) {
		case "type":
			v, esc, ok := s.str()
			if !ok || esc {
				return false
			}
			r.kind = kindByType[string(v)]
			return true
		case "channel":
			return s.channel(&r.ch)
		case "peer":
			return s.object(func(k []byte) bool {
				if string(k) == "id" {
					return s.into(&r.peerID)
				}
				return s.skip()
			})
		case "args":
			if !s.consume('[') {
				return false
			}
			if s.consume(']') {
				return true
			}
			for {
				v, esc, ok := s.str()
				if !ok || esc {
					return false
				}
				r.args = append(r.args, v)
				if s.consume(',') {
					continue
				}
				return s.consume(']')
			}
		case "digit":
			return s.into(&r.digit)
		case "dialstatus":
			return s.into(&r.dialstatus)
		case "cause":
			return s.int(&r.cause)
		case "soft":
			return s.bool(&r.soft)
		case "playback":
			return s.object(func(k []byte) bool {
				switch string(k) {
				case "id":
					return s.into(&r.pbID)
				case "state":
					return s.into(&r.pbState)
				case "target_uri":
					return s.into(&r.pbTarget)
				}
				return s.skip()
			})
		case "recording":
			return s.object(func(k []byte) bool {
				switch string(k) {
				case "name":
					return s.into(&r.recName)
				case "state":
					return s.into(&r.recState)
				case "target_uri":
					return s.into(&r.recTarget)
				case "duration":
					return s.int(&r.recDur)
				}
				return s.skip()
			})
		}
		return s.skip()
	})
	s.ws()
	return ok && s.i == len(s.b)
}

// fromWire fills r from an event decoded by encoding/json (the fallback).
func (r *rawEvent) fromWire(w *wireEvent) {
	r.reset()
	b := func(s string) []byte {
		if s == "" {
			return nil
		}
		return []byte(s)
	}
	r.kind = kindByType[w.Type]
	r.ch = rawChannel{
		id: b(w.Channel.ID), name: b(w.Channel.Name), state: b(w.Channel.State),
		callerName: b(w.Channel.Caller.Name), callerNumber: b(w.Channel.Caller.Number),
		context: b(w.Channel.Dialplan.Context), exten: b(w.Channel.Dialplan.Exten),
		appName: b(w.Channel.Dialplan.AppName), appData: b(w.Channel.Dialplan.AppData),
	}
	r.peerID = b(w.Peer.ID)
	for _, a := range w.Args {
		r.args = append(r.args, []byte(a))
	}
	r.digit, r.dialstatus, r.cause, r.soft = b(w.Digit), b(w.Dialstatus), w.Cause, w.Soft
	r.pbID, r.pbState, r.pbTarget = b(w.Playback.ID), b(w.Playback.State), b(w.Playback.TargetURI)
	r.recName, r.recState, r.recTarget, r.recDur = b(w.Recording.Name), b(w.Recording.State), b(w.Recording.TargetURI), w.Recording.Duration
}

// interned holds the short values events repeat, so that most events
// allocate no string at all.
var interned = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{
		"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#", "A", "B", "C", "D",
		"Down", "Rsrved", "OffHook", "Dialing", "Ring", "Ringing", "Up", "Busy", "Dialing Offhook", "Pre-ring", "Unknown",
		"queued", "playing", "continuing", "done", "failed", "canceled", "recording", "paused",
		"", "RINGING", "PROGRESS", "ANSWER", "BUSY", "NOANSWER", "CANCEL", "CONGESTION", "CHANUNAVAIL",
		"DONTCALL", "TORTURE", "INVALIDARGS",
	} {
		m[s] = s
	}
	return m
}()

func intern(b []byte) string {
	if s, ok := interned[string(b)]; ok {
		return s
	}
	return string(b)
}
