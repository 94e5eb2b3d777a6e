package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/bulbquiz/bulb/internal/apiclient"
	"github.com/bulbquiz/bulb/internal/lagproxy"
	"github.com/bulbquiz/bulb/internal/rlimit"
	"github.com/bulbquiz/bulb/internal/runinfo"
	"github.com/bulbquiz/bulb/internal/serverproc"
	"github.com/bulbquiz/bulb/quiz"
)

// The rooms, by index: every student has a seat in each.
const (
	roomSynced    = 0
	roomImmediate = 1
)

var modes = []string{quiz.RevealSynced, quiz.RevealImmediate}

// bench is one run: the server, the proxies, the rooms and the client processes.
type bench struct {
	cfg      config
	stderr   io.Writer
	api      *apiclient.Client
	admin    string
	proxies  *lagproxy.Proxies
	rooms    []room // by room index
	children []*child
	col      collector
}

type room struct {
	code, hostToken string
}

// child is one group's client process.
type child struct {
	group   int
	clients int // per room
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	ready   chan readyMsg // the ready message, once
	bye     byeMsg
	read    chan error // the stdout reader's end
}

// runBench runs the whole benchmark and returns its report.
func runBench(ctx context.Context, cfg config, args []string, stderr io.Writer) (*report, error) {
	began := time.Now()
	rep := &report{Machine: runinfo.This(), Command: "go run ./scripts/reveal" + runinfo.QuoteArgs(args), Commit: runinfo.Commit()}
	// Per student and room: the server's socket, the proxy's two and the student's own.
	// The server and the client processes inherit the limit.
	if err := rlimit.RaiseNoFile(uint64(4*len(modes)*cfg.clients + 1024)); err != nil {
		fmt.Fprintln(stderr, "reveal:", err)
	}
	srv, err := serverproc.Start(ctx, serverproc.Options{Bin: cfg.serverBin, PingInterval: cfg.pingInterval, Name: "reveal", Stderr: stderr})
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, stderr: stderr, api: apiclient.New(srv.URL, 16), admin: srv.Token, col: newCollector()}
	defer b.api.CloseIdle()
	server, err := b.run(ctx)
	b.shutdown()
	sum := srv.Stop()
	if err != nil {
		return nil, err
	}
	rep.Server, rep.ServerLog = srv.URL, &sum
	rep.fill(cfg, b.col.result(), server, b.errorFrames())
	rep.ElapsedS = time.Since(began).Seconds()
	rep.Machine.LoadEnd = runinfo.LoadAvg()
	return rep, nil
}

// run sets up the proxies, rooms and client processes, plays the starts and returns the
// server's view of the synced ones.
func (b *bench) run(ctx context.Context) (map[int]serverReveal, error) {
	u, err := url.Parse(b.api.Base())
	if err != nil {
		return nil, err
	}
	if b.proxies, err = lagproxy.Start(u.Host, b.cfg.links); err != nil {
		return nil, err
	}
	for _, mode := range modes {
		r, err := b.createRoom(ctx, mode)
		if err != nil {
			return nil, err
		}
		b.rooms = append(b.rooms, r)
	}
	connectStart := time.Now()
	if err := b.startChildren(); err != nil {
		return nil, err
	}
	if err := b.awaitReady(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(b.stderr, "reveal: %d students in each of %d rooms connected in %.1f s, in %d processes; warming up %s\n",
		b.cfg.clients, len(modes), time.Since(connectStart).Seconds(), len(b.children), b.cfg.warmup)
	if err := sleep(ctx, b.cfg.warmup); err != nil {
		return nil, err
	}
	progress := time.Now()
	for n := 1; n <= b.cfg.starts; n++ {
		if err := b.start(ctx, n); err != nil {
			return nil, fmt.Errorf("start %d: %w", n, err)
		}
		if time.Since(progress) > 10*time.Second || n == b.cfg.starts {
			fmt.Fprintf(b.stderr, "reveal: start %d of %d done in both rooms (load average %s)\n", n, b.cfg.starts, runinfo.LoadAvg())
			progress = time.Now()
		}
	}
	return b.readReveals(ctx)
}

// createRoom creates a room of cfg.starts choice questions under the given reveal.
func (b *bench) createRoom(ctx context.Context, reveal string) (room, error) {
	qz := quiz.Quiz{Title: "reveal skew, " + reveal, Reveal: reveal}
	right := 0
	for n := 1; n <= b.cfg.starts; n++ {
		qz.Questions = append(qz.Questions, quiz.Question{Kind: quiz.KindChoice, Text: "Question " + strconv.Itoa(n), Choices: []string{"a", "b"}, Answer: &right})
	}
	var created struct{ Code, HostToken string }
	if err := b.api.Call(ctx, "POST", "/api/rooms", b.admin, qz, &created); err != nil {
		return room{}, fmt.Errorf("creating the %s room: %w", reveal, err)
	}
	return room{code: created.Code, hostToken: created.HostToken}, nil
}

// startChildren starts one client process per group, this binary again, with the group's
// students: student i of a room is in group i mod groups.
func (b *bench) startChildren() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	codes := make([]string, len(b.rooms))
	for i, r := range b.rooms {
		codes[i] = r.code
	}
	groups := len(b.cfg.links)
	for g := range groups {
		cc := childConfig{Group: g, Server: b.api.Base(), Proxy: b.proxies.Addr(g), Rooms: codes,
			Clients: (b.cfg.clients - g + groups - 1) / groups, OffsetMs: b.cfg.offsetMs, Seed: b.cfg.seed}
		env, err := json.Marshal(cc)
		if err != nil {
			return err
		}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), childEnv+"="+string(env))
		cmd.Stderr = b.stderr
		serverproc.DieWithParent(cmd)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("client process of group %d: %w", g, err)
		}
		c := &child{group: g, clients: cc.Clients, cmd: cmd, stdin: stdin, ready: make(chan readyMsg, 1), read: make(chan error, 1)}
		b.children = append(b.children, c)
		go func() { c.read <- b.readChild(c, stdout) }()
	}
	return nil
}

