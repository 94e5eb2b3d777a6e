package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/bulbquiz/bulb/internal/apiclient"
	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/internal/cpuprofile"
	"github.com/bulbquiz/bulb/internal/lagproxy"
	"github.com/bulbquiz/bulb/internal/rlimit"
)

// childConfig is what a group's client process is told (as JSON in childEnv).
type childConfig struct {
	Group    int           `json:"group"`
	Server   string        `json:"server"` // base URL: the students join here, straight
	Link     lagproxy.Link `json:"link"`   // the group's: their WebSockets go through a proxy with its delays
	Room     string        `json:"room"`   // the room's code
	Clients  int           `json:"clients"`
	OffsetMs float64       `json:"offsetMs"`
	Seed     uint64        `json:"seed"`
	Profile  string        `json:"profile,omitempty"` // a file for a CPU profile from ready to the hang-up
}

// message is one line a client process writes on its stdout: exactly one field is set.
type message struct {
	Ready *readyMsg `json:"ready,omitempty"` // every student connected
	Rec   *record   `json:"rec,omitempty"`   // a student lit a start
	Drop  *dropMsg  `json:"drop,omitempty"`  // a connection ended before the hang-up
	Bye   *byeMsg   `json:"bye,omitempty"`   // the process is done
}

type readyMsg struct {
	Connected int `json:"connected"`
}

type dropMsg struct {
	Err string `json:"err"`
}

type byeMsg struct {
	Errors map[string]int `json:"errors,omitempty"` // error frames by code
}

// record is what one student saw of one start. Instants are true time: Unix ns on the
// real clock every process shares.
type record struct {
	Group  int   `json:"g"`
	Client int   `json:"c"` // index among its group's students
	N      int   `json:"n"`
	At     int64 `json:"at,omitempty"`     // a synced start's reveal instant S, from the frame
	Recv   int64 `json:"recv"`             // the start frame was read
	Target int64 `json:"target,omitempty"` // a synced start: the algorithm's target, in true time
	Lit    int64 `json:"lit"`              // the bulb lit
	Late   bool  `json:"late,omitempty"`   // the page's flag: the start arrived after its target
	NoEst  bool  `json:"noEst,omitempty"`  // no clock estimate yet at the receipt
	// BoundMs is the estimate's own error bound (half the width of its samples' common
	// bounds, drift included), RTTMs the least round trip of those samples.
	BoundMs float64 `json:"boundMs"`
	RTTMs   float64 `json:"rttMs"`
	// SinceSyncMs is the time from the student's first sync sample to the receipt: the
	// schedule of its samples so far, for the model of what the link's jitter alone allows.
	SinceSyncMs float64 `json:"sinceSyncMs"`
}

