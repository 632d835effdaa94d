package ari

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/applets/call"
	"github.com/callflow/callflow/ari/aritest"
)

// sentBy lists the requests of call c, its id written C; the listings of
// a reconcile, which runs beside the call, are left out.
func sentBy(s *scripted, c *Call) []string {
	var out []string
	for _, r := range s.requests() {
		if !r.is("GET /channels") && !r.is("GET /bridges") && !r.is("GET /applications/*") {
			out = append(out, r.Method+" "+strings.ReplaceAll(r.Path, c.id, "C"))
		}
	}
	return out
}

func checkSent(t *testing.T, s *scripted, c *Call, want []string) {
	t.Helper()
	if got := sentBy(s, c); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// checkErr: want nil is no error, else err must wrap want.
func checkErr(t *testing.T, err, want error) {
	t.Helper()
	if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
		t.Fatalf("err %v, want %v", err, want)
	}
}

// hangupMidPrompt is a caller hanging up during prompt pb, as Asterisk 20
// reports it (testdata/transcripts/caller_hangup_mid_playback.jsonl).
func (s *scripted) hangupMidPrompt(id, pb string) {
	s.mu.Lock()
	s.chans[id].inStasis, s.chans[id].gone = false, true
	s.mu.Unlock()
	s.send("ChannelHangupRequest", map[string]any{"cause": 16, "channel": s.chanJSON(id)})
	s.playback("PlaybackFinished", pb, id, "failed")
	s.send("StasisEnd", map[string]any{"channel": s.chanJSON(id)})
}