// readChild reads a client process's messages until it ends.
func (b *bench) readChild(c *child, stdout io.Reader) error {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return fmt.Errorf("client process of group %d: %q: %w", c.group, sc.Text(), err)
		}
		switch {
		case m.Ready != nil:
			c.ready <- *m.Ready
		case m.Rec != nil:
			b.col.add(*m.Rec)
		case m.Drop != nil:
			b.col.drop(m.Drop.Room, c.group, m.Drop.Err)
		case m.Bye != nil:
			c.bye = *m.Bye
		}
	}
	return sc.Err()
}

// awaitReady waits until every client process has connected its students.
func (b *bench) awaitReady(ctx context.Context) error {
	deadline := time.After(time.Minute + time.Duration(b.cfg.clients)*20*time.Millisecond)
	for _, c := range b.children {
		select {
		case r := <-c.ready:
			for room, n := range r.Connected {
				b.col.connected(room, c.group, n)
			}
		case err := <-c.read:
			c.read <- err
			return fmt.Errorf("the client process of group %d ended before its students connected (%v): see its error above", c.group, err)
		case <-deadline:
			return fmt.Errorf("the client process of group %d did not connect its students in time", c.group)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// start plays question n in both rooms: open, then start and wait for every student's
// record, one room after the other (which goes first alternates), then close.
func (b *bench) start(ctx context.Context, n int) error {
	path := func(r int, verb string) string {
		return fmt.Sprintf("/api/rooms/%s/questions/%d/%s", b.rooms[r].code, n, verb)
	}
	for r := range b.rooms {
		if err := b.api.Call(ctx, "POST", path(r, "open"), b.rooms[r].hostToken, nil, nil); err != nil {
			return err
		}
	}
	if err := sleep(ctx, b.cfg.pause); err != nil {
		return err
	}
	order := []int{roomSynced, roomImmediate}
	if n%2 == 0 {
		order = []int{roomImmediate, roomSynced}
	}
	for _, r := range order {
		if err := b.api.Call(ctx, "POST", path(r, "start"), b.rooms[r].hostToken, nil, nil); err != nil {
			return err
		}
		// The lead is at most 1 s, the seen pause 300 ms; then the fan-out through the
		// proxies and the records, slower with more students.
		deadline := time.Now().Add(10*time.Second + time.Duration(b.cfg.clients)*2*time.Millisecond)
		for !b.col.complete(r, n) {
			if time.Now().After(deadline) {
				b.col.timeout(r)
				break
			}
			if err := sleep(ctx, 10*time.Millisecond); err != nil {
				return err
			}
		}
	}
	for r := range b.rooms {
		if err := b.api.Call(ctx, "POST", path(r, "close"), b.rooms[r].hostToken, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// serverReveal is the server's fairness report of one synced start, from the students'
// seen reports: its lead, how many lit on time and late, the spread of the reported
// reveal instants and the bound on the true one.
type serverReveal struct {
	LeadUs   int64 `json:"leadUs"`
	OnTime   int   `json:"onTime"`
	Late     int   `json:"late"`
	SpreadUs int64 `json:"spreadUs"`
	SkewUs   int64 `json:"skewUs"`
}

// readReveals reads the server's fairness report of the synced room, by question.
func (b *bench) readReveals(ctx context.Context) (map[int]serverReveal, error) {
	var rep struct {
		Starts []struct {
			N      int           `json:"n"`
			Reveal *serverReveal `json:"reveal"`
		} `json:"starts"`
	}
	r := b.rooms[roomSynced]
	if err := b.api.Call(ctx, "GET", "/api/rooms/"+r.code+"/fairness?limit="+strconv.Itoa(b.cfg.starts), r.hostToken, nil, &rep); err != nil {
		return nil, fmt.Errorf("the synced room's fairness report: %w", err)
	}
	out := map[int]serverReveal{}
	for _, st := range rep.Starts {
		if st.Reveal != nil {
			out[st.N] = *st.Reveal
		}
	}
	return out, nil
}

// shutdown hangs up on the client processes (their students close), waits for them and
// stops the proxies.
func (b *bench) shutdown() {
	var wg sync.WaitGroup
	for _, c := range b.children {
		wg.Go(func() {
			c.stdin.Close()
			exited := make(chan error, 1)
			go func() {
				<-c.read // stdout is read to its end before Wait
				exited <- c.cmd.Wait()
			}()
			select {
			case err := <-exited:
				if err != nil {
					fmt.Fprintf(b.stderr, "reveal: the client process of group %d: %v\n", c.group, err)
				}
			case <-time.After(time.Minute):
				c.cmd.Process.Kill()
				<-exited
				fmt.Fprintf(b.stderr, "reveal: the client process of group %d did not end a minute after the hang-up: killed\n", c.group)
			}
		})
	}
	wg.Wait()
	if b.proxies != nil {
		b.proxies.Stop()
	}
}

// errorFrames counts the error frames the students got, by code.
func (b *bench) errorFrames() map[string]int {
	out := map[string]int{}
	for _, c := range b.children {
		for code, k := range c.bye.Errors {
			out[code] += k
		}
	}
	return out
}

// collector gathers the client processes' records, by room and question.
type collector struct {
	mu       sync.Mutex
	recs     [][]map[int][]record // [room][group] → by question n
	conn     [][]int              // [room][group]: students connected
	dropped  [][]int              // [room][group]: connections ended early
	timeouts []int                // [room]: starts given up on before every record came
	dropErrs map[string]int
}

func newCollector() collector {
	return collector{timeouts: make([]int, len(modes)), dropErrs: map[string]int{}}
}

func (c *collector) grow(room, group int) {
	for len(c.recs) <= room {
		c.recs, c.conn, c.dropped = append(c.recs, nil), append(c.conn, nil), append(c.dropped, nil)
	}
	for len(c.recs[room]) <= group {
		c.recs[room] = append(c.recs[room], map[int][]record{})
		c.conn[room], c.dropped[room] = append(c.conn[room], 0), append(c.dropped[room], 0)
	}
}

func (c *collector) add(r record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grow(r.Room, r.Group)
	c.recs[r.Room][r.Group][r.N] = append(c.recs[r.Room][r.Group][r.N], r)
}

func (c *collector) connected(room, group, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grow(room, group)
	c.conn[room][group] = n
}

func (c *collector) drop(room, group int, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grow(room, group)
	c.dropped[room][group]++
	c.dropErrs[why]++
}

func (c *collector) timeout(room int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timeouts[room]++
}

// complete reports whether every student still connected has a record of start n of room.
func (c *collector) complete(room, n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room >= len(c.recs) {
		return false
	}
	for g := range c.recs[room] {
		if len(c.recs[room][g][n]) < c.conn[room][g]-c.dropped[room][g] {
			return false
		}
	}
	return true
}

// collected is what the collector gathered, for the report.
type collected struct {
	starts    [][][]record // [room][n−1]: every group's records of that start
	connected [][]int      // [room][group]
	dropped   [][]int
	timeouts  []int
	dropErrs  map[string]int
}

func (c *collector) result() collected {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := collected{connected: c.conn, dropped: c.dropped, timeouts: c.timeouts, dropErrs: c.dropErrs}
	for room := range c.recs {
		last := 0
		for g := range c.recs[room] {
			for n := range c.recs[room][g] {
				last = max(last, n)
			}
		}
		starts := make([][]record, last)
		for g := range c.recs[room] {
			for n, rs := range c.recs[room][g] {
				starts[n-1] = append(starts[n-1], rs...)
			}
		}
		out.starts = append(out.starts, starts)
	}
	return out
}
