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
	Redis        string        // Redis URL; empty for the in-memory engine
	Node         string        // this node's name among the nodes on one Redis
	RoomTTL      time.Duration // a room is deleted this long after its last activity

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
		RoomTTL:      quiz.DefaultRoomTTL,
		Role:         roleAll,
		Sandbox:      "bwrap",
		JudgeWorkers: runtime.NumCPU(),
		BoxRoot:      filepath.Join(os.TempDir(), "bulb-boxes"),
		LeaseTTL:     10 * time.Second,
		ClaimIdle:    30 * time.Second,
	}
	if err := cfg.fromEnv(getenv); err != nil {
		return cfg, err
	}
	fs := flag.NewFlagSet("bulb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.defineFlags(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if cfg.QueueSize < 1 || cfg.WriteTimeout <= 0 || cfg.PingInterval <= 0 || cfg.RoomTTL <= 0 {
		return cfg, fmt.Errorf("queue size, write timeout, ping interval and room TTL must be positive")
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

// fromEnv sets the fields whose BULB_ variables getenv has.
func (c *config) fromEnv(getenv func(string) string) error {
	if v := getenv("BULB_ADDR"); v != "" {
		c.Addr = v
	}
	c.Redis = getenv("BULB_REDIS_URL")
	c.Node = getenv("BULB_NODE")
	c.Host = getenv("BULB_HOST")
	if v := getenv("BULB_ROLE"); v != "" {
		c.Role = v
	}
	if v := getenv("BULB_SANDBOX"); v != "" {
		c.Sandbox = v
	}
	if v := getenv("BULB_BOX_ROOT"); v != "" {
		c.BoxRoot = v
	}
	var err error
	env := func(name string, parse func(string) error) {
		if v := getenv(name); v != "" && err == nil {
			if e := parse(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, e)
			}
		}
	}
	env("BULB_LOG_LEVEL", func(v string) error { return c.LogLevel.UnmarshalText([]byte(v)) })
	env("BULB_QUEUE_SIZE", func(v string) (e error) { c.QueueSize, e = strconv.Atoi(v); return })
	env("BULB_WRITE_TIMEOUT", func(v string) (e error) { c.WriteTimeout, e = time.ParseDuration(v); return })
	env("BULB_PING_INTERVAL", func(v string) (e error) { c.PingInterval, e = time.ParseDuration(v); return })
	env("BULB_ROOM_TTL", func(v string) (e error) { c.RoomTTL, e = time.ParseDuration(v); return })
	env("BULB_WORKERS", func(v string) (e error) { c.JudgeWorkers, e = strconv.Atoi(v); return })
	env("BULB_BOXES", func(v string) (e error) { c.Boxes, e = strconv.Atoi(v); return })
	env("BULB_BOX_BASE", func(v string) (e error) { c.BoxBase, e = strconv.Atoi(v); return })
	env("BULB_LEASE_TTL", func(v string) (e error) { c.LeaseTTL, e = time.ParseDuration(v); return })
	env("BULB_CLAIM_IDLE", func(v string) (e error) { c.ClaimIdle, e = time.ParseDuration(v); return })
	return err
}

// defineFlags defines a flag on fs for every field, its default the field's value.
func (c *config) defineFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (BULB_ADDR)")
	fs.TextVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (BULB_LOG_LEVEL)")
	fs.IntVar(&c.QueueSize, "queue-size", c.QueueSize, "frames queued per connection before it is dropped as too slow (BULB_QUEUE_SIZE)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "longest write to one socket before it is dropped (BULB_WRITE_TIMEOUT)")
	fs.DurationVar(&c.PingInterval, "ping-interval", c.PingInterval, "time between RTT pings (BULB_PING_INTERVAL)")
	fs.DurationVar(&c.RoomTTL, "room-ttl", c.RoomTTL, "a room, its players, tokens and answers are deleted this long after its last activity (BULB_ROOM_TTL)")
	fs.StringVar(&c.Redis, "redis", c.Redis, "Redis URL, e.g. redis://localhost:6379/0: run as one node of many on it (BULB_REDIS_URL)")
	fs.StringVar(&c.Node, "node", c.Node, "this node's name, unique among the nodes on one Redis; default host name and a random suffix (BULB_NODE)")
	fs.StringVar(&c.Role, "role", c.Role, "all (serve and judge), server (serve; needs --redis and judge processes) or judge (judge for the servers on --redis) (BULB_ROLE)")
	fs.StringVar(&c.Sandbox, "sandbox", c.Sandbox, "the judge's sandbox: bwrap (bubblewrap) or isolate, if installed (BULB_SANDBOX)")
	fs.IntVar(&c.JudgeWorkers, "workers", c.JudgeWorkers, "judge workers: code submissions judged at once by this process (BULB_WORKERS)")
	fs.IntVar(&c.Boxes, "boxes", c.Boxes, "sandbox boxes on this host; default --workers (BULB_BOXES)")
	fs.IntVar(&c.BoxBase, "box-base", c.BoxBase, "first box id: box N runs as uid 60000+N (BULB_BOX_BASE)")
	fs.StringVar(&c.BoxRoot, "box-root", c.BoxRoot, "directory of the box directories (BULB_BOX_ROOT)")
	fs.StringVar(&c.Host, "host", c.Host, "this host's name: judge processes on one host share its boxes; default the host name (BULB_HOST)")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", c.LeaseTTL, "a judge process silent this long is dead: its boxes are cleaned and reused (BULB_LEASE_TTL)")
	fs.DurationVar(&c.ClaimIdle, "claim-idle", c.ClaimIdle, "a code job this long with one judge process is judged by another (BULB_CLAIM_IDLE)")
}
