package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/bulbquiz/bulb/internal/apiclient"
	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/internal/lagproxy"
	"github.com/bulbquiz/bulb/internal/rlimit"
	"github.com/bulbquiz/bulb/internal/runinfo"
	"github.com/bulbquiz/bulb/internal/serverproc"
)

// lab is one run: the server it talks to, the latency proxies and the rooms.
type lab struct {
	cfg     config
	stderr  io.Writer
	api     *apiclient.Client // the server's
	admin   string            // admin token
	proxies *lagproxy.Proxies // one per group
	rooms   []*room           // one per mode
	readers sync.WaitGroup    // the clients' reader goroutines
}

// room is one mode's room and its clients.
type room struct {
	mode      string
	timing    string // the quiz's timing: arrival or compensated
	synced    bool   // the quiz's reveal is synced (else immediate)
	code      string
	hostToken string
	clients   []*client
	byID      map[string]int // player ID → index in clients
	open      atomic.Int32   // clients connected now
	replies   []atomic.Int32 // by question n: clients that have a reply to their answer

	questions [][]answer // by question n−1, filled by the host loop
	noTiming  int        // compensated answers without reactionUs (no recorded delivery)
	missing   int        // connected clients with no answer stored for a question
	timeouts  int        // questions closed before every reply came
	rtt       rttInfo
	reveals   []revealInfo // synced: each start's reveal, as the server reports it
}

// rttInfo is what the server's fairness report says of the round trips it measured.
type rttInfo struct {
	firstMeasured, firstRecipients int         // at the first start: players with rttUs > 0, and all
	byPlayer                       [][]float64 // ping round trips (rttUs) at each start, ms, by client index
	ackByPlayer                    [][]float64 // ack round trips (ackUs − writtenUs) of each start, ms
}

// client is one simulated student in one room.
type client struct {
	idx     int
	group   int
	cheater bool
	name    string
	id      string // player ID
	token   string
	room    *room
	rng     *rand.Rand // the reader goroutine's only
	conn    *websocket.Conn
	held    atomic.Int64 // pongs held back (cheaters)

	mu      sync.Mutex
	recs    map[int]*record // by question n
	errs    map[string]int  // error frames by code
	dropped string          // why the connection ended before the lab ended it
	closing bool            // the lab is closing the connection
	stopped bool            // the connection ended: no more timers
	timers  map[*time.Timer]struct{}
	pending sync.WaitGroup      // timers not stopped
	clock   clocksync.Estimator // synced rooms: the server's clock
	syncs   int                 // sync replies added to clock
}

// record is what a client saw of one question.
type record struct {
	receipt time.Time // of the start frame
	sent    time.Time // of the answer; zero until sent
	replied bool
	// The synced reveal: the start's reveal instant (server time, ms since the epoch; 0
	// for an immediate start), the clock estimate at the receipt (clocked: from samples;
	// else none, offset 0, and the client acks), when the client lit its bulb (zero
	// until then), and whether the start came after its instant.
	at      float64
	est     clocksync.Estimate
	clocked bool
	lit     time.Time
	late    bool
}

// origin is the instant the client's reaction counts from: its bulb lighting (a synced
// start) or the start frame's receipt (an immediate one).
func (r *record) origin() time.Time {
	if r.at > 0 {
		return r.lit
	}
	return r.receipt
}

// runLab runs the whole lab and returns its report.
func runLab(ctx context.Context, cfg config, args []string, stderr io.Writer) (*report, error) {
	began := time.Now()
	rep := &report{Machine: runinfo.This(), Command: "go run ./scripts/fairness" + runinfo.QuoteArgs(args)}
	perRoom := cfg.clients + cfg.cheaters*len(cfg.groups)
	// Per client: its socket, and the proxy's two; the server has its own process.
	if err := rlimit.RaiseNoFile(uint64(3*perRoom*len(cfg.modes) + 256)); err != nil {
		fmt.Fprintln(stderr, "fairness:", err)
	}

	l := &lab{cfg: cfg, stderr: stderr, admin: cfg.adminToken}
	base := cfg.url
	var srv *serverproc.Server
	if base == "" {
		var err error
		if srv, err = serverproc.Start(ctx, serverproc.Options{Bin: cfg.serverBin, PingInterval: cfg.pingInterval, Name: "fairness", Stderr: stderr}); err != nil {
			return nil, err
		}
		base, l.admin = srv.URL, srv.Token
	}
	l.api = apiclient.New(base, 64)
	defer l.api.CloseIdle()
	err := l.run(ctx)
	l.shutdown()
	if srv != nil {
		sum := srv.Stop()
		rep.ServerLog = &sum
		rep.ServerStarted = true
	}
	if err != nil {
		return nil, err
	}
	rep.Server = base
	rep.fill(cfg, l.rooms)
	rep.ElapsedS = num(time.Since(began).Seconds())
	rep.Machine.LoadEnd = runinfo.LoadAvg()
	return rep, nil
}

