package hub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisBus joins Bulb nodes through one Redis: messages go over pub/sub on one channel,
// start numbers come from INCR, and each node replies to a request (its recipients of a
// start, its fairness records) on a list that the asking node reads with BLPOP. A node is
// live while its heartbeat in a sorted set is fresh.
//
// docs/redis.md lists its keys.
type RedisBus struct {
	rdb    redis.UniversalClient
	prefix string
	node   string
}

var _ Bus = (*RedisBus)(nil)

// Liveness of nodes.
const (
	heartbeatEvery = time.Second
	liveFor        = 3 * time.Second
	repliesKeepFor = time.Minute
)

// NewRedisBus returns a bus on rdb for the node with the given name, unique among the
// nodes. prefix starts every key, e.g. "bulb:".
func NewRedisBus(rdb redis.UniversalClient, prefix, node string) *RedisBus {
	return &RedisBus{rdb: rdb, prefix: prefix, node: node}
}

func (b *RedisBus) channel() string          { return b.prefix + "bus" }
func (b *RedisBus) nodes() string            { return b.prefix + "nodes" }
func (b *RedisBus) replies(id string) string { return b.prefix + "reply:" + id }

// Publish implements Bus.
func (b *RedisBus) Publish(ctx context.Context, msg []byte) error {
	return b.rdb.Publish(ctx, b.channel(), msg).Err()
}

// Run implements Bus. It subscribes first and only then announces the node as live, so no
// start counted on this node can be missed. go-redis resubscribes by itself after a lost
// connection.
func (b *RedisBus) Run(ctx context.Context, deliver func([]byte)) error {
	ps := b.rdb.Subscribe(ctx, b.channel())
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		return fmt.Errorf("subscribing to %s: %w", b.channel(), err)
	}
	defer b.rdb.ZRem(context.WithoutCancel(ctx), b.nodes(), b.node)
	beat := func() {
		now := time.Now()
		pipe := b.rdb.Pipeline()
		pipe.ZAdd(ctx, b.nodes(), redis.Z{Score: float64(now.UnixMilli()), Member: b.node})
		pipe.ZRemRangeByScore(ctx, b.nodes(), "-inf", strconv.FormatInt(now.Add(-10*liveFor).UnixMilli(), 10))
		_, _ = pipe.Exec(ctx) // a missed beat is retried in a second
	}
	beat()
	tick := time.NewTicker(heartbeatEvery)
	defer tick.Stop()
	msgs := ps.Channel()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			deliver([]byte(m.Payload))
		case <-tick.C:
			beat()
		case <-ctx.Done():
			return nil
		}
	}
}

// NextSeq implements Bus.
func (b *RedisBus) NextSeq(ctx context.Context) (uint64, error) {
	v, err := b.rdb.Incr(ctx, b.prefix+"seq").Result()
	return uint64(v), err
}

// Reply implements Bus.
func (b *RedisBus) Reply(ctx context.Context, id string, data []byte) error {
	pipe := b.rdb.TxPipeline()
	pipe.RPush(ctx, b.replies(id), data)
	pipe.Expire(ctx, b.replies(id), repliesKeepFor)
	_, err := pipe.Exec(ctx)
	return err
}

// Gather implements Bus. It blocks on the replies list rather than polling.
func (b *RedisBus) Gather(ctx context.Context, id string) ([][]byte, error) {
	live, err := b.rdb.ZCount(ctx, b.nodes(), strconv.FormatInt(time.Now().Add(-liveFor).UnixMilli(), 10), "+inf").Result()
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for range live {
		// BLPOP takes whole seconds here (go-redis rounds); ctx's deadline cuts it shorter.
		wait := gatherWait
		if dl, ok := ctx.Deadline(); ok {
			wait = max(time.Until(dl).Round(time.Second), time.Second)
		}
		kv, err := b.rdb.BLPop(ctx, wait, b.replies(id)).Result()
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		var ne net.Error
		if err == redis.Nil || errors.As(err, &ne) && ne.Timeout() { // ctx's deadline cut the read
			return out, context.DeadlineExceeded
		}
		if err != nil {
			return out, err
		}
		out = append(out, []byte(kv[1]))
	}
	return out, nil
}
