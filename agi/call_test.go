package agi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/callflow/callflow/agi/agitest"
	"github.com/callflow/callflow/applets/call"
)

const anyKeys = `"0123456789*#ABCD"`

func TestCallCommands(t *testing.T) {
	dialVarsCmd := `GET FULL VARIABLE "${DIALSTATUS}|${ANSWEREDTIME_MS}|${ANSWEREDTIME}|${DIALEDPEERNAME}|${DIALEDPEERNUMBER}"`
	dial := func(spec call.DialSpec) func(ctx context.Context, c *Call) (any, error) {
		return func(ctx context.Context, c *Call) (any, error) {
			r, err := c.Dial(ctx, spec)
			r.Answered = time.Time{}
			return r, err
		}
	}
	play := func(spec call.PlaySpec) func(ctx context.Context, c *Call) (any, error) {
		return func(ctx context.Context, c *Call) (any, error) { return c.Play(ctx, spec) }
	}
	gather := func(spec call.GatherSpec) func(ctx context.Context, c *Call) (any, error) {
		return func(ctx context.Context, c *Call) (any, error) { return c.Gather(ctx, spec) }
	}
	record := func(spec call.RecordSpec) func(ctx context.Context, c *Call) (any, error) {
		return func(ctx context.Context, c *Call) (any, error) { return c.Record(ctx, spec) }
	}
	hold := func(spec call.HoldSpec) func(ctx context.Context, c *Call) (any, error) {
		return func(ctx context.Context, c *Call) (any, error) { return c.Hold(ctx, spec) }
	}
	menu := []call.Media{"sound:custom/menu"}

	tests := []struct {
		name    string
		script  agitest.Script
		fn      func(ctx context.Context, c *Call) (any, error)
		cmds    []string
		want    any
		wantErr error // a sentinel the error wraps; nil for none
		hungUp  bool  // the handler's ctx is cancelled by the hang-up
	}{
		{
			name: "answer",
			fn:   func(ctx context.Context, c *Call) (any, error) { return nil, c.Answer(ctx) },
			cmds: []string{"ANSWER"},
		},
		{
			name: "set var quoted",
			fn: func(ctx context.Context, c *Call) (any, error) {
				return nil, c.SetVar(ctx, "GREETING", `say "hi" \o/`)
			},
			cmds: []string{`SET VARIABLE GREETING "say \"hi\" \\o/"`},
		},
		{
			name:   "var set",
			script: agitest.Script{Vars: map[string]string{"MYVAR": "set-by-fastagi"}},
			fn:     func(ctx context.Context, c *Call) (any, error) { return c.Var(ctx, "MYVAR") },
			cmds:   []string{"GET VARIABLE MYVAR"},
			want:   "set-by-fastagi",
		},
		{
			name:   "var with parentheses and spaces",
			script: agitest.Script{Vars: map[string]string{"X": "a (b) c "}},
			fn:     func(ctx context.Context, c *Call) (any, error) { return c.Var(ctx, "X") },
			cmds:   []string{"GET VARIABLE X"},
			want:   "a (b) c ",
		},
		{
			name: "var unset",
			fn:   func(ctx context.Context, c *Call) (any, error) { return c.Var(ctx, "NOPE") },
			cmds: []string{"GET VARIABLE NOPE"},
			want: "",
		},
		{
			name: "var function",
			fn:   func(ctx context.Context, c *Call) (any, error) { return c.Var(ctx, "CALLERID(num)") },
			cmds: []string{"GET VARIABLE CALLERID(num)"},
			want: "5550007000",
		},
		{
			name:   "var expression",
			script: agitest.Script{Vars: map[string]string{"A": "1", "B": "2"}},
			fn:     func(ctx context.Context, c *Call) (any, error) { return c.Var(ctx, "${A}-${B}") },
			cmds:   []string{`GET FULL VARIABLE "${A}-${B}"`},
			want:   "1-2",
		},
		{
			name: "play maps media",
			fn: play(call.PlaySpec{Media: []call.Media{
				"sound:hello-world", "custom/acme-welcome", "digits:123", "number:7",
				"recording:vm-1.wav", "tone:ring", "digits:12a", "recording:../etc/passwd", "sound:my file",
			}}),
			cmds: []string{
				`STREAM FILE hello-world ""`,
				`STREAM FILE custom/acme-welcome ""`,
				`SAY DIGITS 123 ""`,
				`SAY NUMBER 7 ""`,
				`STREAM FILE /rec/vm-1 ""`,
				`STREAM FILE "my file" ""`,
			},
			want: "",
		},
		{
			name:   "play barge-in key decoded",
			script: agitest.Script{Keys: []string{"", "2"}},
			fn:     play(call.PlaySpec{Media: []call.Media{"sound:a", "sound:b", "sound:c"}, BargeIn: "12"}),
			cmds:   []string{`STREAM FILE a "12"`, `STREAM FILE b "12"`},
			want:   "2",
		},
		{
			name:   "play any key",
			script: agitest.Script{Keys: []string{"#"}},
			fn:     play(call.PlaySpec{Media: []call.Media{"sound:a"}, BargeIn: "any"}),
			cmds:   []string{`STREAM FILE a ` + anyKeys},
			want:   "#",
		},
		{
			name:   "play key outside barge-in is lost",
			script: agitest.Script{Keys: []string{"5", "9"}},
			fn:     play(call.PlaySpec{Media: []call.Media{"sound:a", "digits:42"}, BargeIn: "1"}),
			cmds:   []string{`STREAM FILE a "1"`, `SAY DIGITS 42 "1"`},
			want:   "",
		},
		{
			name:   "play without barge-in passes no escape digits",
			script: agitest.Script{Keys: []string{"1"}},
			fn:     play(call.PlaySpec{Media: []call.Media{"sound:a"}}),
			cmds:   []string{`STREAM FILE a ""`},
			want:   "",
		},
		{
			name:   "play missing file is skipped",
			script: agitest.Script{Missing: []string{"custom/nope"}},
			fn:     play(call.PlaySpec{Media: []call.Media{"sound:custom/nope", "sound:hello"}}),
			cmds:   []string{`STREAM FILE custom/nope ""`, "CHANNEL STATUS", `STREAM FILE hello ""`},
			want:   "",
		},
		{
			name:    "play hang-up",
			script:  agitest.Script{HangupAt: 2},
			fn:      play(call.PlaySpec{Media: []call.Media{"sound:a", "sound:b", "sound:c"}}),
			cmds:    []string{`STREAM FILE a ""`, `STREAM FILE b ""`},
			want:    "",
			wantErr: call.ErrHangup,
			hungUp:  true,
		},
		{
			name:   "hold until an exit key",
			script: agitest.Script{Keys: []string{"", "5", "9"}},
			fn:     hold(call.HoldSpec{Music: "jazz", Keys: "9", Timeout: 10 * time.Second}),
			cmds:   []string{`EXEC StartMusicOnHold "jazz"`, "WAIT FOR DIGIT 500", "WAIT FOR DIGIT 500", "WAIT FOR DIGIT 500", "EXEC StopMusicOnHold"},
			want:   "9",
		},
		{
			name:    "hold timeout",
			script:  agitest.Script{Keys: []string{""}},
			fn:      hold(call.HoldSpec{Timeout: 300 * time.Millisecond}),
			cmds:    []string{"EXEC StartMusicOnHold", "WAIT FOR DIGIT 300", "EXEC StopMusicOnHold"},
			want:    "",
			wantErr: call.ErrTimeout,
		},
		{
			name:   "gather key during prompt",
			script: agitest.Script{Keys: []string{"1"}},
			fn:     gather(call.GatherSpec{Prompt: menu}),
			cmds:   []string{`STREAM FILE custom/menu ` + anyKeys},
			want:   "1",
		},
		{
			name:   "gather key after prompt",
			script: agitest.Script{Keys: []string{"", "7"}},
			fn:     gather(call.GatherSpec{Prompt: menu, FirstTimeout: 4 * time.Second}),
			cmds:   []string{`STREAM FILE custom/menu ` + anyKeys, "WAIT FOR DIGIT 4000"},
			want:   "7",
		},
		{
			name:   "gather terminator",
			script: agitest.Script{Keys: []string{"4", "2", "#"}},
			fn:     gather(call.GatherSpec{Prompt: menu, MaxDigits: 3, InterTimeout: 2 * time.Second, Terminator: "#"}),
			cmds:   []string{`STREAM FILE custom/menu ` + anyKeys, "WAIT FOR DIGIT 2000", "WAIT FOR DIGIT 2000"},
			want:   "42",
		},
		{
			name:   "gather max digits",
			script: agitest.Script{Keys: []string{"", "1", "0", "0"}},
			fn:     gather(call.GatherSpec{Prompt: menu, MaxDigits: 3, Terminator: "#"}),
			cmds:   []string{`STREAM FILE custom/menu ` + anyKeys, "WAIT FOR DIGIT 5000", "WAIT FOR DIGIT 3000", "WAIT FOR DIGIT 3000"},
			want:   "100",
		},
		{
			name:   "gather inter-digit timeout",
			script: agitest.Script{Keys: []string{"1", "2", ""}},
			fn:     gather(call.GatherSpec{Prompt: menu, MaxDigits: 4, Terminator: "#"}),
			cmds:   []string{`STREAM FILE custom/menu ` + anyKeys, "WAIT FOR DIGIT 3000", "WAIT FOR DIGIT 3000"},
			want:   "12",
		},
		{
			name:    "gather no key",
			script:  agitest.Script{Keys: []string{"", ""}},
			fn:      gather(call.GatherSpec{Prompt: menu}),
			cmds:    []string{`STREAM FILE custom/menu ` + anyKeys, "WAIT FOR DIGIT 5000"},
			want:    "",
			wantErr: call.ErrTimeout,
		},
		{
			name:   "gather terminator alone",
			script: agitest.Script{Keys: []string{"#"}},
			fn:     gather(call.GatherSpec{Prompt: menu, MaxDigits: 3, Terminator: "#"}),
			cmds:   []string{`STREAM FILE custom/menu ` + anyKeys},
			want:   "",
		},
		{
			name:   "gather takes the key typed ahead in a greeting",
			script: agitest.Script{Keys: []string{"5"}},
			fn: func(ctx context.Context, c *Call) (any, error) {
				if _, err := c.Play(ctx, call.PlaySpec{Media: []call.Media{"sound:welcome"}, BargeIn: call.AnyKey}); err != nil {
					return nil, err
				}
				return c.Gather(ctx, call.GatherSpec{Prompt: menu})
			},
			cmds: []string{`STREAM FILE welcome ` + anyKeys},
			want: "5",
		},
		{
			name:    "gather hang-up while waiting",
			script:  agitest.Script{Keys: []string{"", ""}, HangupAt: 2},
			fn:      gather(call.GatherSpec{Prompt: menu}),
			cmds:    []string{`STREAM FILE custom/menu ` + anyKeys, "WAIT FOR DIGIT 5000"},
			want:    "",
			wantErr: call.ErrHangup,
			hungUp:  true,
		},
		{
			name:   "record ends on silence",
			script: agitest.Script{RecordFor: 2 * time.Second},
			fn:     record(call.RecordSpec{Name: "vm-support-1", MaxDuration: 3 * time.Minute, MaxSilence: 5 * time.Second, Beep: true, FinishKey: "#"}),
			cmds:   []string{`RECORD FILE "/rec/vm-support-1" wav "#" 180000 BEEP s=5`},
			want:   call.Recording{Name: "vm-support-1", Format: "wav", Duration: 2 * time.Second, Path: "/rec/vm-support-1.wav"},
		},
		{
			name:   "record ends on the finish key",
			script: agitest.Script{RecordFor: 1500 * time.Millisecond, RecordEnd: "dtmf"},
			fn:     record(call.RecordSpec{Name: "vm", MaxDuration: time.Minute, FinishKey: "*"}),
			cmds:   []string{`RECORD FILE "/rec/vm" wav "*" 60000`},
			want:   call.Recording{Name: "vm", Format: "wav", Duration: 1500 * time.Millisecond, Path: "/rec/vm.wav"},
		},
		{
			name:   "record capped by max duration",
			script: agitest.Script{RecordFor: time.Minute},
			fn:     record(call.RecordSpec{Name: "x y", MaxDuration: 10 * time.Second, MaxSilence: 1500 * time.Millisecond}),
			cmds:   []string{`RECORD FILE "/rec/x_y" wav "" 10000 s=2`},
			want:   call.Recording{Name: "x_y", Format: "wav", Duration: 10 * time.Second, Path: "/rec/x_y.wav"},
		},
		{
			name:    "record hang-up keeps the message",
			script:  agitest.Script{RecordFor: 4 * time.Second, RecordEnd: "hangup"},
			fn:      record(call.RecordSpec{Name: "vm", MaxDuration: time.Minute, FinishKey: "#"}),
			cmds:    []string{`RECORD FILE "/rec/vm" wav "#" 60000`},
			want:    call.Recording{Name: "vm", Format: "wav", Duration: 4 * time.Second, Path: "/rec/vm.wav"},
			wantErr: call.ErrHangup,
			hungUp:  true,
		},
		{
			name:    "record write failure",
			script:  agitest.Script{Replies: map[int]string{1: "200 result=-1 (writefile)\n"}},
			fn:      record(call.RecordSpec{Name: "vm", MaxDuration: time.Minute}),
			cmds:    []string{`RECORD FILE "/rec/vm" wav "" 60000`},
			want:    call.Recording{},
			wantErr: errAny,
		},
		{
			name:   "dial answered",
			script: agitest.Script{Agents: []agitest.Agent{{Status: "ANSWER", Target: "PJSIP/102", Talk: 42500 * time.Millisecond}}},
			fn:     dial(call.DialSpec{Targets: []string{"PJSIP/101", "PJSIP/102"}, RingTimeout: 20 * time.Second}),
			cmds:   []string{`EXEC Dial "PJSIP/101&PJSIP/102,20,gr"`, dialVarsCmd},
			want:   call.DialResult{Status: call.Answered, Target: "PJSIP/102", TalkTime: 42500 * time.Millisecond},
		},
		{
			name:   "dial no answer",
			script: agitest.Script{Agents: []agitest.Agent{{Status: "NOANSWER"}}},
			fn:     dial(call.DialSpec{Targets: []string{"PJSIP/101"}, RingTimeout: 1500 * time.Millisecond}),
			cmds:   []string{`EXEC Dial "PJSIP/101,2,gr"`, dialVarsCmd},
			want:   call.DialResult{Status: call.NoAnswer},
		},
		{
			name:   "dial busy",
			script: agitest.Script{Agents: []agitest.Agent{{Status: "BUSY"}}},
			fn:     dial(call.DialSpec{Targets: []string{"PJSIP/101"}}),
			cmds:   []string{`EXEC Dial "PJSIP/101,30,gr"`, dialVarsCmd},
			want:   call.DialResult{Status: call.Busy},
		},
		{
			name:   "dial congestion",
			script: agitest.Script{Agents: []agitest.Agent{{Status: "CONGESTION"}}},
			fn:     dial(call.DialSpec{Targets: []string{"PJSIP/101"}}),
			cmds:   []string{`EXEC Dial "PJSIP/101,30,gr"`, dialVarsCmd},
			want:   call.DialResult{Status: call.Failed},
		},
		{
			name:   "dial channel unavailable",
			script: agitest.Script{Agents: []agitest.Agent{{Status: "CHANUNAVAIL"}}},
			fn:     dial(call.DialSpec{Targets: []string{"PJSIP/101"}}),
			cmds:   []string{`EXEC Dial "PJSIP/101,30,gr"`, dialVarsCmd},
			want:   call.DialResult{Status: call.Failed},
		},
		{
			name:    "dial cancelled by the caller",
			script:  agitest.Script{HangupAt: 1},
			fn:      dial(call.DialSpec{Targets: []string{"PJSIP/101"}}),
			cmds:    []string{`EXEC Dial "PJSIP/101,30,gr"`, dialVarsCmd},
			want:    call.DialResult{Status: call.Failed},
			wantErr: call.ErrHangup,
			hungUp:  true,
		},
		{
			name:    "dial answered, caller ends the conversation",
			script:  agitest.Script{Agents: []agitest.Agent{{Status: "ANSWER", Talk: 61 * time.Second, CallerHangsUp: true}}},
			fn:      dial(call.DialSpec{Targets: []string{"PJSIP/101"}}),
			cmds:    []string{`EXEC Dial "PJSIP/101,30,gr"`, dialVarsCmd},
			want:    call.DialResult{Status: call.Answered, Target: "PJSIP/101", TalkTime: 61 * time.Second},
			wantErr: call.ErrHangup,
			hungUp:  true,
		},
		{
			name:   "dial with caller id, whisper, music and recording",
			script: agitest.Script{Agents: []agitest.Agent{{Status: "ANSWER", Talk: 3 * time.Second}}},
			fn: dial(call.DialSpec{
				Targets: []string{"PJSIP/+15551234@trunk"}, RingTimeout: 15 * time.Second, CallerID: "+15550001",
				Whisper: []call.Media{"digits:42", "sound:custom/whisper", "sound:custom/more"}, Record: true, Music: "jazz",
			}),
			cmds: []string{
				`SET VARIABLE CALLERID(num) "+15550001"`,
				`EXEC MixMonitor "/rec/call-1795237640-96-1.wav,b"`,
				`EXEC Dial "PJSIP/+15551234@trunk,15,gm(jazz)A(custom/whisper)"`,
				dialVarsCmd,
				"EXEC StopMixMonitor",
				`SET VARIABLE CALLERID(num) "5550007000"`,
			},
			want: call.DialResult{Status: call.Answered, Target: "PJSIP/+15551234@trunk", TalkTime: 3 * time.Second, Recording: "call-1795237640-96-1"},
		},
		{
			name: "send message",
			fn: func(ctx context.Context, c *Call) (any, error) {
				return nil, c.Send(ctx, call.Message{To: "pjsip:+15551234@trunk", From: "+15550000", Body: "Hi \"there\"\nbye \\o"})
			},
			cmds: []string{
				`SET VARIABLE MESSAGE(body) "Hi \"there\" bye \\o"`,
				`EXEC MessageSend "pjsip:+15551234@trunk,+15550000"`,
				"GET VARIABLE MESSAGE_SEND_STATUS",
			},
		},
		{
			name:   "send message fails",
			script: agitest.Script{MessageStatus: "INVALID_URI"},
			fn: func(ctx context.Context, c *Call) (any, error) {
				return nil, c.Send(ctx, call.Message{To: "nowhere", Body: "x"})
			},
			cmds:    []string{`SET VARIABLE MESSAGE(body) "x"`, `EXEC MessageSend "nowhere"`, "GET VARIABLE MESSAGE_SEND_STATUS"},
			wantErr: errAny,
		},
		{
			name:   "hangup",
			fn:     func(ctx context.Context, c *Call) (any, error) { return nil, c.Hangup(ctx, "") },
			cmds:   []string{"EXEC Hangup 16"},
			hungUp: true,
		},
		{
			name:   "hangup with cause",
			fn:     func(ctx context.Context, c *Call) (any, error) { return nil, c.Hangup(ctx, "busy") },
			cmds:   []string{"EXEC Hangup 17"},
			hungUp: true,
		},
		{
			name:   "hangup of a gone caller",
			script: agitest.Script{HangupAt: 1},
			fn:     func(ctx context.Context, c *Call) (any, error) { return nil, c.Hangup(ctx, "") },
			cmds:   []string{"EXEC Hangup 16"},
			hungUp: true,
		},
		{
			name:    "dead channel",
			script:  agitest.Script{HangupAt: 1},
			fn:      func(ctx context.Context, c *Call) (any, error) { return nil, c.Answer(ctx) },
			cmds:    []string{"ANSWER"},
			wantErr: call.ErrHangup,
			hungUp:  true,
		},
		{
			name:   "unknown command rejected, session goes on",
			script: agitest.Script{Replies: map[int]string{1: "510 Invalid or unknown command\n"}},
			fn: func(ctx context.Context, c *Call) (any, error) {
				if err := c.Answer(ctx); !errors.Is(err, ErrRejected) {
					return nil, err
				}
				return c.Var(ctx, "CALLERID(num)")
			},
			cmds: []string{"ANSWER", "GET VARIABLE CALLERID(num)"},
			want: "5550007000",
		},
		{
			name: "multi-line usage reply, session goes on",
			script: agitest.Script{Replies: map[int]string{1: "520-Invalid command syntax.  Proper usage follows:\n" +
				" Usage: ANSWER\n\tAnswers channel if not already in answer state.\n520 End of proper usage.\n"}},
			fn: func(ctx context.Context, c *Call) (any, error) {
				if err := c.Answer(ctx); !errors.Is(err, ErrRejected) {
					return nil, err
				}
				return c.Var(ctx, "CALLERID(num)")
			},
			cmds: []string{"ANSWER", "GET VARIABLE CALLERID(num)"},
			want: "5550007000",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, sess := runCall(t, Options{RecordingsDir: "/rec"}, tt.script, tt.fn)
			got := sess.Commands()
			if tt.hungUp {
				got = withoutProbes(got)
			}
			if !reflect.DeepEqual(got, tt.cmds) {
				t.Errorf("commands:\n%s\nwant:\n%s", joinLines(got), joinLines(tt.cmds))
			}
			switch {
			case tt.wantErr == nil && o.err != nil:
				t.Errorf("error: %v", o.err)
			case tt.wantErr == errAny && o.err == nil:
				t.Errorf("no error")
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(o.err, tt.wantErr):
				t.Errorf("error %v, want one wrapping %v", o.err, tt.wantErr)
			}
			if tt.want != nil && !reflect.DeepEqual(o.value, tt.want) {
				t.Errorf("got %#v, want %#v", o.value, tt.want)
			}
			if tt.hungUp != errors.Is(o.ctxErr, call.ErrHangup) {
				t.Errorf("handler context cause %v, hung up %v", o.ctxErr, tt.hungUp)
			}
		})
	}
}

