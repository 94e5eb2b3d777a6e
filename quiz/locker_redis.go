package quiz

import (
	"context"
	_ "embed"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisLocker is the Redis engine's Locker, the ShedLock pattern: a lease is a key set with
// SET NX PX to a random token; extending and releasing compare the token first, in Lua, so
// a node never extends or deletes a lease that expired and went to another.
type RedisLocker struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ Locker = (*RedisLocker)(nil)

var (
	//go:embed lease_extend.lua
	leaseExtendLua string
	//go:embed lease_release.lua
	leaseReleaseLua string

	leaseExtend  = redis.NewScript(leaseExtendLua)
	leaseRelease = redis.NewScript(leaseReleaseLua)
)

// NewRedisLocker returns a locker whose keys start with prefix + "lease:".
func NewRedisLocker(rdb redis.UniversalClient, prefix string) *RedisLocker {
	return &RedisLocker{rdb: rdb, prefix: prefix + "lease:"}
}

// Acquire implements Locker.
func (l *RedisLocker) Acquire(ctx context.Context, key string, ttl time.Duration) (Lease, bool, error) {
	token := Token()
	ok, err := l.rdb.SetNX(ctx, l.prefix+key, token, ttl).Result()
	if err != nil {
		return nil, false, fail("acquire lease", err)
	}
	if !ok {
		return nil, false, nil
	}
	return &redisLease{rdb: l.rdb, key: l.prefix + key, token: token}, true, nil
}

type redisLease struct {
	rdb        redis.UniversalClient
	key, token string
}

// Extend implements Lease.
func (r *redisLease) Extend(ctx context.Context, ttl time.Duration) (bool, error) {
	n, err := leaseExtend.Run(ctx, r.rdb, []string{r.key}, r.token, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fail("extend lease", err)
	}
	return n == 1, nil
}

// Release implements Lease.
func (r *redisLease) Release(ctx context.Context) error {
	if err := leaseRelease.Run(ctx, r.rdb, []string{r.key}, r.token).Err(); err != nil {
		return fail("release lease", err)
	}
	return nil
}