// run sets up the proxies, rooms and clients, lets round trips accumulate and plays the
// questions.
func (l *lab) run(ctx context.Context) error {
	if err := l.startProxies(); err != nil {
		return err
	}
	for _, mode := range l.cfg.modes {
		r, err := l.createRoom(ctx, mode)
		if err != nil {
			return err
		}
		l.rooms = append(l.rooms, r)
	}
	connectStart := time.Now()
	if err := l.connectAll(ctx); err != nil {
		return err
	}
	for _, r := range l.rooms {
		for _, c := range r.clients {
			r.byID[c.id] = c.idx
		}
	}
	fmt.Fprintf(l.stderr, "fairness: %d clients connected in %.1f s; waiting %s for ping round trips (every %s) to accumulate\n",
		len(l.rooms)*len(l.rooms[0].clients), time.Since(connectStart).Seconds(), l.cfg.warmup, l.cfg.pingInterval)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(l.cfg.warmup):
	}
	progress := time.Now()
	for n := 1; n <= l.cfg.questions; n++ {
		for _, r := range l.rooms {
			if err := l.question(ctx, r, n); err != nil {
				return fmt.Errorf("%s room, question %d: %w", r.mode, n, err)
			}
		}
		if time.Since(progress) > 10*time.Second || n == l.cfg.questions {
			fmt.Fprintf(l.stderr, "fairness: question %d of %d done in every mode\n", n, l.cfg.questions)
			progress = time.Now()
		}
	}
	for _, r := range l.rooms {
		if err := l.readFairness(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// startProxies starts one toxiproxy proxy per group in front of the server, with a
// latency toxic in each direction.
func (l *lab) startProxies() error {
	u, err := url.Parse(l.api.Base())
	if err != nil {
		return err
	}
	links := make([]lagproxy.Link, len(l.cfg.groups))
	for i, g := range l.cfg.groups {
		links[i] = lagproxy.Symmetric(g.DelayMs, g.JitterMs)
	}
	l.proxies, err = lagproxy.Start(u.Host, links)
	return err
}

// createRoom creates a room of cfg.questions choice questions (choice 0 right) with the
// given timing, and its clients: honest ones spread round-robin over the groups, then
// the cheaters of each group.
func (l *lab) createRoom(ctx context.Context, mode string) (*room, error) {
	type question struct {
		Kind    string   `json:"kind"`
		Text    string   `json:"text"`
		Choices []string `json:"choices"`
		Answer  int      `json:"answer"`
	}
	qz := struct {
		Title     string     `json:"title"`
		Timing    string     `json:"timing"`
		Reveal    string     `json:"reveal"`
		Questions []question `json:"questions"`
	}{Title: "fairness lab, " + mode, Timing: modeTiming(mode), Reveal: "immediate"}
	if modeSynced(mode) {
		qz.Reveal = "synced"
	}
	for n := 1; n <= l.cfg.questions; n++ {
		qz.Questions = append(qz.Questions, question{Kind: "choice", Text: fmt.Sprintf("Question %d: which is right?", n),
			Choices: []string{"right", "wrong", "also wrong", "not this one"}, Answer: 0})
	}
	var created struct{ Code, HostToken string }
	if err := l.api.Call(ctx, "POST", "/api/rooms", l.admin, qz, &created); err != nil {
		return nil, fmt.Errorf("creating the %s room: %w", mode, err)
	}
	r := &room{mode: mode, timing: modeTiming(mode), synced: modeSynced(mode), code: created.Code, hostToken: created.HostToken, byID: map[string]int{},
		replies: make([]atomic.Int32, l.cfg.questions+1)}
	add := func(g int, cheater bool, name string) {
		i := len(r.clients)
		r.clients = append(r.clients, &client{
			idx: i, group: g, cheater: cheater, name: name, room: r,
			rng:  rand.New(rand.NewPCG(l.cfg.seed, uint64(len(l.rooms))<<32|uint64(i))),
			recs: map[int]*record{}, errs: map[string]int{}, timers: map[*time.Timer]struct{}{},
		})
	}
	for i := range l.cfg.clients {
		g := i % len(l.cfg.groups)
		add(g, false, fmt.Sprintf("g%dms-%03d", l.cfg.groups[g].DelayMs, i/len(l.cfg.groups)))
	}
	for g, grp := range l.cfg.groups {
		for k := range l.cfg.cheaters {
			add(g, true, fmt.Sprintf("g%dms-cheater-%d", grp.DelayMs, k))
		}
	}
	return r, nil
}

// connectAll joins every client of every room (over HTTP, straight to the server) and
// connects its WebSocket through its group's proxy, a few at a time; each connected
// client's reader goroutine runs until shutdown.
func (l *lab) connectAll(ctx context.Context) error {
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(16)
	for _, r := range l.rooms {
		for _, c := range r.clients {
			eg.Go(func() error { return l.connect(ectx, c) })
		}
	}
	return eg.Wait()
}

func (l *lab) connect(ctx context.Context, c *client) error {
	var joined struct{ PlayerID, Token string }
	if err := l.api.Call(ctx, "POST", "/api/rooms/"+c.room.code+"/players", "", map[string]string{"name": c.name}, &joined); err != nil {
		return fmt.Errorf("joining %s as %s: %w", c.room.code, c.name, err)
	}
	c.id, c.token = joined.PlayerID, joined.Token
	opts := &websocket.DialOptions{}
	if c.cheater {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: dialPongDelayed(l.cfg.cheatDelay, &c.held)}}
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, "ws://"+l.proxies.Addr(c.group)+"/ws?token="+c.token, opts)
	if err != nil {
		return fmt.Errorf("connecting %s through the %s proxy: %w", c.name, l.cfg.groups[c.group], err)
	}
	conn.SetReadLimit(1 << 20)
	c.conn = conn
	r := c.room
	r.open.Add(1)
	l.readers.Go(func() {
		defer r.open.Add(-1)
		c.read(l.cfg)
	})
	if r.synced {
		c.startSync()
	}
	return nil
}

