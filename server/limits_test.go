package main

import (
	"bufio"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// mustRateLimited fails unless r is a 429 rate_limited with a Retry-After of 1 to max
// seconds.
func mustRateLimited(tb testing.TB, what string, r reply, maxWait int) {
	tb.Helper()
	if r.status != http.StatusTooManyRequests || r.code != "rate_limited" {
		tb.Fatalf("%s: got %v, want 429 rate_limited", what, r)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > maxWait {
		tb.Fatalf("%s: got Retry-After %q, want 1 to %d seconds", what, r.header.Get("Retry-After"), maxWait)
	}
}

// TestRateLimits: with the default limits, a class of 60 behind one address joins at once
// and a script joining on from there is refused with 429 and Retry-After after 120; one
// address probing room codes is refused after 20 unknown rooms, then whether the room
// exists or not, while calls that check a token first go on; other addresses are not
// affected.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)

	t.Run("joins", func(t *testing.T) {
		nat := clientFrom("127.0.0.4")
		began := time.Now()
		var wg sync.WaitGroup
		class := make([]reply, 60)
		for i := range class {
			wg.Go(func() { class[i] = s.join(nat, code, nil) })
		}
		wg.Wait()
		for i, r := range class {
			if r.status != http.StatusCreated {
				t.Fatalf("student %d of the class: got %v, want 201", i, r)
			}
		}
		joined := len(class)
		var r reply
		for r = s.join(nat, code, nil); r.status == http.StatusCreated && joined < 1000; r = s.join(nat, code, nil) {
			joined++
		}
		// 120 at once, and 2 a second refilled meanwhile.
		if most := 120 + int(2*time.Since(began).Seconds()) + 1; joined < 120 || joined > most {
			t.Errorf("joins from one address before a 429: got %d, want 120 to %d", joined, most)
		}
		mustRateLimited(t, "a script's join", r, 1)
		if r := s.join(clientFrom("127.0.0.5"), code, nil); r.status != http.StatusCreated {
			t.Errorf("a join from another address: got %v, want 201", r)
		}
	})

	t.Run("unknown rooms", func(t *testing.T) {
		prober := clientFrom("127.0.0.6")
		probes := 0
		for n := 0; probes < 20; n++ {
			if guess := fmt.Sprintf("%06d", n); guess != code {
				if r := s.join(prober, guess, nil); r.status != http.StatusNotFound {
					t.Fatalf("probe %d: got %v, want 404", probes+1, r)
				}
				probes++
			}
		}
		// From now on a join's answer tells nothing: a known room gets the same 429, with
		// or without a token (a join checks none).
		_, player := s.MustJoin(t, code, "insider")
		mustRateLimited(t, "probe 21, an unknown room", s.join(prober, "999999x", nil), 3)
		mustRateLimited(t, "probe 22, the known room", s.join(prober, code, nil), 3)
		mustRateLimited(t, "probe 23, with a player's token", s.join(prober, "999998x", map[string]string{"Authorization": "Bearer " + player}), 3)
		// Other calls check their token before the room: they cannot probe, and go on.
		if r := s.callWith(prober, "GET", "/api/rooms/"+code, map[string]string{"Authorization": "Bearer " + host}, ""); r.status != http.StatusOK {
			t.Errorf("the host's call from the prober's address: got %v, want 200", r)
		}
		if r := s.callWith(prober, "GET", "/api/rooms/999997x/leaderboard", nil, ""); r.status != http.StatusUnauthorized {
			t.Errorf("a call without a token from the prober's address: got %v, want 401", r)
		}
		if r := s.callWith(prober, "GET", "/api/rooms/000000x", map[string]string{"Authorization": "Bearer " + s.Admin}, ""); r.status != http.StatusNotFound {
			t.Errorf("the admin's look-up of an unknown room from the prober's address: got %v, want 404", r)
		}
		if r := s.join(clientFrom("127.0.0.7"), "000000x", nil); r.status != http.StatusNotFound {
			t.Errorf("an unknown room from another address: got %v, want 404", r)
		}
	})
}

// TestTrustedProxies: behind a trusted proxy each client is limited by the rightmost
// untrusted hop of X-Forwarded-For, which a client cannot forge; from any other address
// X-Forwarded-For counts for nothing. The proxy's connections are not capped per
// address; another address's are.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	const proxy, direct, direct2 = "127.0.0.8", "127.0.0.9", "127.0.0.10"
	s := MustStartServer(t, map[string]string{"BULB_TRUSTED_PROXIES": proxy + "/32, 10.0.0.0/8"}, "--join-rate", "2", "--conns-per-addr", "3")
	code, _ := s.MustRoom(t, sampleQuiz)
	viaProxy, notProxy := clientFrom(proxy), clientFrom(direct)
	xff := func(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }
	tests := []struct {
		name   string
		client *http.Client
		header map[string]string
		status int
	}{
		{"a client behind the proxy", viaProxy, xff("198.51.100.7"), 201},
		{"its second join", viaProxy, xff("198.51.100.7"), 201},
		{"its third: over 2 a minute", viaProxy, xff("198.51.100.7"), 429},
		{"another client behind the proxy", viaProxy, xff("198.51.100.8"), 201},
		{"the first with a forged hop on the left", viaProxy, xff("203.0.113.1, 198.51.100.7"), 429},
		{"the first behind two trusted proxies", viaProxy, xff("198.51.100.7, 10.1.2.3"), 429},
		{"the first as an IPv4-mapped IPv6 address with a port", viaProxy, xff("[::ffff:198.51.100.7]:4711"), 429},
		{"a client of an IPv6 /64", viaProxy, xff("2001:db8:1:2::1"), 201},
		{"another address of that /64", viaProxy, xff("2001:db8:1:2::ffff"), 201},
		{"a third of that /64", viaProxy, xff("2001:db8:1:2:abcd::1"), 429},
		{"the next /64", viaProxy, xff("2001:db8:1:3::1"), 201},
		{"not a proxy: X-Forwarded-For ignored", notProxy, xff("198.51.100.20"), 201},
		{"not a proxy, another X-Forwarded-For", notProxy, xff("198.51.100.21"), 201},
		{"not a proxy, a third", notProxy, xff("198.51.100.22"), 429},
	}
	for _, tt := range tests {
		r := s.join(tt.client, code, tt.header)
		if r.status != tt.status {
			t.Fatalf("%s: got %v, want %d", tt.name, r, tt.status)
		}
		if tt.status == http.StatusTooManyRequests {
			mustRateLimited(t, tt.name, r, 30)
		}
	}

	// The proxy may hold more than 3 connections; another address may not.
	addr := strings.TrimPrefix(s.URL, "http://")
	for _, from := range []string{proxy, direct2} {
		served := 0
		for i := range 6 {
			c, err := dialerFrom(from).Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: bulb\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && resp.StatusCode == http.StatusOK {
				served++
			} else if from == proxy || i < 3 {
				t.Errorf("connection %d from %s: got %v, want 200", i+1, from, err)
			}
		}
		if want := map[string]int{proxy: 6, direct2: 3}[from]; served != want {
			t.Errorf("open connections served from %s: got %d, want %d", from, served, want)
		}
	}
}

