package agi

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/agi/agitest"
	"github.com/callflow/callflow/applets/call"
)

const acceptCheckCmd = `GET FULL VARIABLE "${DIALPLAN_EXISTS(callflow-whisper-accept,s,1)}${DIALPLAN_EXISTS(callflow-whisper-leg,1,1)}"`

// legVars are the SET VARIABLE commands of a dial with accept key 1, the
// whisper custom/whisper and a 20s ring.
func legVars(targets string) []string {
	return []string{
		`SET VARIABLE _CALLFLOW_TARGETS "` + targets + `"`,
		`SET VARIABLE _CALLFLOW_RING "20"`,
		`SET VARIABLE _CALLFLOW_WHISPER "custom/whisper"`,
		`SET VARIABLE _CALLFLOW_ACCEPT "1"`,
		`SET VARIABLE _CALLFLOW_ACCEPT_WAIT "10"`,
	}
}

func TestDialWithAcceptKey(t *testing.T) {
	dialVarsCmd := "GET FULL VARIABLE " + quote(dialVars)
	two := []string{"PJSIP/101", "PJSIP/102"}
	spec := func(targets ...string) call.DialSpec {
		return call.DialSpec{Targets: targets, RingTimeout: 20 * time.Second,
			Whisper: []call.Media{"sound:custom/whisper"}, Accept: "1"}
	}
	legsOf := func(n int) string {
		var l []string
		for i := 1; i <= n; i++ {
			l = append(l, "Local/"+strconv.Itoa(i)+"@callflow-whisper-leg")
		}
		// 20s ring + 10m longest whisper + 10s for the key.
		return `EXEC Dial "` + strings.Join(l, "&") + `,630,gr"`
	}
	tests := []struct {
		name   string
		spec   call.DialSpec
		agent  agitest.Agent
		cmds   []string // nil: the accept dial's usual commands
		want   call.DialResult
		hungUp bool
	}{
		{
			name:  "the agent accepts",
			spec:  spec("PJSIP/101"),
			agent: agitest.Agent{Answers: []agitest.Answer{{Key: "1"}}, Talk: 42 * time.Second},
			want:  call.DialResult{Status: call.Answered, Target: "PJSIP/101", TalkTime: 42 * time.Second},
		},
		{
			name:  "a wrong key refuses the call",
			spec:  spec("PJSIP/101"),
			agent: agitest.Agent{Answers: []agitest.Answer{{Key: "2"}}},
			want:  call.DialResult{Status: call.NoAnswer},
		},
		{
			name:  "an agent who never presses a key is no answer",
			spec:  spec("PJSIP/101"),
			agent: agitest.Agent{Status: "ANSWER", Talk: time.Minute},
			want:  call.DialResult{Status: call.NoAnswer},
		},
		{
			name:  "the first to accept wins, not the first to answer",
			spec:  spec(two...),
			agent: agitest.Agent{Answers: []agitest.Answer{{Target: "PJSIP/101"}, {Target: "PJSIP/102", Key: "1"}}, Talk: 5 * time.Second},
			want:  call.DialResult{Status: call.Answered, Target: "PJSIP/102", TalkTime: 5 * time.Second},
		},
		{
			name:  "the second target accepting is named",
			spec:  spec(two...),
			agent: agitest.Agent{Answers: []agitest.Answer{{Target: "PJSIP/102", Key: "1"}}, Talk: time.Second},
			want:  call.DialResult{Status: call.Answered, Target: "PJSIP/102", TalkTime: time.Second},
		},
		{
			name:  "nobody accepts",
			spec:  spec(two...),
			agent: agitest.Agent{Answers: []agitest.Answer{{Target: "PJSIP/102", Key: "9"}, {Target: "PJSIP/101"}}},
			want:  call.DialResult{Status: call.NoAnswer},
		},
		{
			name:  "every agent busy",
			spec:  spec(two...),
			agent: agitest.Agent{Status: "BUSY"},
			want:  call.DialResult{Status: call.Busy},
		},
		{
			name: "hash can be the accept key",
			spec: call.DialSpec{Targets: []string{"PJSIP/101"}, RingTimeout: 20 * time.Second, Accept: "#"},
			cmds: []string{
				acceptCheckCmd,
				`SET VARIABLE _CALLFLOW_TARGETS "PJSIP/101"`,
				`SET VARIABLE _CALLFLOW_RING "20"`,
				`SET VARIABLE _CALLFLOW_WHISPER ""`,
				`SET VARIABLE _CALLFLOW_ACCEPT "#"`,
				`SET VARIABLE _CALLFLOW_ACCEPT_WAIT "10"`,
				legsOf(1),
				dialVarsCmd,
			},
			agent: agitest.Agent{Answers: []agitest.Answer{{Key: "#"}}, Talk: time.Second},
			want:  call.DialResult{Status: call.Answered, Target: "PJSIP/101", TalkTime: time.Second},
		},
		{
			name: "the whole whisper is played, sounds and recordings",
			spec: call.DialSpec{Targets: []string{"PJSIP/101"}, RingTimeout: 20 * time.Second, Accept: "1",
				Whisper: []call.Media{"sound:custom/whisper", "digits:42", "recording:vm-7.wav", "custom/name"}},
			cmds: []string{
				acceptCheckCmd,
				`SET VARIABLE _CALLFLOW_TARGETS "PJSIP/101"`,
				`SET VARIABLE _CALLFLOW_RING "20"`,
				`SET VARIABLE _CALLFLOW_WHISPER "custom/whisper&/rec/vm-7&custom/name"`,
				`SET VARIABLE _CALLFLOW_ACCEPT "1"`,
				`SET VARIABLE _CALLFLOW_ACCEPT_WAIT "10"`,
				legsOf(1),
				dialVarsCmd,
			},
			agent: agitest.Agent{Answers: []agitest.Answer{{Key: "1"}}},
			want:  call.DialResult{Status: call.Answered, Target: "PJSIP/101"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := agitest.Script{Agents: []agitest.Agent{tt.agent}}
			o, sess := runCall(t, Options{RecordingsDir: "/rec"}, script, func(ctx context.Context, c *Call) (any, error) {
				r, err := c.Dial(ctx, tt.spec)
				r.Answered = time.Time{}
				if err != nil {
					return r, err
				}
				// The flow goes on after a dial nobody took (to voicemail).
				return r, c.Answer(ctx)
			})
			if o.err != nil {
				t.Fatal(o.err)
			}
			if !reflect.DeepEqual(o.value, tt.want) {
				t.Errorf("got %+v, want %+v", o.value, tt.want)
			}
			want := tt.cmds
			if want == nil {
				targets := strings.Join(tt.spec.Targets, "&")
				want = append(append([]string{acceptCheckCmd}, legVars(targets)...), legsOf(len(tt.spec.Targets)), dialVarsCmd)
			}
			want = append(want, "ANSWER")
			if got := sess.Commands(); !reflect.DeepEqual(got, want) {
				t.Errorf("commands:\n%s\nwant:\n%s", joinLines(got), joinLines(want))
			}
			if v, _ := sess.Var("CALLFLOW_TARGETS"); v != strings.Join(tt.spec.Targets, "&") {
				t.Errorf("the legs see CALLFLOW_TARGETS %q", v)
			}
		})
	}
}