func TestPlay(t *testing.T) {
	stopped := func(s *scripted, c *Call, r restReq) reply {
		if r.is("DELETE /playbacks/*") {
			s.playback("PlaybackFinished", r.seg(1), c.id, "done")
		}
		return reply{}
	}
	// pressDuring presses keys once the prompt started; a DELETE stops it.
	pressDuring := func(keys string) func(s *scripted, c *Call, r restReq) reply {
		return func(s *scripted, c *Call, r restReq) reply {
			if r.is("POST /channels/*/play/*") {
				rep := s.play(r)
				s.press(c.id, keys)
				return rep
			}
			return stopped(s, c, r)
		}
	}
	cases := []struct {
		name      string
		media     []call.Media
		barge     string
		script    func(s *scripted, c *Call, r restReq) reply
		tune      func(*guards)
		key       string
		err       error // wrapped, or
		status    int   // an ARI error with this status
		gone      bool  // the caller left
		typeahead string
		media0    string // the media of the play request
		sent      []string
	}{
		{name: "a prompt plays to its end", media: []call.Media{"hello-world"},
			media0: "sound:hello-world", sent: []string{"POST /channels/C/play/C-p1"}},
		{name: "a barge-in key stops the prompt and is typed ahead", media: []call.Media{"sound:menu"}, barge: "1",
			script: pressDuring("1"),
			key:    "1", typeahead: "1", sent: []string{"POST /channels/C/play/C-p1", "DELETE /playbacks/C-p1"}},
		{name: "barge_in = any: every key stops the prompt", media: []call.Media{"sound:menu"}, barge: "any",
			script: pressDuring("#"),
			key:    "#", typeahead: "#", sent: []string{"POST /channels/C/play/C-p1", "DELETE /playbacks/C-p1"}},
		{name: "a key outside barge_in is typed ahead and the prompt plays on", media: []call.Media{"sound:menu"}, barge: "1",
			script: func(s *scripted, c *Call, r restReq) reply {
				rep := s.play(r)
				s.press(c.id, "57")
				s.playback("PlaybackFinished", r.seg(3), c.id, "done")
				return rep
			},
			typeahead: "57", sent: []string{"POST /channels/C/play/C-p1"}},
		{name: "several media are one playback", media: []call.Media{"digits:42", "sound:vm-goodbye", " ", "number:7"},
			media0: "digits:42,sound:vm-goodbye,number:7", sent: []string{"POST /channels/C/play/C-p1"}},
		{name: "a missing file fails the playback", media: []call.Media{"sound:no-such-file"},
			script: func(s *scripted, c *Call, r restReq) reply {
				rep := s.play(r)
				s.playback("PlaybackFinished", r.seg(3), c.id, "failed")
				return rep
			},
			err: ErrPlaybackFailed, sent: []string{"POST /channels/C/play/C-p1"}},
		{name: "an unknown scheme is never sent: Asterisk would never finish it", media: []call.Media{"badscheme:foo"}},
		{name: "an unknown scheme is dropped from a list", media: []call.Media{"sound:ok", "weird:x"},
			media0: "sound:ok", sent: []string{"POST /channels/C/play/C-p1"}},
		{name: "a playback that never starts is stopped by the watchdog", media: []call.Media{"sound:ok"},
			script: func(s *scripted, c *Call, r restReq) reply {
				if r.is("POST /channels/*/play/*") {
					return answered(201, `{"state":"queued"}`)
				}
				return refused(404, "Playback not found")
			},
			tune: func(g *guards) { g.startWatchdog = 10 * time.Millisecond },
			err:  ErrPlaybackFailed, sent: []string{"POST /channels/C/play/C-p1", "DELETE /playbacks/C-p1"}},
		{name: "a playback that never reports its end is stopped at the limit", media: []call.Media{"tone:ring"},
			script: func(s *scripted, c *Call, r restReq) reply {
				if r.is("POST /channels/*/play/*") {
					return s.play(r)
				}
				return stopped(s, c, r)
			},
			tune: func(g *guards) { g.maxPlayback = 10 * time.Millisecond },
			sent: []string{"POST /channels/C/play/C-p1", "DELETE /playbacks/C-p1"}},
		{name: "the caller hangs up mid-prompt", media: []call.Media{"sound:demo-congrats"},
			script: func(s *scripted, c *Call, r restReq) reply {
				rep := s.play(r)
				s.async(func() { s.hangupMidPrompt(c.id, r.seg(3)) })
				return rep
			},
			err: call.ErrHangup, gone: true, sent: []string{"POST /channels/C/play/C-p1"}},
		{name: "the caller's channel is gone when the prompt starts", media: []call.Media{"sound:demo-congrats"},
			script: func(s *scripted, c *Call, r restReq) reply { return refused(404, "Channel not found") },
			err:    call.ErrHangup, sent: []string{"POST /channels/C/play/C-p1"}},
		{name: "a refused play is an error, not a hang-up", media: []call.Media{"sound:x"},
			script: func(s *scripted, c *Call, r restReq) reply { return refused(409, "Channel not in Stasis application") },
			status: 409, sent: []string{"POST /channels/C/play/C-p1"}},
		{name: "a prompt whose end was lost while disconnected is found gone", media: []call.Media{"sound:short"},
			script: func(s *scripted, c *Call, r restReq) reply {
				if rep, ok := s.listing(r); ok {
					return rep
				}
				if r.is("POST /channels/*/play/*") {
					rep := s.play(r)
					s.async(s.reconnected)
					return rep
				}
				return refused(404, "Playback not found")
			},
			// Without the resync only the (shortened) limit would end it.
			tune: func(g *guards) { g.resyncGrace, g.maxPlayback = 10*time.Millisecond, 5*time.Second },
			sent: []string{"POST /channels/C/play/C-p1", "GET /playbacks/C-p1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newScripted(t, nil)
			if tc.tune != nil {
				tc.tune(&s.app.guards)
			}
			c := s.call("Up")
			s.answer = s.basics
			if tc.script != nil {
				s.answer = func(r restReq) reply { return tc.script(s, c, r) }
			}
			key, err := c.Play(context.Background(), call.PlaySpec{Media: tc.media, BargeIn: tc.barge})
			if tc.status != 0 {
				if statusOf(err) != tc.status || errors.Is(err, call.ErrHangup) {
					t.Fatalf("err %v, want an ARI %d", err, tc.status)
				}
			} else {
				checkErr(t, err, tc.err)
			}
			if key != tc.key || string(c.typeahead) != tc.typeahead {
				t.Errorf("key %q, typeahead %q; want %q, %q", key, c.typeahead, tc.key, tc.typeahead)
			}
			s.bg.Wait()     // what Asterisk still had to send
			c.chores.Wait() // what the call sends without waiting (a prompt's stop)
			if c.Gone() != tc.gone {
				t.Errorf("gone %v after %v", c.Gone(), err)
			}
			checkSent(t, s, c, tc.sent)
			if tc.media0 != "" {
				if got := s.sent("POST /channels/*/play/*")[0].Query.Get("media"); got != tc.media0 {
					t.Errorf("media %q, want %q", got, tc.media0)
				}
			}
		})
	}
}