// TestAddrLimitsBounded: a stranger with many addresses cannot grow a limiter map past
// maxAddrs, and buckets that are full again are swept out, while one in use stays.
func TestAddrLimitsBounded(t *testing.T) {
	l := newAddrLimits(60)
	t0 := time.Now()
	for i := range maxAddrs + 1000 {
		l.bucket(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), t0).AllowN(t0, 1)
	}
	if got := l.size(); got > maxAddrs {
		t.Fatalf("addresses kept: got %d, want at most %d", got, maxAddrs)
	}
	// Two minutes on, every bucket is full again: the next new address sweeps them out.
	t1 := t0.Add(2 * sweepEvery)
	busy := netip.MustParseAddr("192.0.2.1")
	l.bucket(busy, t1)
	if got := l.size(); got != 1 {
		t.Fatalf("addresses kept after two minutes: got %d, want 1, the new one", got)
	}
	// The busy address uses up its bucket; at the next sweep it is not full yet: kept.
	t2 := t1.Add(sweepEvery / 2)
	for l.bucket(busy, t2).AllowN(t2, 1) {
	}
	l.bucket(netip.MustParseAddr("192.0.2.2"), t1.Add(sweepEvery))
	if got := l.size(); got != 2 {
		t.Errorf("addresses kept at the next sweep: got %d, want 2, the busy one and the new one", got)
	}
	if newAddrLimits(0) != nil {
		t.Error("newAddrLimits(0): got a limiter, want nil: no limit")
	}
}
