package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/bulbquiz/bulb/hub"
	"github.com/bulbquiz/bulb/quiz"
)

// engine is where state lives and how nodes reach each other: the embedded engine (a
// database in the data directory), the in-memory engine (nothing kept) or Redis (one node
// of many).
type engine struct {
	name   string
	store  quiz.Store
	bus    hub.Bus // nil on one node
	locker quiz.Locker
	health func(ctx context.Context) error // why the engine cannot serve, or nil
	close  func()
	rdb    *redis.Client // nil but on Redis
	// data is the data directory of the embedded engine; "" on the others.
	data string
	// archive keeps the hub's fairness records across restarts; nil if nothing does.
	archive hub.Archive
	// resubmit says that the judge's queue is lost in a restart but the submissions are
	// not: the ones without a verdict are submitted again at start-up.
	resubmit bool
	// metrics are the engine's own, for /metrics.
	metrics []prometheus.Collector
}

// Timeouts of every Redis call: Redis down must fail calls fast, not hang them.
const redisTimeout = time.Second

func newEngine(cfg config, log *slog.Logger) (*engine, error) {
	switch {
	case cfg.Redis != "":
		return newRedisEngine(cfg)
	case cfg.Data == "":
		return &engine{name: "in-memory engine: nothing is kept when it stops", store: quiz.NewMemoryStore(), locker: quiz.NewMemoryLocker(),
			health: func(context.Context) error { return nil }, close: func() {}}, nil
	}
	dir, err := dataDir(cfg.Data)
	if err != nil {
		return nil, err
	}
	store, err := quiz.OpenBoltStore(filepath.Join(dir, "bulb.db"), log)
	if errors.Is(err, quiz.ErrDataLocked) {
		return nil, fmt.Errorf("data directory %s is in use by another Bulb server: stop it, or give this one another --data", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	return &engine{
		name:     "embedded engine, data in " + dir,
		store:    store,
		locker:   quiz.NewMemoryLocker(),
		health:   func(context.Context) error { return store.Health() },
		close:    func() { store.Close() },
		data:     dir,
		archive:  store,
		resubmit: true,
		metrics: []prometheus.Collector{
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "bulb_store_changes_total",
				Help: "Changes the embedded engine wrote to its database."},
				func() float64 { return float64(store.Stats().Changes) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "bulb_store_commits_total",
				Help: "Transactions the embedded engine committed, each with one flush to the disk: changes made at once share one."},
				func() float64 { return float64(store.Stats().Commits) }),
		},
	}, nil
}

// dataDir makes the data directory if need be (mode 0700: it holds the tokens) and
// returns its absolute path; an error says plainly what is wrong with it.
func dataDir(path string) (string, error) {
	dir, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("data directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return "", fmt.Errorf("data directory %s cannot be written: %w", dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return dir, nil
}

// adminTokenFile is the file in the data directory that keeps a generated admin token.
const adminTokenFile = "admin-token"

// adminToken returns the admin token: BULB_ADMIN_TOKEN's if set; else, with a data
// directory, the one kept there (made and written, mode 0600, on the first start); else a
// new one. where says where a token nobody chose is kept, for the start-up message; it is
// empty for BULB_ADMIN_TOKEN's.
func adminToken(cfg config, dataDir string) (token, where string, err error) {
	if cfg.AdminToken != "" {
		return cfg.AdminToken, "", nil
	}
	if dataDir == "" {
		if cfg.Redis != "" {
			return quiz.Token(), "new at every start, and this node's alone: set BULB_ADMIN_TOKEN, the same on every node", nil
		}
		return quiz.Token(), "new at every start: run with a data directory to keep it", nil
	}
	path := filepath.Join(dataDir, adminTokenFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if token = strings.TrimSpace(string(b)); token == "" {
			return "", "", fmt.Errorf("%s is empty: delete it for a new token", path)
		}
		return token, "kept in " + path, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", "", err
	}
	token = quiz.Token()
	if err := writeFileSync(path, []byte(token+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("keeping the admin token: %w", err)
	}
	return token, "kept in " + path, nil
}

// writeFileSync writes a file whole or not at all: a temporary file, synced, renamed over
// path, and the directory synced.
func writeFileSync(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func newRedisEngine(cfg config) (*engine, error) {
	opt, err := redis.ParseURL(cfg.Redis)
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = redisTimeout, redisTimeout, redisTimeout, redisTimeout
	opt.MaxRetries, opt.DialerRetries = -1, 1 // no retries: a script must not run twice; callers see unavailable
	opt.ContextTimeoutEnabled = true          // a request's deadline bounds its Redis calls
	rdb := redis.NewClient(opt)
	return &engine{
		name:   "Redis engine, node " + cfg.Node,
		store:  quiz.NewRedisStore(rdb, quiz.DefaultRedisPrefix),
		bus:    hub.NewRedisBus(rdb, quiz.DefaultRedisPrefix, cfg.Node),
		locker: quiz.NewRedisLocker(rdb, quiz.DefaultRedisPrefix),
		health: func(ctx context.Context) error {
			if err := rdb.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("redis: %w", err)
			}
			return nil
		},
		close: func() { rdb.Close() },
		rdb:   rdb,
	}, nil
}

// redisLogger sends go-redis's own messages (failed dials, say) to slog.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
