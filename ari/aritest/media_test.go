package aritest

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func answeredCall(t *testing.T, s *Server, c *client, st *stream, spec CallSpec) *Caller {
	t.Helper()
	cl := placeCall(t, s, st, spec)
	if r := c.do("POST", "/channels/"+cl.ID()+"/answer", nil, nil); r.status != 204 {
		t.Fatalf("answer %d", r.status)
	}
	st.next("ChannelStateChange", onChannel(cl.ID()))
	return cl
}

// playbackEvents returns "Type media state" for each event of a playback.
func playbackEvents(evs []map[string]any, id string) []string {
	var out []string
	for _, ev := range evs {
		if str(field(ev, "playback", "id")) == id {
			out = append(out, str(ev["type"])+" "+str(field(ev, "playback", "media_uri"))+" "+str(field(ev, "playback", "state")))
		}
	}
	return out
}

func waitPlayback(t *testing.T, st *stream, id string, want []string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		got := playbackEvents(st.all(), id)
		if equal(got, want) {
			return
		}
		if len(got) > len(want) || time.Now().After(deadline) {
			t.Fatalf("playback %s:\n got  %q\n want %q", id, got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestPlayback(t *testing.T) {
	cases := []struct {
		name   string
		params []string
		body   map[string]any
		want   []string
		// stop the playback once it started
		stop       bool
		noFinished bool
	}{
		{"one prompt plays to the end", []string{"media", "sound:hello-world"}, nil,
			[]string{"PlaybackStarted sound:hello-world playing", "PlaybackFinished sound:hello-world done"}, false, false},
		{"comma separated media continue", []string{"media", "digits:42,sound:vm-goodbye"}, nil,
			[]string{"PlaybackStarted digits:42 playing", "PlaybackContinuing digits:42 continuing",
				"PlaybackStarted sound:vm-goodbye playing", "PlaybackFinished sound:vm-goodbye done"}, false, false},
		{"repeated media parameters", []string{"media", "number:42", "media", "sound:vm-goodbye"}, nil,
			[]string{"PlaybackStarted number:42 playing", "PlaybackContinuing number:42 continuing",
				"PlaybackStarted sound:vm-goodbye playing", "PlaybackFinished sound:vm-goodbye done"}, false, false},
		{"media in a JSON body", nil, map[string]any{"media": []string{"sound:a", "sound:b"}},
			[]string{"PlaybackStarted sound:a playing", "PlaybackContinuing sound:a continuing",
				"PlaybackStarted sound:b playing", "PlaybackFinished sound:b done"}, false, false},
		{"missing file fails", []string{"media", "sound:no-such-file"}, nil,
			[]string{"PlaybackStarted sound:no-such-file playing", "PlaybackFinished sound:no-such-file failed"}, false, false},
		{"missing file then a good one", []string{"media", "sound:no-such-file,sound:b"}, nil,
			[]string{"PlaybackStarted sound:no-such-file playing", "PlaybackContinuing sound:no-such-file continuing",
				"PlaybackStarted sound:b playing", "PlaybackFinished sound:b done"}, false, false},
		{"a bad scheme starts and never finishes", []string{"media", "badscheme:foo"}, nil,
			[]string{"PlaybackStarted badscheme:foo playing"}, false, true},
		{"a missing recording starts and never finishes", []string{"media", "recording:nope"}, nil,
			[]string{"PlaybackStarted recording:nope playing"}, false, true},
		{"stopped prompt finishes done", []string{"media", "sound:long"}, nil,
			[]string{"PlaybackStarted sound:long playing", "PlaybackFinished sound:long done"}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c, st := setup(t, Options{MissingMedia: []string{"sound:no-such-file"}, MediaDurations: map[string]time.Duration{"sound:long": time.Hour}})
			cl := answeredCall(t, s, c, st, CallSpec{})
			r := c.do("POST", "/channels/"+cl.ID()+"/play", vals(tc.params...), tc.body)
			if r.status != 201 || r.obj()["state"] != "queued" {
				t.Fatalf("play: %d %s", r.status, r.body)
			}
			if loc := r.header.Get("Location"); loc != "/ari/playbacks/"+str(r.obj()["id"]) {
				t.Errorf("Location %q", loc)
			}
			id := str(r.obj()["id"])
			if tc.stop {
				st.next("PlaybackStarted", nil)
				if r := c.do("DELETE", "/playbacks/"+id, nil, nil); r.status != 204 {
					t.Fatalf("stop: %d", r.status)
				}
			}
			waitPlayback(t, st, id, tc.want)
			if tc.noFinished {
				for _, ev := range st.eventsDuring(50 * time.Millisecond) {
					t.Errorf("unexpected %s", evSummary(ev))
				}
			}
			if r := c.do("GET", "/playbacks/"+id, nil, nil); r.status != 404 {
				t.Errorf("playback still known after it ended: %d %s", r.status, r.body)
			}
			if got := cl.Heard(); len(got) == 0 {
				t.Errorf("Heard() empty")
			}
		})
	}
}

func TestPlaybackQueueAndControl(t *testing.T) {
	s, c, st := setup(t, Options{MediaDurations: map[string]time.Duration{"sound:long": time.Hour}})
	cl := answeredCall(t, s, c, st, CallSpec{})
	first := str(c.do("POST", "/channels/"+cl.ID()+"/play/first", vals("media", "sound:long"), nil).obj()["id"])
	second := c.do("POST", "/channels/"+cl.ID()+"/play", vals("media", "sound:next", "playbackId", "second"), nil).obj()
	if first != "first" || second["id"] != "second" {
		t.Fatalf("client ids: %q %v", first, second["id"])
	}
	if r := c.do("GET", "/playbacks/second", nil, nil); r.obj()["state"] != "queued" {
		t.Fatalf("second should wait behind the first: %s", r.body)
	}
	if r := c.do("GET", "/playbacks/first", nil, nil); r.obj()["state"] != "playing" {
		t.Fatalf("first: %s", r.body)
	}
	if r := c.do("POST", "/playbacks/first/control", vals("operation", "jump"), nil); r.status != 400 {
		t.Errorf("bad operation: %d", r.status)
	}
	if r := c.do("POST", "/playbacks/first/control", vals("operation", "pause"), nil); r.status != 204 {
		t.Errorf("pause: %d", r.status)
	}
	if r := c.do("POST", "/playbacks/second/control", vals("operation", "pause"), nil); r.status != 409 {
		t.Errorf("pause a queued playback: %d", r.status)
	}
	c.do("DELETE", "/playbacks/first", nil, nil)
	waitPlayback(t, st, "first", []string{"PlaybackStarted sound:long playing", "PlaybackFinished sound:long done"})
	waitPlayback(t, st, "second", []string{"PlaybackStarted sound:next playing", "PlaybackFinished sound:next done"})
	if err := cl.WaitPlayback(ctxT(t), "sound:long"); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitPlayback(ctxT(t), "sound:next"); err != nil {
		t.Fatal(err)
	}
	if got := cl.Heard(); !equal(got, []string{"sound:long", "sound:next"}) {
		t.Errorf("heard %v", got)
	}
	t.Run("a playback stopped while queued finishes done when its turn comes", func(t *testing.T) {
		c.do("POST", "/channels/"+cl.ID()+"/play/a", vals("media", "sound:long"), nil)
		c.do("POST", "/channels/"+cl.ID()+"/play/b", vals("media", "sound:x"), nil)
		c.do("DELETE", "/playbacks/b", nil, nil)
		c.do("DELETE", "/playbacks/a", nil, nil)
		waitPlayback(t, st, "b", []string{"PlaybackFinished sound:x done"})
	})
	t.Run("a number cannot be stopped", func(t *testing.T) {
		c.do("POST", "/channels/"+cl.ID()+"/play/n", vals("media", "number:42"), nil)
		s.mu.Lock()
		s.opts.MediaDurations["number:42"] = time.Hour
		s.mu.Unlock()
		c.do("POST", "/channels/"+cl.ID()+"/play/n2", vals("media", "number:42"), nil)
		st.next("PlaybackStarted", func(ev map[string]any) bool { return field(ev, "playback", "id") == "n2" })
		if r := c.do("DELETE", "/playbacks/n2", nil, nil); r.status != 500 || r.message() != "Could not stop playback" {
			t.Errorf("stop number: %d %s", r.status, r.body)
		}
	})
}

func TestCallerHangupDuringPlayback(t *testing.T) {
	s, c, st := setup(t, Options{MediaDurations: map[string]time.Duration{"sound:demo-congrats": time.Hour}})
	cl := answeredCall(t, s, c, st, CallSpec{})
	id := str(c.do("POST", "/channels/"+cl.ID()+"/play", vals("media", "sound:demo-congrats"), nil).obj()["id"])
	if err := cl.WaitPlayback(ctxT(t), "sound:demo-congrats"); err != nil {
		t.Fatal(err)
	}
	cl.Hangup()
	st.next("ChannelHangupRequest", nil)
	ev := st.next("PlaybackFinished", nil)
	if field(ev, "playback", "state") != "failed" {
		t.Errorf("state %v", field(ev, "playback", "state"))
	}
	st.next("StasisEnd", nil)
	for _, tc := range []struct{ method, path, media, msg string }{
		{"POST", "/channels/" + cl.ID() + "/play", "sound:x", "Channel not found"},
		{"DELETE", "/channels/" + cl.ID(), "", "Channel not found"},
		{"GET", "/playbacks/" + id, "", "Playback not found"},
	} {
		if r := c.do(tc.method, tc.path, vals("media", tc.media), nil); r.status != 404 || r.message() != tc.msg {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, r.status, r.body)
		}
	}
	if err := cl.WaitPlayback(ctxT(t), "sound:other"); err == nil {
		t.Error("WaitPlayback on a gone call should fail")
	}
}

// wavInfo checks a stored WAV file and returns its length and the number
// of seconds with audible samples.
func wavInfo(t *testing.T, data []byte) (length, audible time.Duration) {
	t.Helper()
	if len(data) < 44 || string(data[0:4]) != "RIFF" || string(data[8:16]) != "WAVEfmt " || string(data[36:40]) != "data" {
		t.Fatalf("not a RIFF WAV: % x", data[:min(len(data), 44)])
	}
	le := binary.LittleEndian
	if le.Uint16(data[20:]) != 1 || le.Uint16(data[22:]) != 1 || le.Uint32(data[24:]) != 8000 || le.Uint16(data[34:]) != 16 {
		t.Fatalf("not 8 kHz 16-bit mono PCM: % x", data[:44])
	}
	n := int(le.Uint32(data[40:]))
	if int(le.Uint32(data[4:])) != 36+n || len(data) != 44+n {
		t.Fatalf("sizes: riff %d data %d file %d", le.Uint32(data[4:]), n, len(data))
	}
	loud := 0
	for i := 44; i+1 < len(data); i += 2 {
		if v := int16(le.Uint16(data[i:])); v > 1000 || v < -1000 {
			loud++
		}
	}
	return time.Duration(n/2) * time.Second / 8000, time.Duration(loud) * time.Second / 8000
}

func TestRecordingEndings(t *testing.T) {
	cases := []struct {
		name   string
		talk   time.Duration
		params []string
		// act ends the recording when it does not end by itself.
		act              func(t *testing.T, c *client, cl *Caller, name string)
		duration         float64
		talking, silence any
		// fileLen and fileLenSlack bound the file's length; a negative
		// slack makes fileLen a lower bound only (the test ends the
		// recording after some wall-clock time).
		fileLen, fileLenSlack time.Duration
		stored                bool
	}{
		{"silence after speech ends it and is trimmed", 950 * time.Millisecond, []string{"maxSilenceSeconds", "2", "beep", "true"}, nil,
			1, 1.0, 0.0, 1150 * time.Millisecond, 25 * time.Millisecond, true},
		{"longer speech", 3 * time.Second, []string{"maxSilenceSeconds", "2"}, nil,
			4, 4.0, 0.0, 3220 * time.Millisecond, 25 * time.Millisecond, true},
		{"a silent caller", -1, []string{"maxSilenceSeconds", "2"}, nil,
			1, 1.0, 0.0, 220 * time.Millisecond, 25 * time.Millisecond, true},
		{"maxDurationSeconds caps it", 10 * time.Second, []string{"maxDurationSeconds", "2"}, nil,
			2, nil, nil, 2 * time.Second, 25 * time.Millisecond, true},
		{"terminateOn # ends it", 10 * time.Second, []string{"terminateOn", "#"}, func(t *testing.T, c *client, cl *Caller, name string) {
			time.Sleep(30 * time.Millisecond)
			cl.Press("#")
		}, 3, nil, nil, 3 * time.Second, -1, true},
		{"stop ends it and keeps the file", 10 * time.Second, nil, func(t *testing.T, c *client, cl *Caller, name string) {
			if r := c.do("POST", "/recordings/live/"+name+"/stop", nil, nil); r.status != 204 {
				t.Errorf("stop %d", r.status)
			}
		}, 0, nil, nil, 0, -1, true},
		{"cancel discards the file", 10 * time.Second, nil, func(t *testing.T, c *client, cl *Caller, name string) {
			if r := c.do("DELETE", "/recordings/live/"+name, nil, nil); r.status != 204 {
				t.Errorf("cancel %d", r.status)
			}
		}, 0, nil, nil, 0, 0, false},
		{"caller hangup ends it and keeps the file", 10 * time.Second, nil, func(t *testing.T, c *client, cl *Caller, name string) {
			cl.Hangup()
		}, 0, nil, nil, 0, -1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c, st := setup(t, Options{})
			cl := answeredCall(t, s, c, st, CallSpec{Talk: tc.talk})
			params := append([]string{"name", "vm-1", "format", "wav"}, tc.params...)
			r := c.do("POST", "/channels/"+cl.ID()+"/record", vals(params...), nil)
			if r.status != 201 || r.obj()["state"] != "queued" || r.obj()["target_uri"] != "channel:"+cl.ID() {
				t.Fatalf("record %d %s", r.status, r.body)
			}
			if name, err := cl.WaitRecording(ctxT(t)); err != nil || name != "vm-1" {
				t.Fatalf("WaitRecording %q %v", name, err)
			}
			st.next("RecordingStarted", nil)
			if r := c.do("GET", "/recordings/live/vm-1", nil, nil); r.obj()["state"] != "recording" {
				t.Errorf("live %s", r.body)
			}
			if tc.act != nil {
				tc.act(t, c, cl, "vm-1")
			}
			ev := st.next("RecordingFinished", nil)
			rec := ev["recording"].(map[string]any)
			if rec["state"] != "done" {
				t.Errorf("state %v", rec["state"])
			}
			if tc.name == "stop ends it and keeps the file" || tc.name == "cancel discards the file" || tc.name == "caller hangup ends it and keeps the file" || tc.name == "terminateOn # ends it" {
				if _, ok := rec["duration"].(float64); !ok {
					t.Errorf("no duration: %v", rec)
				}
			} else if rec["duration"] != tc.duration {
				t.Errorf("duration %v, want %v", rec["duration"], tc.duration)
			}
			if rec["talking_duration"] != tc.talking || rec["silence_duration"] != tc.silence {
				t.Errorf("talking %v silence %v, want %v %v", rec["talking_duration"], rec["silence_duration"], tc.talking, tc.silence)
			}
			if tc.name == "caller hangup ends it and keeps the file" {
				// The recording is finished before the channel leaves Stasis.
				st.next("StasisEnd", nil)
			}
			if r := c.do("GET", "/recordings/live/vm-1", nil, nil); r.status != 404 {
				t.Errorf("live after finish: %d", r.status)
			}
			f := c.do("GET", "/recordings/stored/vm-1/file", nil, nil)
			if !tc.stored {
				if f.status != 404 {
					t.Fatalf("cancelled recording stored: %d", f.status)
				}
				return
			}
			if f.status != 200 || f.header.Get("Content-Type") != "audio/wav" {
				t.Fatalf("file %d %q", f.status, f.header.Get("Content-Type"))
			}
			length, audible := wavInfo(t, f.body)
			if tc.fileLenSlack < 0 {
				if length < tc.fileLen {
					t.Errorf("file length %v, want at least %v", length, tc.fileLen)
				}
			} else if d := length - tc.fileLen; d > tc.fileLenSlack || d < -tc.fileLenSlack {
				t.Errorf("file length %v, want %v±%v", length, tc.fileLen, tc.fileLenSlack)
			}
			if tc.talk > 0 && audible == 0 && length > 0 {
				t.Errorf("no audible content")
			}
			if tc.talk > 0 && audible > length {
				t.Errorf("audible %v > length %v", audible, length)
			}
			if tc.talk < 0 && audible != 0 {
				t.Errorf("a silent caller recorded %v of sound", audible)
			}
			if got := s.StoredRecordings(); !equal(got, []string{"vm-1"}) {
				t.Errorf("stored %v", got)
			}
		})
	}
}

