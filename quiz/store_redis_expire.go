package quiz

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Expiry on the Redis engine. Every change to a room sets its activity key, in the room's
// slot, to the time of the change (accept.lua, add_player.lua, remove_player.lua, Update);
// the rooms index, a sorted set outside it, is written only at creation and by the sweep:
// its score for a room is its activity as last looked at, never later than the room's
// real activity but when a schedule was cancelled. Expire looks at the rooms whose score is
// before the cut-off, and expire_room.lua, for each, either deletes the room or moves its
// score up to its activity. So answers, the hot path, write one key of their own slot, and
// a sweep reads each live room about once per quiet time.

// expireBatch is how many rooms of the index Expire looks at per read.
const expireBatch = 100

// The parts of a room's keys (RedisStore.key) besides room, active, players and gone,
// and the parts of its questions' (RedisStore.qkey): expire_room.lua deletes them all.
// docs/redis.md lists them.
var (
	roomParts     = []string{"version", "names", "scores", "joined"}
	questionParts = []string{"answers", "answered", "correct", "final", "settled", "winners", "solved"}
)

// Expire implements Store: it reads the rooms index by score, oldest first, and runs
// expire_room.lua on each room found quiet since before.
func (s *RedisStore) Expire(ctx context.Context, before time.Time) ([]string, error) {
	var gone []string
	cutoff := "(" + strconv.FormatInt(before.UnixMicro(), 10)
	for {
		rooms, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
			Key: s.roomsKey(), ByScore: true, Start: "-inf", Stop: cutoff, Count: expireBatch,
		}).Result()
		if err != nil {
			return gone, fail("listing quiet rooms", err)
		}
		for _, room := range rooms {
			deleted, err := expireRoomScript.Run(ctx, s.rdb, s.expireKeys(room),
				room, before.UnixMicro(), s.now().UnixMicro(), s.tokenPrefix(), int(goneFor/time.Second)).Int()
			if err != nil {
				return gone, fail("expiring a room", err)
			}
			if deleted == 1 {
				s.quizzes.Delete(room)
				gone = append(gone, room)
			}
		}
		// Every room looked at left the range: deleted, or its score moved up to its
		// activity, which is not before the cut-off.
		if len(rooms) < expireBatch {
			return gone, nil
		}
	}
}

// DeleteRoom implements Store: expire_room.lua with a cut-off no activity reaches
// deletes the room whatever its activity.
func (s *RedisStore) DeleteRoom(ctx context.Context, room string) error {
	if _, _, err := s.Player(ctx, room, ""); err != nil {
		return err
	}
	const never = 1 << 52 // µs: after any activity, and exact in Lua's doubles
	if _, err := expireRoomScript.Run(ctx, s.rdb, s.expireKeys(room),
		room, int64(never), s.now().UnixMicro(), s.tokenPrefix(), int(goneFor/time.Second)).Int(); err != nil {
		return fail("deleting a room", err)
	}
	s.quizzes.Delete(room)
	return nil
}

// expireKeys are the keys of expire_room.lua for room: the index, the room hash, its
// activity, its players, its expired mark, then all its other keys, those of every
// question a quiz may have included (an edit may have dropped questions already asked).
func (s *RedisStore) expireKeys(room string) []string {
	keys := []string{s.roomsKey(), s.key(room, "room"), s.key(room, "active"), s.key(room, "players"), s.key(room, "gone")}
	for _, part := range roomParts {
		keys = append(keys, s.key(room, part))
	}
	for n := 1; n <= MaxQuestions; n++ {
		for _, part := range questionParts {
			keys = append(keys, s.qkey(room, n, part))
		}
	}
	return keys
}