func TestDialWithAcceptKeyCallerHangsUp(t *testing.T) {
	script := agitest.Script{HangupAt: 7} // the Dial: the caller gives up while it rings
	o, _ := runCall(t, Options{}, script, func(ctx context.Context, c *Call) (any, error) {
		return c.Dial(ctx, call.DialSpec{Targets: []string{"PJSIP/101"}, Accept: "1"})
	})
	if !errors.Is(o.err, call.ErrHangup) || !errors.Is(o.ctxErr, call.ErrHangup) {
		t.Fatalf("error %v, context %v", o.err, o.ctxErr)
	}
	if r := o.value.(call.DialResult); r.Status != call.Failed {
		t.Errorf("result %+v", r)
	}
}

// Without the subroutine, Dial's U() would bridge the agent unasked: the
// dial is refused before anything rings, and Health says why.
func TestDialWithAcceptKeyRefusedWithoutTheDialplan(t *testing.T) {
	accepting := []agitest.Agent{{Answers: []agitest.Answer{{Key: "1"}}}}
	dial := func(ctx context.Context, c *Call) (any, error) {
		r, err := c.Dial(ctx, call.DialSpec{Targets: []string{"PJSIP/101"}, CallerID: "+1555", Accept: "1"})
		r.Answered = time.Time{}
		return r, err
	}
	srv, addr, got := serveCalls(t, Options{}, dial)
	if h := srv.Health(); h != (Health{}) {
		t.Fatalf("health before any call: %+v", h)
	}
	for _, missing := range [][]string{
		{"callflow-whisper-accept"},
		{"callflow-whisper-leg"},
		{"callflow-whisper-accept", "callflow-whisper-leg"},
	} {
		o, sess := callAt(t, addr, agitest.Script{Agents: accepting, MissingContexts: missing}, got)
		if o.err != nil || o.value != (call.DialResult{Status: call.Failed}) {
			t.Errorf("missing %v: got %+v, %v", missing, o.value, o.err)
		}
		if cmds := sess.Commands(); !reflect.DeepEqual(cmds, []string{acceptCheckCmd}) {
			t.Errorf("missing %v: commands %q: nothing may ring", missing, cmds)
		}
		h := srv.Health()
		if !h.WhisperAcceptMissing || !strings.Contains(h.Message, "asterisk/extensions.conf") {
			t.Errorf("missing %v: health %+v", missing, h)
		}
		for _, m := range missing {
			if !strings.Contains(h.Message, m) {
				t.Errorf("health message %q does not name %s", h.Message, m)
			}
		}
	}
	// Once the dialplan is reloaded with them, dials work and health clears.
	o, _ := callAt(t, addr, agitest.Script{Agents: accepting}, got)
	if o.err != nil || o.value.(call.DialResult).Status != call.Answered {
		t.Errorf("with the dialplan: %+v, %v", o.value, o.err)
	}
	if h := srv.Health(); h != (Health{}) {
		t.Errorf("health after a working dial: %+v", h)
	}
}

