package main

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Why open connections are capped per client address: net/http bounds the time a request
// may take, not how many connections one client keeps open while it takes it. 20,600
// slow joins from one address took all 20,000 file descriptors of the process; nobody
// else could connect, /healthz included, until they stopped.

// capListener is a net.Listener that closes, as soon as it accepts it, a connection from
// a client address that already has max open connections (WebSockets included). The
// address is the TCP peer (addrKey: an IPv6 /64); trusted proxies, which carry many
// clients' connections, are not capped.
type capListener struct {
	net.Listener
	max     int
	trusted proxies
	log     *slog.Logger
	refused prometheus.Counter

	mu   sync.Mutex
	open map[netip.Addr]int // open connections per address; none at 0
}

// newCapListener caps ln's connections at limit per client address.
func newCapListener(ln net.Listener, limit int, trusted proxies, log *slog.Logger) *capListener {
	return &capListener{Listener: ln, max: limit, trusted: trusted, log: log.With("component", "listener"), open: map[netip.Addr]int{},
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bulb_http_refused_connections_total", Help: "Connections closed at once: their client address had --conns-per-addr open.",
		})}
}

// Accept returns the next connection within its address's cap, closing those past it.
func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer := peerAddr(c.RemoteAddr().String())
		if l.trusted.trusts(peer) {
			return c, nil
		}
		a := addrKey(peer)
		l.mu.Lock()
		n := l.open[a]
		if n < l.max {
			l.open[a] = n + 1
		}
		l.mu.Unlock()
		if n < l.max {
			return &cappedConn{Conn: c, l: l, addr: a}, nil
		}
		c.Close()
		l.refused.Inc()
		l.log.Debug("connection refused: too many open from one address", "addr", a, "open", n)
	}
}

// release counts one of a's connections closed.
func (l *capListener) release(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[a]--; l.open[a] <= 0 {
		delete(l.open, a)
	}
}

// cappedConn is a connection counted by its capListener until it is closed, also after
// net/http has handed it over (a WebSocket).
type cappedConn struct {
	net.Conn
	l    *capListener
	addr netip.Addr
	once sync.Once
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}

// CloseWrite half-closes the connection, as net/http does before it closes one it
// answered with an error, so that the client reads the answer.
func (c *cappedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
