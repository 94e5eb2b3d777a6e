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
)

// loadgen runs the clients of one run and collects what they saw.
type loadgen struct {
	cfg    config
	stderr io.Writer
	runID  string         // distinguishes this run's player names from earlier runs'
	hc     []*http.Client // one per source address (one plain client without --sources)

	clients []*client // slot i written only by client i's goroutine, read after all stop

	connected atomic.Int64 // open now
	settled   atomic.Int64 // clients past their connection attempt (open or failed)
	failed    atomic.Int64
	pending   atomic.Int64 // answers scheduled, not yet sent
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

	receipts map[uint64]receipt
	acks     int
	answers  atomic.Int64
	results  int
	errors   map[string]int

	timersMu sync.Mutex
	timers   map[uint64]*time.Timer // pending answers by start seq
	timersWG sync.WaitGroup
}

type receipt struct {
	at time.Time // carries the monotonic clock reading
	n  int
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

// runClient joins, connects and plays client i until ctx ends or the server closes.
func (lg *loadgen) runClient(ctx context.Context, i int) {
	c := &client{
		id:       i,
		name:     fmt.Sprintf("lg-%s-%d", lg.runID, i),
		node:     lg.cfg.nodes[i%len(lg.cfg.nodes)],
		receipts: map[uint64]receipt{},
		errors:   map[string]int{},
		timers:   map[uint64]*time.Timer{},
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
	c.ok = true
	conn.SetReadLimit(1 << 20)
	lg.connected.Add(1)

	closed := make(chan struct{})
	stopClose := context.AfterFunc(ctx, func() {
		defer close(closed)
		conn.Close(websocket.StatusNormalClosure, "load generator done")
	})
	err = lg.read(ctx, conn, c)
	lg.connected.Add(-1)
	if stopClose() { // the run goes on: the server or the network ended it
		c.dropped = err.Error()
		conn.CloseNow()
	} else {
		<-closed
	}
	c.timersMu.Lock()
	for _, t := range c.timers {
		if t.Stop() {
			c.timersWG.Done()
			lg.pending.Add(-1)
		}
	}
	c.timers = nil
	c.timersMu.Unlock()
	c.timersWG.Wait()
}

// connect joins the room as c.name and opens its WebSocket.
func (lg *loadgen) connect(ctx context.Context, hc *http.Client, c *client) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
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

// frame holds the fields of server frames loadgen looks at.
type frame struct {
	Type string `json:"type"`
	N    int    `json:"n"`
	Seq  uint64 `json:"seq"`
	Code string `json:"code"`
}

// read handles c's frames until the connection ends, and returns why it ended.
func (lg *loadgen) read(ctx context.Context, conn *websocket.Conn, c *client) error {
	for {
		// Not ctx: cancelling a Read's context tears the socket down; ctx's AfterFunc
		// closes it cleanly instead, and Read then returns.
		_, data, err := conn.Read(context.Background())
		at := time.Now()
		if err != nil {
			return err
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			c.errors["bad_json"]++
			continue
		}
		switch f.Type {
		case "start":
			if _, dup := c.receipts[f.Seq]; dup {
				continue
			}
			c.receipts[f.Seq] = receipt{at: at, n: f.N}
			if err := lg.send(ctx, conn, fmt.Appendf(nil, `{"type":"ack","seq":%d}`, f.Seq)); err != nil {
				return err
			}
			c.acks++
			lg.noteStart(f.Seq)
			if lg.cfg.answer {
				lg.scheduleAnswer(ctx, conn, c, f.Seq, f.N)
			}
		case "result":
			c.results++
			lg.replies.Add(1)
		case "error":
			c.errors[f.Code]++
			lg.replies.Add(1)
		}
	}
}

// scheduleAnswer sends c's answer to question n, started by seq, after a reaction time.
func (lg *loadgen) scheduleAnswer(ctx context.Context, conn *websocket.Conn, c *client, seq uint64, n int) {
	msg := fmt.Appendf(nil, `{"type":"answer","n":%d,"choice":%d}`, n, lg.cfg.choice)
	lg.pending.Add(1)
	c.timersWG.Add(1)
	c.timersMu.Lock()
	defer c.timersMu.Unlock()
	c.timers[seq] = time.AfterFunc(lg.reaction(), func() {
		defer c.timersWG.Done()
		defer lg.pending.Add(-1)
		c.timersMu.Lock()
		delete(c.timers, seq)
		c.timersMu.Unlock()
		if ctx.Err() == nil && lg.send(ctx, conn, msg) == nil {
			c.answers.Add(1)
			lg.sent.Add(1)
		}
	})
}

// send writes one text frame, giving up after 5 s.
func (lg *loadgen) send(ctx context.Context, conn *websocket.Conn, msg []byte) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return conn.Write(ctx, websocket.MessageText, msg)
}
