package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
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
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	cfg := config{
		Addr:         ":8080",
		AdminToken:   getenv("BULB_ADMIN_TOKEN"),
		QueueSize:    64,
		WriteTimeout: 5 * time.Second,
		PingInterval: 5 * time.Second,
	}
	if v := getenv("BULB_ADDR"); v != "" {
		cfg.Addr = v
	}
	cfg.Redis = getenv("BULB_REDIS_URL")
	cfg.Node = getenv("BULB_NODE")
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
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if cfg.QueueSize < 1 || cfg.WriteTimeout <= 0 || cfg.PingInterval <= 0 {
		return cfg, fmt.Errorf("queue size, write timeout and ping interval must be positive")
	}
	if cfg.Node == "" {
		host, _ := os.Hostname()
		cfg.Node = host + "-" + quiz.Token()[:6]
	}
	return cfg, nil
}
