// Package agitest is a scripted Asterisk 20 for FastAGI tests: it connects
// to a FastAGI server over TCP as res_agi does, sends the agi_ environment
// in Asterisk's order, and answers each command with the lines Asterisk
// would send, including the async HANGUP and dead-channel (511) replies
// after the caller hangs up.
package agitest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Script says what the caller and Asterisk do. Command indexes are 1-based
// in the order the server sends commands.
type Script struct {
	// Request is agi_request (default "agi://ADDR/"); agi_network_script
	// is derived from it as Asterisk does.
	Request string
	// Env overrides or adds agi_ variables ("agi_dnid": "+15551234");
	// an empty value is sent as such.
	Env map[string]string
	// Args are the AGI(url,arg1,...) arguments (agi_arg_N).
	Args []string
	// Vars are channel variables set before the call.
	Vars map[string]string

	// Keys are what the caller presses, one entry per command that plays
	// or listens (STREAM FILE, SAY DIGITS/NUMBER, WAIT FOR DIGIT, GET
	// DATA), in order: "" no key, "1" one key (GET DATA takes "42#" or
	// "42" which times out). A key that is not an escape digit of the
	// prompt is lost, as in Asterisk.
	Keys []string
	// Missing names sound files that do not exist (STREAM FILE answers
	// result=-1 endpos=0 and the channel stays up).
	Missing []string

	// Agents answer EXEC Dial, one per dial, in order (then NOANSWER).
	Agents []Agent
	// MissingContexts are contexts of asterisk/extensions.conf this
	// Asterisk lacks ("callflow-whisper-accept", "callflow-whisper-leg").
	MissingContexts []string

	// RecordFor is how long the caller speaks into RECORD FILE (3s).
	RecordFor time.Duration
	// RecordEnd is how a recording ends: "timeout" (silence or max
	// length, the default), "dtmf" (the first finish key) or "hangup".
	RecordEnd string
	// RecordDir is where RECORD FILE may write its WAV file; paths
	// outside it are answered but not written.
	RecordDir string

	// MessageStatus is MESSAGE_SEND_STATUS after MessageSend (SUCCESS).
	MessageStatus string

	// WaitsTakeTime: a WAIT FOR DIGIT that gets no key takes its whole
	// time, as in Asterisk (by default it answers at once, so that tests
	// of timeouts run fast).
	WaitsTakeTime bool

	// HangupAt: the caller hangs up during command N (a playing or
	// listening command returns -1, then HANGUP) or just before it (HANGUP,
	// then the dead-channel answer).
	HangupAt int
	// MalformedAt: command N is answered with a line that is not AGI.
	MalformedAt int
	// SilentAt: from command N on, nothing is answered.
	SilentAt int
	// Replies replace the answer to command N with raw text (lines
	// ending in "\n").
	Replies map[int]string
}

// Agent is how one dial ends.
type Agent struct {
	// Status is DIALSTATUS: ANSWER, NOANSWER, BUSY, CONGESTION,
	// CHANUNAVAIL... ("" is NOANSWER).
	Status string
	// Target is the dial string that answers ("" the first).
	Target string
	// Talk is the conversation's length (ANSWEREDTIME).
	Talk time.Duration
	// CallerHangsUp: the caller ends the conversation, so Dial returns
	// -1 and the channel is dead; otherwise the agent hangs up and the
	// caller goes on (Dial's g option).
	CallerHangsUp bool
	// Answers are the agents who pick up, in order, in a dial whose
	// agents must accept (the callflow-whisper-accept subroutine). Each
	// hears the whisper and presses Key; the first whose key is an accept
	// key is bridged (Talk, CallerHangsUp) and Status is ignored. Without
	// Answers, Status ANSWER means Target picks up and presses nothing.
	Answers []Answer
}

// Answer is an agent picking up a dial with an accept key.
type Answer struct {
	Target string // the agent's dial string ("" the first target)
	Key    string // pressed after the whisper; "" none, so the wait times out
}

// Session is one scripted FastAGI session.
type Session struct {
	conn   net.Conn
	script Script

	wmu sync.Mutex // replies and HangUp write

	mu       sync.Mutex
	commands []string
	vars     map[string]string
	answered bool
	dead     bool
	cause    int // the channel's hangup cause, as CDRs record it
	keys     int
	agents   int
	done     chan struct{}
	err      error
}

