package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/bulbquiz/bulb/internal/apiclient"
	"github.com/bulbquiz/bulb/internal/proc"
	"github.com/bulbquiz/bulb/internal/rlimit"
	"github.com/bulbquiz/bulb/internal/runinfo"
	"github.com/bulbquiz/bulb/internal/serverproc"
	"github.com/bulbquiz/bulb/quiz"
)

// The reveal modes, by index.
const (
	modeSynced    = 0
	modeImmediate = 1
)

var modes = []string{quiz.RevealSynced, quiz.RevealImmediate}

// modeOf is the reveal of question n. The questions come in pairs, one start of each
// mode, and which goes first alternates (synced, immediate, immediate, synced, synced, …),
// so that both modes see the same students, connections and load.
func modeOf(n int) int {
	pair, first := (n+1)/2, n%2 == 1
	if first == (pair%2 == 1) {
		return modeSynced
	}
	return modeImmediate
}

// bench is one run: the server, the room and the client processes.
type bench struct {
	cfg         config
	stderr      io.Writer
	api         *apiclient.Client
	admin       string
	code, host  string // the room's code and host token
	quiz        quiz.Quiz
	quizVersion int64
	serverPID   int
	children    []*child
	col         *collector
	cpu         cpuUse // over the starts
}

// child is one group's client process.
type child struct {
	group   int
	clients int
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
	// The server holds a socket per student; the server inherits the limit. (A client
	// process raises its own: a socket per student and two for the proxy's.)
	if err := rlimit.RaiseNoFile(uint64(cfg.clients + 1024)); err != nil {
		fmt.Fprintln(stderr, "reveal:", err)
	}
	if cfg.profiles != "" {
		if err := os.MkdirAll(cfg.profiles, 0o755); err != nil {
			return nil, err
		}
	}
	srv, err := serverproc.Start(ctx, serverproc.Options{Bin: cfg.serverBin, PingInterval: cfg.pingInterval, Name: "reveal", Stderr: stderr})
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, stderr: stderr, api: apiclient.New(srv.URL, 16), admin: srv.Token, serverPID: srv.PID(), col: newCollector(len(cfg.links))}
	defer b.api.CloseIdle()
	server, err := b.run(ctx)
	b.shutdown()
	sum := srv.Stop()
	if err != nil {
		return nil, err
	}
	rep.Server, rep.ServerLog = srv.URL, &sum
	rep.fill(cfg, b.col.result(modeOf), server, b.errorFrames())
	rep.CPU = b.cpu
	rep.ElapsedS = time.Since(began).Seconds()
	rep.Machine.LoadEnd = runinfo.LoadAvg()
	return rep, nil
}

