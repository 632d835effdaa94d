package agitest

import (
	"bufio"
	"context"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{`STREAM FILE hello-world "" 0`, []string{"STREAM", "FILE", "hello-world", "", "0"}},
		{`SET VARIABLE X "a \"b\" c"`, []string{"SET", "VARIABLE", "X", `a "b" c`}},
		{`SET VARIABLE X "back\\slash"`, []string{"SET", "VARIABLE", "X", `back\slash`}},
		{`SET VARIABLE X two\ words`, []string{"SET", "VARIABLE", "X", "two words"}},
		{"EXEC  Dial\t\"PJSIP/1&PJSIP/2,20,gr\"", []string{"EXEC", "Dial", "PJSIP/1&PJSIP/2,20,gr"}},
		{`SET VARIABLE X a"b c"d`, []string{"SET", "VARIABLE", "X", "ab cd"}},
		{`ANSWER`, []string{"ANSWER"}},
		{``, nil},
	}
	for _, tt := range tests {
		if got := ParseArgs(tt.line); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseArgs(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

// peer accepts one session and returns its environment lines and a
// function to send a command and read the reply lines.
func peer(t *testing.T, script Script) (env []string, do func(cmd string, lines int) []string, sess *Session) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	sess, err = Dial(ctx, ln.Addr().String(), script)
	if err != nil {
		t.Fatal(err)
	}
	conn := <-accepted
	if conn == nil {
		t.Fatal("no connection")
	}
	t.Cleanup(func() { conn.Close(); sess.Close() })
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\n" {
			break
		}
		env = append(env, strings.TrimSuffix(line, "\n"))
	}
	do = func(cmd string, lines int) []string {
		if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
			t.Fatal(err)
		}
		var out []string
		for range lines {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v after %q", cmd, err, out)
			}
			out = append(out, strings.TrimSuffix(line, "\n"))
		}
		return out
	}
	return env, do, sess
}

func TestEnvironmentLikeAsterisk(t *testing.T) {
	env, _, _ := peer(t, Script{Request: "agi://127.0.0.1:4573/flow/support", Args: []string{"x y"}})
	var names []string
	for _, l := range env {
		name, _, ok := strings.Cut(l, ": ")
		if !ok {
			t.Fatalf("line %q is not 'name: value'", l)
		}
		names = append(names, name)
	}
	want := []string{
		"agi_network", "agi_network_script", "agi_request", "agi_channel", "agi_language", "agi_type",
		"agi_uniqueid", "agi_version", "agi_callerid", "agi_calleridname", "agi_callingpres",
		"agi_callingani2", "agi_callington", "agi_callingtns", "agi_dnid", "agi_rdnis", "agi_context",
		"agi_extension", "agi_priority", "agi_enhanced", "agi_accountcode", "agi_threadid", "agi_arg_1",
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("environment order %q", names)
	}
	if env[1] != "agi_network_script: flow/support" || env[22] != "agi_arg_1: x y" || env[20] != "agi_accountcode: " {
		t.Errorf("environment %q", env)
	}

	env, _, _ = peer(t, Script{Request: "agi://127.0.0.1:4573"})
	if strings.HasPrefix(env[1], "agi_network_script") {
		t.Errorf("a URL without a path has no agi_network_script: %q", env[:3])
	}
}

func TestRepliesLikeAsterisk(t *testing.T) {
	_, do, sess := peer(t, Script{
		Keys:   []string{"1", "", "4", "42"},
		Agents: []Agent{{Status: "BUSY"}},
	})
	steps := []struct {
		cmd   string
		lines int
		want  []string
	}{
		{"ANSWER", 1, []string{"200 result=0"}},
		{`STREAM FILE hello-world "12"`, 1, []string{"200 result=49 endpos=4000"}},
		{`STREAM FILE hello-world ""`, 1, []string{"200 result=0 endpos=11234"}},
		{"WAIT FOR DIGIT 5000", 1, []string{"200 result=52"}},
		{"GET DATA beep 8000 4", 1, []string{"200 result=42 (timeout)"}},
		{"WAIT FOR DIGIT", 3, []string{"520-Invalid command syntax.  Proper usage follows:", "Usage: WAIT FOR DIGIT <timeout>", "520 End of proper usage."}},
		{"FLY AWAY", 1, []string{"510 Invalid or unknown command"}},
		{`EXEC Dial "PJSIP/101,20,gr"`, 1, []string{"200 result=0"}},
		{"GET VARIABLE DIALSTATUS", 1, []string{"200 result=1 (BUSY)"}},
		{"GET VARIABLE NOPE", 1, []string{"200 result=0"}},
		{`SET VARIABLE MYVAR "set by fastagi"`, 1, []string{"200 result=1"}},
		{`GET FULL VARIABLE "${MYVAR}/${CALLERID(num)}"`, 1, []string{"200 result=1 (set by fastagi/5550007000)"}},
		{"HANGUP", 2, []string{"200 result=1", "HANGUP"}},
		{"ANSWER", 1, []string{"511 Command Not Permitted on a dead channel or intercept routine"}},
		{"GET VARIABLE MYVAR", 1, []string{"200 result=1 (set by fastagi)"}},
	}
	for _, s := range steps {
		if got := do(s.cmd, s.lines); !reflect.DeepEqual(got, s.want) {
			t.Errorf("%s -> %q, want %q", s.cmd, got, s.want)
		}
	}
	if n := len(sess.Commands()); n != len(steps) {
		t.Errorf("%d commands recorded", n)
	}
}