// runChild is a group's client process: it starts the group's proxy in front of the
// server, connects the group's students through it, says ready, then lights every start
// like the page and reports it, until stdin closes. (The proxy lives here, not in the
// measuring process, so that no process needs more open files than a hard limit of
// 20,000 allows: a proxied connection holds two.)
func runChild(env string, hangup io.Reader, stdout io.Writer) error {
	var cfg childConfig
	if err := json.Unmarshal([]byte(env), &cfg); err != nil {
		return fmt.Errorf("a client process's %s: %w", childEnv, err)
	}
	if err := rlimit.RaiseNoFile(uint64(3*cfg.Clients + 256)); err != nil {
		return fmt.Errorf("the client process of group %d: %w", cfg.Group, err)
	}
	u, err := url.Parse(cfg.Server)
	if err != nil {
		return err
	}
	proxy, err := lagproxy.Start(u.Host, []lagproxy.Link{cfg.Link})
	if err != nil {
		return fmt.Errorf("the client process of group %d: %w", cfg.Group, err)
	}
	defer proxy.Stop()
	out := make(chan message, 4096)
	written := make(chan error, 1)
	go func() { written <- writeMessages(stdout, out) }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api := apiclient.New(cfg.Server, 64)
	defer api.CloseIdle()
	var (
		mu      sync.Mutex
		clients []*student
		errs    = map[string]int{}
		wg      sync.WaitGroup // readers and sync loops
	)
	var g errgroup.Group
	g.SetLimit(32)
	for k := range cfg.Clients {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Group)<<32|uint64(k)))
		s := &student{group: cfg.Group, idx: k, out: out, rng: rng,
			offsetMs: (2*rng.Float64() - 1) * cfg.OffsetMs, errs: errs, errsMu: &mu}
		g.Go(func() error {
			if err := s.connect(ctx, api, cfg.Room, proxy.Addr(0)); err != nil {
				return err
			}
			mu.Lock()
			clients = append(clients, s)
			mu.Unlock()
			wg.Go(func() { s.read() })
			wg.Go(func() { s.syncLoop(ctx) })
			return nil
		})
	}
	err = g.Wait()
	if err == nil {
		err = serveUntilHangup(cfg.Profile, hangup, func() { out <- message{Ready: &readyMsg{Connected: len(clients)}} })
	}
	cancel()
	mu.Lock()
	for _, s := range clients {
		s.close()
	}
	mu.Unlock()
	wg.Wait()
	// The seen reports still waiting go out (a reveal that never came, after a timeout of
	// the measuring process, is not waited for long).
	reported := make(chan struct{})
	go func() {
		for _, s := range clients {
			s.pending.Wait()
		}
		close(reported)
	}()
	select {
	case <-reported:
	case <-time.After(2 * time.Second):
	}
	mu.Lock()
	out <- message{Bye: &byeMsg{Errors: maps.Clone(errs)}}
	mu.Unlock()
	if werr := <-written; err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("the client process of group %d: %w", cfg.Group, err)
	}
	return nil
}

// serveUntilHangup says ready and waits until the measuring process hangs up (closes
// stdin), under a CPU profile to profile if it is not empty.
func serveUntilHangup(profile string, hangup io.Reader, ready func()) error {
	stop := func() error { return nil }
	if profile != "" {
		var err error
		if stop, err = cpuprofile.Start(profile); err != nil {
			return err
		}
	}
	ready()
	io.Copy(io.Discard, hangup)
	return stop()
}

// writeMessages writes every message as a JSON line, flushing whenever none is waiting,
// until it has written a bye.
func writeMessages(w io.Writer, in <-chan message) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	var err error
	for m := range in {
		if err == nil {
			err = enc.Encode(m)
		}
		if (len(in) == 0 || m.Bye != nil) && err == nil {
			err = bw.Flush()
		}
		if m.Bye != nil {
			break
		}
	}
	return err
}

// student is one simulated page.
type student struct {
	group, idx int
	offsetMs   float64 // its clock: real time + offsetMs
	out        chan<- message
	conn       *websocket.Conn
	est        clocksync.Estimator // the reader goroutine's
	rng        *rand.Rand          // the reader goroutine's, once connected
	errs       map[string]int      // shared by the process's students, under errsMu
	errsMu     *sync.Mutex
	pending    sync.WaitGroup // seen reports not yet sent
	firstSync  atomic.Int64   // Unix ns of the first sync sample sent

	mu      sync.Mutex
	closing bool
}

// now is the student's own clock, ms since the Unix epoch.
func (s *student) now() float64 { return s.local(time.Now()) }

// local is the real instant t on the student's clock.
func (s *student) local(t time.Time) float64 { return clocksync.Millis(t) + s.offsetMs }

// trueNs is a time on the student's clock (ms) as a true instant, Unix ns.
func (s *student) trueNs(localMs float64) int64 {
	return int64(math.Round((localMs - s.offsetMs) * 1e6))
}

// connect joins the room straight at the server and opens the WebSocket through the
// group's proxy.
func (s *student) connect(ctx context.Context, api *apiclient.Client, code, proxy string) error {
	name := fmt.Sprintf("g%d-%05d", s.group, s.idx)
	var joined struct{ Token string }
	if err := api.Call(ctx, "POST", "/api/rooms/"+code+"/players", "", map[string]string{"name": name}, &joined); err != nil {
		return fmt.Errorf("joining %s as %s: %w", code, name, err)
	}
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, "ws://"+proxy+"/ws?token="+joined.Token,
		&websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return fmt.Errorf("connecting %s through %s: %w", name, proxy, err)
	}
	conn.SetReadLimit(1 << 20)
	s.conn = conn
	return nil
}

