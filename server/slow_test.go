package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// slowClient is a raw connection from the attackers' address that does something slowly.
type slowClient struct {
	kind   string
	conn   net.Conn
	opened time.Time
	cut    chan time.Duration // when the server closed it, from opened
}

// TestSlowClientsCut: slow clients, from one address, are cut after the deadlines or
// refused past the cap of open connections per address, while /healthz and honest joins
// from another address keep answering throughout; a WebSocket of the same address
// outlives every deadline, and the address may connect again once its connections are
// closed. Before, 20,600 slow joins took all 20,000 file descriptors of the server.
func TestSlowClientsCut(t *testing.T) {
	t.Parallel()
	const (
		connCap        = 24
		headerTimeout  = 2 * time.Second
		readTimeout    = 3 * time.Second
		idleTimeout    = 2 * time.Second
		slack          = 2 * time.Second // for a loaded machine
		attacker       = "127.0.0.3"
		honestAddr     = "127.0.0.2"
		kindSlowBody   = "slow chunked body"
		kindSlowloris  = "slowloris header"
		kindIdle       = "idle keep-alive"
		interval       = 200 * time.Millisecond
		slowlorisSends = "X-Slow: yes\r\n"
	)
	s := MustStartServer(t, nil, "--header-timeout", headerTimeout.String(), "--read-timeout", readTimeout.String(),
		"--idle-timeout", idleTimeout.String(), "--conns-per-addr", strconv.Itoa(connCap))
	code, host := s.MustRoom(t, sampleQuiz)
	addr := strings.TrimPrefix(s.URL, "http://")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A player's WebSocket from the attackers' address, open before them: one of its cap.
	_, token := s.MustJoin(t, code, "wanda")
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws?token="+token, &websocket.DialOptions{HTTPClient: clientFrom(attacker)})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.CloseNow()
	wsOpened := time.Now()
	if _, data, err := ws.Read(ctx); err != nil || !strings.Contains(string(data), `"type":"welcome"`) {
		t.Fatalf("first frame: got %s, %v, want the welcome", data, err)
	}

	// The honest client: /healthz every 100 ms and a join every 500 ms, until stopped.
	honest := clientFrom(honestAddr)
	var honestMu sync.Mutex
	var honestFailed []string
	honestCalls := 0
	honestDone := make(chan struct{})
	stopHonest := make(chan struct{})
	go func() {
		defer close(honestDone)
		for i := 0; ; i++ {
			select {
			case <-stopHonest:
				return
			case <-time.After(100 * time.Millisecond):
			}
			r, want := s.callWith(honest, "GET", "/healthz", nil, ""), http.StatusOK
			if i%5 == 0 {
				r, want = s.join(honest, code, nil), http.StatusCreated
			}
			honestMu.Lock()
			honestCalls++
			if r.status != want {
				honestFailed = append(honestFailed, fmt.Sprintf("call %d: got %v, want %d", i, r, want))
			}
			honestMu.Unlock()
		}
	}()

	// The attackers take the rest of their address's cap.
	dialer := dialerFrom(attacker)
	var clients []*slowClient
	for i := range connCap - 1 {
		c := &slowClient{kind: []string{kindSlowBody, kindSlowloris, kindIdle}[i%3], cut: make(chan time.Duration, 1)}
		if c.conn, err = dialer.DialContext(ctx, "tcp", addr); err != nil {
			t.Fatalf("attacker %d: %v", i, err)
		}
		defer c.conn.Close()
		c.opened = time.Now()
		br := bufio.NewReader(c.conn)
		switch c.kind {
		case kindSlowBody:
			fmt.Fprintf(c.conn, "POST /api/rooms/%s/players HTTP/1.1\r\nHost: bulb\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n", code)
			go trickle(ctx, c.conn, interval, "1\r\n \r\n")
		case kindSlowloris:
			fmt.Fprintf(c.conn, "GET /healthz HTTP/1.1\r\nHost: bulb\r\n")
			go trickle(ctx, c.conn, interval, slowlorisSends)
		case kindIdle:
			fmt.Fprintf(c.conn, "GET /healthz HTTP/1.1\r\nHost: bulb\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("attacker %d: %v", i, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c.opened = time.Now() // idle from now
		}
		go func() {
			c.conn.SetReadDeadline(time.Now().Add(readTimeout + 3*slack))
			io.Copy(io.Discard, br) // whatever the server answers before it closes
			c.cut <- time.Since(c.opened)
		}()
		clients = append(clients, c)
	}

	// One more from that address is closed at once, without an answer, however honest.
	extra, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("extra connection: %v", err)
	}
	fmt.Fprintf(extra, "GET /healthz HTTP/1.1\r\nHost: bulb\r\n\r\n")
	extra.SetReadDeadline(time.Now().Add(time.Second))
	if got, err := io.ReadAll(extra); len(got) > 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection %d of the address: got %q, %v, want it closed without an answer", connCap+1, got, err)
	}
	extra.Close()

	// Each is cut after its deadline.
	deadline := map[string]time.Duration{kindSlowBody: readTimeout, kindSlowloris: headerTimeout, kindIdle: idleTimeout}
	for i, c := range clients {
		select {
		case d := <-c.cut:
			if i < 3 {
				t.Logf("%s: cut after %v", c.kind, d.Round(time.Millisecond))
			}
			if d > deadline[c.kind]+slack {
				t.Errorf("attacker %d, %s: cut after %v, want within %v", i, c.kind, d.Round(time.Millisecond), deadline[c.kind]+slack)
			}
		case <-time.After(readTimeout + 4*slack):
			t.Fatalf("attacker %d, %s: still open", i, c.kind)
		}
	}

	// The address may connect again; its WebSocket outlived every deadline.
	if r := s.callWith(clientFrom(attacker), "GET", "/healthz", nil, ""); r.status != http.StatusOK {
		t.Errorf("/healthz from the attackers' address once they are cut: got %v, want 200", r)
	}
	time.Sleep(time.Until(wsOpened.Add(readTimeout + idleTimeout)))
	s.mustCall(t, 200, "POST", "/api/rooms/"+code+"/questions/1/open", host, nil, nil)
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("the WebSocket, open %v: %v", time.Since(wsOpened).Round(time.Millisecond), err)
		}
		if strings.Contains(string(data), `"type":"question"`) {
			break
		}
	}

	// A header over 32 KiB is refused with 431.
	if r := s.callWith(honest, "GET", "/healthz", map[string]string{"X-Big": strings.Repeat("x", 40<<10)}, ""); r.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("40 KiB of header: got %v, want 431", r)
	}

	close(stopHonest)
	<-honestDone
	honestMu.Lock()
	defer honestMu.Unlock()
	if len(honestFailed) > 0 || honestCalls < 20 {
		t.Errorf("honest calls: %d, failed %d: %v", honestCalls, len(honestFailed), honestFailed)
	}
}

// trickle writes s to c every interval until a write fails or ctx is done.
func trickle(ctx context.Context, c net.Conn, interval time.Duration, s string) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		if _, err := io.WriteString(c, s); err != nil {
			return
		}
	}
}
