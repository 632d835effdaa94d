package ari

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// transcripts holds the traffic captured from a real Asterisk 20 (see its README).
const transcripts = "testdata/transcripts"

// tline is one line of a transcript, the fields these tests read.
type tline struct {
	Kind     string          `json:"kind"`
	App      string          `json:"app"`
	Event    json.RawMessage `json:"event"`
	Method   string          `json:"method"`
	Path     string          `json:"path"`
	Status   int             `json:"status"`
	RespBody json.RawMessage `json:"resp_body"`
}

// transcriptLines returns every line of every transcript.
func transcriptLines(t testing.TB) []tline {
	files, err := filepath.Glob(filepath.Join(transcripts, "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts in %s: %v", transcripts, err)
	}
	var out []tline
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l tline
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, l)
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	return out
}

// transcriptEvents returns the raw events the "callflow" application got
// from the real Asterisk.
func transcriptEvents(t testing.TB) [][]byte {
	var out [][]byte
	for _, l := range transcriptLines(t) {
		if l.Kind == "ws_event" && l.App == "callflow" {
			out = append(out, l.Event)
		}
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

// generic reads an event the plainest way, by the paths of Asterisk 20's
// event models, sharing nothing with the decoders under test.
func generic(t testing.TB, raw []byte) (typ string, ev event, args []string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	at := func(path ...string) any {
		var v any = m
		for _, k := range path {
			o, _ := v.(map[string]any)
			v = o[k]
		}
		return v
	}
	str := func(path ...string) string { s, _ := at(path...).(string); return s }
	num := func(path ...string) int32 { f, _ := at(path...).(float64); return int32(f) }
	target := func(uri string) string {
		_, id, _ := strings.Cut(uri, ":")
		return id
	}
	typ = str("type")
	ev = event{kind: kindByType[typ], cause: num("cause")}
	ev.soft, _ = at("soft").(bool)
	switch typ {
	case "Dial":
		ev.id, ev.state = str("peer", "id"), str("dialstatus")
	case "ChannelDtmfReceived":
		ev.id, ev.state = str("channel", "id"), str("digit")
	case "PlaybackStarted", "PlaybackFinished":
		ev.id, ev.ref, ev.state = target(str("playback", "target_uri")), str("playback", "id"), str("playback", "state")
	case "RecordingStarted", "RecordingFinished", "RecordingFailed":
		ev.id, ev.ref, ev.state = target(str("recording", "target_uri")), str("recording", "name"), str("recording", "state")
		ev.dur = num("recording", "duration")
	default:
		ev.id, ev.state = str("channel", "id"), str("channel", "state")
	}
	if list, ok := at("args").([]any); ok {
		for _, a := range list {
			s, _ := a.(string)
			args = append(args, s)
		}
	}
	return typ, ev, args
}

// The scanner, encoding/json into the wire struct and a generic decode
// agree on every field used for routing, over every event a real
// Asterisk 20 sent.
func TestDecodersAgreeOnEveryTranscriptEvent(t *testing.T) {
	var w wireEvent
	var r rawEvent
	n := 0
	seen := map[evKind]bool{}
	for _, raw := range transcriptEvents(t) {
		typ, want, wantArgs := generic(t, raw)
		if peekKind(raw) != want.kind {
			t.Fatalf("peekKind %v, type %q", peekKind(raw), typ)
		}
		if want.kind == evNone {
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
		if ev != want {
			t.Errorf("%s: decoded %+v, generic %+v", typ, ev, want)
		}
		if ev.kind.String() != typ {
			t.Errorf("kind %v for %s", ev.kind, typ)
		}
		if strings.Join(w.Args, ",") != strings.Join(wantArgs, ",") {
			t.Errorf("args %q, generic %q", w.Args, wantArgs)
		}
		seen[ev.kind] = true
		n++
	}
	if n < 50 {
		t.Fatalf("only %d events checked", n)
	}
	for _, k := range []evKind{evStasisStart, evStasisEnd, evDestroyed, evHangupRequest, evDTMF, evStateChange, evDial,
		evPlaybackStarted, evPlaybackFinished, evRecordingStarted, evRecordingFinished} {
		if !seen[k] {
			t.Errorf("no %v event in the transcripts", k)
		}
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
}