func TestGather(t *testing.T) {
	// prompt scripts the menu prompt: keys before its end, after it, or
	// a barge-in (the prompt stopped by DELETE).
	prompt := func(during, after string, state string) func(s *scripted, c *Call, r restReq) reply {
		return func(s *scripted, c *Call, r restReq) reply {
			switch {
			case r.is("POST /channels/*/play/*"):
				rep := s.play(r)
				s.press(c.id, during)
				if state != "" {
					s.playback("PlaybackFinished", r.seg(3), c.id, state)
					s.press(c.id, after)
				}
				return rep
			case r.is("DELETE /playbacks/*"):
				s.playback("PlaybackFinished", r.seg(1), c.id, "done")
				s.press(c.id, after)
			}
			return reply{}
		}
	}
	menu := []call.Media{"sound:menu"}
	cases := []struct {
		name   string
		ahead  string // typed before the gather
		spec   call.GatherSpec
		script func(s *scripted, c *Call, r restReq) reply
		want   string
		err    error
		left   string // still typed ahead
		plays  int
		stops  int
	}{
		{name: "keys typed ahead skip the prompt", ahead: "42", spec: call.GatherSpec{Prompt: menu, MaxDigits: 2},
			want: "42"},
		{name: "the first key barges into the prompt, the next ones follow", spec: call.GatherSpec{Prompt: menu, MaxDigits: 4, Terminator: "#"},
			script: prompt("7", "8#", ""), want: "78", plays: 1, stops: 1},
		{name: "the terminator ends the input and is not returned", ahead: "12#3", spec: call.GatherSpec{MaxDigits: 5, Terminator: "#"},
			want: "12", left: "3"},
		{name: "max digits ends the input; the rest stays typed ahead", ahead: "12345", spec: call.GatherSpec{MaxDigits: 3},
			want: "123", left: "45"},
		{name: "one key by default", ahead: "98", want: "9", left: "8"},
		{name: "nothing typed is a timeout", spec: call.GatherSpec{FirstTimeout: 10 * time.Millisecond},
			err: call.ErrTimeout},
		{name: "a partial input ends at the inter-digit timeout", ahead: "1", spec: call.GatherSpec{MaxDigits: 4, InterTimeout: 10 * time.Millisecond},
			want: "1"},
		{name: "keys after the prompt's end are read", spec: call.GatherSpec{Prompt: menu, MaxDigits: 2},
			script: prompt("", "34", "done"), want: "34", plays: 1},
		{name: "a broken prompt does not cost the caller the menu", spec: call.GatherSpec{Prompt: []call.Media{"sound:no-such-file"}},
			script: prompt("", "3", "failed"), want: "3", plays: 1},
		{name: "the caller hangs up while the menu waits", spec: call.GatherSpec{Prompt: menu, FirstTimeout: time.Minute},
			script: func(s *scripted, c *Call, r restReq) reply {
				rep := s.playToEnd(r)
				s.async(func() { s.hangup(c.id, 16, false) })
				return rep
			},
			err: call.ErrHangup, plays: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newScripted(t, nil)
			c := s.call("Up")
			s.answer = s.basics
			if tc.script != nil {
				s.answer = func(r restReq) reply { return tc.script(s, c, r) }
			}
			s.press(c.id, tc.ahead)
			got, err := c.Gather(context.Background(), tc.spec)
			checkErr(t, err, tc.err)
			if got != tc.want || string(c.typeahead) != tc.left {
				t.Errorf("got %q, left %q; want %q, %q", got, c.typeahead, tc.want, tc.left)
			}
			if n := len(s.sent("POST /channels/*/play/*")); n != tc.plays {
				t.Errorf("%d prompts played, want %d", n, tc.plays)
			}
			if n := len(s.sent("DELETE /playbacks/*")); n != tc.stops {
				t.Errorf("%d prompts stopped, want %d", n, tc.stops)
			}
		})
	}
}

