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
