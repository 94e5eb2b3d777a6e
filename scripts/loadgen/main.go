// Command loadgen is the load generator of Bulb: N real WebSocket clients in their own
// process join a room through the HTTP API, connect, stamp the monotonic receipt time of
// every start frame, and behave as the student page does (web/student.js): they sync
// their clocks with the server's (a burst of 8 samples 30 ms apart at connect, one every
// 20 s; internal/clocksync), light the bulb at once (immediate reveal) or at the start's
// instant on the synced clock (synced reveal: sleep until 4 ms before, then spin), and
// report seen after a random pause of 50 to 300 ms, out of the fan-out's way; a client
// whose clock has no sample yet acks when it lights. With --ack they are the page as it
// was: no clock, an ack at once on every start. They answer after a configurable
// reaction time from the light, and at the end loadgen prints how fair the starts were:
// per start the spread of receipt times (and, under the synced reveal, of the reveal
// instants), per client its mean receipt percentile across starts, and uniformity tests
// that make a systematic bias visible.
//
//	go run ./scripts/loadgen --url http://127.0.0.1:8080 --room 482913 --clients 1000 \
//	    --rate 500 --starts 10 --reaction-ms 300,100 --choice 2
//
// The host opens and starts questions as usual (host page or curl); loadgen only plays
// students. Every goroutine it starts stops before it exits. All its clients come from one
// address, so start the server with no cap of connections or joins per address
// (--conns-per-addr 0 --join-rate 0), as scripts/bench.sh e2e does.
//
// With --protocol centrifuge the same clients connect to scripts/peer, the benchmark's
// centrifuge server, instead: they subscribe to the channel named by --room, in
// centrifuge's JSON protocol, which carries the same frames (see wire.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
		os.Exit(2)
	}
}

// config is the parsed command line.
type config struct {
	nodes          []string // base URLs, no trailing slash
	room           string
	proto          string // protoBulb or protoCentrifuge
	ack            bool   // the old page: ack at once, no clock
	clients        int
	rate           float64 // connections per second; 0: all at once
	reactionMean   time.Duration
	reactionJitter time.Duration
	answer         bool
	choice         int
	duration       time.Duration
	starts         int
	grace          time.Duration
	json           bool
	sources        []net.IP
	seed           uint64
	progress       time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg      config
		urlFlag  = fs.String("url", "http://127.0.0.1:8080", "base URL of the Bulb node")
		nodes    = fs.String("nodes", "", "comma-separated base URLs of several nodes: clients are spread over them round-robin (overrides --url)")
		reaction = fs.String("reaction-ms", "0", "answer after a normal(mean, jitter) delay in ms, clamped at 0: \"mean,jitter\"; 0 = never answer")
		sources  = fs.String("sources", "", "comma-separated local addresses to dial from, round-robin (e.g. 127.0.0.1,127.0.0.2: more source ports on loopback)")
	)
	fs.StringVar(&cfg.room, "room", "", "room code to join (required; with --protocol centrifuge, the channel)")
	fs.StringVar(&cfg.proto, "protocol", protoBulb, "bulb, or centrifuge: connect to scripts/peer instead, over centrifuge's protocol")
	fs.BoolVar(&cfg.ack, "ack", false, "behave as the page did before it synced its clock: ack every start at once on receipt, no clock sync, no seen report")
	fs.IntVar(&cfg.clients, "clients", 100, "number of clients")
	fs.Float64Var(&cfg.rate, "rate", 200, "connections per second during ramp-up (0 = all at once)")
	fs.IntVar(&cfg.choice, "choice", 0, "the choice every client answers (0-based)")
	fs.DurationVar(&cfg.duration, "duration", 0, "stop after this long from the start of the run (0 = no limit)")
	fs.IntVar(&cfg.starts, "starts", 0, "stop once this many distinct starts were seen and delivered (0 = no limit)")
	fs.DurationVar(&cfg.grace, "grace", 3*time.Second, "after the last of --starts, wait at most this long for every client to get it and answer")
	fs.BoolVar(&cfg.json, "json", false, "print the summary as JSON")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the reaction times and the randomized ranks")
	fs.DurationVar(&cfg.progress, "progress", time.Second, "interval of the progress lines on stderr while connecting")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	list := *urlFlag
	if *nodes != "" {
		list = *nodes
	}
	for _, u := range strings.Split(list, ",") {
		u = strings.TrimRight(strings.TrimSpace(u), "/")
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return cfg, fmt.Errorf("node URL %q: want http://host:port", u)
		}
		cfg.nodes = append(cfg.nodes, u)
	}
	if cfg.room == "" {
		return cfg, errors.New("--room is required")
	}
	if cfg.clients < 1 {
		return cfg, errors.New("--clients must be at least 1")
	}
	if cfg.rate < 0 || cfg.starts < 0 || cfg.duration < 0 || cfg.grace < 0 || cfg.progress <= 0 {
		return cfg, errors.New("--rate, --starts, --duration and --grace must not be negative, --progress must be positive")
	}
	mean, jitter, err := parseReaction(*reaction)
	if err != nil {
		return cfg, err
	}
	cfg.reactionMean, cfg.reactionJitter, cfg.answer = mean, jitter, mean > 0 || jitter > 0
	switch {
	case cfg.proto != protoBulb && cfg.proto != protoCentrifuge:
		return cfg, fmt.Errorf("--protocol %q: want bulb or centrifuge", cfg.proto)
	case cfg.proto == protoCentrifuge && cfg.answer:
		return cfg, errors.New("--protocol centrifuge: the peer takes no answers, leave --reaction-ms at 0")
	}
	if *sources != "" {
		for _, s := range strings.Split(*sources, ",") {
			ip := net.ParseIP(strings.TrimSpace(s))
			if ip == nil {
				return cfg, fmt.Errorf("--sources: %q is not an IP address", s)
			}
			cfg.sources = append(cfg.sources, ip)
		}
	}
	return cfg, nil
}

// parseReaction reads "mean,jitter" (or just "mean") in milliseconds.
func parseReaction(s string) (mean, jitter time.Duration, err error) {
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		return 0, 0, fmt.Errorf("--reaction-ms %q: want mean,jitter", s)
	}
	var ms [2]float64
	for i, p := range parts {
		if ms[i], err = strconv.ParseFloat(strings.TrimSpace(p), 64); err != nil || ms[i] < 0 {
			return 0, 0, fmt.Errorf("--reaction-ms %q: want non-negative milliseconds mean,jitter", s)
		}
	}
	return time.Duration(ms[0] * float64(time.Millisecond)), time.Duration(ms[1] * float64(time.Millisecond)), nil
}

// run parses args, runs the clients until ctx ends, --duration passes or --starts were
// seen, and writes the summary to stdout; progress and notes go to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if cur, max, err := raiseNoFile(); err != nil {
		fmt.Fprintf(stderr, "loadgen: cannot raise the open-file limit: %v\n", err)
	} else if uint64(cfg.clients)+64 > cur {
		fmt.Fprintf(stderr, "loadgen: open-file limit %d (hard %d) is below %d clients + 64: expect failures\n", cur, max, cfg.clients)
	}
	rep := newLoadgen(cfg, stderr).run(ctx)
	if cfg.json {
		return writeJSON(stdout, rep)
	}
	writeText(stdout, rep)
	return nil
}