// Dial connects to a FastAGI server at addr and plays script.
func Dial(ctx context.Context, addr string, script Script) (*Session, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Session{conn: conn, script: script, vars: map[string]string{}, done: make(chan struct{})}
	for k, v := range script.Vars {
		s.vars[k] = v
	}
	if s.script.Request == "" {
		s.script.Request = "agi://" + addr + "/"
	}
	if _, err := io.WriteString(conn, s.environment()); err != nil {
		conn.Close()
		return nil, err
	}
	go s.serve()
	return s, nil
}

// environment is what res_agi sends: agi_network and agi_network_script
// from launch_netscript, then setup_env's lines in its order, the
// arguments, and an empty line.
func (s *Session) environment() string {
	script := ""
	if rest, ok := strings.CutPrefix(s.script.Request, "agi://"); ok {
		if _, p, ok := strings.Cut(rest, "/"); ok {
			script = p
		}
	}
	env := [][2]string{
		{"agi_network", "yes"},
		{"agi_network_script", script},
		{"agi_request", s.script.Request},
		{"agi_channel", "Local/7000@from-pstn-0000002f;2"},
		{"agi_language", "en"},
		{"agi_type", "Local"},
		{"agi_uniqueid", "1795237640.96"},
		{"agi_version", "20.20.1"},
		{"agi_callerid", "5550007000"},
		{"agi_calleridname", "Agi Tester"},
		{"agi_callingpres", "0"},
		{"agi_callingani2", "0"},
		{"agi_callington", "0"},
		{"agi_callingtns", "0"},
		{"agi_dnid", "unknown"},
		{"agi_rdnis", "unknown"},
		{"agi_context", "from-pstn"},
		{"agi_extension", "7000"},
		{"agi_priority", "2"},
		{"agi_enhanced", "0.0"},
		{"agi_accountcode", ""},
		{"agi_threadid", "140517116741312"},
	}
	seen := map[string]bool{}
	var b strings.Builder
	for _, kv := range env {
		k, v := kv[0], kv[1]
		seen[k] = true
		if o, ok := s.script.Env[k]; ok {
			v = o
		}
		if k == "agi_network_script" && v == "" {
			continue // Asterisk omits it when the URL has no path
		}
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	for k, v := range s.script.Env {
		if !seen[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	for i, a := range s.script.Args {
		fmt.Fprintf(&b, "agi_arg_%d: %s\n", i+1, a)
	}
	b.WriteString("\n")
	return b.String()
}

// Commands returns the command lines received so far.
func (s *Session) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// Var returns a channel variable as the server left it.
func (s *Session) Var(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vars[name]
	return v, ok
}

// HangupCause is the hangup cause Asterisk records for the caller's
// channel (CDR, HANGUPCAUSE): 0 (unknown) while it is up or when the
// server hung up with AGI's HANGUP, which sets none.
func (s *Session) HangupCause() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cause
}

// HangUp hangs the caller up now, between commands: Asterisk sends
// HANGUP and the channel is dead from then on.
func (s *Session) HangUp() error {
	s.mu.Lock()
	s.callerGone()
	s.mu.Unlock()
	return s.write("HANGUP\n")
}

// callerGone marks the channel dead after the caller's phone hung up,
// which clears the call normally.
func (s *Session) callerGone() {
	s.dead = true
	if s.cause == 0 {
		s.cause = causeNormal
	}
}

// Wait waits until the server closes the session (or ctx ends) and
// returns the session's read error, nil for a clean close.
func (s *Session) Wait(ctx context.Context) error {
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the server has closed the session.
func (s *Session) Done() <-chan struct{} { return s.done }

// Close drops the connection (as Asterisk does when it goes away) and
// waits for the session to end.
func (s *Session) Close() error {
	err := s.conn.Close()
	<-s.done
	return err
}

func (s *Session) write(text string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(s.conn, text)
	return err
}

func (s *Session) serve() {
	defer close(s.done)
	defer s.conn.Close()
	br := bufio.NewReader(s.conn)
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		if err != nil {
			// A server that closes with our bytes unread resets the
			// connection: that is a close too.
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
				s.err = err
			}
			return
		}
		line = strings.TrimSuffix(line, "\n")
		s.mu.Lock()
		s.commands = append(s.commands, line)
		s.mu.Unlock()

		var out string
		switch raw, ok := s.script.Replies[n]; {
		case s.script.SilentAt > 0 && n >= s.script.SilentAt:
			continue
		case ok:
			out = raw
		case n == s.script.MalformedAt:
			out = "this is not AGI\n"
		default:
			out = s.answer(n, line)
		}
		if err := s.write(out); err != nil {
			return
		}
	}
}

// command describes one AGI command as res_agi registers it.
type command struct {
	words  []string
	dead   bool // allowed on a hung-up channel
	listen bool // plays or waits for the caller: a hang-up lands inside it
	minArg int  // argc bounds (words included), as the handlers check
	maxArg int
	usage  string
}

var commands = []command{
	{words: []string{"ANSWER"}, minArg: 1, maxArg: 1},
	{words: []string{"CHANNEL", "STATUS"}, minArg: 2, maxArg: 3},
	{words: []string{"EXEC"}, dead: true, minArg: 2, maxArg: 128, usage: "Usage: EXEC <application> <options>"},
	{words: []string{"GET", "DATA"}, listen: true, minArg: 3, maxArg: 5, usage: "Usage: GET DATA <file to be streamed> [timeout] [max digits]"},
	{words: []string{"GET", "FULL", "VARIABLE"}, dead: true, minArg: 4, maxArg: 5, usage: "Usage: GET FULL VARIABLE <variablename> [<channel name>]"},
	{words: []string{"GET", "VARIABLE"}, dead: true, minArg: 3, maxArg: 3, usage: "Usage: GET VARIABLE <variablename>"},
	{words: []string{"HANGUP"}, minArg: 1, maxArg: 2},
	{words: []string{"NOOP"}, dead: true, minArg: 1, maxArg: 128},
	{words: []string{"RECORD", "FILE"}, listen: true, minArg: 6, maxArg: 9, usage: "Usage: RECORD FILE <filename> <format> <escape digits> <timeout> [offset samples] [BEEP] [s=silence]"},
	{words: []string{"SAY", "DIGITS"}, listen: true, minArg: 4, maxArg: 4, usage: "Usage: SAY DIGITS <number> <escape digits>"},
	{words: []string{"SAY", "NUMBER"}, listen: true, minArg: 4, maxArg: 5, usage: "Usage: SAY NUMBER <number> <escape digits> [gender]"},
	{words: []string{"SET", "VARIABLE"}, dead: true, minArg: 4, maxArg: 4, usage: "Usage: SET VARIABLE <variablename> <value>"},
	{words: []string{"STREAM", "FILE"}, listen: true, minArg: 4, maxArg: 5, usage: "Usage: STREAM FILE <filename> <escape digits> [sample offset]"},
	{words: []string{"VERBOSE"}, dead: true, minArg: 2, maxArg: 3},
	{words: []string{"WAIT", "FOR", "DIGIT"}, listen: true, minArg: 4, maxArg: 4, usage: "Usage: WAIT FOR DIGIT <timeout>"},
}

func find(argv []string) *command {
	for i := range commands {
		c := &commands[i]
		if len(argv) < len(c.words) {
			continue
		}
		ok := true
		for j, w := range c.words {
			if !strings.EqualFold(argv[j], w) {
				ok = false
				break
			}
		}
		if ok {
			return c
		}
	}
	return nil
}

const (
	deadReply    = "511 Command Not Permitted on a dead channel or intercept routine\n"
	unknownReply = "510 Invalid or unknown command\n"
)

// answer is Asterisk's reply to command n.
func (s *Session) answer(n int, line string) string {
	argv := ParseArgs(line)
	c := find(argv)
	if c == nil {
		return unknownReply
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	prefix := ""
	if n == s.script.HangupAt && !s.dead {
		if c.listen || isDial(argv) {
			return s.hangupDuring(c, argv)
		}
		// The caller left while the server was thinking: Asterisk
		// noticed before reading this command.
		s.callerGone()
		prefix = "HANGUP\n"
	}
	if s.dead && !c.dead {
		return prefix + deadReply
	}
	if len(argv) < c.minArg || len(argv) > c.maxArg {
		if c.usage == "" {
			return prefix + "520 Invalid command syntax.  Proper usage not available.\n"
		}
		return prefix + "520-Invalid command syntax.  Proper usage follows:\n" + c.usage + "\n520 End of proper usage.\n"
	}
	return prefix + s.run(c, argv)
}

func isDial(argv []string) bool {
	return len(argv) >= 2 && strings.EqualFold(argv[0], "EXEC") && strings.EqualFold(argv[1], "Dial")
}

// hangupDuring answers a playing or listening command the caller hangs
// up in: -1, then the async HANGUP.
func (s *Session) hangupDuring(c *command, argv []string) string {
	s.callerGone()
	switch strings.ToUpper(strings.Join(c.words, " ")) {
	case "STREAM FILE":
		return "200 result=-1 endpos=4000\nHANGUP\n"
	case "RECORD FILE":
		samples := s.writeRecording(argv)
		return fmt.Sprintf("200 result=-1 (hangup) endpos=%d\nHANGUP\n", samples)
	case "EXEC":
		s.vars["DIALSTATUS"] = "CANCEL"
		return "200 result=-1\nHANGUP\n"
	}
	return "200 result=-1\nHANGUP\n"
}

// nextKey is the caller's input for one playing or listening command.
func (s *Session) nextKey() string {
	if s.keys >= len(s.script.Keys) {
		return ""
	}
	k := s.script.Keys[s.keys]
	s.keys++
	return k
}

func (s *Session) missing(file string) bool { return slices.Contains(s.script.Missing, file) }

// pressed is the result for a prompt with escape digits esc: the key's
// ASCII code when it is one of them, else 0 (Asterisk plays on).
func pressed(key, esc string) int {
	if len(key) == 1 && strings.Contains(esc, key) {
		return int(key[0])
	}
	return 0
}

func (s *Session) run(c *command, argv []string) string {
	switch strings.ToUpper(strings.Join(c.words, " ")) {
	case "ANSWER":
		s.answered = true
		return "200 result=0\n"
	case "CHANNEL STATUS":
		if s.answered {
			return "200 result=6\n" // AST_STATE_UP
		}
		return "200 result=4\n" // AST_STATE_RING
	case "HANGUP":
		s.dead = true // AGI HANGUP sets no cause
		return "200 result=1\nHANGUP\n"
	case "NOOP":
		return "200 result=0\n"
	case "VERBOSE":
		return "200 result=1\n"
	case "STREAM FILE":
		if s.missing(argv[2]) {
			return "200 result=-1 endpos=0\n"
		}
		if k := pressed(s.nextKey(), argv[3]); k != 0 {
			return fmt.Sprintf("200 result=%d endpos=%d\n", k, 4000)
		}
		return "200 result=0 endpos=11234\n"
	case "SAY DIGITS", "SAY NUMBER":
		return fmt.Sprintf("200 result=%d\n", pressed(s.nextKey(), argv[3]))
	case "WAIT FOR DIGIT":
		if _, err := strconv.Atoi(argv[3]); err != nil {
			return "520-Invalid command syntax.  Proper usage follows:\n" + c.usage + "\n520 End of proper usage.\n"
		}
		k := s.nextKey()
		if k == "" {
			if ms, _ := strconv.Atoi(argv[3]); s.script.WaitsTakeTime && ms > 0 {
				time.Sleep(time.Duration(ms) * time.Millisecond)
			}
			return "200 result=0\n"
		}
		return fmt.Sprintf("200 result=%d\n", k[0])
	case "GET DATA":
		k := s.nextKey()
		if digits, ok := strings.CutSuffix(k, "#"); ok {
			return "200 result=" + digits + "\n"
		}
		return "200 result=" + k + " (timeout)\n"
	case "GET VARIABLE":
		v, ok := s.lookup(argv[2])
		if !ok {
			return "200 result=0\n"
		}
		return "200 result=1 (" + v + ")\n"
	case "GET FULL VARIABLE":
		return "200 result=1 (" + s.expand(argv[3]) + ")\n"
	case "SET VARIABLE":
		s.set(argv[2], argv[3])
		return "200 result=1\n"
	case "RECORD FILE":
		return s.record(argv)
	case "EXEC":
		return s.exec(argv)
	}
	return unknownReply
}

func (s *Session) lookup(name string) (string, bool) {
	switch name {
	case "CALLERID(num)":
		if v, ok := s.vars[name]; ok {
			return v, true
		}
		return s.env("agi_callerid", "5550007000"), true
	case "CALLERID(name)":
		return s.env("agi_calleridname", "Agi Tester"), true
	}
	if v, ok := s.function(name); ok {
		return v, true
	}
	v, ok := s.vars[name]
	return v, ok
}

func (s *Session) env(k, def string) string {
	if v, ok := s.script.Env[k]; ok {
		return v
	}
	return def
}

// set is SET VARIABLE: a leading _ or __ only marks the variable for
// inheritance by the channels Dial makes; the name is the rest.
func (s *Session) set(name, value string) { s.vars[strings.TrimLeft(name, "_")] = value }

// expand substitutes ${NAME} as GET FULL VARIABLE does (unset is "").
func (s *Session) expand(expr string) string {
	var b strings.Builder
	for {
		i := strings.Index(expr, "${")
		if i < 0 {
			b.WriteString(expr)
			return b.String()
		}
		j := strings.IndexByte(expr[i:], '}')
		if j < 0 {
			b.WriteString(expr)
			return b.String()
		}
		b.WriteString(expr[:i])
		v, _ := s.lookup(expr[i+2 : i+j])
		b.WriteString(v)
		expr = expr[i+j+1:]
	}
}

func (s *Session) record(argv []string) string {
	if _, err := strconv.Atoi(argv[5]); err != nil {
		return "520-Invalid command syntax.  Proper usage follows:\nUsage: RECORD FILE <filename> <format> <escape digits> <timeout> [offset samples] [BEEP] [s=silence]\n520 End of proper usage.\n"
	}
	samples := s.writeRecording(argv)
	switch s.script.RecordEnd {
	case "hangup":
		s.callerGone()
		return fmt.Sprintf("200 result=-1 (hangup) endpos=%d\nHANGUP\n", samples)
	case "dtmf":
		if esc := argv[4]; esc != "" {
			return fmt.Sprintf("200 result=%d (dtmf) endpos=%d\n", esc[0], samples)
		}
	}
	return fmt.Sprintf("200 result=0 (timeout) endpos=%d\n", samples)
}

// writeRecording writes the caller's speech as RECORD FILE would and
// returns its length in samples (8 kHz).
func (s *Session) writeRecording(argv []string) int {
	speak := s.script.RecordFor
	if speak <= 0 {
		speak = 3 * time.Second
	}
	samples := int(speak.Milliseconds()) * 8
	if len(argv) > 5 {
		if ms, err := strconv.Atoi(argv[5]); err == nil && ms > 0 && ms*8 < samples {
			samples = ms * 8
		}
	}
	if len(argv) > 3 && argv[3] == "wav" && s.script.RecordDir != "" {
		file := filepath.Clean(argv[2] + ".wav")
		dir := filepath.Clean(s.script.RecordDir)
		if rel, err := filepath.Rel(dir, file); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel) {
			_ = WriteWAV(file, samples)
		}
	}
	return samples
}

func (s *Session) exec(argv []string) string {
	app := strings.ToLower(argv[1])
	data := ""
	if len(argv) > 2 {
		data = argv[2]
	}
	switch app {
	case "dial":
		if s.dead {
			return "200 result=-1\n"
		}
		return s.dial(data)
	case "hangup":
		return s.hangupApp(data)
	case "messagesend":
		status := s.script.MessageStatus
		if status == "" {
			status = "SUCCESS"
		}
		s.vars["MESSAGE_SEND_STATUS"] = status
		return "200 result=0\n"
	case "set":
		if k, v, ok := strings.Cut(data, "="); ok {
			s.vars[k] = v
		}
		return "200 result=0\n"
	case "mixmonitor", "stopmixmonitor", "noop", "verbose", "wait", "playback", "playtones", "stopplaytones", "startmusiconhold", "stopmusiconhold":
		return "200 result=0\n"
	}
	return "200 result=-2\n" // pbx_findapp failed
}

// causeNormal is Q.850 normal clearing.
const causeNormal = 16

// causeNames are the names ast_str2cause knows for the causes a flow uses.
var causeNames = map[string]int{
	"UNALLOCATED": 1, "NORMAL_CLEARING": causeNormal, "USER_BUSY": 17,
	"NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "CALL_REJECTED": 21,
	"ANSWERED_ELSEWHERE": 26, "INVALID_NUMBER_FORMAT": 28,
	"NORMAL_UNSPECIFIED": 31, "NORMAL_CIRCUIT_CONGESTION": 34,
	"NETWORK_OUT_OF_ORDER": 38, "BEARERCAPABILITY_NOTAVAIL": 58, "INTERWORKING": 127,
}

// hangupApp is the Hangup() application: the cause given by name or
// number, else the one already set, else normal clearing. It returns -1;
// Asterisk then notices the dead channel and sends HANGUP, once.
func (s *Session) hangupApp(data string) string {
	cause := causeNames[strings.ToUpper(data)]
	if n, err := strconv.Atoi(data); cause == 0 && err == nil && n > 0 {
		cause = n
	}
	if cause == 0 {
		cause = s.cause
	}
	if cause == 0 {
		cause = causeNormal
	}
	s.cause = cause
	if s.dead {
		return "200 result=-1\n"
	}
	s.dead = true
	return "200 result=-1\nHANGUP\n"
}

// The dialplan of asterisk/extensions.conf a dial with an accept key
// runs: one Local channel per agent into legContext, which dials the
// agent with U(acceptSub^whisper^keys^wait).
const (
	acceptSub  = "callflow-whisper-accept"
	legContext = "callflow-whisper-leg"
)

// extensionExists is DIALPLAN_EXISTS against the shipped dialplan, less
// Script.MissingContexts.
func (s *Session) extensionExists(context, exten, priority string) bool {
	if s.missingContext(context) || (priority != "" && priority != "1") {
		return false
	}
	switch context {
	case acceptSub:
		return exten == "" || exten == "s"
	case legContext: // _X!
		return exten == "" || (exten[0] >= '0' && exten[0] <= '9')
	case "from-pstn", "from-pstn-agi", "callflow-fallback", "agents":
		return true
	}
	return false
}

func (s *Session) missingContext(name string) bool {
	return slices.Contains(s.script.MissingContexts, name)
}

// function evaluates the dialplan functions the fake knows.
func (s *Session) function(expr string) (string, bool) {
	args, ok := strings.CutPrefix(expr, "DIALPLAN_EXISTS(")
	if !ok || !strings.HasSuffix(args, ")") {
		return "", false
	}
	a := append(strings.Split(strings.TrimSuffix(args, ")"), ","), "", "")
	if s.extensionExists(a[0], a[1], a[2]) {
		return "1", true
	}
	return "0", true
}

// nextAgent is the script's outcome for the next dial.
func (s *Session) nextAgent() Agent {
	a := Agent{Status: "NOANSWER"}
	if s.agents < len(s.script.Agents) {
		a = s.script.Agents[s.agents]
		if a.Status == "" {
			a.Status = "NOANSWER"
		}
	}
	s.agents++
	return a
}

// answers are the agents who pick up; an agent scripted without Answers
// but with Status ANSWER picks up and presses nothing.
func (a Agent) answers() []Answer {
	if len(a.Answers) == 0 && a.Status == "ANSWER" {
		return []Answer{{Target: a.Target}}
	}
	return a.Answers
}

// accepts is the subroutine's test: one key read, found among the keys.
func accepts(key, keys string) bool {
	return len(key) == 1 && strings.Contains(keys, key)
}

// dial plays the next agent's outcome and sets the variables app_dial
// sets (it blanks them first).
func (s *Session) dial(data string) string {
	parts := strings.Split(data, ",")
	for _, k := range []string{"DIALSTATUS", "ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDPEERNAME", "DIALEDPEERNUMBER"} {
		s.vars[k] = ""
	}
	if parts[0] == "" {
		s.vars["DIALSTATUS"] = "INVALIDARGS"
		return "200 result=-1\n"
	}
	targets := strings.Split(parts[0], "&")
	opts := ""
	if len(parts) > 2 {
		opts = parts[2]
	}
	a := s.nextAgent()
	if strings.HasPrefix(targets[0], "Local/") && strings.HasSuffix(targets[0], "@"+legContext) {
		return s.dialLegs(a, targets)
	}
	sub, hasSub := subroutine(opts)
	if !hasSub {
		if ans := a.answers(); len(ans) > 0 {
			return s.bridge(a, pick(targets, ans[0].Target))
		}
		s.vars["DIALSTATUS"] = a.Status
		return "200 result=0\n"
	}
	// U(): the first agent to answer runs the subroutine; app_dial has
	// hung the other targets up already.
	ans := a.answers()
	if len(ans) == 0 {
		s.vars["DIALSTATUS"] = a.Status
		return "200 result=0\n"
	}
	target := pick(targets, ans[0].Target)
	// A Gosub to a missing context fails, and Dial then bridges anyway.
	if s.missingContext(sub[0]) || sub[0] != acceptSub || accepts(ans[0].Key, at(sub, 2)) {
		return s.bridge(a, target)
	}
	// GOSUB_RESULT=ABORT: the agent is hung up, DIALSTATUS stays ANSWER
	// (set when the agent answered), nothing was bridged so ANSWEREDTIME
	// stays blank, and GOSUB_RETVAL (Return() sets it, "" here) is copied
	// to the caller. With g the caller goes on, else it is hung up too.
	s.answeredBy(target)
	s.vars["GOSUB_RETVAL"] = ""
	if strings.Contains(withoutArgs(opts), "g") {
		return "200 result=0\n"
	}
	s.callerGone()
	return "200 result=-1\nHANGUP\n"
}

// dialLegs rings Local/N@callflow-whisper-leg channels: leg N dials the
// Nth of CALLFLOW_TARGETS with the accept subroutine and answers the
// caller's Dial only once its agent accepted. A refused agent's leg
// hangs up with normal clearing, which Dial does not count as busy or
// congested: a dial no agent accepted is NOANSWER.
func (s *Session) dialLegs(a Agent, legs []string) string {
	if s.missingContext(legContext) {
		// The Local channels cannot be called: no such extension.
		s.vars["DIALSTATUS"] = "CHANUNAVAIL"
		return "200 result=0\n"
	}
	agents := strings.Split(s.vars["CALLFLOW_TARGETS"], "&")
	keys := s.vars["CALLFLOW_ACCEPT"]
	leg := func(target string) string {
		for _, l := range legs {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(l, "Local/"), "@"+legContext))
			if err == nil && n >= 1 && n <= len(agents) && (target == "" || agents[n-1] == target) {
				return l
			}
		}
		return ""
	}
	ans := a.answers()
	for _, an := range ans {
		l := leg(an.Target)
		if l == "" {
			continue
		}
		// Without the subroutine the leg's Dial bridges the agent unasked.
		if s.missingContext(acceptSub) || accepts(an.Key, keys) {
			return s.bridge(a, l)
		}
	}
	if len(ans) > 0 {
		s.vars["DIALSTATUS"] = "NOANSWER"
	} else {
		s.vars["DIALSTATUS"] = a.Status
	}
	return "200 result=0\n"
}