// The shipped dialplan is what the dial relies on: both contexts, the
// variables the dial sets, and ABORT for an agent who does not accept.
func TestShippedDialplanHasTheAcceptContexts(t *testing.T) {
	b, err := os.ReadFile("../asterisk/extensions.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	section := func(name string) string {
		_, rest, ok := strings.Cut(conf, "\n["+name+"]\n")
		if !ok {
			t.Fatalf("extensions.conf has no [%s]", name)
		}
		if i := strings.Index(rest, "\n["); i >= 0 {
			rest = rest[:i]
		}
		return rest
	}
	leg, sub := section(legContext), section(acceptSub)
	if !strings.Contains(leg, "exten => _X!,1,Dial(") || !strings.Contains(leg, "U("+acceptSub+"^") {
		t.Errorf("[%s] does not dial the agent with U(%s^...):\n%s", legContext, acceptSub, leg)
	}
	if !strings.Contains(sub, "exten => s,1,") || !strings.Contains(sub, "Set(GOSUB_RESULT=ABORT)") || !strings.Contains(sub, "Return()") {
		t.Errorf("[%s] does not abort and return:\n%s", acceptSub, sub)
	}
	// Every variable the dial sets is read by the leg.
	_, sess := runCall(t, Options{}, agitest.Script{}, func(ctx context.Context, c *Call) (any, error) {
		return c.Dial(ctx, call.DialSpec{Targets: []string{"PJSIP/101"}, Accept: "1"})
	})
	n := 0
	for _, cmd := range sess.Commands() {
		name, ok := strings.CutPrefix(cmd, "SET VARIABLE _")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		n++
		if !strings.Contains(leg, "${"+name+"}") && !strings.Contains(leg, "CUT("+name+",") {
			t.Errorf("[%s] does not read %s", legContext, name)
		}
	}
	if n == 0 {
		t.Error("the dial set no variables for the legs")
	}
}
