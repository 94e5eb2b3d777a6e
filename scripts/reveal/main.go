// Command reveal measures the synced reveal's skew: when a synced start's bulb lights on
// every student's screen, how far apart in true time are those instants, and how much of
// that is the clock sync algorithm's error?
//
// Method. The program runs the real server (its binary, built from ./server unless
// --server names one, as one process on loopback with the memory engine and no
// per-address limits; internal/serverproc) and creates one room of 2 × --starts choice
// questions, played one after the other: --starts under "reveal":"synced" and, for
// comparison, --starts under "reveal":"immediate", in pairs of one of each, which goes
// first alternating; the host switches the quiz's reveal between questions (PUT …/quiz,
// allowed between questions). So both modes see the same students on the same
// connections under the same load. (Two rooms, one per mode, would hold every student
// twice: at 10,000 students the server would need more than the 20,000 open files a hard
// limit allows.) The room gets --clients students, spread round-robin over the latency
// groups (--links; default one way 5±1, 25±3 and 60±6 ms both ways, and an asymmetric
// 5±1 ms from the server and 40±1 ms back). Each group's students run in a process of
// their own, this binary re-executed with BULB_REVEAL_CHILD set, which also runs the
// group's toxiproxy proxy (internal/lagproxy) in front of the server. They join over HTTP
// straight to the server and connect their WebSocket through the proxy.
//
// Each student is the page's algorithm (internal/clocksync, the Go twin of web/clock.js):
// a sync burst of 8 samples 30 ms apart at connect, then one every 20 s; on a synced
// start it converts the reveal instant `at` into its own clock with the estimate at the
// frame's receipt, sleeps until 4 ms before that target, then watches its clock, and
// lights; a start that arrives after its target lights at once and is late. On an
// immediate start it lights at receipt. After lighting it sends `seen` after a random
// 50–300 ms pause, as the page does. Its clock is its own: real time plus an offset drawn
// uniformly from ±--offset-ms, so the sync has real work to do. The first start comes
// --warmup (25 s) after the last student connected: every student has its burst and one
// sample after it, as a page that joined before the quiz began. (The burst itself is taken
// while thousands of students connect on the same few cores, which inflates its round
// trips: a shorter warm-up measures that.)
//
// All the processes share the machine's real clock (the wall clock, time.Now), so the
// truth is known. Each student reports, per start, the true instant it read the start
// frame, the true instant it lit, the algorithm's target in true time (its target on its
// own clock minus its offset), the reveal instant S from the frame, whether it was late,
// and its estimate's error bound. Per synced start the program reports the spread of the
// true lighting instants across all students, split into the algorithm's part (the spread
// of the targets, and each student's error: target − S) and the simulation's own wake-up
// jitter (light − target: timers and the scheduler of a few cores shared by thousands of
// students, which a page on its own machine does not have), and the start frame's receipt
// spread; per group the algorithm's mean and p99 error against what the link's asymmetry
// predicts (half of it) and against a model of the algorithm on a link with nothing but
// the group's delays and jitter (model.go: the floor the jitter sets), the round trips of
// the samples behind the estimates, late starts, and estimates outside their own error
// bound. For the immediate starts: the receipt spread of the start frame, which is there
// its lighting spread. And where the CPU went over the starts: the server's, each client
// process's and its own CPU time against the cores' wall time (with --cpuprofile, the
// client processes' CPU profiles too).
//
//	go run ./scripts/reveal --clients 1000 --starts 30
//	go run ./scripts/reveal --quick           # 200 students, 5 starts per mode
//	go run ./scripts/reveal --json > reveal.json
//
// All traffic stays on loopback. Every process and goroutine it starts stops before it
// exits.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/internal/lagproxy"
)

// childEnv, when set, makes this binary a group's client process; its value is the
// process's childConfig as JSON.
const childEnv = "BULB_REVEAL_CHILD"

func main() {
	var err error
	if v := os.Getenv(childEnv); v != "" {
		err = runChild(v, os.Stdin, os.Stdout)
	} else {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "reveal:", err)
		}
		os.Exit(2)
	}
}

// maxStarts is the most starts per mode: a Bulb quiz holds at most 200 questions
// (docs/protocol.md, Limits), one start each.
const maxStarts = 200 / 2