// withoutProbes drops the CHANNEL STATUS probe that may follow a -1 when
// the HANGUP line has not been read yet.
func withoutProbes(cmds []string) []string {
	var out []string
	for _, c := range cmds {
		if c != "CHANNEL STATUS" {
			out = append(out, c)
		}
	}
	return out
}

// errAny stands for "some error" in the table.
var errAny = errors.New("any error")

func TestSetVarQuotingRoundTrip(t *testing.T) {
	values := []string{
		"", "plain", "two words", `a "quoted" word`, `back\slash`, `trailing\`, `\"`,
		"tab\there", "ünïcödé ☎", `"`, `\\\\`, "  spaces  ",
	}
	for _, v := range values {
		t.Run(v, func(t *testing.T) {
			_, sess := runCall(t, Options{}, agitest.Script{}, func(ctx context.Context, c *Call) (any, error) {
				return nil, c.SetVar(ctx, "V", v)
			})
			if got, _ := sess.Var("V"); got != v {
				t.Errorf("Asterisk would store %q, want %q (sent %q)", got, v, sess.Commands())
			}
		})
	}
}

func TestQuoteNeverBreaksTheLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\nHANGUP", "a HANGUP"},
		{"a\r\nb", "a  b"},
		{"nul\x00byte", "nulbyte"},
	}
	for _, tt := range tests {
		args := agitest.ParseArgs("SET VARIABLE X " + quote(tt.in))
		if len(args) != 4 || args[3] != tt.want {
			t.Errorf("quote(%q) parses as %q, want value %q", tt.in, args, tt.want)
		}
	}
	if got := word("custom/menu"); got != "custom/menu" {
		t.Errorf("word: %q", got)
	}
	if got := word("my file"); got != `"my file"` {
		t.Errorf("word: %q", got)
	}
}

