package web

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// defaultTrustedProxies: a reverse proxy on the same host.
var defaultTrustedProxies = []string{"127.0.0.0/8", "::1/128"}

// parsePrefixes reads addresses and CIDRs.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("web: trusted proxy %q is neither an address nor a CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func parseIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// peer is the address of the connection's other end.
func peer(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return parseIP(host)
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// fromProxy reports whether the request came through a trusted proxy.
func (s *Server) fromProxy(r *http.Request) bool {
	a, ok := peer(r)
	return ok && s.trusted(a)
}

// lastValue is the last of a header's comma-separated values: the one
// the nearest proxy added.
func lastValue(h http.Header, name string) string {
	vals := h.Values(name)
	if len(vals) == 0 {
		return ""
	}
	parts := strings.Split(vals[len(vals)-1], ",")
	return strings.TrimSpace(parts[len(parts)-1])
}

// clientAddr is the client's address: the connection's, or, through
// trusted proxies, the last address in X-Forwarded-For that is not one of
// them (addresses further left were written by the client and prove
// nothing).
func (s *Server) clientAddr(r *http.Request) (netip.Addr, bool) {
	a, ok := peer(r)
	if !ok || !s.trusted(a) {
		return a, ok
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		h, ok := parseIP(hops[i])
		if !ok {
			break
		}
		a = h
		if !s.trusted(h) {
			break
		}
	}
	return a, true
}

// defaultClientIP names the client for login rate limits.
func (s *Server) defaultClientIP(r *http.Request) string {
	if a, ok := s.clientAddr(r); ok {
		return a.String()
	}
	return r.RemoteAddr
}

// secure reports whether the request reached us over TLS: directly, or
// at a trusted proxy that says so in X-Forwarded-Proto.
func (s *Server) secure(r *http.Request) bool {
	if s.opts.Secure || r.TLS != nil {
		return true
	}
	return s.fromProxy(r) && strings.EqualFold(lastValue(r.Header, "X-Forwarded-Proto"), "https")
}

// local reports whether the request was made on this host: from a
// loopback address, not relayed by a proxy for someone else. A trusted
// proxy that forwards without X-Forwarded-For cannot say for whom, so
// such a request is not local.
func (s *Server) local(r *http.Request) bool {
	a, ok := s.clientAddr(r)
	if !ok || !a.IsLoopback() {
		return false
	}
	if r.Header.Get("X-Forwarded-For") != "" {
		return true // the chain ended at a loopback client
	}
	for _, h := range []string{"Forwarded", "X-Real-Ip", "X-Forwarded-Proto", "X-Forwarded-Host"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	return true
}
