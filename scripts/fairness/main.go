// Command fairness is Bulb's latency lab: does a student far from the server still win
// their share of first-come questions?
//
// Method. The lab runs the real server (its binary, built from ./server unless --server
// names one, as a separate process on loopback with the memory engine; or --url and
// BULB_ADMIN_TOKEN for one already running) and creates one room per mode (--modes), each
// with the same N choice questions: `arrival` and `compensated` timing under the
// immediate reveal (`"reveal":"immediate"`: a page lights its bulb when the start
// arrives), and `synced+arrival` and `synced+compensated`, the same timings under the
// synced reveal (the quiz default: the start goes out ahead with its reveal instant S,
// and every page lights its bulb at S on its clock, synced with the server's). Each room
// gets --clients honest WebSocket students split evenly into latency groups (default
// one-way 5, 25 and 60 ms), plus --cheaters per group. Every group reaches the server
// through a TCP proxy of its own, Shopify's toxiproxy run as a library in this process,
// with a latency toxic in each direction (downstream and upstream: one-way delay d ±
// jitter each way, so a round trip of about 2d). Toxiproxy draws each chunk's delay
// uniformly from [d−jitter, d+jitter) in whole milliseconds and never reorders a
// connection's bytes.
//
// Every client, honest or not, answers the right choice after a reaction time drawn from
// one shared distribution (normal, --reaction-ms "mean,sd", drawn again below
// --reaction-floor, 150 ms: no honest answer comes near the false-start threshold), each
// client with its own seeded generator. Under the immediate reveal a client acks each
// start at once and its reaction counts from the start's receipt. Under the synced reveal
// a client behaves as the student page does (web/student.js, web/clock.js): it syncs its
// clock with internal/clocksync (a burst of 8 sync samples 30 ms apart at connect, then
// one every 20 s), turns a start's instant S into its own clock, sleeps until 4 ms before
// it and then watches the clock (yielding the processor at each look), lights, reacts
// from its own lighting instant, and reports `seen` after a random 50–300 ms pause
// instead of acking. The lab's clients and the server read one system clock, so the lab
// also knows each client's true lighting error and clock estimate error. A cheater is an
// ordinary client whose connection holds back every outgoing pong frame by --cheat-delay
// (a net.Conn below the WebSocket library, which answers pings by itself): it fakes a
// large round trip, to collect the most compensation the server allows.
//
// Compensated timing under the immediate reveal ranks by reaction = arrival − (when the
// server's write of the start frame returned) − min(RTT, 150 ms), RTT being the lesser of
// that start's own round trip (the write to the client's ack) and the median of the last
// 8 ping round trips (see hub.Hub.Delivery); under the synced reveal by arrival − S −
// min(return delay, 75 ms), the return delay being half the median ping round trip, and
// an answer faster than falseStartMs (100 ms) is a false start. The server pings each
// connection when it connects and then about every --ping-interval (default 5 s), so
// after every client has connected the lab waits --warmup (default two ping intervals
// and one second: at least three round trips each) before the first question;
// afterwards it checks, in the server's fairness report of each room's first start, how
// many players had a measured round trip (rttUs > 0) when the start was written.
//
// The questions alternate between the rooms (arrival 1, compensated 1, synced+arrival 1,
// …) so that every mode sees the same machine load. Per question the lab, as the host,
// opens it, starts it, waits until every client has its reply to its answer (or a
// timeout), closes it, and reads the ranks from GET /api/rooms/{code}/questions/{n}/answers
// (under compensated timing the ranks are decided at close). A question's winner for the
// group shares is its best-ranked honest answer: cheaters do not change the order of the
// honest players, so the group shares are those of a room without them; the cheaters' own
// wins are rank 1 outright.
//
// Reported per mode and group: wins and win share with a 95% Wilson interval, the distance
// from a third in percentage points, Pearson's chi-square test of the three counts against
// equal thirds, the median lag (the server's time for an answer minus the client's own
// reaction time, i.e. what the network and the compensation add), the median round trip the
// server measured, and a model share: the expected share when every player's time is a
// reaction drawn from the measured reactions plus a lag drawn from its group's measured
// lags (many simulated questions), which shows the bias free of the sampling noise of a few
// hundred questions. Under the synced reveal also: false starts (honest and cheating), the
// clients' lighting error and clock error, the server's own reveal reports, and for
// synced+arrival the share the model expects from the groups' one-way delays alone (what
// the way back still costs). Per cheater: its outright win share next to that of an honest
// client of its group, its mean rank percentile and lag next to theirs, what the server
// credits it and the most that can give it (the cap less an honest client's credit).
// Targets: every group within 5 points of a third under compensated (immediate reveal),
// within 3 under synced+compensated.
//
//	go run ./scripts/fairness               # 300 clients, 200 questions per mode, four modes
//	go run ./scripts/fairness --quick       # 60 clients, 20 questions per mode
//	go run ./scripts/fairness --modes synced+arrival,synced+compensated --json-out run1.json
//	go run ./scripts/fairness pool run1.json run2.json …   # several runs' reports, pooled
//
// All traffic stays on loopback. Every goroutine the lab starts stops before it exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fairness:", err)
		}
		os.Exit(2)
	}
}