func TestRecord(t *testing.T) {
	// rec scripts a recording: what happens once it started.
	rec := func(then func(s *scripted, c *Call, name string)) func(s *scripted, c *Call, r restReq) reply {
		return func(s *scripted, c *Call, r restReq) reply {
			switch {
			case r.is("POST /channels/*/record"):
				name := r.Query.Get("name")
				s.recording("RecordingStarted", name, c.id, "recording", 0)
				then(s, c, name)
				return answered(201, fmt.Sprintf(`{"name":%q,"format":"wav","state":"queued","target_uri":"channel:%s"}`, name, c.id))
			case r.is("DELETE /recordings/stored/*"):
				return reply{}
			}
			return s.basics(r)
		}
	}
	finished := func(s *scripted, c *Call, name string, seconds int) {
		s.recording("RecordingFinished", name, c.id, "done", seconds)
	}
	vm := call.RecordSpec{Name: "vm", MaxDuration: 30 * time.Second, MaxSilence: 2 * time.Second, Beep: true, FinishKey: "#"}
	cases := []struct {
		name      string
		spec      call.RecordSpec
		script    func(s *scripted, c *Call, r restReq) reply
		want      call.Recording
		err       error
		typeahead string
		deleted   bool // the stored file is deleted
	}{
		{name: "silence ends the recording", spec: vm,
			script: rec(func(s *scripted, c *Call, name string) { finished(s, c, name, 2) }),
			want:   call.Recording{Name: "vm", Format: "wav", Duration: 2 * time.Second}},
		{name: "the finish key ends the recording and is not typed ahead; other keys are", spec: vm,
			script: rec(func(s *scripted, c *Call, name string) {
				s.press(c.id, "5#")
				finished(s, c, name, 3)
			}),
			want: call.Recording{Name: "vm", Format: "wav", Duration: 3 * time.Second}, typeahead: "5"},
		{name: "a caller who hangs up mid-recording keeps the message", spec: vm,
			script: rec(func(s *scripted, c *Call, name string) {
				s.async(func() {
					s.hangup(c.id, 16, false)
					finished(s, c, name, 4)
				})
			}),
			want: call.Recording{Name: "vm", Format: "wav", Duration: 4 * time.Second}, err: call.ErrHangup},
		{name: "under a second is no message, and its file is deleted", spec: vm,
			script:  rec(func(s *scripted, c *Call, name string) { finished(s, c, name, 0) }),
			want:    call.Recording{Name: "vm", Format: "wav"},
			deleted: true},
		{name: "a hang-up with nothing recorded leaves no message", spec: vm,
			script: rec(func(s *scripted, c *Call, name string) {
				s.hangup(c.id, 16, false)
				finished(s, c, name, 0)
			}),
			err: call.ErrHangup, deleted: true},
		{name: "a recording Asterisk cannot make fails", spec: vm,
			script: rec(func(s *scripted, c *Call, name string) {
				s.recording("RecordingFailed", name, c.id, "failed", 0)
			}),
			err: ErrRecordingFailed},
		{name: "a nameless recording is named after the call", spec: call.RecordSpec{MaxDuration: 5 * time.Second},
			script: rec(func(s *scripted, c *Call, name string) { finished(s, c, name, 1) }),
			want:   call.Recording{Name: "rec-1795237545_51-1", Format: "wav", Duration: time.Second}},
		{name: "a recording whose end was lost while disconnected is found over", spec: vm,
			script: func(s *scripted, c *Call, r restReq) reply {
				if rep, ok := s.listing(r); ok {
					return rep
				}
				if r.is("GET /recordings/live/*") {
					return refused(404, "Recording not found")
				}
				return rec(func(s *scripted, c *Call, name string) { s.async(s.reconnected) })(s, c, r)
			},
			want: call.Recording{Name: "vm", Format: "wav"}},
		{name: "the caller's channel is gone when the recording starts", spec: vm,
			script: func(s *scripted, c *Call, r restReq) reply { return refused(404, "Channel not found") },
			err:    call.ErrHangup},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newScripted(t, nil)
			s.app.guards.resyncGrace = 10 * time.Millisecond
			c := s.call("Up")
			s.answer = func(r restReq) reply { return tc.script(s, c, r) }
			got, err := c.Record(context.Background(), tc.spec)
			checkErr(t, err, tc.err)
			if got != tc.want || string(c.typeahead) != tc.typeahead {
				t.Errorf("got %+v, typeahead %q; want %+v, %q", got, c.typeahead, tc.want, tc.typeahead)
			}
			if tc.deleted {
				s.waitFor("DELETE /recordings/stored/vm")
			}
		})
	}
	t.Run("the request says what the flow asked for", func(t *testing.T) {
		s := newScripted(t, nil)
		c := s.call("Up")
		s.answer = func(r restReq) reply {
			return rec(func(s *scripted, c *Call, name string) { finished(s, c, name, 1) })(s, c, r)
		}
		if _, err := c.Record(context.Background(), vm); err != nil {
			t.Fatal(err)
		}
		q := s.sent("POST /channels/*/record")[0].Query.Encode()
		if want := "beep=true&format=wav&ifExists=overwrite&maxDurationSeconds=30&maxSilenceSeconds=2&name=vm&terminateOn=%23"; q != want {
			t.Errorf("query %s, want %s", q, want)
		}
	})
}

