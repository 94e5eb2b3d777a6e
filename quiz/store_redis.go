package quiz

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulbquiz/bulb/protocol"
	"github.com/redis/go-redis/v9"
)

// RedisStore is the Redis engine's Store: every node of a cluster of Bulb servers keeps
// its rooms in one Redis, and first-come ranking happens there, in one Lua script per
// answer, so that ranks are unique across nodes and come from one clock (Redis's).
//
// docs/redis.md lists its keys (a room's keys share the room code as a Redis Cluster hash
// tag, so its scripts and transactions may touch them together). The version has a key of
// its own so that players joining do not touch the room hash, which Update watches: a
// join storm never makes a host's move retry.
//
// Every change that touches several keys is one Lua script (CreateRoom, AddPlayer,
// RemovePlayer, Accept, Finalize, Expire) or one MULTI under WATCH (Update, Verdict), so a
// failure never leaves half of it written. CreateRoom, AddPlayer, RemovePlayer and Expire
// also write the token and rooms keys, which lie outside the room's slot: they are atomic
// on one Redis server but not (yet) fit for Redis Cluster.
//
// When Redis cannot be reached, every method returns an Unavailable *Error that wraps the
// cause, as soon as the client gives up: its dial and read timeouts and MaxRetries decide
// how soon.
//
// All methods are safe to call concurrently, from any number of nodes.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string

	// quizzes caches each room's decoded Quiz (code → cachedQuiz): Quiz is on the path of
	// every answer. An entry may go stale when another node edits the quiz: accept.lua
	// refuses an answer marked by an old version (ErrStaleQuiz), and reads of the room
	// compare the version they read with the cached one. It may also outlive its room,
	// expired by another node; so an entry is read anew after quizCacheAge, and an expired
	// room's code is not given to a new room for longer (goneFor): no node ever takes one
	// room's quiz for another's.
	quizzes sync.Map
	pruned  atomic.Int64 // when quizzes last lost its entries past quizCacheAge (Unix ns)

	now func() time.Time // the clock of rooms' activity (Expire)
}

// cachedQuiz is an entry of RedisStore.quizzes.
type cachedQuiz struct {
	quiz   Quiz
	loaded time.Time
}

// Cached quizzes and expired rooms' codes.
const (
	quizCacheAge = 30 * time.Second // how long a node trusts its copy of a quiz without reading the room
	goneFor      = 10 * time.Minute // how long an expired room's code is not given to a new room
)

var _ Store = (*RedisStore)(nil)

// DefaultRedisPrefix is the prefix of RedisStore's keys unless another is given.
const DefaultRedisPrefix = "bulb:"

// maxUpdateAttempts bounds Update's optimistic retries when other writers keep changing
// the room between its read and its write.
const maxUpdateAttempts = 100

var (
	//go:embed award.lua
	awardLua string
	//go:embed accept.lua
	acceptLua string
	//go:embed finalize.lua
	finalizeLua string
	//go:embed add_player.lua
	addPlayerLua string
	//go:embed create_room.lua
	createRoomLua string
	//go:embed remove_player.lua
	removePlayerLua string
	//go:embed expire_room.lua
	expireRoomLua string

	// acceptScript is one script: the points rule, then the accept itself.
	acceptScript       = redis.NewScript(awardLua + acceptLua)
	finalizeScript     = redis.NewScript(finalizeLua)
	addPlayerScript    = redis.NewScript(addPlayerLua)
	createRoomScript   = redis.NewScript(createRoomLua)
	removePlayerScript = redis.NewScript(removePlayerLua)
	expireRoomScript   = redis.NewScript(expireRoomLua)
)

// NewRedisStore returns a RedisStore on rdb whose keys all begin with prefix
// (DefaultRedisPrefix if empty).
func NewRedisStore(rdb redis.UniversalClient, prefix string) *RedisStore {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &RedisStore{rdb: rdb, prefix: prefix, now: time.Now}
}

// key returns the key of one of a room's parts, e.g. key("482913", "room").
func (s *RedisStore) key(room, part string) string {
	return s.prefix + "{" + room + "}:" + part
}

// qkey returns the key of a part of a room's question n, e.g. qkey("482913", 1, "answers").
func (s *RedisStore) qkey(room string, n int, part string) string {
	return s.key(room, "q:"+strconv.Itoa(n)+":"+part)
}

func (s *RedisStore) tokenKey(token string) string { return s.tokenPrefix() + token + "}" }
func (s *RedisStore) tokenPrefix() string          { return s.prefix + "token:{" }
func (s *RedisStore) roomsKey() string             { return s.prefix + "rooms" }

// backoff waits before another optimistic attempt, after another writer won: a little,
// more after each loss. It returns ctx's error if ctx ends first.
func backoff(ctx context.Context, attempt int) error {
	pause := time.Duration(rand.Int64N(int64(min(attempt+1, 20)) * int64(time.Millisecond)))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(pause):
		return nil
	}
}

// fail turns an error of the Redis client into what a Store returns: an *Error as it is;
// an Unavailable *Error wrapping err when Redis could not be reached or cannot serve now
// (no connection, a timeout, a cancelled context, a server loading or read-only); and
// otherwise err itself (a Redis error reply, that is a bug), with what failed.
func fail(what string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if !unavailable(err) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", Errorf(protocol.Unavailable, "storage unavailable"), what, err)
}

// unavailable reports whether err means Redis cannot serve now rather than that the call
// is wrong: no reply at all, or one of the error replies of a server that is busy.
func unavailable(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return true
	}
	kind, _, _ := strings.Cut(reply.Error(), " ")
	switch kind {
	case "LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "OOM", "NOREPLICAS", "MISCONF":
		return true
	}
	return false
}
