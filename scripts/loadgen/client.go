package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/bulbquiz/bulb/internal/clocksync"
)

// loadgen runs the clients of one run and collects what they saw.
type loadgen struct {
	cfg    config
	stderr io.Writer
	runID  string         // distinguishes this run's player names from earlier runs'
	hc     []*http.Client // one per source address (one plain client without --sources)

	clock clock // the clients' own clock, the page's performance.now()

	clients []*client // slot i written only by client i's goroutine, read after all stop

	connected atomic.Int64 // open now
	settled   atomic.Int64 // clients past their connection attempt (open or failed)
	failed    atomic.Int64
	pending   atomic.Int64 // reveals, reports and answers scheduled, not yet done
	sent      atomic.Int64 // answers sent
	replies   atomic.Int64 // result and error frames received

	mu        sync.Mutex
	seen      map[uint64]int // receipts per start seq
	order     []uint64       // seqs in the order first seen
	enough    chan struct{}  // closed when cfg.starts distinct starts were seen
	rngMu     sync.Mutex
	rng       *mrand.Rand
	startedAt time.Time
}

// client is one simulated student.
type client struct {
	id      int
	name    string
	node    string
	source  string
	err     string // why joining or connecting failed
	ok      bool   // connected
	dropped string // why the server ended the connection before the run did

	wire wire
	conn *websocket.Conn

	// Written by the reader goroutine only.
	receipts    map[uint64]receipt
	est         clocksync.Estimator
	syncReplies int
	results     int
	errors      map[string]int

	acks, seen, syncs, answers atomic.Int64 // frames sent

	mu      sync.Mutex
	reveals map[uint64]reveal // by start seq
	timers  map[int]scheduled // work not yet begun, by number
	nextT   int
	stopped bool // no more work is scheduled
	work    sync.WaitGroup
}

type receipt struct {
	at time.Time // carries the monotonic clock reading
	n  int
	// reveal is the start's reveal instant (server time, ms), 0 for an immediate start.
	reveal float64
}

// reveal is when a client lit the bulb of a start.
type reveal struct {
	at   time.Time
	late bool // the start came after its instant
	// server is the instant in server time by the client's synced clock, and clockErr
	// that clock's error bound (ms); hasClock is false for a client without one.
	server, clockErr float64
	hasClock         bool
}

func newLoadgen(cfg config, stderr io.Writer) *loadgen {
	var id [3]byte
	rand.Read(id[:])
	lg := &loadgen{
		cfg:     cfg,
		stderr:  stderr,
		runID:   hex.EncodeToString(id[:]),
		clients: make([]*client, cfg.clients),
		seen:    map[uint64]int{},
		enough:  make(chan struct{}),
		rng:     mrand.New(mrand.NewPCG(cfg.seed, 0x6c6f6164)),
		clock:   newClock(),
	}
	sources := cfg.sources
	if len(sources) == 0 {
		sources = []net.IP{nil}
	}
	for _, ip := range sources {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		if ip != nil {
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
		lg.hc = append(lg.hc, &http.Client{Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: 32,
			IdleConnTimeout:     10 * time.Second,
		}})
	}
	return lg
}

// run ramps up the clients, waits until the run ends and returns the report. Every
// goroutine it starts has stopped when it returns.
func (lg *loadgen) run(ctx context.Context) *report {
	lg.startedAt = time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if lg.cfg.duration > 0 {
		var c context.CancelFunc
		ctx, c = context.WithTimeout(ctx, lg.cfg.duration)
		defer c()
	}
	var wg sync.WaitGroup
	wg.Go(func() { lg.ramp(ctx, &wg) })
	wg.Go(func() { lg.showProgress(ctx) })
	if lg.cfg.starts > 0 {
		wg.Go(func() { lg.stopAfterStarts(ctx, cancel) })
	}
	<-ctx.Done()
	wg.Wait()
	for _, hc := range lg.hc {
		hc.CloseIdleConnections()
	}
	return lg.report(time.Since(lg.startedAt))
}