func TestVarsSendAndHangup(t *testing.T) {
	s := newScripted(t, nil)
	c := s.call("Up")
	s.answer = func(r restReq) reply {
		switch {
		case r.is("GET /channels/*/variable") && !s.inStasis(c.id):
			return refused(404, "Channel not found")
		case r.is("GET /channels/*/variable") && r.Query.Get("variable") == "CF_STATE":
			return answered(200, `{"value":"greeting"}`)
		case r.is("GET /channels/*/variable"):
			return refused(404, "Provided variable was not found")
		}
		return s.basics(r)
	}
	ctx := context.Background()
	if err := c.SetVar(ctx, "CF_STATE", "greeting"); err != nil {
		t.Fatal(err)
	}
	v, err := c.Var(ctx, "CF_STATE")
	expect(t, []any{v, err}, "greeting", nil)
	v, err = c.Var(ctx, "CF_UNSET")
	expect(t, []any{v, err}, "", nil)
	if err := c.Send(ctx, call.Message{To: "pjsip:+15551234567@trunk", From: "+15550000000", Body: "hi"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Hangup(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
	// The channel is gone now.
	if err := c.Answer(ctx); !errors.Is(err, call.ErrHangup) {
		t.Errorf("answer after the hang-up: %v", err)
	}
	if _, err := c.Var(ctx, "CF_STATE"); !errors.Is(err, call.ErrHangup) {
		t.Errorf("var after the hang-up: %v", err)
	}
	var got []string
	for _, r := range s.requests() {
		got = append(got, strings.ReplaceAll(r.String(), c.id, "C"))
	}
	want := []string{
		"POST /channels/C/variable?value=greeting&variable=CF_STATE",
		"GET /channels/C/variable?variable=CF_STATE",
		"GET /channels/C/variable?variable=CF_UNSET",
		"PUT /endpoints/sendMessage?body=hi&from=%2B15550000000&to=pjsip%3A%2B15551234567%40trunk",
		"DELETE /channels/C?reason=busy",
		"GET /channels/C/variable?variable=CF_STATE",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestHangupCause(t *testing.T) {
	cases := []struct{ name, cause, query string }{
		{"no cause is normal", "", "reason=normal"},
		{"an ARI reason", "busy", "reason=busy"},
		{"an ARI reason in capitals", "NO_ANSWER", "reason=no_answer"},
		{"a Q.850 code", "17", "reason_code=17"},
		{"anything else is normal", "sideways", "reason=normal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newScripted(t, nil)
			c := s.call("Up")
			s.answer = s.basics
			if err := c.Hangup(context.Background(), tc.cause); err != nil {
				t.Fatal(err)
			}
			if q := s.sent("DELETE /channels/*")[0].Query.Encode(); q != tc.query {
				t.Errorf("query %s, want %s", q, tc.query)
			}
		})
	}
	t.Run("a caller already gone is no error", func(t *testing.T) {
		s := newScripted(t, nil)
		c := s.call("Up")
		s.answer = func(restReq) reply { return refused(404, "Channel not found") }
		if err := c.Hangup(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a refused hang-up is an error", func(t *testing.T) {
		s := newScripted(t, nil)
		c := s.call("Up")
		s.answer = func(restReq) reply { return answered(500, `{"error":"Allocation failed"}`) }
		if err := c.Hangup(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "Allocation failed") {
			t.Fatalf("err %v", err)
		}
		s.answer = s.basics // the call's end hangs up again
	})
}

// A caller who presses keys without end costs the call a bounded inbox
// (maxQueuedKeys) while its goroutine is busy elsewhere, and a bounded
// typeahead (maxTypeahead) while it reads; both keep the first keys.
func TestKeyFloodIsBounded(t *testing.T) {
	const flood = 1000
	keys := func(offset int) string {
		var b strings.Builder
		for i := range flood {
			b.WriteByte("0123456789*#"[(i+offset)%12])
		}
		return b.String()
	}
	first, second := keys(0), keys(5)
	s := newScripted(t, nil)
	c := s.call("Up")
	s.answer = s.basics
	ctx := context.Background()

	// Busy elsewhere (an HTTP look-up, say): nobody reads the events.
	s.press(c.id, first)
	if n := c.q.waitingKeys(); n != maxQueuedKeys {
		t.Fatalf("%d keys queued, want %d", n, maxQueuedKeys)
	}
	c.drain()
	if string(c.typeahead) != first[:maxQueuedKeys] {
		t.Fatalf("typeahead %q", c.typeahead)
	}
	c.typeahead = c.typeahead[:0]

	// Reading events as they come, as every wait does.
	s.async(func() { s.press(c.id, second) })
	for c.Events() < 2*flood {
		if ev, err := c.next(ctx, time.Now().Add(10*time.Millisecond), true, "flood"); err == nil {
			c.common(ev)
		}
	}
	c.drain()
	if string(c.typeahead) != second[:maxTypeahead] {
		t.Fatalf("typeahead %q", c.typeahead)
	}
	g, err := c.Gather(ctx, call.GatherSpec{MaxDigits: 3, FirstTimeout: time.Second})
	expect(t, []any{g, err}, second[:3], nil)
}

// ---- end to end, against aritest's fake Asterisk ----

func TestMenuEndToEnd(t *testing.T) {
	res := newResult()
	h := handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
		defer res.finish()
		res.add(in.Number, in.FlowName, c.Caller(), c.Called())
		if err := c.Answer(ctx); err != nil {
			res.add(err)
			return
		}
		d, err := c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:hello-world"}})
		res.add(d, err)
		g, err := c.Gather(ctx, call.GatherSpec{Prompt: []call.Media{"sound:skipped"}, MaxDigits: 2, FirstTimeout: time.Second})
		res.add(g, err)
		g, err = c.Gather(ctx, call.GatherSpec{Prompt: []call.Media{"sound:menu"}, FirstTimeout: 2 * time.Second})
		res.add(g, err)
		g, err = c.Gather(ctx, call.GatherSpec{MaxDigits: 5, Terminator: "#", FirstTimeout: 2 * time.Second, InterTimeout: time.Second})
		res.add(g, err)
		d, err = c.Play(ctx, call.PlaySpec{Media: []call.Media{"digits:42", "sound:vm-goodbye"}, BargeIn: "any"})
		res.add(d, err)
		g, err = c.Gather(ctx, call.GatherSpec{FirstTimeout: 100 * time.Millisecond})
		res.add(g, errors.Is(err, call.ErrTimeout))
		res.add(c.Hangup(ctx, "normal"))
	})
	fh := startFake(t, aritest.Options{TimeScale: 1, MediaDurations: map[string]time.Duration{
		"sound:hello-world": 300 * time.Millisecond, "sound:menu": 5 * time.Second}}, h, nil)
	caller := fh.call(aritest.CallSpec{Exten: "+15551230001", From: "5551239999", Args: []string{"inbound", "flow=support"}})
	ctx := tctx(t, 10*time.Second)
	if err := caller.WaitPlayback(ctx, "sound:hello-world"); err != nil {
		t.Fatal(err)
	}
	caller.Press("42") // typed ahead during the greeting
	if err := caller.WaitPlayback(ctx, "sound:menu"); err != nil {
		t.Fatal(err)
	}
	caller.Press("1") // barge-in
	time.Sleep(50 * time.Millisecond)
	caller.Press("42#")
	select {
	case <-caller.Done():
	case <-ctx.Done():
		t.Fatal("call not over")
	}
	res.wait(t)
	expect(t, res.get(), "+15551230001", "support", "5551239999", "+15551230001",
		"", nil, "42", nil, "1", nil, "42", nil, "", nil, "", true, nil)
	heard := strings.Join(caller.Heard(), " ")
	if strings.Contains(heard, "skipped") || !strings.Contains(heard, "sound:menu") {
		t.Errorf("heard %s", heard)
	}
	if n := len(fh.requests(func(r aritest.Request) bool {
		return r.Method == "DELETE" && strings.HasPrefix(r.Path, "/ari/playbacks/")
	})); n != 1 {
		t.Errorf("%d playbacks stopped, want 1 (the barged menu)", n)
	}
}

func TestCallerHangsUpMidPlaybackEndToEnd(t *testing.T) {
	res := newResult()
	h := handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		_, err := c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:demo-congrats"}})
		cancelled := false
		select {
		case <-ctx.Done():
			cancelled = true
		case <-time.After(2 * time.Second):
		}
		res.add(errors.Is(err, call.ErrHangup), cancelled)
		_, err = c.Gather(ctx, call.GatherSpec{})
		res.add(errors.Is(err, call.ErrHangup))
	})
	fh := startFake(t, aritest.Options{TimeScale: 1, MediaDurations: map[string]time.Duration{"sound:demo-congrats": 30 * time.Second}}, h, nil)
	caller := fh.call(aritest.CallSpec{Exten: "100"})
	if err := caller.WaitPlayback(tctx(t, 5*time.Second), "sound:demo-congrats"); err != nil {
		t.Fatal(err)
	}
	caller.Hangup()
	res.wait(t)
	expect(t, res.get(), true, true, true)
}

func TestPlayFailuresEndToEnd(t *testing.T) {
	res := newResult()
	h := handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		_, err := c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:no-such-file"}})
		res.add(errors.Is(err, ErrPlaybackFailed))
		_, err = c.Play(ctx, call.PlaySpec{Media: []call.Media{"badscheme:foo", "hello-world"}})
		res.add(err)
		// A broken prompt does not cost the caller the menu.
		g, err := c.Gather(ctx, call.GatherSpec{Prompt: []call.Media{"sound:no-such-file"}, FirstTimeout: time.Second})
		res.add(g, err)
	})
	fh := startFake(t, aritest.Options{MissingMedia: []string{"sound:no-such-file"}}, h, nil, func(g *guards) { g.startWatchdog = 300 * time.Millisecond })
	caller := fh.call(aritest.CallSpec{Exten: "100"})
	// once the gather's broken prompt was tried
	waitUntil(t, "the broken prompt tried twice", func() bool {
		return len(fh.requests(func(r aritest.Request) bool { return strings.Contains(r.Query, "no-such-file") })) >= 2
	})
	caller.Press("3")
	res.wait(t)
	expect(t, res.get(), true, nil, "3", nil)
	for _, r := range fh.srv.Requests() {
		if strings.Contains(r.Query, "badscheme") {
			t.Errorf("sent %s %s?%s", r.Method, r.Path, r.Query)
		}
	}
}