// run creates the room, starts the client processes, plays the starts and returns the
// server's view of the synced ones.
func (b *bench) run(ctx context.Context) (map[int]serverReveal, error) {
	if err := b.createRoom(ctx); err != nil {
		return nil, err
	}
	connectStart := time.Now()
	if err := b.startChildren(); err != nil {
		return nil, err
	}
	if err := b.awaitReady(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(b.stderr, "reveal: %d students connected in %.1f s, in %d processes; warming up %s\n",
		b.cfg.clients, time.Since(connectStart).Seconds(), len(b.children), b.cfg.warmup)
	if err := sleep(ctx, b.cfg.warmup); err != nil {
		return nil, err
	}
	progress, cpu0 := time.Now(), b.cpuTimes()
	for n := 1; n <= len(modes)*b.cfg.starts; n++ {
		if err := b.start(ctx, n); err != nil {
			return nil, fmt.Errorf("question %d (%s): %w", n, modes[modeOf(n)], err)
		}
		if time.Since(progress) > 10*time.Second || n == len(modes)*b.cfg.starts {
			fmt.Fprintf(b.stderr, "reveal: %d of %d starts done (load average %s)\n", n, len(modes)*b.cfg.starts, runinfo.LoadAvg())
			progress = time.Now()
		}
	}
	b.cpu = cpuOver(cpu0, b.cpuTimes())
	return b.readReveals(ctx)
}

// cpuSample is when, and how much CPU time the processes had used then.
type cpuSample struct {
	at           time.Time
	server, self time.Duration
	clients      []time.Duration
}

func (b *bench) cpuTimes() cpuSample {
	s := cpuSample{at: time.Now()}
	s.server, _ = proc.CPUTime(b.serverPID)
	s.self, _ = proc.CPUTime(os.Getpid())
	for _, c := range b.children {
		t, _ := proc.CPUTime(c.cmd.Process.Pid)
		s.clients = append(s.clients, t)
	}
	return s
}

// cpuUse is the CPU time the processes used over the starts, from the first start's open
// to the last start's close, and the wall time between, in seconds.
type cpuUse struct {
	WallS    float64   `json:"wallS"`
	ServerS  float64   `json:"serverS"`
	ClientsS []float64 `json:"clientsS"` // by group: its students and its proxy
	SelfS    float64   `json:"selfS"`    // the measuring process
}

func cpuOver(a, b cpuSample) cpuUse {
	u := cpuUse{WallS: b.at.Sub(a.at).Seconds(), ServerS: (b.server - a.server).Seconds(), SelfS: (b.self - a.self).Seconds()}
	for i := range b.clients {
		u.ClientsS = append(u.ClientsS, (b.clients[i] - a.clients[i]).Seconds())
	}
	return u
}

// createRoom creates the room: 2 × cfg.starts choice questions, the reveal of question 1.
func (b *bench) createRoom(ctx context.Context) error {
	b.quiz = quiz.Quiz{Title: "reveal skew", Reveal: modes[modeOf(1)]}
	right := 0
	for n := 1; n <= len(modes)*b.cfg.starts; n++ {
		b.quiz.Questions = append(b.quiz.Questions, quiz.Question{Kind: quiz.KindChoice, Text: "Question " + strconv.Itoa(n), Choices: []string{"a", "b"}, Answer: &right})
	}
	var created struct{ Code, HostToken string }
	if err := b.api.Call(ctx, "POST", "/api/rooms", b.admin, b.quiz, &created); err != nil {
		return fmt.Errorf("creating the room: %w", err)
	}
	b.code, b.host = created.Code, created.HostToken
	return nil
}

// setReveal edits the room's quiz to the given reveal, if it has another (a quiz's reveal
// may change between questions: docs/protocol.md, PUT …/quiz).
func (b *bench) setReveal(ctx context.Context, reveal string) error {
	if b.quiz.Reveal == reveal {
		return nil
	}
	b.quiz.Reveal = reveal
	edit := struct {
		QuizVersion int64     `json:"quizVersion"`
		Quiz        quiz.Quiz `json:"quiz"`
	}{b.quizVersion, b.quiz}
	var edited struct{ QuizVersion int64 }
	if err := b.api.Call(ctx, "PUT", "/api/rooms/"+b.code+"/quiz", b.host, edit, &edited); err != nil {
		return fmt.Errorf("switching the quiz to the %s reveal: %w", reveal, err)
	}
	b.quizVersion = edited.QuizVersion
	return nil
}

// startChildren starts one client process per group, this binary again, with the group's
// students: student i is in group i mod groups.
func (b *bench) startChildren() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	groups := len(b.cfg.links)
	for g, link := range b.cfg.links {
		cc := childConfig{Group: g, Server: b.api.Base(), Link: link, Room: b.code,
			Clients: (b.cfg.clients - g + groups - 1) / groups, OffsetMs: b.cfg.offsetMs, Seed: b.cfg.seed}
		if b.cfg.profiles != "" {
			cc.Profile = filepath.Join(b.cfg.profiles, fmt.Sprintf("group-%d.pprof", g))
		}
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
			b.col.drop(c.group, m.Drop.Err)
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
			b.col.connected(c.group, r.Connected)
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

// start plays question n: its reveal, open, start, every student's record (or a
// timeout), close.
func (b *bench) start(ctx context.Context, n int) error {
	if err := b.setReveal(ctx, modes[modeOf(n)]); err != nil {
		return err
	}
	path := fmt.Sprintf("/api/rooms/%s/questions/%d/", b.code, n)
	if err := b.api.Call(ctx, "POST", path+"open", b.host, nil, nil); err != nil {
		return err
	}
	if err := sleep(ctx, b.cfg.pause); err != nil {
		return err
	}
	if err := b.api.Call(ctx, "POST", path+"start", b.host, nil, nil); err != nil {
		return err
	}
	// The lead is at most 1 s, the seen pause 300 ms; then the fan-out through the proxies
	// and the records, slower with more students.
	deadline := time.Now().Add(10*time.Second + time.Duration(b.cfg.clients)*2*time.Millisecond)
	for !b.col.complete(n) {
		if time.Now().After(deadline) {
			b.col.timeout(modeOf(n))
			break
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	return b.api.Call(ctx, "POST", path+"close", b.host, nil, nil)
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

// readReveals reads the server's fairness report of the synced starts, by question.
func (b *bench) readReveals(ctx context.Context) (map[int]serverReveal, error) {
	var rep struct {
		Starts []struct {
			N      int           `json:"n"`
			Reveal *serverReveal `json:"reveal"`
		} `json:"starts"`
	}
	limit := strconv.Itoa(len(modes) * b.cfg.starts)
	if err := b.api.Call(ctx, "GET", "/api/rooms/"+b.code+"/fairness?limit="+limit, b.host, nil, &rep); err != nil {
		return nil, fmt.Errorf("the room's fairness report: %w", err)
	}
	out := map[int]serverReveal{}
	for _, st := range rep.Starts {
		if st.Reveal != nil {
			out[st.N] = *st.Reveal
		}
	}
	return out, nil
}

// shutdown hangs up on the client processes (their students close) and waits for them.
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