func TestRecordWritesWAV(t *testing.T) {
	dir := t.TempDir()
	script := agitest.Script{RecordDir: dir, RecordFor: 2500 * time.Millisecond}
	o, _ := runCall(t, Options{RecordingsDir: dir}, script, func(ctx context.Context, c *Call) (any, error) {
		return c.Record(ctx, call.RecordSpec{Name: "vm-tech", MaxDuration: time.Minute, FinishKey: "#"})
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	rec := o.value.(call.Recording)
	if rec.Path != filepath.Join(dir, rec.Name+".wav") || rec.Duration != 2500*time.Millisecond {
		t.Fatalf("recording %+v", rec)
	}
	fi, err := os.Stat(rec.Path)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(44 + 2*20000); fi.Size() != want {
		t.Errorf("wav size %d, want %d", fi.Size(), want)
	}
}

func TestCommandTooLong(t *testing.T) {
	o, sess := runCall(t, Options{}, agitest.Script{}, func(ctx context.Context, c *Call) (any, error) {
		body := make([]byte, 3000)
		for i := range body {
			body[i] = 'x'
		}
		if err := c.SetVar(ctx, "BIG", string(body)); !errors.Is(err, ErrCommandTooLong) {
			return nil, err
		}
		return c.Var(ctx, "BIG")
	})
	if o.err != nil || o.value != "" {
		t.Fatalf("got %v, %v", o.value, o.err)
	}
	if got := sess.Commands(); len(got) != 1 {
		t.Fatalf("commands %q: the long one must not be sent", got)
	}
}

func TestParseDialTarget(t *testing.T) {
	tests := []struct {
		targets          []string
		name, number, tg string
	}{
		{[]string{"PJSIP/101", "PJSIP/102"}, "PJSIP/102-00000001", "102", "PJSIP/102"},
		{[]string{"SIP/101", "PJSIP/101"}, "PJSIP/101-00000001", "101", "PJSIP/101"},
		{[]string{"Local/101@agents"}, "Local/101@agents-00000003;1", "101@agents", "Local/101@agents"},
		{[]string{"PJSIP/a", "PJSIP/b"}, "PJSIP/c-0001", "c", "PJSIP/c"},
	}
	for _, tt := range tests {
		if got := answeredTarget(tt.targets, tt.name, tt.number); got != tt.tg {
			t.Errorf("answeredTarget(%v, %q, %q) = %q, want %q", tt.targets, tt.name, tt.number, got, tt.tg)
		}
	}
}

func TestHangupRecordsTheCause(t *testing.T) {
	tests := []struct {
		cause string
		want  int
	}{
		{"", 16},
		{"normal", 16},
		{"busy", 17},
		{"BUSY", 17},
		{"congestion", 34},
		{"no_answer", 19},
		{"rejected", 21},
		{"failure", 38},
		{"21", 21},
		{"0", 16},
		{"300", 16},
		{"whatever", 16},
	}
	for _, tt := range tests {
		t.Run(tt.cause, func(t *testing.T) {
			o, sess := runCall(t, Options{}, agitest.Script{}, func(ctx context.Context, c *Call) (any, error) {
				return nil, c.Hangup(ctx, tt.cause)
			})
			if o.err != nil || !errors.Is(o.ctxErr, call.ErrHangup) {
				t.Fatalf("error %v, context %v", o.err, o.ctxErr)
			}
			if got := sess.HangupCause(); got != tt.want {
				t.Errorf("Asterisk records cause %d, want %d (commands %q)", got, tt.want, sess.Commands())
			}
		})
	}
}