func TestRecordEndToEnd(t *testing.T) {
	res := newResult()
	h := handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		r, err := c.Record(ctx, call.RecordSpec{Name: "vm", MaxDuration: 30 * time.Second, MaxSilence: 2 * time.Second, Beep: true, FinishKey: "#"})
		res.add(r.Format, r.Duration > 0, err)
		res.add(r.Name)
		r, err = c.Record(ctx, call.RecordSpec{Name: "vm", MaxDuration: 30 * time.Second, FinishKey: "#"})
		res.add(r.Duration > 0, err)
		// the # ended the recording and is not typed ahead
		_, err = c.Gather(ctx, call.GatherSpec{FirstTimeout: 50 * time.Millisecond})
		res.add(errors.Is(err, call.ErrTimeout))
		r, err = c.Record(ctx, call.RecordSpec{Name: "vm", MaxDuration: 60 * time.Second, FinishKey: "#"})
		res.add(r.Duration > 0, errors.Is(err, call.ErrHangup))
		res.add(r.Name)
	})
	fh := startFake(t, aritest.Options{TimeScale: 0.1}, h, nil)
	caller := fh.call(aritest.CallSpec{Exten: "200", Talk: 3 * time.Second})
	ctx := tctx(t, 10*time.Second)
	for i := 0; i < 3; i++ {
		if _, err := caller.WaitRecording(ctx); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 1:
			time.Sleep(150 * time.Millisecond) // 1.5 s simulated
			caller.Press("#")
		case 2:
			time.Sleep(200 * time.Millisecond)
			caller.Hangup()
		}
	}
	res.wait(t)
	got := res.get()
	expect(t, got[:3], "wav", true, nil)
	expect(t, got[4:8], true, nil, true, true)
	if got[8] != true {
		t.Fatalf("hang-up mid-record: %v", got)
	}
	stored := strings.Join(fh.srv.StoredRecordings(), " ")
	for _, n := range []any{got[3], got[9]} {
		if !strings.Contains(stored, n.(string)) {
			t.Errorf("%v not stored (%s)", n, stored)
		}
	}
}

