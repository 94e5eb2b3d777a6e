package main

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Bulb counts what one client may take (connections, joins, look-ups of unknown rooms) by
// its address. Behind a reverse proxy every connection comes from the proxy: its requests
// name the client in X-Forwarded-For, which only a trusted proxy's may.

// parsePrefixes parses comma-separated CIDRs (an address alone is its own /32 or /128).
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or an address", f)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// proxies are the trusted reverse proxies (--trusted-proxies).
type proxies []netip.Prefix

// trusts reports whether a is one of the proxies.
func (ps proxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// client returns the address a request is counted under: its TCP peer, or, when the peer
// is a trusted proxy, the rightmost hop of X-Forwarded-For that is not one (each proxy
// appends the address it got the request from, so hops to the left of the first
// untrusted one are whatever the client wrote). See addrKey for IPv6.
func (ps proxies) client(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !ps.trusts(peer) {
		return addrKey(peer)
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		fields := strings.Split(hops[i], ",")
		for j := len(fields) - 1; j >= 0; j-- {
			a, ok := parseHop(fields[j])
			if !ok { // not an address: the proxy that appended it is the last one known
				return addrKey(peer)
			}
			if !ps.trusts(a) {
				return addrKey(a)
			}
			peer = a
		}
	}
	return addrKey(peer) // every hop a proxy: a request of the proxies' own
}

// parseHop parses one X-Forwarded-For hop: an address, perhaps with a port, IPv6 perhaps
// in brackets.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone("").Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.WithZone("").Unmap(), true
	}
	return netip.Addr{}, false
}

// peerAddr parses a connection's remote address, "host:port".
func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().WithZone("").Unmap()
	}
	host, _, _ := net.SplitHostPort(remote)
	a, _ := netip.ParseAddr(host)
	return a.WithZone("").Unmap()
}

// addrKey is what limits count a client address under: an IPv4 address, or an IPv6
// address's /64, which one host or home network usually has whole.
func addrKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