// ramp starts the clients at cfg.rate per second, each under wg.
func (lg *loadgen) ramp(ctx context.Context, wg *sync.WaitGroup) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	start, launched := time.Now(), 0
	for launched < lg.cfg.clients {
		due := lg.cfg.clients
		if lg.cfg.rate > 0 {
			due = min(due, 1+int(lg.cfg.rate*time.Since(start).Seconds()))
		}
		for ; launched < due; launched++ {
			i := launched
			wg.Go(func() { lg.runClient(ctx, i) })
		}
		if launched == lg.cfg.clients {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// showProgress prints connected/target on stderr every cfg.progress until every client
// has tried to connect.
func (lg *loadgen) showProgress(ctx context.Context) {
	tick := time.NewTicker(lg.cfg.progress)
	defer tick.Stop()
	line := func() {
		fmt.Fprintf(lg.stderr, "loadgen: %d/%d connected, %d failed (%.1fs)\n",
			lg.connected.Load(), lg.cfg.clients, lg.failed.Load(), time.Since(lg.startedAt).Seconds())
	}
	for lg.settled.Load() < int64(lg.cfg.clients) {
		select {
		case <-ctx.Done():
			line()
			return
		case <-tick.C:
			line()
		}
	}
	fmt.Fprintf(lg.stderr, "loadgen: done connecting: %d/%d connected, %d failed (%.1fs)\n",
		lg.connected.Load(), lg.cfg.clients, lg.failed.Load(), time.Since(lg.startedAt).Seconds())
}

// stopAfterStarts cancels the run once cfg.starts distinct starts were seen and every
// open client has received them all with no answer pending, or cfg.grace after the last
// of them was first seen.
func (lg *loadgen) stopAfterStarts(ctx context.Context, cancel context.CancelFunc) {
	select {
	case <-ctx.Done():
		return
	case <-lg.enough:
	}
	deadline := time.NewTimer(lg.cfg.grace)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			cancel()
			return
		case <-tick.C:
			if lg.delivered() {
				cancel()
				return
			}
		}
	}
}

// delivered reports whether every open client has the first cfg.starts starts and every
// answer was sent and replied to.
func (lg *loadgen) delivered() bool {
	if lg.pending.Load() > 0 || lg.replies.Load() < lg.sent.Load() {
		return false
	}
	open := int(lg.connected.Load())
	lg.mu.Lock()
	defer lg.mu.Unlock()
	for _, seq := range lg.order[:lg.cfg.starts] {
		if lg.seen[seq] < open {
			return false
		}
	}
	return true
}

// noteStart counts one receipt of start seq.
func (lg *loadgen) noteStart(seq uint64) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if _, ok := lg.seen[seq]; !ok {
		lg.order = append(lg.order, seq)
		if len(lg.order) == lg.cfg.starts {
			close(lg.enough)
		}
	}
	lg.seen[seq]++
}

// reaction draws one reaction time: normal(mean, jitter) clamped at 0.
func (lg *loadgen) reaction() time.Duration {
	lg.rngMu.Lock()
	z := lg.rng.NormFloat64()
	lg.rngMu.Unlock()
	return max(0, lg.cfg.reactionMean+time.Duration(z*float64(lg.cfg.reactionJitter)))
}

// uniform draws from [0, 1).
func (lg *loadgen) uniform() float64 {
	lg.rngMu.Lock()
	defer lg.rngMu.Unlock()
	return lg.rng.Float64()
}

// runClient joins, connects and plays client i until ctx ends or the server closes.
func (lg *loadgen) runClient(ctx context.Context, i int) {
	c := &client{
		id:       i,
		name:     fmt.Sprintf("lg-%s-%d", lg.runID, i),
		node:     lg.cfg.nodes[i%len(lg.cfg.nodes)],
		wire:     wire{proto: lg.cfg.proto},
		receipts: map[uint64]receipt{},
		errors:   map[string]int{},
		reveals:  map[uint64]reveal{},
		timers:   map[int]scheduled{},
	}
	lg.clients[i] = c
	hc := lg.hc[i%len(lg.hc)]
	if len(lg.cfg.sources) > 0 {
		c.source = lg.cfg.sources[i%len(lg.cfg.sources)].String()
	}
	conn, err := lg.connect(ctx, hc, c)
	lg.settled.Add(1)
	if err != nil {
		if ctx.Err() == nil {
			c.err = err.Error()
			lg.failed.Add(1)
		} else {
			c.err = "run ended before connecting"
		}
		return
	}
	c.ok, c.conn = true, conn
	conn.SetReadLimit(1 << 20)
	lg.connected.Add(1)
	if !lg.cfg.ack {
		lg.startSync(ctx, c)
	}

	closed := make(chan struct{})
	stopClose := context.AfterFunc(ctx, func() {
		defer close(closed)
		conn.Close(websocket.StatusNormalClosure, "load generator done")
	})
	err = lg.read(ctx, c)
	lg.connected.Add(-1)
	if stopClose() { // the run goes on: the server or the network ended it
		c.dropped = err.Error()
		conn.CloseNow()
	} else {
		<-closed
	}
	c.stop(lg)
}

// connect joins the room as c.name and opens its WebSocket; over centrifuge, it opens
// the peer's WebSocket and connects and subscribes to the room's channel.
func (lg *loadgen) connect(ctx context.Context, hc *http.Client, c *client) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if lg.cfg.proto == protoCentrifuge {
		return lg.connectCentrifuge(ctx, hc, c)
	}
	body, _ := json.Marshal(map[string]string{"name": c.name})
	req, err := http.NewRequestWithContext(ctx, "POST", c.node+"/api/rooms/"+lg.cfg.room+"/players", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("join: %s %s", resp.Status, bytes.TrimSpace(raw))
	}
	var joined struct{ Token string }
	if err := json.Unmarshal(raw, &joined); err != nil || joined.Token == "" {
		return nil, fmt.Errorf("join: no token in %q", raw)
	}
	ws := "ws" + strings.TrimPrefix(c.node, "http") + "/ws?token=" + joined.Token
	conn, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	return conn, nil
}

