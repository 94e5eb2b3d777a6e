package hub

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisBus joins Bulb nodes through one Redis: messages go over pub/sub on one channel,
// start numbers come from INCR, and each node reports its recipients of a start on a list
// that the starting node reads with BLPOP. A node is live while its heartbeat in a sorted
// set is fresh.
//
// Keys: PREFIX bus (channel), PREFIX seq, PREFIX nodes (zset node → heartbeat ms),
// PREFIX start:SEQ (list of recipient counts, expiring).
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
	reportsKeepFor = time.Minute
)

// NewRedisBus returns a bus on rdb for the node with the given name, unique among the
// nodes. prefix starts every key, e.g. "bulb:".
func NewRedisBus(rdb redis.UniversalClient, prefix, node string) *RedisBus {
	return &RedisBus{rdb: rdb, prefix: prefix, node: node}
}

func (b *RedisBus) channel() string { return b.prefix + "bus" }
func (b *RedisBus) nodes() string   { return b.prefix + "nodes" }
func (b *RedisBus) reports(seq uint64) string {
	return b.prefix + "start:" + strconv.FormatUint(seq, 10)
}

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

// Report implements Bus.
func (b *RedisBus) Report(ctx context.Context, seq uint64, recipients int) error {
	pipe := b.rdb.TxPipeline()
	pipe.RPush(ctx, b.reports(seq), recipients)
	pipe.Expire(ctx, b.reports(seq), reportsKeepFor)
	_, err := pipe.Exec(ctx)
	return err
}

// Recipients implements Bus. It blocks on the reports list rather than polling.
func (b *RedisBus) Recipients(ctx context.Context, seq uint64) (int, error) {
	live, err := b.rdb.ZCount(ctx, b.nodes(), strconv.FormatInt(time.Now().Add(-liveFor).UnixMilli(), 10), "+inf").Result()
	if err != nil {
		return 0, err
	}
	sum := 0
	for range live {
		// BLPOP takes whole seconds here (go-redis rounds); ctx's deadline cuts it shorter.
		wait := recipientsWait
		if dl, ok := ctx.Deadline(); ok {
			wait = max(time.Until(dl).Round(time.Second), time.Second)
		}
		kv, err := b.rdb.BLPop(ctx, wait, b.reports(seq)).Result()
		if ctx.Err() != nil {
			return sum, ctx.Err()
		}
		if err == redis.Nil {
			return sum, context.DeadlineExceeded
		}
		if err != nil {
			return sum, err
		}
		n, err := strconv.Atoi(kv[1])
		if err != nil {
			return sum, fmt.Errorf("recipients report %q: %w", kv[1], err)
		}
		sum += n
	}
	return sum, nil
}