// What Asterisk 20's app_dial does with U(): the subroutine runs on the
// first agent to answer only, and GOSUB_RESULT=ABORT hangs that agent up
// with DIALSTATUS left at ANSWER and nothing bridged (ANSWEREDTIME
// blank); the caller goes on with g and is hung up without it. A Gosub
// to a missing context fails, and Dial bridges the agent unasked.
func TestDialSubroutineLikeAsterisk(t *testing.T) {
	const u = "U(callflow-whisper-accept^custom/whisper^1^10)"
	tests := []struct {
		name    string
		script  Script
		opts    string
		reply   []string
		status  string
		talk    string
		retval  bool // GOSUB_RETVAL copied to the caller
		cause   int
		dialled string // DIALEDPEERNAME
	}{
		{
			name:   "accepted",
			script: Script{Agents: []Agent{{Answers: []Answer{{Key: "1"}}, Talk: 7 * time.Second}}},
			opts:   "g" + u, reply: []string{"200 result=0"}, status: "ANSWER", talk: "7", dialled: "PJSIP/101-0000002a",
		},
		{
			name:   "refused, caller goes on with g",
			script: Script{Agents: []Agent{{Answers: []Answer{{Key: "2"}, {Target: "PJSIP/102", Key: "1"}}}}},
			opts:   "g" + u, reply: []string{"200 result=0"}, status: "ANSWER", retval: true, dialled: "PJSIP/101-0000002a",
		},
		{
			name:   "refused without g hangs the caller up too",
			script: Script{Agents: []Agent{{Answers: []Answer{{}}}}},
			opts:   "r" + u, reply: []string{"200 result=-1", "HANGUP"}, status: "ANSWER", retval: true, cause: 16, dialled: "PJSIP/101-0000002a",
		},
		{
			name:   "missing subroutine bridges unasked",
			script: Script{Agents: []Agent{{Answers: []Answer{{Key: ""}}, Talk: 3 * time.Second}}, MissingContexts: []string{"callflow-whisper-accept"}},
			opts:   "g" + u, reply: []string{"200 result=0"}, status: "ANSWER", talk: "3", dialled: "PJSIP/101-0000002a",
		},
		{
			name:   "nobody answers",
			script: Script{Agents: []Agent{{Status: "NOANSWER"}}},
			opts:   "g" + u, reply: []string{"200 result=0"}, status: "NOANSWER",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, do, sess := peer(t, tt.script)
			if got := do(`EXEC Dial "PJSIP/101&PJSIP/102,20,`+tt.opts+`"`, len(tt.reply)); !reflect.DeepEqual(got, tt.reply) {
				t.Errorf("Dial -> %q, want %q", got, tt.reply)
			}
			for name, want := range map[string]string{"DIALSTATUS": tt.status, "ANSWEREDTIME": tt.talk, "DIALEDPEERNAME": tt.dialled} {
				if v, _ := sess.Var(name); v != want {
					t.Errorf("%s = %q, want %q", name, v, want)
				}
			}
			if _, ok := sess.Var("GOSUB_RETVAL"); ok != tt.retval {
				t.Errorf("GOSUB_RETVAL set %v, want %v", ok, tt.retval)
			}
			if c := sess.HangupCause(); c != tt.cause {
				t.Errorf("hangup cause %d, want %d", c, tt.cause)
			}
		})
	}
}

