package judge

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisBoxes leases one host's boxes to the judge processes on that host through Redis,
// without polling: free boxes wait in a list that a worker takes from with BLMOVE into its
// own held list, so a waiting worker wakes the moment a box is pushed back. Each worker
// keeps a liveness key fresh while it runs; a reaper on the host (Reap) cleans and returns
// the boxes held by workers whose key expired, so a crashed worker leaks nothing for longer
// than the TTL.
//
// docs/redis.md lists its keys.
type RedisBoxes struct {
	rdb          redis.UniversalClient
	key          string // PREFIX boxes:{HOST}:
	worker       string
	first, n     int
	ttl          time.Duration
	log          *slog.Logger
	clean        func(ctx context.Context, id int) error
	reapInterval time.Duration
}

var _ Boxes = (*RedisBoxes)(nil)

var (
	//go:embed boxes_init.lua
	boxesInitLua string
	//go:embed boxes_return.lua
	boxesReturnLua string

	boxesInit   = redis.NewScript(boxesInitLua)
	boxesReturn = redis.NewScript(boxesReturnLua)
)

// RedisBoxesOptions configure NewRedisBoxes.
type RedisBoxesOptions struct {
	Prefix string        // key prefix, e.g. "bulb:"
	Host   string        // the host whose boxes these are
	Worker string        // this worker's name, unique on the host
	First  int           // the first box id (box ids are host-wide uids and cgroups)
	Boxes  int           // boxes on the host: ids First to First+Boxes−1
	TTL    time.Duration // a worker silent this long is dead; default 10 s
	// Clean makes a dead worker's box clean again (kill what runs as its uid, wipe its
	// directory) before the reaper returns it.
	Clean  func(ctx context.Context, id int) error
	Logger *slog.Logger
}

// NewRedisBoxes returns the boxes of opts.Host as seen by opts.Worker. Run it to keep the
// worker alive and reap the dead.
func NewRedisBoxes(rdb redis.UniversalClient, opts RedisBoxesOptions) *RedisBoxes {
	if opts.TTL <= 0 {
		opts.TTL = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &RedisBoxes{
		rdb: rdb, key: opts.Prefix + "boxes:{" + opts.Host + "}:", worker: opts.Worker, first: opts.First, n: opts.Boxes,
		ttl: opts.TTL, log: opts.Logger.With("component", "boxes"), clean: opts.Clean, reapInterval: opts.TTL / 2,
	}
}

func (b *RedisBoxes) free() string               { return b.key + "free" }
func (b *RedisBoxes) held(worker string) string  { return b.key + "held:" + worker }
func (b *RedisBoxes) alive(worker string) string { return b.key + "alive:" + worker }
func (b *RedisBoxes) workers() string            { return b.key + "workers" }

// Run fills the host's free list the first time any worker runs, keeps this worker alive,
// and reaps dead workers' boxes, until ctx is done.
func (b *RedisBoxes) Run(ctx context.Context) error {
	if err := boxesInit.Run(ctx, b.rdb, []string{b.key + "init", b.free()}, b.n, b.first).Err(); err != nil {
		return fmt.Errorf("filling the free boxes: %w", err)
	}
	beat := time.NewTicker(b.ttl / 3)
	defer beat.Stop()
	reap := time.NewTicker(b.reapInterval)
	defer reap.Stop()
	for {
		if err := b.heartbeat(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("heartbeat", "err", err)
		}
		select {
		case <-beat.C:
		case <-reap.C:
			if _, err := b.Reap(ctx); err != nil && ctx.Err() == nil {
				b.log.Warn("reaping dead workers' boxes", "err", err)
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func (b *RedisBoxes) heartbeat(ctx context.Context) error {
	pipe := b.rdb.TxPipeline()
	pipe.Set(ctx, b.alive(b.worker), "1", b.ttl)
	pipe.SAdd(ctx, b.workers(), b.worker)
	_, err := pipe.Exec(ctx)
	return err
}

// Lease implements Boxes: BLMOVE from the free list into this worker's held list.
func (b *RedisBoxes) Lease(ctx context.Context) (BoxLease, error) {
	if err := b.heartbeat(ctx); err != nil { // alive before holding anything
		return nil, err
	}
	for {
		// Block for a second at a time so that ctx is honoured; a release wakes us at once.
		v, err := b.rdb.BLMove(ctx, b.free(), b.held(b.worker), "LEFT", "RIGHT", time.Second).Result()
		if errors.Is(err, redis.Nil) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		id, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("box id %q: %w", v, err)
		}
		return &redisBoxLease{boxes: b, id: id}, nil
	}
}

type redisBoxLease struct {
	boxes *RedisBoxes
	id    int
}

func (l *redisBoxLease) ID() int { return l.id }

// Release implements BoxLease: back from the held list to the free list, atomically and
// only if this worker still holds it (a reaper may have taken it back).
func (l *redisBoxLease) Release(ctx context.Context) error {
	return boxesReturn.Run(ctx, l.boxes.rdb, []string{l.boxes.held(l.boxes.worker), l.boxes.free()}, l.id).Err()
}

// Reap cleans and returns the boxes held by workers whose liveness key expired, and
// returns how many it returned.
func (b *RedisBoxes) Reap(ctx context.Context) (int, error) {
	workers, err := b.rdb.SMembers(ctx, b.workers()).Result()
	if err != nil {
		return 0, err
	}
	returned := 0
	for _, w := range workers {
		n, err := b.rdb.Exists(ctx, b.alive(w)).Result()
		if err != nil || n == 1 {
			continue
		}
		held, err := b.rdb.LRange(ctx, b.held(w), 0, -1).Result()
		if err != nil {
			return returned, err
		}
		for _, v := range held {
			id, err := strconv.Atoi(v)
			if err != nil {
				return returned, fmt.Errorf("box id %q: %w", v, err)
			}
			if b.clean != nil {
				if err := b.clean(ctx, id); err != nil {
					b.log.Error("cleaning a dead worker's box: left out of the pool", "worker", w, "box", id, "err", err)
					continue
				}
			}
			if err := boxesReturn.Run(ctx, b.rdb, []string{b.held(w), b.free()}, id).Err(); err != nil {
				return returned, err
			}
			returned++
			b.log.Info("returned a dead worker's box", "worker", w, "box", id)
		}
		if left, err := b.rdb.LLen(ctx, b.held(w)).Result(); err == nil && left == 0 {
			b.rdb.SRem(ctx, b.workers(), w)
		}
	}
	return returned, nil
}