func (s *student) close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.conn.CloseNow()
}

// syncLoop sends the page's sync samples: a burst at connect, then one every so often
// (from the first on: the page's setInterval starts with its burst).
func (s *student) syncLoop(ctx context.Context) {
	first := time.Now()
	s.firstSync.Store(first.UnixNano())
	for i := 0; ; i++ {
		s.sendSync()
		next := time.Duration(i+1) * clocksync.BurstSpacing
		if i+1 >= clocksync.BurstSamples {
			next = time.Duration(i+2-clocksync.BurstSamples) * clocksync.Every
		}
		if sleep(ctx, time.Until(first.Add(next))) != nil {
			return
		}
	}
}

// sendSync sends a sync sample stamped with the student's clock.
func (s *student) sendSync() {
	s.send(append(strconv.AppendFloat([]byte(`{"type":"sync","t0":`), s.now(), 'f', -1, 64), '}'))
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// send writes one text frame, giving up after 5 s (the reader then sees the failure).
func (s *student) send(msg []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.conn.Write(ctx, websocket.MessageText, msg)
}

// serverFrame holds the fields of server frames a student looks at.
type serverFrame struct {
	Type string  `json:"type"`
	N    int     `json:"n"`
	Seq  uint64  `json:"seq"`
	At   float64 `json:"at"`
	T0   float64 `json:"t0"`
	T1   float64 `json:"t1"`
	T2   float64 `json:"t2"`
	Code string  `json:"code"`
}

// read handles the student's frames until its connection ends.
func (s *student) read() {
	for {
		// Not a cancellable context: cancelling a Read tears the socket down.
		_, data, err := s.conn.Read(context.Background())
		at := time.Now() // first: the sync sample's and the start's receipt
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if !closing {
				s.out <- message{Drop: &dropMsg{Err: err.Error()}}
			}
			return
		}
		var f serverFrame
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		switch f.Type {
		case "sync":
			s.est.Add(clocksync.Sample{T0: f.T0, T1: f.T1, T2: f.T2, T3: s.local(at)})
		case "start":
			s.onStart(f, at)
		case "error":
			s.errsMu.Lock()
			s.errs[f.Code]++
			s.errsMu.Unlock()
		}
	}
}

// onStart lights the start received at (real time) as web/student.js does: at its instant
// on the synced clock, or at once without one; then, after a random pause, reports seen
// (or, without a clock estimate, acks at once) and hands its record to the measuring
// process.
func (s *student) onStart(f serverFrame, at time.Time) {
	received := s.local(at)
	est, ok := s.est.Estimate(received)
	rec := &record{Group: s.group, Client: s.idx, N: f.N, Recv: at.UnixNano(), BoundMs: est.Error, RTTMs: est.RTT, NoEst: !ok,
		SinceSyncMs: float64(at.UnixNano()-s.firstSync.Load()) / 1e6}
	pause := 50*time.Millisecond + time.Duration(s.rng.Float64()*float64(250*time.Millisecond))
	s.pending.Add(1)
	light := func(late bool, target float64) {
		lit := time.Now()
		rec.Lit, rec.Late = lit.UnixNano(), late
		if f.At > 0 {
			rec.At = int64(math.Round(f.At * 1e6))
			rec.Target = s.trueNs(target)
		}
		if !ok {
			s.send(fmt.Appendf(nil, `{"type":"ack","seq":%d}`, f.Seq))
			s.out <- message{Rec: rec}
			s.pending.Done()
			return
		}
		revealed := s.local(lit)
		time.AfterFunc(pause, func() {
			defer s.pending.Done()
			s.send(fmt.Appendf(nil, `{"type":"seen","seq":%d,"receivedAt":%s,"revealedAt":%s,"errorMs":%s,"late":%t}`,
				f.Seq, ms(received+est.Offset), ms(revealed+est.Offset), ms(est.Error), late))
			s.out <- message{Rec: rec}
		})
	}
	if f.At > 0 {
		clocksync.RevealAt(f.At, est, ok, s.now, light)
	} else {
		light(false, received)
	}
}

// ms formats milliseconds for a frame.
func ms(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