// answeredBy sets what Dial sets when target answers: DIALEDPEERNUMBER is
// the dial string's resource ("101", "2@callflow-whisper-leg").
func (s *Session) answeredBy(target string) {
	_, number, _ := strings.Cut(target, "/")
	name := target + "-0000002a"
	if strings.HasPrefix(target, "Local/") {
		name += ";1"
	}
	s.vars["DIALSTATUS"] = "ANSWER"
	s.vars["DIALEDPEERNAME"] = name
	s.vars["DIALEDPEERNUMBER"] = number
}

// bridge connects the caller with target for the agent's talk time.
func (s *Session) bridge(a Agent, target string) string {
	s.answeredBy(target)
	s.vars["ANSWEREDTIME"] = strconv.FormatInt(int64(a.Talk/time.Second), 10)
	s.vars["ANSWEREDTIME_MS"] = strconv.FormatInt(a.Talk.Milliseconds(), 10)
	if a.CallerHangsUp {
		s.callerGone()
		return "200 result=-1\nHANGUP\n"
	}
	return "200 result=0\n"
}

// pick is the target that answers: want, or the first one.
func pick(targets []string, want string) string {
	if want != "" {
		return want
	}
	return targets[0]
}

// subroutine finds Dial's U(context^arg1^...) option.
func subroutine(opts string) ([]string, bool) {
	i := strings.Index(opts, "U(")
	if i < 0 {
		return nil, false
	}
	body, _, ok := strings.Cut(opts[i+2:], ")")
	if !ok {
		return nil, false
	}
	return strings.Split(body, "^"), true
}

// withoutArgs drops the (...) arguments of Dial options, leaving the
// option letters.
func withoutArgs(opts string) string {
	var b strings.Builder
	depth := 0
	for _, r := range opts {
		switch {
		case r == '(':
			depth++
		case r == ')':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func at(a []string, i int) string {
	if i < len(a) {
		return a[i]
	}
	return ""
}