// config is the parsed command line.
type config struct {
	serverBin    string
	clients      int // spread over the groups
	starts       int // per reveal mode
	links        []lagproxy.Link
	offsetMs     float64 // clock offsets are drawn from ±offsetMs
	seed         uint64  // of the offsets, the seen pauses and the model
	warmup       time.Duration
	pause        time.Duration // between a question's open and its start
	pingInterval time.Duration // the server's
	profiles     string        // a directory for the client processes' CPU profiles
	quick, json  bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("reveal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg     config
		links   = fs.String("links", "5:1,25:3,60:6,5:1/40:1", "latency groups, comma-separated: DOWN[/UP], each MS[:JITTER], one-way ms from the server (down) and to it (up); UP defaults to DOWN")
		clients = fs.Int("clients", 0, "students, spread over the groups (default 1000; --quick 200)")
		starts  = fs.Int("starts", 0, "starts per reveal mode, at most 100 (default 30; --quick 5)")
	)
	fs.StringVar(&cfg.serverBin, "server", "", "server binary to start (default: go build ./server into a temporary directory)")
	fs.Float64Var(&cfg.offsetMs, "offset-ms", 5000, "each student's clock is off the real one by an offset drawn uniformly from ± this many ms")
	fs.DurationVar(&cfg.pingInterval, "ping-interval", 5*time.Second, "the server's ping interval (its round trips go into the synced start's lead)")
	fs.DurationVar(&cfg.warmup, "warmup", clocksync.Every+5*time.Second, "wait after the last student connected, before the first start: by default long enough for every student's first sync sample after its burst")
	fs.DurationVar(&cfg.pause, "pause", -1, "between opening a question and starting it (default 200 ms, or 0.1 ms a student if more: the question frame's fan-out is over before the start's begins)")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the clock offsets, the seen pauses and the model")
	fs.StringVar(&cfg.profiles, "cpuprofile", "", "write a CPU profile of each client process (its students and its proxy), from its students' connection to the end, to this directory as group-N.pprof")
	fs.BoolVar(&cfg.json, "json", false, "print the report as JSON")
	fs.BoolVar(&cfg.quick, "quick", false, "a fast run: 200 students, 5 starts (unless given)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	defClients, defStarts := 1000, 30
	if cfg.quick {
		defClients, defStarts = 200, 5
	}
	cfg.clients, cfg.starts = cmp.Or(*clients, defClients), cmp.Or(*starts, defStarts)
	if cfg.pause == -1 {
		cfg.pause = max(200*time.Millisecond, time.Duration(cfg.clients)*100*time.Microsecond)
	}
	var err error
	if cfg.links, err = parseLinks(*links); err != nil {
		return cfg, fmt.Errorf("--links: %w", err)
	}
	switch {
	case cfg.clients < len(cfg.links):
		return cfg, fmt.Errorf("--clients %d: want at least one per group (%d groups)", cfg.clients, len(cfg.links))
	case cfg.starts < 1 || cfg.starts > maxStarts:
		return cfg, fmt.Errorf("--starts %d: want 1 to %d (a quiz's limit of 200 questions, for both modes)", cfg.starts, maxStarts)
	case cfg.offsetMs < 0 || cfg.warmup < 0 || cfg.pause < 0 || cfg.pingInterval <= 0:
		return cfg, errors.New("--offset-ms, --warmup and --pause must not be negative, --ping-interval must be positive")
	}
	return cfg, nil
}

// parseLinks reads "DOWN[/UP],…", each direction "MS[:JITTER]".
func parseLinks(s string) ([]lagproxy.Link, error) {
	var out []lagproxy.Link
	for _, f := range strings.Split(s, ",") {
		down, up, asym := strings.Cut(strings.TrimSpace(f), "/")
		d, err := parseDelay(down)
		if err != nil {
			return nil, err
		}
		u := d
		if asym {
			if u, err = parseDelay(up); err != nil {
				return nil, err
			}
		}
		out = append(out, lagproxy.Link{Down: d, Up: u})
	}
	return out, nil
}

func parseDelay(s string) (lagproxy.Delay, error) {
	ms, jitter, _ := strings.Cut(s, ":")
	d, err := strconv.Atoi(strings.TrimSpace(ms))
	j := 0
	if err == nil && jitter != "" {
		j, err = strconv.Atoi(strings.TrimSpace(jitter))
	}
	if err != nil || d < 0 || j < 0 {
		return lagproxy.Delay{}, fmt.Errorf("%q: want MS[:JITTER], whole non-negative milliseconds", s)
	}
	if j > d {
		return lagproxy.Delay{}, fmt.Errorf("%q: the jitter is more than the delay", s)
	}
	return lagproxy.Delay{Ms: d, JitterMs: j}, nil
}

// run parses args, runs the benchmark and writes the report to stdout, as text or JSON;
// progress goes to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	rep, err := runBench(ctx, cfg, args, stderr)
	if err != nil {
		return err
	}
	return rep.write(stdout, cfg.json)
}
