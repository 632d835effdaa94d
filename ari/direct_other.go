//go:build !unix

package ari

import "net"

// closedByPeer cannot peek here; a request on a closed connection is
// sent again when it may be (see direct.roundTrip).
func closedByPeer(net.Conn) bool { return false }
