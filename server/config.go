package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/bulbquiz/bulb/quiz"
)

// config is the server's configuration. Every field has a flag and an environment
// variable; a flag wins over the variable, which wins over the default.
type config struct {
	Addr         string
	AdminToken   string // environment only: a flag would show in the process list
	LogLevel     slog.Level
	QueueSize    int
	WriteTimeout time.Duration
	PingInterval time.Duration
	Redis        string // Redis URL; empty for the in-memory engine
	Node         string // this node's name among the nodes on one Redis

	// The judge of code questions.
	Role         string        // roleAll, roleServer or roleJudge
	Sandbox      string        // "bwrap" or "isolate"
	JudgeWorkers int           // submissions judged at once by this process
	Boxes        int           // sandbox boxes on this host
	BoxBase      int           // the first box id (uid 60000+id, a cgroup and a directory each)
	BoxRoot      string        // the directory of the box directories
	Host         string        // this host's name: processes on one host share its boxes
	LeaseTTL     time.Duration // a judge silent this long is dead; its boxes are cleaned and reused
	ClaimIdle    time.Duration // a job this long with one judge is taken by another
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	cfg := config{
		Addr:         ":8080",
		AdminToken:   getenv("BULB_ADMIN_TOKEN"),
		QueueSize:    64,
		WriteTimeout: 5 * time.Second,
		PingInterval: 5 * time.Second,
		Role:         roleAll,
		Sandbox:      "bwrap",
		JudgeWorkers: runtime.NumCPU(),
		BoxRoot:      filepath.Join(os.TempDir(), "bulb-boxes"),
		LeaseTTL:     10 * time.Second,
		ClaimIdle:    30 * time.Second,
	}
	if v := getenv("BULB_ADDR"); v != "" {
		cfg.Addr = v
	}
	cfg.Redis = getenv("BULB_REDIS_URL")
	cfg.Node = getenv("BULB_NODE")
	cfg.Host = getenv("BULB_HOST")
	if v := getenv("BULB_ROLE"); v != "" {
		cfg.Role = v
	}
	if v := getenv("BULB_SANDBOX"); v != "" {
		cfg.Sandbox = v
	}
	if v := getenv("BULB_BOX_ROOT"); v != "" {
		cfg.BoxRoot = v
	}
	var err error
	env := func(name string, parse func(string) error) {
		if v := getenv(name); v != "" && err == nil {
			if e := parse(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, e)
			}
		}
	}
	env("BULB_LOG_LEVEL", func(v string) error { return cfg.LogLevel.UnmarshalText([]byte(v)) })
	env("BULB_QUEUE_SIZE", func(v string) (e error) { cfg.QueueSize, e = strconv.Atoi(v); return })
	env("BULB_WRITE_TIMEOUT", func(v string) (e error) { cfg.WriteTimeout, e = time.ParseDuration(v); return })
	env("BULB_PING_INTERVAL", func(v string) (e error) { cfg.PingInterval, e = time.ParseDuration(v); return })
	env("BULB_WORKERS", func(v string) (e error) { cfg.JudgeWorkers, e = strconv.Atoi(v); return })
	env("BULB_BOXES", func(v string) (e error) { cfg.Boxes, e = strconv.Atoi(v); return })
	env("BULB_BOX_BASE", func(v string) (e error) { cfg.BoxBase, e = strconv.Atoi(v); return })
	env("BULB_LEASE_TTL", func(v string) (e error) { cfg.LeaseTTL, e = time.ParseDuration(v); return })
	env("BULB_CLAIM_IDLE", func(v string) (e error) { cfg.ClaimIdle, e = time.ParseDuration(v); return })
	if err != nil {
		return cfg, err
	}

	fs := flag.NewFlagSet("bulb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (BULB_ADDR)")
	fs.TextVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error (BULB_LOG_LEVEL)")
	fs.IntVar(&cfg.QueueSize, "queue-size", cfg.QueueSize, "frames queued per connection before it is dropped as too slow (BULB_QUEUE_SIZE)")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "longest write to one socket before it is dropped (BULB_WRITE_TIMEOUT)")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", cfg.PingInterval, "time between RTT pings (BULB_PING_INTERVAL)")
	fs.StringVar(&cfg.Redis, "redis", cfg.Redis, "Redis URL, e.g. redis://localhost:6379/0: run as one node of many on it (BULB_REDIS_URL)")
	fs.StringVar(&cfg.Node, "node", cfg.Node, "this node's name, unique among the nodes on one Redis; default host name and a random suffix (BULB_NODE)")
	fs.StringVar(&cfg.Role, "role", cfg.Role, "all (serve and judge), server (serve; needs --redis and judge processes) or judge (judge for the servers on --redis) (BULB_ROLE)")
	fs.StringVar(&cfg.Sandbox, "sandbox", cfg.Sandbox, "the judge's sandbox: bwrap (bubblewrap) or isolate, if installed (BULB_SANDBOX)")
	fs.IntVar(&cfg.JudgeWorkers, "workers", cfg.JudgeWorkers, "judge workers: code submissions judged at once by this process (BULB_WORKERS)")
	fs.IntVar(&cfg.Boxes, "boxes", cfg.Boxes, "sandbox boxes on this host; default --workers (BULB_BOXES)")
	fs.IntVar(&cfg.BoxBase, "box-base", cfg.BoxBase, "first box id: box N runs as uid 60000+N (BULB_BOX_BASE)")
	fs.StringVar(&cfg.BoxRoot, "box-root", cfg.BoxRoot, "directory of the box directories (BULB_BOX_ROOT)")
	fs.StringVar(&cfg.Host, "host", cfg.Host, "this host's name: judge processes on one host share its boxes; default the host name (BULB_HOST)")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", cfg.LeaseTTL, "a judge process silent this long is dead: its boxes are cleaned and reused (BULB_LEASE_TTL)")
	fs.DurationVar(&cfg.ClaimIdle, "claim-idle", cfg.ClaimIdle, "a code job this long with one judge process is judged by another (BULB_CLAIM_IDLE)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if cfg.QueueSize < 1 || cfg.WriteTimeout <= 0 || cfg.PingInterval <= 0 {
		return cfg, fmt.Errorf("queue size, write timeout and ping interval must be positive")
	}
	switch cfg.Role {
	case roleAll, roleServer, roleJudge:
	default:
		return cfg, fmt.Errorf("--role must be %s, %s or %s, not %q", roleAll, roleServer, roleJudge, cfg.Role)
	}
	if cfg.Sandbox != "bwrap" && cfg.Sandbox != "isolate" {
		return cfg, fmt.Errorf("--sandbox must be bwrap or isolate, not %q", cfg.Sandbox)
	}
	if cfg.Boxes == 0 {
		cfg.Boxes = cfg.JudgeWorkers
	}
	if cfg.JudgeWorkers < 1 || cfg.Boxes < 1 || cfg.BoxBase < 0 || cfg.LeaseTTL <= 0 || cfg.ClaimIdle <= 0 {
		return cfg, fmt.Errorf("judge workers, boxes, lease TTL and claim idle must be positive, box base not negative")
	}
	host, _ := os.Hostname()
	if cfg.Host == "" {
		cfg.Host = host
	}
	if cfg.Node == "" {
		cfg.Node = host + "-" + quiz.Token()[:6]
	}
	return cfg, nil
}