// The Local legs of asterisk/extensions.conf: leg N dials the Nth of
// CALLFLOW_TARGETS with the subroutine and answers only when its agent
// accepted, so the first to accept wins.
func TestDialLegsLikeTheShippedDialplan(t *testing.T) {
	const legs = `EXEC Dial "Local/1@callflow-whisper-leg&Local/2@callflow-whisper-leg,40,g"`
	tests := []struct {
		name    string
		script  Script
		status  string
		dialled string
		number  string
	}{
		{
			name:   "second agent accepts after the first refused",
			script: Script{Agents: []Agent{{Answers: []Answer{{Target: "PJSIP/101", Key: "3"}, {Target: "PJSIP/102", Key: "1"}}}}},
			status: "ANSWER", dialled: "Local/2@callflow-whisper-leg-0000002a;1", number: "2@callflow-whisper-leg",
		},
		{
			name:   "nobody accepts: no answer",
			script: Script{Agents: []Agent{{Answers: []Answer{{Target: "PJSIP/102"}}}}},
			status: "NOANSWER",
		},
		{
			name:   "every leg busy",
			script: Script{Agents: []Agent{{Status: "BUSY"}}},
			status: "BUSY",
		},
		{
			name:   "no leg context: the Local channels cannot be called",
			script: Script{Agents: []Agent{{Answers: []Answer{{Key: "1"}}}}, MissingContexts: []string{"callflow-whisper-leg"}},
			status: "CHANUNAVAIL",
		},
		{
			name:   "no subroutine: the leg bridges its agent unasked",
			script: Script{Agents: []Agent{{Answers: []Answer{{Key: ""}}}}, MissingContexts: []string{"callflow-whisper-accept"}},
			status: "ANSWER", dialled: "Local/1@callflow-whisper-leg-0000002a;1", number: "1@callflow-whisper-leg",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, do, sess := peer(t, tt.script)
			do(`SET VARIABLE _CALLFLOW_TARGETS "PJSIP/101&PJSIP/102"`, 1)
			do(`SET VARIABLE _CALLFLOW_ACCEPT "1"`, 1)
			if got := do(legs, 1); got[0] != "200 result=0" {
				t.Errorf("Dial -> %q", got)
			}
			for name, want := range map[string]string{"DIALSTATUS": tt.status, "DIALEDPEERNAME": tt.dialled, "DIALEDPEERNUMBER": tt.number} {
				if v, _ := sess.Var(name); v != want {
					t.Errorf("%s = %q, want %q", name, v, want)
				}
			}
		})
	}
}

func TestDialplanExists(t *testing.T) {
	_, do, _ := peer(t, Script{MissingContexts: []string{"callflow-whisper-leg"}})
	got := do(`GET FULL VARIABLE "${DIALPLAN_EXISTS(callflow-whisper-accept,s,1)}${DIALPLAN_EXISTS(callflow-whisper-leg,1,1)}${DIALPLAN_EXISTS(callflow-whisper-accept,x,1)}${DIALPLAN_EXISTS(nowhere)}"`, 1)
	if want := "200 result=1 (1000)"; got[0] != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// AGI's HANGUP sets no cause (Asterisk records 0, unknown); the Hangup()
// application sets the one given, by number or name, else the channel's
// own, else normal clearing.
func TestHangupCauseLikeAsterisk(t *testing.T) {
	tests := []struct {
		cmd   string
		reply []string
		cause int
	}{
		{"HANGUP", []string{"200 result=1", "HANGUP"}, 0},
		{"EXEC Hangup", []string{"200 result=-1", "HANGUP"}, 16},
		{"EXEC Hangup 17", []string{"200 result=-1", "HANGUP"}, 17},
		{"EXEC Hangup USER_BUSY", []string{"200 result=-1", "HANGUP"}, 17},
		{"EXEC Hangup nonsense", []string{"200 result=-1", "HANGUP"}, 16},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			_, do, sess := peer(t, Script{})
			if got := do(tt.cmd, len(tt.reply)); !reflect.DeepEqual(got, tt.reply) {
				t.Errorf("%s -> %q, want %q", tt.cmd, got, tt.reply)
			}
			if c := sess.HangupCause(); c != tt.cause {
				t.Errorf("cause %d, want %d", c, tt.cause)
			}
			// A second Hangup on the dead channel: no second HANGUP line,
			// and the cause given wins over the one already set.
			if got := do("EXEC Hangup 34", 1); got[0] != "200 result=-1" {
				t.Errorf("second hangup -> %q", got)
			}
			if c := sess.HangupCause(); c != 34 {
				t.Errorf("cause after Hangup(34): %d", c)
			}
		})
	}
}
