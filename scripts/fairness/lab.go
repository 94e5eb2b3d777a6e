package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/bulbquiz/bulb/internal/apiclient"
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
	timers  map[int]*time.Timer
	pending sync.WaitGroup // answer timers not stopped
}

// record is what a client saw of one question.
type record struct {
	receipt time.Time // of the start frame
	sent    time.Time // of the answer; zero until sent
	replied bool
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
		Questions []question `json:"questions"`
	}{Title: "fairness lab, " + mode, Timing: mode}
	for n := 1; n <= l.cfg.questions; n++ {
		qz.Questions = append(qz.Questions, question{Kind: "choice", Text: fmt.Sprintf("Question %d: which is right?", n),
			Choices: []string{"right", "wrong", "also wrong", "not this one"}, Answer: 0})
	}
	var created struct{ Code, HostToken string }
	if err := l.api.Call(ctx, "POST", "/api/rooms", l.admin, qz, &created); err != nil {
		return nil, fmt.Errorf("creating the %s room: %w", mode, err)
	}
	r := &room{mode: mode, code: created.Code, hostToken: created.HostToken, byID: map[string]int{},
		replies: make([]atomic.Int32, l.cfg.questions+1)}
	add := func(g int, cheater bool, name string) {
		i := len(r.clients)
		r.clients = append(r.clients, &client{
			idx: i, group: g, cheater: cheater, name: name, room: r,
			rng:  rand.New(rand.NewPCG(l.cfg.seed, uint64(len(l.rooms))<<32|uint64(i))),
			recs: map[int]*record{}, errs: map[string]int{}, timers: map[int]*time.Timer{},
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
	return nil
}

// frame holds the fields of server frames the clients look at.
type frame struct {
	Type string `json:"type"`
	N    int    `json:"n"`
	Seq  uint64 `json:"seq"`
	Code string `json:"code"`
}

// read handles the client's frames until its connection ends: it acks each start at once
// and answers choice 0 after a reaction time; it notes replies.
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
			for n, t := range c.timers {
				if t.Stop() {
					c.pending.Done()
				}
				delete(c.timers, n)
			}
			c.mu.Unlock()
			c.pending.Wait()
			return
		}
		var f frame
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		switch f.Type {
		case "start":
			c.mu.Lock()
			_, dup := c.recs[f.N]
			if !dup {
				c.recs[f.N] = &record{receipt: at}
			}
			c.mu.Unlock()
			if dup {
				continue
			}
			c.send(fmt.Appendf(nil, `{"type":"ack","seq":%d}`, f.Seq))
			z := c.rng.NormFloat64()
			d := max(0, cfg.reactionMean+time.Duration(z*float64(cfg.reactionSD)))
			c.scheduleAnswer(f.N, d)
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.pending.Add(1)
	c.timers[n] = time.AfterFunc(d, func() {
		defer c.pending.Done()
		sent := time.Now()
		c.mu.Lock()
		delete(c.timers, n)
		if rec := c.recs[n]; rec != nil {
			rec.sent = sent
		}
		c.mu.Unlock()
		c.send(msg)
	})
}

// send writes one text frame, giving up after 5 s (the read loop then sees the failure).
func (c *client) send(msg []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.conn.Write(ctx, websocket.MessageText, msg)
}

// question plays question n in room r: open, start, wait for every connected client's
// reply, close, and read the ranks.
func (l *lab) question(ctx context.Context, r *room, n int) error {
	path := fmt.Sprintf("/api/rooms/%s/questions/%d/", r.code, n)
	if err := l.api.Call(ctx, "POST", path+"open", r.hostToken, nil, nil); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(l.cfg.pause):
	}
	if err := l.api.Call(ctx, "POST", path+"start", r.hostToken, nil, nil); err != nil {
		return err
	}
	maxDelay := 0
	for _, g := range l.cfg.groups {
		maxDelay = max(maxDelay, g.DelayMs+g.JitterMs)
	}
	deadline := time.Now().Add(l.cfg.reactionMean + 6*l.cfg.reactionSD + l.cfg.cheatDelay +
		time.Duration(4*maxDelay)*time.Millisecond + 3*time.Second)
	for r.replies[n].Load() < r.open.Load() {
		if time.Now().After(deadline) {
			r.timeouts++
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := l.api.Call(ctx, "POST", path+"close", r.hostToken, nil, nil); err != nil {
		return err
	}
	var got struct {
		Answers []struct {
			PlayerID   string `json:"playerId"`
			Correct    bool   `json:"correct"`
			Rank       int    `json:"rank"`
			ElapsedUs  int64  `json:"elapsedUs"`
			ReactionUs *int64 `json:"reactionUs"`
		} `json:"answers"`
	}
	if err := l.api.Call(ctx, "GET", path+"answers", r.hostToken, nil, &got); err != nil {
		return err
	}
	answered := map[int]bool{}
	var q []answer
	for _, a := range got.Answers {
		i, ok := r.byID[a.PlayerID]
		if !ok {
			continue
		}
		answered[i] = true
		c := r.clients[i]
		rank := a.Rank
		if !a.Correct {
			rank = 0
		}
		server := float64(a.ElapsedUs) / 1000
		if r.mode == "compensated" {
			if a.ReactionUs != nil {
				server = float64(*a.ReactionUs) / 1000
			} else {
				r.noTiming++
			}
		}
		ans := answer{Player: i, Rank: rank}
		c.mu.Lock()
		if rec := c.recs[n]; rec != nil && !rec.sent.IsZero() {
			ans.Timed = true
			ans.ReactionMs = float64(rec.sent.Sub(rec.receipt)) / float64(time.Millisecond)
			ans.LagMs = server - ans.ReactionMs
		}
		c.mu.Unlock()
		q = append(q, ans)
	}
	for i, c := range r.clients {
		c.mu.Lock()
		gone := c.dropped != ""
		c.mu.Unlock()
		if !answered[i] && !gone {
			r.missing++
		}
	}
	r.questions = append(r.questions, q)
	return nil
}

// readFairness reads the round trips the server recorded at each start of r.
func (l *lab) readFairness(ctx context.Context, r *room) error {
	var rep struct {
		Starts []struct {
			N          int `json:"n"`
			Recipients int `json:"recipients"`
			Players    []struct {
				PlayerID  string `json:"playerId"`
				RTTUs     int64  `json:"rttUs"`
				WrittenUs *int64 `json:"writtenUs"`
				AckUs     *int64 `json:"ackUs"`
			} `json:"players"`
		} `json:"starts"`
	}
	if err := l.api.Call(ctx, "GET", fmt.Sprintf("/api/rooms/%s/fairness?limit=%d", r.code, l.cfg.questions), r.hostToken, nil, &rep); err != nil {
		return fmt.Errorf("%s room's fairness report: %w", r.mode, err)
	}
	r.rtt.byPlayer = make([][]float64, len(r.clients))
	r.rtt.ackByPlayer = make([][]float64, len(r.clients))
	first := math.MaxInt
	for _, st := range rep.Starts {
		first = min(first, st.N)
	}
	for _, st := range rep.Starts {
		for _, p := range st.Players {
			i, ok := r.byID[p.PlayerID]
			if !ok {
				continue
			}
			if p.RTTUs > 0 {
				r.rtt.byPlayer[i] = append(r.rtt.byPlayer[i], float64(p.RTTUs)/1000)
			}
			if p.WrittenUs != nil && p.AckUs != nil {
				r.rtt.ackByPlayer[i] = append(r.rtt.ackByPlayer[i], float64(*p.AckUs-*p.WrittenUs)/1000)
			}
			if st.N == first && p.RTTUs > 0 {
				r.rtt.firstMeasured++
			}
		}
		if st.N == first {
			r.rtt.firstRecipients = st.Recipients
		}
	}
	return nil
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