// frame holds the fields of server frames the clients look at.
type frame struct {
	Type       string  `json:"type"`
	N          int     `json:"n"`
	Seq        uint64  `json:"seq"`
	Code       string  `json:"code"`
	At         float64 `json:"at"` // start: the reveal instant (synced)
	T0, T1, T2 float64 // sync
}

// read handles the client's frames until its connection ends: it acks an immediate start
// at once and answers choice 0 after a reaction time; a synced start it lights at its
// instant and answers a reaction time after that, reporting seen (reveal); it adds sync
// replies to its clock and notes replies to its answers.
func (c *client) read(cfg config) {
	for {
		// Not a cancellable context: cancelling a Read tears the socket down.
		_, data, err := c.conn.Read(context.Background())
		at := time.Now()
		if err != nil {
			c.mu.Lock()
			if !c.closing {
				c.dropped = err.Error()
			}
			c.stopped = true
			for t := range c.timers {
				if t.Stop() {
					c.pending.Done()
				}
			}
			clear(c.timers)
			c.mu.Unlock()
			c.pending.Wait()
			return
		}
		var f frame
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		switch f.Type {
		case "sync":
			c.mu.Lock()
			if c.clock.Add(clocksync.Sample{T0: f.T0, T1: f.T1, T2: f.T2, T3: clocksync.Millis(at)}) {
				c.syncs++
			}
			c.mu.Unlock()
		case "start":
			c.mu.Lock()
			_, dup := c.recs[f.N]
			rec := &record{receipt: at, at: f.At}
			if !dup {
				rec.est, rec.clocked = c.clock.Estimate(clocksync.Millis(at))
				c.recs[f.N] = rec
			}
			c.mu.Unlock()
			if dup {
				continue
			}
			d := drawReaction(c.rng, cfg.reactionMean, cfg.reactionSD, cfg.reactionFloor)
			if f.At == 0 {
				c.send(fmt.Appendf(nil, `{"type":"ack","seq":%d}`, f.Seq))
				c.scheduleAnswer(f.N, d)
				continue
			}
			c.reveal(f.N, f.Seq, rec, d, seenPause(c.rng))
		case "result", "error":
			if f.Type == "error" {
				c.mu.Lock()
				c.errs[f.Code]++
				c.mu.Unlock()
			}
			c.mu.Lock()
			rec := c.recs[f.N]
			first := rec != nil && !rec.replied
			if first {
				rec.replied = true
			}
			c.mu.Unlock()
			if first && f.N >= 1 && f.N < len(c.room.replies) {
				c.room.replies[f.N].Add(1)
			}
		}
	}
}

// scheduleAnswer sends the right choice to question n after d.
func (c *client) scheduleAnswer(n int, d time.Duration) {
	msg := fmt.Appendf(nil, `{"type":"answer","n":%d,"choice":0}`, n)
	c.after(d, func() {
		sent := time.Now()
		c.mu.Lock()
		if rec := c.recs[n]; rec != nil {
			rec.sent = sent
		}
		c.mu.Unlock()
		c.send(msg)
	})
}

// after runs fn after d on a timer of its own, unless the lab is closing the client or
// its connection ended; the read loop stops the timers still waiting when it ends.
func (c *client) after(d time.Duration, fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.stopped {
		return
	}
	c.pending.Add(1)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		defer c.pending.Done()
		c.mu.Lock() // after holds it until t is set
		delete(c.timers, t)
		c.mu.Unlock()
		fn()
	})
	c.timers[t] = struct{}{}
}

// send writes one text frame, giving up after 5 s (the read loop then sees the failure).
func (c *client) send(msg []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.conn.Write(ctx, websocket.MessageText, msg)
}

// shutdown closes every client (in parallel: each close waits for the server's close
// frame through the proxy), waits for their goroutines and stops the proxies.
func (l *lab) shutdown() {
	var wg sync.WaitGroup
	for _, r := range l.rooms {
		for _, c := range r.clients {
			if c.conn == nil {
				continue
			}
			c.mu.Lock()
			c.closing = true
			c.mu.Unlock()
			wg.Go(func() { c.conn.Close(websocket.StatusNormalClosure, "lab done") })
		}
	}
	wg.Wait()
	l.readers.Wait()
	if l.proxies != nil {
		l.proxies.Stop()
	}
}
