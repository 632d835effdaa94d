package agi

import (
	"bufio"
	"strings"
	"testing"
)

// Whatever a peer sends, reading and classifying its lines never panics.
func FuzzReplyLines(f *testing.F) {
	for _, s := range []string{
		"200 result=49 endpos=12345\n", "200 result=0 (timeout) endpos=8000\n", "200 result=1 (some value)\n",
		"HANGUP\n", "511 Command Not Permitted on a dead channel or intercept routine\n",
		"520-Invalid command syntax.  Proper usage follows:\nUsage: ...\n520 End of proper usage.\n",
		"200 result=-1 (hangup) endpos=0\n", "garbage\r\n", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		br := bufio.NewReader(strings.NewReader(in))
		for range 64 {
			line, err := readLine(br)
			if err != nil {
				return
			}
			classify(line)
			if r, err := parseReply(line); err == nil {
				r.num()
				r.value()
				r.reason()
				r.endpos()
			}
		}
	})
}
