package main

import (
	"net/http"
	"testing"
)

// TestClientAddr: the client address of a request, from its peer and X-Forwarded-For.
func TestClientAddr(t *testing.T) {
	ps, err := parsePrefixes("10.0.0.0/8, 192.0.2.1, 2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy", "198.51.100.1:5000", nil, "198.51.100.1"},
		{"no proxy, X-Forwarded-For ignored", "198.51.100.1:5000", []string{"203.0.113.9"}, "198.51.100.1"},
		{"a proxy without X-Forwarded-For", "10.0.0.2:5000", nil, "10.0.0.2"},
		{"a proxy", "10.0.0.2:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"an address alone is a /32", "192.0.2.1:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"its neighbour is no proxy", "192.0.2.2:5000", []string{"203.0.113.9"}, "192.0.2.2"},
		{"rightmost untrusted", "10.0.0.2:5000", []string{"1.1.1.1, 203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"several header lines", "10.0.0.2:5000", []string{"1.1.1.1", "203.0.113.9", "10.9.9.9"}, "203.0.113.9"},
		{"every hop a proxy", "10.0.0.2:5000", []string{"10.0.0.3, 10.0.0.4"}, "10.0.0.3"},
		{"garbage: the last proxy", "10.0.0.2:5000", []string{"203.0.113.9, junk, 10.0.0.5"}, "10.0.0.5"},
		{"a port", "10.0.0.2:5000", []string{"203.0.113.9:1234"}, "203.0.113.9"},
		{"IPv6 in brackets", "10.0.0.2:5000", []string{"[2001:db8::1]"}, "2001:db8::"},
		{"IPv6 is counted by its /64", "[2001:db8:1:2:3:4:5:6]:5000", nil, "2001:db8:1:2::"},
		{"an IPv6 proxy", "[2001:db8:ffff::1]:5000", []string{"2001:db8:1:2::9"}, "2001:db8:1:2::"},
		{"IPv4-mapped", "[::ffff:198.51.100.1]:5000", nil, "198.51.100.1"},
		{"a zone", "10.0.0.2:5000", []string{"fe80::1%eth0"}, "fe80::"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.peer, Header: http.Header{"X-Forwarded-For": tt.xff}}
			if got := proxies(ps).client(r); got.String() != tt.want {
				t.Errorf("peer %s, X-Forwarded-For %q: got %s, want %s", tt.peer, tt.xff, got, tt.want)
			}
		})
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example", "10.0.0.0/8,nope"} {
		if _, err := parsePrefixes(bad); err == nil {
			t.Errorf("parsePrefixes(%q): got no error, want one", bad)
		}
	}
}
