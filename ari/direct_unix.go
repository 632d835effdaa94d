//go:build unix

package ari

import (
	"errors"
	"net"
	"syscall"
)

// closedByPeer reports whether Asterisk closed (or wrote to) an idle
// connection: a peek that must not wait finds the end of the stream, a
// byte nobody asked for, or an error. One system call, no goroutine: what
// net/http learns from its reader goroutine.
func closedByPeer(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = n > 0 || err == nil || !(errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EINTR))
		return true
	})
	return closed || err != nil
}