func TestRecordingConflictsAndStorage(t *testing.T) {
	dir := t.TempDir()
	s, c, st := setup(t, Options{RecordingsDir: dir})
	cl := answeredCall(t, s, c, st, CallSpec{})
	rec := func(extra ...string) resp {
		return c.do("POST", "/channels/"+cl.ID()+"/record", vals(append([]string{"name", "dup", "format", "wav"}, extra...)...), nil)
	}
	if r := rec("maxDurationSeconds", "3"); r.status != 201 {
		t.Fatalf("record %d", r.status)
	}
	st.next("RecordingStarted", nil)
	if r := rec(); r.status != 409 || r.message() != "Recording 'dup' already exists and can not be overwritten" {
		t.Errorf("second live: %d %s", r.status, r.body)
	}
	c.do("POST", "/recordings/live/dup/stop", nil, nil)
	st.next("RecordingFinished", nil)
	if r := rec("ifExists", "fail"); r.status != 409 {
		t.Errorf("ifExists=fail on a stored recording: %d", r.status)
	}
	if _, err := os.Stat(filepath.Join(dir, "dup.wav")); err != nil {
		t.Fatalf("file not written in RecordingsDir: %v", err)
	}
	if r := c.do("GET", "/recordings/stored", nil, nil); string(r.body) != `[{"name":"dup","format":"wav"}]` {
		t.Errorf("stored list %s", r.body)
	}
	if r := c.do("POST", "/recordings/stored/dup/copy", vals("destinationRecordingName", "copy"), nil); r.status != 200 {
		t.Errorf("copy %d", r.status)
	}
	if r := c.do("DELETE", "/recordings/stored/dup", nil, nil); r.status != 204 {
		t.Errorf("delete %d", r.status)
	}
	if r := c.do("GET", "/recordings/stored/dup", nil, nil); r.status != 404 {
		t.Errorf("deleted still there: %d", r.status)
	}
	if got := s.StoredRecordings(); !equal(got, []string{"copy"}) {
		t.Errorf("stored %v", got)
	}
	t.Run("playing a recording lasts as long as the file", func(t *testing.T) {
		c.do("POST", "/channels/"+cl.ID()+"/play/pr", vals("media", "recording:copy"), nil)
		waitPlayback(t, st, "pr", []string{"PlaybackStarted recording:copy playing", "PlaybackFinished recording:copy done"})
	})
	t.Run("a channel in a bridge cannot be recorded", func(t *testing.T) {
		b := str(c.do("POST", "/bridges", vals("type", "mixing"), nil).obj()["id"])
		c.do("POST", "/bridges/"+b+"/addChannel", vals("channel", cl.ID()), nil)
		if r := c.do("POST", "/channels/"+cl.ID()+"/record", vals("name", "inbridge", "format", "wav"), nil); r.status != 201 {
			t.Fatalf("record %d %s", r.status, r.body)
		}
		ev := st.next("RecordingFailed", nil)
		if field(ev, "recording", "cause") != "Cannot record channel while in bridge" || field(ev, "recording", "state") != "failed" {
			t.Errorf("failed event %v", ev)
		}
	})
}