func TestVarsAndSendEndToEnd(t *testing.T) {
	res := newResult()
	h := handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
		defer res.finish()
		res.add(c.SetVar(ctx, "CF_STATE", "greeting"))
		v, err := c.Var(ctx, "CF_STATE")
		res.add(v, err)
		v, err = c.Var(ctx, "CF_UNSET")
		res.add(v, err)
		res.add(c.Send(ctx, call.Message{To: "pjsip:+15551234567@trunk", From: "+15550000000", Body: "hi"}))
		res.add(c.Hangup(ctx, "busy"))
		res.add(c.Answer(ctx) != nil)
	})
	fh := startFake(t, aritest.Options{}, h, func(o *Options) { o.EventFilter = false })
	fh.call(aritest.CallSpec{Exten: "400"})
	res.wait(t)
	got := res.get()
	expect(t, got[:6], nil, "greeting", nil, "", nil, nil)
	if got[7] != true {
		t.Errorf("answer after hangup: %v", got)
	}
	msgs := fh.srv.Messages()
	if len(msgs) != 1 || msgs[0].To != "pjsip:+15551234567@trunk" || msgs[0].Body != "hi" {
		t.Errorf("messages %+v", msgs)
	}
}

// A prompt that ends while the websocket is down: its PlaybackFinished is
// lost, and the resync after the reconnect finds the playback gone.
func TestPlaybackEndLostInGapEndToEnd(t *testing.T) {
	res := newResult()
	h := handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		_, err := c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:short"}})
		res.add(err)
	})
	fh := startFake(t, aritest.Options{TimeScale: 1, MediaDurations: map[string]time.Duration{"sound:short": 100 * time.Millisecond}}, h,
		func(o *Options) { o.ReconnectMin, o.ReconnectMax = 500*time.Millisecond, 500*time.Millisecond })
	caller := fh.call(aritest.CallSpec{Exten: "500"})
	if err := caller.WaitPlayback(tctx(t, 5*time.Second), "sound:short"); err != nil {
		t.Fatal(err)
	}
	fh.srv.DropWebsockets()
	res.wait(t)
	expect(t, res.get(), nil)
	// Not the 10 minute guard: the resync asked for the playback.
	if len(fh.requests(func(r aritest.Request) bool { return r.Method == "GET" && strings.HasPrefix(r.Path, "/ari/playbacks/") })) == 0 {
		t.Error("the playback was never looked up after the reconnect")
	}
}

