package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/bulbquiz/bulb/judge"
	"github.com/bulbquiz/bulb/quiz"
)

// defaultBoxes is how many sandbox boxes a host has unless told: more than the workers
// of a few Bulb processes, so that a second one on the host takes other boxes rather than
// waiting. A box costs a uid, a lock file and an empty directory.
const defaultBoxes = 64

// defaultData is the data directory unless told: in the directory the server runs in, so
// that `go run ./server` twice finds the same rooms.
const defaultData = "bulb-data"

// config is the server's configuration. Every field has a flag and an environment
// variable; a flag wins over the variable, which wins over the default.
type config struct {
	Addr         string
	AdminToken   string // environment only: a flag would show in the process list
	LogLevel     slog.Level
	QueueSize    int
	WriteTimeout time.Duration
	PingInterval time.Duration
	Data         string        // the embedded engine's data directory; empty for the in-memory engine
	Redis        string        // Redis URL; wins over Data
	Node         string        // this node's name among the nodes on one Redis
	RoomTTL      time.Duration // a room is deleted this long after its last activity

	// What one client may take of the HTTP server (limits.go, listener.go).
	HeaderTimeout   time.Duration  // to read a request's header
	ReadTimeout     time.Duration  // to read a whole request, header and body
	IdleTimeout     time.Duration  // a keep-alive connection may wait for its next request
	ConnsPerAddr    int            // open connections per client address; 0: no cap
	JoinRate        int            // joins per minute per client address; 0: no limit
	UnknownRoomRate int            // look-ups of unknown rooms per minute per client address; 0: no limit
	TrustedProxies  []netip.Prefix // proxies whose X-Forwarded-For names the client

	// The judge of code questions.
	Role         string        // roleAll, roleServer or roleJudge
	Sandbox      string        // "bwrap" or "isolate"
	JudgeWorkers int           // submissions judged at once by this process
	Boxes        int           // sandbox boxes on this host, shared by every Bulb process on it
	BoxBase      int           // the first box id (uid 60000+id, a cgroup and a directory each)
	BoxRoot      string        // the directory of the box directories
	BoxLocks     string        // the host-wide directory of the boxes' lock files
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
		Data:         defaultData,
		Role:         roleAll,
		Sandbox:      "bwrap",
		JudgeWorkers: runtime.NumCPU(),
		BoxRoot:      filepath.Join(os.TempDir(), "bulb-boxes"),
		Boxes:        defaultBoxes,
		BoxLocks:     judge.DefaultBoxLocks,
		ClaimIdle:    30 * time.Second,

		// A 1 MiB quiz over a slow classroom link fits in the read timeout; a keep-alive
		// connection idle for a minute is reopened at little cost.
		HeaderTimeout: 10 * time.Second,
		ReadTimeout:   30 * time.Second,
		IdleTimeout:   60 * time.Second,
		// Up to 512 connections from one address: a class of 60 behind one NAT holds one
		// WebSocket each and a few keep-alive connections per browser.
		ConnsPerAddr: 512,
		// 120 joins at once, then 2 a second: a class of 60 behind one NAT joins at once,
		// retries of taken names included; a script filling a room of 20,000 needs hours.
		// A student mistypes a room code now and then; a script trying every code at 20 a
		// minute needs a month.
		JoinRate:        120,
		UnknownRoomRate: 20,
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
	if cfg.HeaderTimeout <= 0 || cfg.ReadTimeout <= 0 || cfg.IdleTimeout <= 0 {
		return cfg, fmt.Errorf("header, read and idle timeouts must be positive")
	}
	if cfg.ConnsPerAddr < 0 || cfg.JoinRate < 0 || cfg.UnknownRoomRate < 0 {
		return cfg, fmt.Errorf("connections per address, join rate and unknown-room rate must not be negative (0: no limit)")
	}
	switch cfg.Role {
	case roleAll, roleServer, roleJudge:
	default:
		return cfg, fmt.Errorf("--role must be %s, %s or %s, not %q", roleAll, roleServer, roleJudge, cfg.Role)
	}
	if cfg.Sandbox != "bwrap" && cfg.Sandbox != "isolate" {
		return cfg, fmt.Errorf("--sandbox must be bwrap or isolate, not %q", cfg.Sandbox)
	}
	if cfg.JudgeWorkers < 1 || cfg.Boxes < 1 || cfg.BoxBase < 0 || cfg.ClaimIdle <= 0 {
		return cfg, fmt.Errorf("judge workers, boxes and claim idle must be positive, box base not negative")
	}
	host, _ := os.Hostname()
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
	if v := getenv("BULB_DATA"); v != "" {
		c.Data = v
	}
	c.Redis = getenv("BULB_REDIS_URL")
	c.Node = getenv("BULB_NODE")
	if v := getenv("BULB_ROLE"); v != "" {
		c.Role = v
	}
	if v := getenv("BULB_SANDBOX"); v != "" {
		c.Sandbox = v
	}
	if v := getenv("BULB_BOX_ROOT"); v != "" {
		c.BoxRoot = v
	}
	if v := getenv("BULB_BOX_LOCKS"); v != "" {
		c.BoxLocks = v
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
	env("BULB_HEADER_TIMEOUT", func(v string) (e error) { c.HeaderTimeout, e = time.ParseDuration(v); return })
	env("BULB_READ_TIMEOUT", func(v string) (e error) { c.ReadTimeout, e = time.ParseDuration(v); return })
	env("BULB_IDLE_TIMEOUT", func(v string) (e error) { c.IdleTimeout, e = time.ParseDuration(v); return })
	env("BULB_CONNS_PER_ADDR", func(v string) (e error) { c.ConnsPerAddr, e = strconv.Atoi(v); return })
	env("BULB_JOIN_RATE", func(v string) (e error) { c.JoinRate, e = strconv.Atoi(v); return })
	env("BULB_UNKNOWN_ROOM_RATE", func(v string) (e error) { c.UnknownRoomRate, e = strconv.Atoi(v); return })
	env("BULB_TRUSTED_PROXIES", func(v string) (e error) { c.TrustedProxies, e = parsePrefixes(v); return })
	env("BULB_QUEUE_SIZE", func(v string) (e error) { c.QueueSize, e = strconv.Atoi(v); return })
	env("BULB_WRITE_TIMEOUT", func(v string) (e error) { c.WriteTimeout, e = time.ParseDuration(v); return })
	env("BULB_PING_INTERVAL", func(v string) (e error) { c.PingInterval, e = time.ParseDuration(v); return })
	env("BULB_ROOM_TTL", func(v string) (e error) { c.RoomTTL, e = time.ParseDuration(v); return })
	env("BULB_WORKERS", func(v string) (e error) { c.JudgeWorkers, e = strconv.Atoi(v); return })
	env("BULB_BOXES", func(v string) (e error) { c.Boxes, e = strconv.Atoi(v); return })
	env("BULB_BOX_BASE", func(v string) (e error) { c.BoxBase, e = strconv.Atoi(v); return })
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
	fs.DurationVar(&c.HeaderTimeout, "header-timeout", c.HeaderTimeout, "longest time to read a request's header (BULB_HEADER_TIMEOUT)")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", c.ReadTimeout, "longest time to read a whole request, header and body; not an open WebSocket (BULB_READ_TIMEOUT)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "a keep-alive connection idle this long is closed (BULB_IDLE_TIMEOUT)")
	fs.IntVar(&c.ConnsPerAddr, "conns-per-addr", c.ConnsPerAddr, "open connections per client address, WebSockets included; 0: no cap (BULB_CONNS_PER_ADDR)")
	fs.IntVar(&c.JoinRate, "join-rate", c.JoinRate, "joins per minute per client address, as many at once; 0: no limit (BULB_JOIN_RATE)")
	fs.IntVar(&c.UnknownRoomRate, "unknown-room-rate", c.UnknownRoomRate, "look-ups of unknown rooms per minute per client address, as many at once; 0: no limit (BULB_UNKNOWN_ROOM_RATE)")
	fs.Func("trusted-proxies", "comma-separated CIDRs of reverse proxies: the client address of their requests is the rightmost untrusted hop of X-Forwarded-For (BULB_TRUSTED_PROXIES)",
		func(v string) (err error) { c.TrustedProxies, err = parsePrefixes(v); return })
	fs.DurationVar(&c.RoomTTL, "room-ttl", c.RoomTTL, "a room, its players, tokens and answers are deleted this long after its last activity (BULB_ROOM_TTL)")
	fs.StringVar(&c.Data, "data", c.Data, `the data directory: rooms, players, answers and the admin token live there and survive restarts; "" for the in-memory engine, which keeps nothing (BULB_DATA)`)
	fs.StringVar(&c.Redis, "redis", c.Redis, "Redis URL, e.g. redis://localhost:6379/0: run as one node of many on it (BULB_REDIS_URL)")
	fs.StringVar(&c.Node, "node", c.Node, "this node's name, unique among the nodes on one Redis; default host name and a random suffix (BULB_NODE)")
	fs.StringVar(&c.Role, "role", c.Role, "all (serve and judge), server (serve; needs --redis and judge processes) or judge (judge for the servers on --redis) (BULB_ROLE)")
	fs.StringVar(&c.Sandbox, "sandbox", c.Sandbox, "the judge's sandbox: bwrap (bubblewrap) or isolate, if installed (BULB_SANDBOX)")
	fs.IntVar(&c.JudgeWorkers, "workers", c.JudgeWorkers, "judge workers: code submissions judged at once by this process (BULB_WORKERS)")
	fs.IntVar(&c.Boxes, "boxes", c.Boxes, "sandbox boxes on this host, box ids --box-base to --box-base+boxes-1, shared by every Bulb process on it (BULB_BOXES)")
	fs.IntVar(&c.BoxBase, "box-base", c.BoxBase, "first box id: box N runs as uid 60000+N (BULB_BOX_BASE)")
	fs.StringVar(&c.BoxRoot, "box-root", c.BoxRoot, "directory of the box directories (BULB_BOX_ROOT)")
	fs.StringVar(&c.BoxLocks, "box-locks", c.BoxLocks, "host-wide directory of the boxes' lock files: every Bulb process on the host must use the same (BULB_BOX_LOCKS)")
	fs.DurationVar(&c.ClaimIdle, "claim-idle", c.ClaimIdle, "a code job this long with one judge process is judged by another (BULB_CLAIM_IDLE)")
}
