// Package vmname is the naming convention of voicemail recordings, shared
// by the applet that records them and the store that finds them again:
//
//	vm-<mailbox>-<call id>-<unix milliseconds>
//
// Names use only letters, digits, '_' and '-', which both Asterisk's
// recording names and file systems take as they are. Inside the mailbox
// and the call id, '_' escapes: "__" is '_', "_d" is '-', "_o" is '.',
// "_xHH" any other byte. So '-' only separates, and a name read back
// gives the mailbox exactly: a recording that lost its database row can
// be put back in the right mailbox.
package vmname

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

const prefix = "vm-"

// Name returns the recording name of a voicemail.
func Name(mailbox, callID string, at time.Time) string {
	return prefix + escape(mailbox) + "-" + escape(callID) + "-" + strconv.FormatInt(at.UnixMilli(), 10)
}

// Parse reads a name made by Name.
func Parse(name string) (mailbox, callID string, at time.Time, ok bool) {
	rest, found := strings.CutPrefix(name, prefix)
	if !found {
		return "", "", time.Time{}, false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return "", "", time.Time{}, false // Name never writes it
		}
	}
	parts := strings.Split(rest, "-")
	if len(parts) != 3 || parts[0] == "" {
		return "", "", time.Time{}, false
	}
	ms, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || ms < 0 {
		return "", "", time.Time{}, false
	}
	mailbox, err1 := unescape(parts[0])
	callID, err2 := unescape(parts[1])
	if err1 != nil || err2 != nil {
		return "", "", time.Time{}, false
	}
	return mailbox, callID, time.UnixMilli(ms).UTC(), true
}

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			b.WriteByte(c)
		case c == '_':
			b.WriteString("__")
		case c == '-':
			b.WriteString("_d")
		case c == '.':
			b.WriteString("_o")
		default:
			fmt.Fprintf(&b, "_x%02x", c)
		}
	}
	return b.String()
}

func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("dangling escape")
		}
		switch s[i+1] {
		case '_':
			b.WriteByte('_')
		case 'd':
			b.WriteByte('-')
		case 'o':
			b.WriteByte('.')
		case 'x':
			if i+3 >= len(s) {
				return "", fmt.Errorf("short escape")
			}
			v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				return "", err
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			return "", fmt.Errorf("bad escape _%c", s[i+1])
		}
		i++
	}
	return b.String(), nil
}