// group is one latency group: every one of its clients connects through one proxy that
// delays each direction by DelayMs ± JitterMs.
type group struct {
	DelayMs  int `json:"delayMs"`
	JitterMs int `json:"jitterMs"`
}

func (g group) String() string { return fmt.Sprintf("%d±%d ms", g.DelayMs, g.JitterMs) }

// config is the parsed command line.
type config struct {
	url          string // a running server; empty: start one
	adminToken   string // with url, from BULB_ADMIN_TOKEN
	serverBin    string // the server binary to start; empty: go build ./server
	clients      int    // honest clients per room
	questions    int
	groups       []group
	cheaters     int // per group and room
	cheatDelay   time.Duration
	reactionMean time.Duration
	reactionSD   time.Duration
	// reactionFloor is the least reaction time: a draw below it is drawn again.
	reactionFloor time.Duration
	modes         []string
	pingInterval  time.Duration
	warmup        time.Duration
	pause         time.Duration // between a question's open and its start
	seed          uint64
	json          bool
	jsonOut       string
	quick         bool
	modelRounds   int
}

// maxQuestions is the most questions a Bulb quiz holds (docs/protocol.md, Limits).
const maxQuestions = 200

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("fairness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg       config
		delays    = fs.String("delays", "5,25,60", "one-way delay of each latency group, ms, comma-separated")
		jitters   = fs.String("jitter", "1,3,6", "± jitter of each group's one-way delay, ms (one value: every group)")
		reaction  = fs.String("reaction-ms", "300,50", "reaction time of every client: normal \"mean,sd\" in ms, drawn again below --reaction-floor")
		modes     = fs.String("modes", strings.Join(allModes, ","), "modes (one room each) to run, comma-separated, of "+strings.Join(allModes, ", "))
		clients   = fs.Int("clients", 0, "honest clients per room, split evenly over the groups (default 300; --quick 60)")
		questions = fs.Int("questions", 0, "questions per mode, at most 200 (default 200; --quick 30)")
	)
	fs.StringVar(&cfg.url, "url", "", "base URL of a running Bulb server (its admin token in BULB_ADMIN_TOKEN); default: start one")
	fs.StringVar(&cfg.serverBin, "server", "", "server binary to start (default: go build ./server into a temporary directory)")
	fs.IntVar(&cfg.cheaters, "cheaters", 1, "cheating clients per group and room, on top of --clients")
	fs.DurationVar(&cfg.cheatDelay, "cheat-delay", 400*time.Millisecond, "how long a cheater holds back each pong")
	fs.DurationVar(&cfg.pingInterval, "ping-interval", 5*time.Second, "the server's ping interval: passed to the server the lab starts; with --url, say what that server uses")
	fs.DurationVar(&cfg.warmup, "warmup", 0, "wait after the last client connected, for ping round trips to accumulate (default 2 ping intervals + 1 s)")
	fs.DurationVar(&cfg.reactionFloor, "reaction-floor", 150*time.Millisecond, "no reaction time is below it (a draw below is drawn again): above the synced reveal's false-start threshold (100 ms), with room for the network's jitter")
	fs.DurationVar(&cfg.pause, "pause", 100*time.Millisecond, "between opening a question and starting it")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the reaction times and the model")
	fs.BoolVar(&cfg.json, "json", false, "print the report as JSON")
	fs.StringVar(&cfg.jsonOut, "json-out", "", "also write the report as JSON to this file (for fairness pool)")
	fs.BoolVar(&cfg.quick, "quick", false, "a fast run: 60 clients, 20 questions per mode (unless given)")
	fs.IntVar(&cfg.modelRounds, "model-rounds", 20000, "simulated questions of the model share")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.clients, cfg.questions = 300, maxQuestions
	if cfg.quick {
		cfg.clients, cfg.questions = 60, 20
	}
	if *clients != 0 {
		cfg.clients = *clients
	}
	if *questions != 0 {
		cfg.questions = *questions
	}
	if cfg.warmup == 0 {
		cfg.warmup = 2*cfg.pingInterval + time.Second
	}
	if cfg.url != "" {
		cfg.url = strings.TrimRight(cfg.url, "/")
		if u, err := url.Parse(cfg.url); err != nil || u.Scheme != "http" || u.Host == "" {
			return cfg, fmt.Errorf("--url %q: want http://host:port", cfg.url)
		}
		if cfg.adminToken = getenv("BULB_ADMIN_TOKEN"); cfg.adminToken == "" {
			return cfg, errors.New("--url needs the server's admin token in BULB_ADMIN_TOKEN")
		}
	}

	d, err := parseInts(*delays)
	if err != nil {
		return cfg, fmt.Errorf("--delays: %w", err)
	}
	j, err := parseInts(*jitters)
	if err != nil {
		return cfg, fmt.Errorf("--jitter: %w", err)
	}
	if len(j) == 1 {
		j = slices.Repeat(j, len(d))
	}
	if len(j) != len(d) {
		return cfg, fmt.Errorf("--jitter: %d values for %d groups", len(j), len(d))
	}
	for i := range d {
		if j[i] > d[i] {
			return cfg, fmt.Errorf("--jitter: %d ms is more than the delay %d ms", j[i], d[i])
		}
		cfg.groups = append(cfg.groups, group{DelayMs: d[i], JitterMs: j[i]})
	}
	r, err := parseInts(*reaction)
	if err != nil || len(r) != 2 {
		return cfg, fmt.Errorf("--reaction-ms %q: want \"mean,sd\" in whole ms", *reaction)
	}
	cfg.reactionMean, cfg.reactionSD = time.Duration(r[0])*time.Millisecond, time.Duration(r[1])*time.Millisecond
	for _, m := range strings.Split(*modes, ",") {
		m = strings.TrimSpace(m)
		if !slices.Contains(allModes, m) {
			return cfg, fmt.Errorf("--modes: %q is not one of %s", m, strings.Join(allModes, ", "))
		}
		if slices.Contains(cfg.modes, m) {
			return cfg, fmt.Errorf("--modes: %q twice", m)
		}
		cfg.modes = append(cfg.modes, m)
	}
	switch {
	case cfg.clients < len(cfg.groups) || cfg.clients%len(cfg.groups) != 0:
		return cfg, fmt.Errorf("--clients %d: want a positive multiple of the %d groups", cfg.clients, len(cfg.groups))
	case cfg.questions < 1 || cfg.questions > maxQuestions:
		return cfg, fmt.Errorf("--questions %d: want 1 to %d (a quiz's limit)", cfg.questions, maxQuestions)
	case cfg.reactionFloor < 0 || cfg.reactionFloor >= cfg.reactionMean:
		return cfg, fmt.Errorf("--reaction-floor %s: want 0 or more and below the mean reaction time %s", cfg.reactionFloor, cfg.reactionMean)
	case cfg.cheaters < 0 || cfg.cheatDelay < 0 || cfg.pingInterval <= 0 || cfg.warmup < 0 || cfg.pause < 0 || cfg.modelRounds < 0:
		return cfg, errors.New("--cheaters, --cheat-delay, --warmup, --pause and --model-rounds must not be negative, --ping-interval must be positive")
	}
	return cfg, nil
}

// parseInts reads comma-separated non-negative whole numbers.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%q: want non-negative whole numbers, comma-separated", s)
		}
		out = append(out, v)
	}
	return out, nil
}

// run parses args, runs the lab and writes the report to stdout; progress goes to stderr.
// With "pool" first, it pools the reports named after it instead (pool.go).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "pool" {
		return runPool(args[1:], stdout)
	}
	cfg, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	rep, err := runLab(ctx, cfg, args, stderr)
	if err != nil {
		return err
	}
	if cfg.jsonOut != "" {
		f, err := os.Create(cfg.jsonOut)
		if err != nil {
			return err
		}
		err = writeJSON(f, rep)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("--json-out: %w", err)
		}
	}
	if cfg.json {
		return writeJSON(stdout, rep)
	}
	writeText(stdout, rep)
	return nil
}
