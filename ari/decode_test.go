package ari

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ariv6 "github.com/CyCoreSystems/ari/v6"
)

// transcripts holds the traffic captured from a real Asterisk 20 (see its README).
const transcripts = "testdata/transcripts"

// transcriptEvents returns the raw events the "callflow" application got
// from the real Asterisk.
func transcriptEvents(t testing.TB) [][]byte {
	files, err := filepath.Glob(filepath.Join(transcripts, "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts in %s: %v", transcripts, err)
	}
	var out [][]byte
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l struct {
				Kind  string          `json:"kind"`
				App   string          `json:"app"`
				Event json.RawMessage `json:"event"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Kind == "ws_event" && l.App == "callflow" {
				out = append(out, l.Event)
			}
		}
		fh.Close()
	}
	return out
}

// decode is the reference: encoding/json into the wire struct.
func decode(b []byte, w *wireEvent) (event, error) {
	if err := unmarshalWire(b, w); err != nil {
		return event{}, err
	}
	ev := event{kind: kindByType[w.Type], cause: int32(w.Cause), soft: w.Soft}
	switch ev.kind {
	case evDial:
		ev.id, ev.state = w.Peer.ID, w.Dialstatus
	case evDTMF:
		ev.id, ev.state = w.Channel.ID, w.Digit
	case evPlaybackStarted, evPlaybackFinished:
		ev.id, ev.ref, ev.state = targetID(w.Playback.TargetURI), w.Playback.ID, w.Playback.State
	case evRecordingStarted, evRecordingFinished, evRecordingFailed:
		ev.id, ev.ref, ev.state = targetID(w.Recording.TargetURI), w.Recording.Name, w.Recording.State
		ev.dur = int32(w.Recording.Duration)
	default:
		ev.id, ev.state = w.Channel.ID, w.Channel.State
	}
	return ev, nil
}

// scanned runs the scanner and builds the same event as decode.
func scanned(b []byte, r *rawEvent) (event, bool) {
	if !scanEvent(b, r) {
		return event{}, false
	}
	id, ref, st := r.routing()
	return event{kind: r.kind, cause: int32(r.cause), soft: r.soft, dur: int32(r.recDur), id: string(id), ref: string(ref), state: intern(st)}, true
}

// sameRaw compares what the scanner kept with encoding/json's view.
func sameRaw(t testing.TB, r *rawEvent, w *wireEvent) {
	t.Helper()
	var f rawEvent
	f.fromWire(w)
	eq := func(name string, a, b []byte) {
		if string(a) != string(b) {
			t.Errorf("%s: scanner %q, json %q", name, a, b)
		}
	}
	eq("channel.id", r.ch.id, f.ch.id)
	eq("channel.name", r.ch.name, f.ch.name)
	eq("channel.state", r.ch.state, f.ch.state)
	eq("caller.name", r.ch.callerName, f.ch.callerName)
	eq("caller.number", r.ch.callerNumber, f.ch.callerNumber)
	eq("dialplan.context", r.ch.context, f.ch.context)
	eq("dialplan.exten", r.ch.exten, f.ch.exten)
	eq("dialplan.app_name", r.ch.appName, f.ch.appName)
	eq("dialplan.app_data", r.ch.appData, f.ch.appData)
	eq("peer.id", r.peerID, f.peerID)
	eq("digit", r.digit, f.digit)
	eq("dialstatus", r.dialstatus, f.dialstatus)
	eq("playback.id", r.pbID, f.pbID)
	eq("playback.state", r.pbState, f.pbState)
	eq("playback.target_uri", r.pbTarget, f.pbTarget)
	eq("recording.name", r.recName, f.recName)
	eq("recording.state", r.recState, f.recState)
	eq("recording.target_uri", r.recTarget, f.recTarget)
	if r.kind != f.kind || r.cause != f.cause || r.soft != f.soft || r.recDur != f.recDur || len(r.args) != len(f.args) {
		t.Errorf("scanner %v %d %v %d %d, json %v %d %v %d %d", r.kind, r.cause, r.soft, r.recDur, len(r.args), f.kind, f.cause, f.soft, f.recDur, len(f.args))
		return
	}
	for i := range r.args {
		eq("args", r.args[i], f.args[i])
	}
}

// Our decoders must agree with ari/v6's model on every field used
// for routing, over everything a real Asterisk 20 sent.
func TestDecodeMatchesTranscripts(t *testing.T) {
	var w wireEvent
	var r rawEvent
	n := 0
	for _, raw := range transcriptEvents(t) {
		lib, err := ariv6.DecodeEvent(raw)
		if err != nil {
			t.Fatalf("ari/v6 cannot decode %s: %v", raw, err)
		}
		if peekKind(raw) == evNone {
			continue
		}
		ev, err := decode(raw, &w)
		if err != nil {
			t.Fatal(err)
		}
		sev, ok := scanned(raw, &r)
		if !ok {
			t.Fatalf("scanner gave up on %s", raw)
		}
		if sev != ev {
			t.Fatalf("scanner %+v, json %+v", sev, ev)
		}
		sameRaw(t, &r, &w)
		if ev.kind.String() != lib.GetType() {
			t.Fatalf("kind %v vs %s", ev.kind, lib.GetType())
		}
		n++
		var id, ref, state string
		switch e := lib.(type) {
		case *ariv6.StasisStart:
			id, state = e.Channel.ID, e.Channel.State
			if strings.Join(w.Args, ",") != strings.Join(e.Args, ",") {
				t.Errorf("args %v vs %v", w.Args, e.Args)
			}
			if e.Channel.Creationtime == nil || e.Channel.Creationtime.Seconds == 0 {
				t.Errorf("creationtime not decoded by ari/v6")
			}
		case *ariv6.StasisEnd:
			id, state = e.Channel.ID, e.Channel.State
		case *ariv6.ChannelDestroyed:
			id, state = e.Channel.ID, e.Channel.State
			if int(ev.cause) != e.Cause {
				t.Errorf("cause %d vs %d", ev.cause, e.Cause)
			}
		case *ariv6.ChannelHangupRequest:
			id, state = e.Channel.ID, e.Channel.State
		case *ariv6.ChannelStateChange:
			id, state = e.Channel.ID, e.Channel.State
		case *ariv6.ChannelDtmfReceived:
			id, state = e.Channel.ID, e.Digit
		case *ariv6.Dial:
			id, state = e.Peer.ID, e.Dialstatus
		case *ariv6.PlaybackStarted:
			id, ref, state = strings.TrimPrefix(e.Playback.TargetURI, "channel:"), e.Playback.ID, e.Playback.State
		case *ariv6.PlaybackFinished:
			id, ref, state = strings.TrimPrefix(e.Playback.TargetURI, "channel:"), e.Playback.ID, e.Playback.State
		case *ariv6.RecordingStarted:
			id, ref, state = strings.TrimPrefix(e.Recording.TargetURI, "channel:"), e.Recording.Name, e.Recording.State
		case *ariv6.RecordingFinished:
			id, ref, state = strings.TrimPrefix(e.Recording.TargetURI, "channel:"), e.Recording.Name, e.Recording.State
			if int(ev.dur) != int(time.Duration(e.Recording.Duration).Seconds()) {
				t.Errorf("duration %d vs %v", ev.dur, e.Recording.Duration)
			}
		default:
			t.Fatalf("unexpected %T", lib)
		}
		if ev.id != id || ev.ref != ref || ev.state != state {
			t.Errorf("%s: got %q %q %q, want %q %q %q", lib.GetType(), ev.id, ev.ref, ev.state, id, ref, state)
		}
	}
	if n < 50 {
		t.Fatalf("only %d events checked", n)
	}
}

// The scanner either agrees with encoding/json or gives up.
func FuzzScanEvent(f *testing.F) {
	for _, raw := range transcriptEvents(f) {
		f.Add(raw)
	}
	f.Add([]byte(`{"type":"ChannelDtmfReceived","digit":"\u0031","channel":{"id":"a\"b"}}`))
	f.Add([]byte(`{"type":"Dial","peer":null,"cause":1.5}`))
	keys := []string{"type", "channel", "id", "name", "state", "caller", "number", "dialplan", "context", "exten", "app_name", "app_data",
		"peer", "args", "digit", "dialstatus", "cause", "soft", "playback", "target_uri", "recording", "duration"}
	f.Fuzz(func(t *testing.T, b []byte) {
		// encoding/json also matches keys case-insensitively; Asterisk
		// never sends such keys.
		lower := bytes.ToLower(b)
		for _, k := range keys {
			q := []byte(`"` + k + `"`)
			if bytes.Count(lower, q) != bytes.Count(b, q) {
				return
			}
		}
		var r rawEvent
		var w wireEvent
		ok := scanEvent(b, &r)
		if err := unmarshalWire(b, &w); err != nil || !ok {
			return
		}
		sameRaw(t, &r, &w)
	})
}

func BenchmarkDecode(b *testing.B) {
	evs := transcriptEvents(b)
	b.Run("scanner", func(b *testing.B) {
		var r rawEvent
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			raw := evs[i%len(evs)]
			if peekKind(raw) != evNone {
				scanEvent(raw, &r)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		var w wireEvent
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			raw := evs[i%len(evs)]
			if peekKind(raw) != evNone {
				_, _ = decode(raw, &w)
			}
		}
	})
	b.Run("ariv6", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			_, _ = ariv6.DecodeEvent(evs[i%len(evs)])
		}
	})
}
