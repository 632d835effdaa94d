package agi

import (
	"bufio"
	"errors"
	"strconv"
	"strings"
)

const (
	// maxLine bounds one line from the peer so a hostile peer cannot
	// exhaust memory.
	maxLine = 64 << 10
	// maxUsageLines bounds a multi-line 520 reply.
	maxUsageLines = 256
	// maxCommand is what Asterisk reads of one command line (AGI_BUF_LEN
	// 2048 with fgets): a longer line would be split into two commands.
	maxCommand = 2046
	// maxEnv bounds the agi_ environment.
	maxEnv = 512
)

var errLineTooLong = errors.New("line longer than 64 KiB")

// readLine reads one line without its end of line, bounded by maxLine.
func readLine(br *bufio.Reader) (string, error) {
	var long []byte
	for {
		frag, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if long == nil {
				return trimEOL(frag), nil
			}
			if len(long)+len(frag) > maxLine {
				return "", errLineTooLong
			}
			return trimEOL(append(long, frag...)), nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(long)+len(frag) > maxLine {
				return "", errLineTooLong
			}
			long = append(long, frag...)
		default:
			return "", err
		}
	}
}

func trimEOL(b []byte) string {
	b = b[:len(b)-1]
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return string(b)
}

// quote makes s one AGI argument. Asterisk splits commands on spaces and
// tabs; inside "..." a backslash escapes the next character. A line break
// would end the command (and could smuggle in another), so it becomes a
// space; NUL would cut the line in Asterisk's C string, so it is dropped.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n', '\r':
			b.WriteByte(' ')
		case 0:
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// word is s as a bare argument when it needs no quoting, else quoted.
func word(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\"\\\r\n\x00") {
		return quote(s)
	}
	return s
}

// reply is Asterisk's answer to one command.
type reply struct {
	code   int    // 200, 510, 511, 520
	result string // the token after "result=" (200 only)
	extra  string // what follows the result token: "(timeout) endpos=12"
	text   string // the line(s) after the code, for error messages
}

// num is the result as an integer.
func (r reply) num() (int, bool) {
	n, err := strconv.Atoi(r.result)
	return n, err == nil
}

// value is the parenthesised value of "200 result=1 (value)". It may hold
// spaces and parentheses itself, so it runs to the last ")".
func (r reply) value() (string, bool) {
	if len(r.extra) >= 2 && r.extra[0] == '(' && r.extra[len(r.extra)-1] == ')' {
		return r.extra[1 : len(r.extra)-1], true
	}
	return "", false
}

// reason is the first parenthesised word: "(dtmf) endpos=5" -> "dtmf".
func (r reply) reason() string {
	if !strings.HasPrefix(r.extra, "(") {
		return ""
	}
	if i := strings.IndexByte(r.extra, ')'); i > 0 {
		return r.extra[1:i]
	}
	return ""
}

// endpos is the sample offset reported by STREAM FILE and RECORD FILE.
func (r reply) endpos() (int64, bool) {
	i := strings.LastIndex(r.extra, "endpos=")
	if i < 0 {
		return 0, false
	}
	v := r.extra[i+len("endpos="):]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && n >= 0
}

// lineKind classifies a line from the peer.
type lineKind int

const (
	lineBlank lineKind = iota
	lineHangup
	lineReply     // "200 result=0"
	lineMultiline // "520-Invalid command syntax..."
	lineBad
)

func classify(line string) lineKind {
	switch {
	case line == "":
		return lineBlank
	case strings.TrimRight(line, " \t") == "HANGUP":
		return lineHangup
	case len(line) >= 4 && isDigit(line[0]) && isDigit(line[1]) && isDigit(line[2]):
		switch line[3] {
		case ' ':
			return lineReply
		case '-':
			return lineMultiline
		}
	}
	return lineBad
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseReply parses a final reply line ("NNN text").
func parseReply(line string) (reply, error) {
	if classify(line) != lineReply {
		return reply{}, errors.New("not a reply line")
	}
	code, _ := strconv.Atoi(line[:3])
	r := reply{code: code, text: line[4:]}
	if code != 200 {
		return r, nil
	}
	rest, ok := strings.CutPrefix(r.text, "result=")
	if !ok {
		return r, errors.New("200 reply without result=")
	}
	r.result, r.extra, _ = strings.Cut(rest, " ")
	return r, nil
}