// connectCentrifuge dials the peer, sends the connect and the subscribe to the room's
// channel in one message, as Centrifugo's SDKs do, and waits for both replies.
func (lg *loadgen) connectCentrifuge(ctx context.Context, hc *http.Client, c *client) (*websocket.Conn, error) {
	ws := "ws" + strings.TrimPrefix(c.node, "http") + centrifugePath
	conn, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	fail := func(err error) (*websocket.Conn, error) {
		conn.CloseNow()
		return nil, err
	}
	if err := conn.Write(ctx, websocket.MessageText, c.wire.centrifugeHello(c.name, lg.cfg.room)); err != nil {
		return fail(fmt.Errorf("connect: %w", err))
	}
	for answered := 0; answered < 2; {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return fail(fmt.Errorf("connect: %w", err))
		}
		in, err := c.wire.unwrap(data)
		if err != nil {
			return fail(fmt.Errorf("connect: %w", err))
		}
		if len(in.errs) > 0 {
			return fail(fmt.Errorf("connect: %s", strings.Join(in.errs, "; ")))
		}
		answered += len(in.replied)
	}
	return conn, nil
}

// frame holds the fields of server frames loadgen looks at.
type frame struct {
	Type string  `json:"type"`
	N    int     `json:"n"`
	Seq  uint64  `json:"seq"`
	At   float64 `json:"at"`
	Code string  `json:"code"`
	T0   float64 `json:"t0"`
	T1   float64 `json:"t1"`
	T2   float64 `json:"t2"`
}

// read handles c's messages until the connection ends, and returns why it ended.
func (lg *loadgen) read(ctx context.Context, c *client) error {
	for {
		// Not ctx: cancelling a Read's context tears the socket down; ctx's AfterFunc
		// closes it cleanly instead, and Read then returns.
		_, data, err := c.conn.Read(context.Background())
		at := time.Now()
		if err != nil {
			return err
		}
		in, err := c.wire.unwrap(data)
		if err != nil {
			c.errors["bad_json"]++
			continue
		}
		for _, e := range in.errs {
			c.errors[trim(e, 60)]++
		}
		for range in.pings {
			if err := lg.send(ctx, c, "", []byte("{}")); err != nil {
				return err
			}
		}
		for _, data := range in.frames {
			if err := lg.handle(ctx, c, data, at); err != nil {
				return err
			}
		}
	}
}

// handle handles one frame, received at instant at.
func (lg *loadgen) handle(ctx context.Context, c *client, data []byte, at time.Time) error {
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		c.errors["bad_json"]++
		return nil
	}
	switch f.Type {
	case "sync":
		if c.est.Add(clocksync.Sample{T0: f.T0, T1: f.T1, T2: f.T2, T3: lg.clock.ms(at)}) {
			c.syncReplies++
		}
	case "start":
		if _, dup := c.receipts[f.Seq]; dup {
			return nil
		}
		c.receipts[f.Seq] = receipt{at: at, n: f.N, reveal: f.At}
		lg.noteStart(f.Seq)
		return lg.onStart(ctx, c, f, at)
	case "result":
		c.results++
		lg.replies.Add(1)
	case "error":
		c.errors[f.Code]++
		lg.replies.Add(1)
	}
	return nil
}

// scheduled is work that waits for its time.
type scheduled struct {
	t      *time.Timer
	counts bool // in lg.pending
}

// after runs f on a goroutine of its own after d, unless c stopped by then. Work that
// counts is in lg.pending until it is done or cancelled: the run waits for it.
func (lg *loadgen) after(c *client, d time.Duration, counts bool, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	if counts {
		lg.pending.Add(1)
	}
	c.work.Add(1)
	id := c.nextT
	c.nextT++
	c.timers[id] = scheduled{counts: counts, t: time.AfterFunc(d, func() {
		defer c.work.Done()
		if counts {
			defer lg.pending.Add(-1)
		}
		c.mu.Lock()
		delete(c.timers, id)
		stopped := c.stopped
		c.mu.Unlock()
		if !stopped {
			f()
		}
	})}
}

// stop cancels c's scheduled work and waits for what already began.
func (c *client) stop(lg *loadgen) {
	c.mu.Lock()
	c.stopped = true
	for _, s := range c.timers {
		if s.t.Stop() {
			c.work.Done()
			if s.counts {
				lg.pending.Add(-1)
			}
		}
	}
	c.mu.Unlock()
	c.work.Wait()
}

// send writes one frame of type typ (as the client's protocol carries it), giving up
// after 5 s; typ "" sends msg as it is.
func (lg *loadgen) send(ctx context.Context, c *client, typ string, msg []byte) error {
	if typ != "" {
		msg = c.wire.wrap(typ, msg)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return c.conn.Write(ctx, websocket.MessageText, msg)
}