// A key pressed anywhere around a prompt's end reaches the next Gather.
func TestKeysAroundPromptsEndToEnd(t *testing.T) {
	res := newResult()
	h := handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		_, err := c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:hello-world"}})
		g, err2 := c.Gather(ctx, call.GatherSpec{Prompt: []call.Media{"sound:no-such-file"}, FirstTimeout: 2 * time.Second})
		res.add(g, err, err2)
	})
	fh := startFake(t, aritest.Options{MissingMedia: []string{"sound:no-such-file"}}, h, nil)
	for i := 0; i < 60; i++ {
		caller := fh.call(aritest.CallSpec{Exten: "100"})
		if err := caller.WaitPlayback(tctx(t, 5*time.Second), "sound:hello-world"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i%20) * time.Millisecond)
		caller.Press("3")
		res.wait(t)
		got := res.get()
		if got[3*i] != "3" {
			t.Fatalf("call %d: %v", i, got[3*i:])
		}
	}
}

// The reader never waits for a call: a handler that does not consume its
// events for a while loses none of them, and other calls go on meanwhile.
func TestSlowHandlerLosesNothingEndToEnd(t *testing.T) {
	res := newResult()
	release := make(chan struct{})
	h := handlerFunc(func(ctx context.Context, c *Call, in call.Inbound) {
		defer res.finish()
		_ = c.Answer(ctx)
		if in.Number != "slow" {
			_, err := c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:hello-world"}})
			res.add("other", err)
			return
		}
		<-release // busy elsewhere (an HTTP look-up, say)
		g, err := c.Gather(ctx, call.GatherSpec{MaxDigits: 100, FirstTimeout: time.Second, InterTimeout: 200 * time.Millisecond})
		res.add(g, err)
	})
	fh := startFake(t, aritest.Options{}, h, nil)
	caller := fh.call(aritest.CallSpec{Exten: "slow"})
	if err := caller.WaitState(tctx(t, 5*time.Second), "Up"); err != nil {
		t.Fatal(err)
	}
	keys := strings.Repeat("1234567890", 6)
	caller.Press(keys)
	fh.call(aritest.CallSpec{Exten: "other"})
	res.wait(t)
	expect(t, res.get(), "other", nil)
	close(release)
	res.wait(t)
	expect(t, res.get()[2:], keys, nil)
}
