package quiz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/bulbquiz/bulb/protocol"
	"github.com/redis/go-redis/v9"
)

// CreateRoom implements Store. Players in r are not stored: AddPlayer adds them.
func (s *RedisStore) CreateRoom(ctx context.Context, r *Room) error {
	qz, err := json.Marshal(r.Quiz)
	if err != nil {
		return fmt.Errorf("encoding the quiz of room %s: %w", r.Code, err)
	}
	host, _ := json.Marshal(redisIdentity{Room: r.Code, Role: RoleHost})
	args := []any{activeAt(r, s.now()).UnixMicro(), r.Code, host, r.Version,
		"quiz", qz, "hostToken", r.HostToken, "createdAt", formatTime(r.CreatedAt)}
	args = append(args, roomFields(r)...)
	keys := []string{s.key(r.Code, "room"), s.key(r.Code, "version"), s.tokenKey(r.HostToken), s.roomsKey(),
		s.key(r.Code, "active"), s.key(r.Code, "gone")}
	created, err := createRoomScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return fail("creating a room", err)
	}
	if created == 0 {
		return Errorf(protocol.Conflict, "room %s exists", r.Code)
	}
	return nil
}

// roomFields returns the room hash's fields that Update may change, with their values.
func roomFields(r *Room) []any {
	started := ""
	if !r.StartedAt.IsZero() {
		started = strconv.FormatInt(r.StartedAt.UnixMicro(), 10)
	}
	locked := 0
	if r.Locked {
		locked = 1
	}
	return []any{"current", r.Current, "phase", string(r.Phase), "startAt", formatTime(r.StartAt), "startedAt", started,
		"closeAt", formatTime(r.CloseAt), "locked", locked}
}

// Quiz implements Store. The quiz comes from the process's cache after the first call,
// for quizCacheAge.
func (s *RedisStore) Quiz(ctx context.Context, room string) (Quiz, error) {
	if c, ok := s.quizzes.Load(room); ok && time.Since(c.(cachedQuiz).loaded) < quizCacheAge {
		return c.(cachedQuiz).quiz, nil
	}
	f, err := s.rdb.HMGet(ctx, s.key(room, "room"), "quiz", "quizVersion").Result()
	if err != nil {
		return Quiz{}, fail("reading a quiz", err)
	}
	b, ok := f[0].(string)
	if !ok {
		s.quizzes.Delete(room)
		return Quiz{}, roomNotFound(room)
	}
	var qz Quiz
	if err := json.Unmarshal([]byte(b), &qz); err != nil {
		return Quiz{}, fmt.Errorf("decoding the quiz of room %s: %w", room, err)
	}
	if v, ok := f[1].(string); ok {
		if qz.Version, err = strconv.ParseInt(v, 10, 64); err != nil {
			return Quiz{}, fmt.Errorf("the quiz version of room %s: %w", room, err)
		}
	}
	s.cacheQuiz(room, qz)
	return qz, nil
}

// cacheQuiz caches the room's quiz, and once every quizCacheAge drops the entries past
// that age: they are read anew anyway, and the rooms of many may be gone (deleted or
// expired by another node), which only the node that did it hears of.
func (s *RedisStore) cacheQuiz(room string, qz Quiz) {
	now := time.Now()
	s.quizzes.Store(room, cachedQuiz{quiz: qz, loaded: now})
	last := s.pruned.Load()
	if now.UnixNano()-last < int64(quizCacheAge) || !s.pruned.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	s.quizzes.Range(func(k, v any) bool {
		if now.Sub(v.(cachedQuiz).loaded) >= quizCacheAge {
			s.quizzes.Delete(k) // a fresh copy stored meanwhile is only read again
		}
		return true
	})
}

func roomNotFound(room string) error { return Errorf(protocol.NotFound, "room %s not found", room) }

// roomReads are the reads that make a Room, queued in one pipeline; players and scores
// are nil for a room without its players.
type roomReads struct {
	fields  *redis.SliceCmd
	version *redis.StringCmd
	players *redis.MapStringStringCmd
	scores  *redis.MapStringStringCmd
}

func (s *RedisStore) queueRoomReads(ctx context.Context, p redis.Pipeliner, room string) roomReads {
	rr := s.queueRoomHead(ctx, p, room)
	rr.players = p.HGetAll(ctx, s.key(room, "players"))
	rr.scores = p.HGetAll(ctx, s.key(room, "scores"))
	return rr
}

// queueRoomHead queues the reads of a room without its players.
func (s *RedisStore) queueRoomHead(ctx context.Context, p redis.Pipeliner, room string) roomReads {
	return roomReads{
		fields:  p.HMGet(ctx, s.key(room, "room"), "hostToken", "current", "phase", "startAt", "startedAt", "createdAt", "quizVersion", "closeAt", "locked"),
		version: p.Get(ctx, s.key(room, "version")),
	}
}

// room builds the Room that rr read, with a copy of its quiz qz.
func (rr roomReads) room(room string, qz Quiz) (*Room, error) {
	cmds := []redis.Cmder{rr.fields, rr.version}
	if rr.players != nil {
		cmds = append(cmds, rr.players, rr.scores)
	}
	for _, c := range cmds {
		if err := c.Err(); errors.Is(err, redis.Nil) {
			return nil, roomNotFound(room)
		} else if err != nil {
			return nil, fail("reading a room", err)
		}
	}
	f := rr.fields.Val()
	if f[0] == nil {
		return nil, roomNotFound(room)
	}
	str := func(v any) string { s, _ := v.(string); return s }
	r := &Room{Code: room, HostToken: str(f[0]), Phase: Phase(str(f[2])), Quiz: qz, Locked: str(f[8]) == "1"}
	r.Quiz.Winners = slices.Clone(qz.Winners)
	r.Quiz.Questions = slices.Clone(qz.Questions)
	var errs []error
	var err error
	r.Current, err = strconv.Atoi(str(f[1]))
	errs = append(errs, err)
	r.StartAt, err = parseTime(str(f[3]))
	errs = append(errs, err)
	r.CloseAt, err = parseTime(str(f[7]))
	errs = append(errs, err)
	if us := str(f[4]); us != "" {
		v, err := strconv.ParseInt(us, 10, 64)
		errs = append(errs, err)
		r.StartedAt = time.UnixMicro(v).UTC()
	}
	r.CreatedAt, err = parseTime(str(f[5]))
	errs = append(errs, err)
	r.Version, err = strconv.ParseInt(rr.version.Val(), 10, 64)
	errs = append(errs, err)
	if v := str(f[6]); v != "" && v != strconv.FormatInt(qz.Version, 10) {
		return nil, ErrStaleQuiz
	} else if v == "" && qz.Version != 0 {
		return nil, ErrStaleQuiz
	}

	if rr.players == nil {
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("decoding room %s: %w", room, err)
		}
		return r, nil
	}
	scores := rr.scores.Val()
	stored := make([]redisPlayer, 0, len(rr.players.Val()))
	for _, b := range rr.players.Val() {
		var p redisPlayer
		errs = append(errs, json.Unmarshal([]byte(b), &p))
		stored = append(stored, p)
	}
	slices.SortFunc(stored, func(a, b redisPlayer) int { return a.Seq - b.Seq })
	r.Players = make([]Player, len(stored))
	for i, p := range stored {
		r.Players[i] = Player{ID: p.ID, Name: p.Name, Token: p.Token, JoinedAt: p.JoinedAt}
		if v, ok := scores[p.ID]; ok {
			r.Players[i].Score, err = strconv.Atoi(v)
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("decoding room %s: %w", room, err)
	}
	return r, nil
}

// Player implements Store: the room's fields and version, the player and its score, in
// one MULTI.
func (s *RedisStore) Player(ctx context.Context, room, playerID string) (*Room, Player, error) {
	var r *Room
	var p Player
	err := s.withFreshQuiz(room, func() error {
		qz, err := s.Quiz(ctx, room)
		if err != nil {
			return err
		}
		var rr roomReads
		var stored, score *redis.StringCmd
		_, err = s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			rr = s.queueRoomHead(ctx, pipe, room)
			if playerID != "" {
				stored = pipe.HGet(ctx, s.key(room, "players"), playerID)
				score = pipe.HGet(ctx, s.key(room, "scores"), playerID)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fail("reading a room", err)
		}
		if r, err = rr.room(room, qz); err != nil || playerID == "" {
			return err
		}
		if errors.Is(stored.Err(), redis.Nil) {
			return Errorf(protocol.NotFound, "player %s is not in room %s", playerID, room)
		}
		var rp redisPlayer
		if err := json.Unmarshal([]byte(stored.Val()), &rp); err != nil {
			return fmt.Errorf("decoding player %s of room %s: %w", playerID, room, err)
		}
		p = Player{ID: rp.ID, Name: rp.Name, Token: rp.Token, JoinedAt: rp.JoinedAt}
		if v, err := score.Result(); err == nil { // no score yet: 0
			if p.Score, err = strconv.Atoi(v); err != nil {
				return fmt.Errorf("the score of player %s of room %s: %w", playerID, room, err)
			}
		}
		return nil
	})
	return r, p, err
}

// Room implements Store. Its fields, players and scores are read in one MULTI, so they
// are of one instant.
func (s *RedisStore) Room(ctx context.Context, room string) (*Room, error) {
	var r *Room
	err := s.withFreshQuiz(room, func() error {
		qz, err := s.Quiz(ctx, room)
		if err != nil {
			return err
		}
		var rr roomReads
		_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			rr = s.queueRoomReads(ctx, p, room)
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fail("reading a room", err)
		}
		r, err = rr.room(room, qz)
		return err
	})
	return r, err
}

// withFreshQuiz runs read, which reads a room with the cached quiz, and, if that quiz was
// stale (ErrStaleQuiz: another node edited it), again with the quiz read anew.
func (s *RedisStore) withFreshQuiz(room string, read func() error) error {
	err := read()
	for i := 0; errors.Is(err, ErrStaleQuiz) && i < 3; i++ {
		s.quizzes.Delete(room)
		err = read()
	}
	if errors.Is(err, ErrStaleQuiz) {
		return Errorf(protocol.Conflict, "the quiz of room %s keeps changing: try again", room)
	}
	return err
}

// Rooms implements Store: the rooms of the rooms index, newest first.
func (s *RedisStore) Rooms(ctx context.Context) ([]*Room, error) {
	rooms, err := s.rdb.ZRevRange(ctx, s.roomsKey(), 0, -1).Result()
	if err != nil {
		return nil, fail("listing rooms", err)
	}
	quizzes := make([]Quiz, len(rooms))
	for i, room := range rooms {
		if quizzes[i], err = s.Quiz(ctx, room); err != nil && ErrorCode(err) != protocol.NotFound {
			return nil, err
		}
	}
	reads := make([]roomReads, len(rooms))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, room := range rooms {
			reads[i] = s.queueRoomReads(ctx, p, room)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fail("reading rooms", err)
	}
	out := make([]*Room, 0, len(rooms))
	for i, room := range rooms {
		r, err := reads[i].room(room, quizzes[i])
		if errors.Is(err, ErrStaleQuiz) {
			r, err = s.Room(ctx, room)
		}
		if ErrorCode(err) == protocol.NotFound {
			continue // expired meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b *Room) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// AddPlayer implements Store.
func (s *RedisStore) AddPlayer(ctx context.Context, room string, p Player) error {
	player, err := json.Marshal(redisPlayer{ID: p.ID, Name: p.Name, Token: p.Token, JoinedAt: p.JoinedAt})
	if err != nil {
		return fmt.Errorf("encoding player %s: %w", p.ID, err)
	}
	id, _ := json.Marshal(redisIdentity{Room: room, Role: RolePlayer, PlayerID: p.ID, Name: p.Name})
	keys := []string{
		s.key(room, "room"), s.key(room, "players"), s.key(room, "names"), s.key(room, "scores"),
		s.key(room, "version"), s.tokenKey(p.Token), s.key(room, "joined"), s.key(room, "active"),
	}
	status, err := addPlayerScript.Run(ctx, s.rdb, keys, p.ID, foldName(p.Name), player, id, MaxPlayers, s.now().UnixMicro()).Text()
	if err != nil {
		return fail("adding a player", err)
	}
	switch status {
	case "ok":
		return nil
	case "no_room":
		return roomNotFound(room)
	case "locked":
		return errLocked
	case "full":
		return Errorf(protocol.Conflict, "room %s is full: %d players", room, MaxPlayers)
	case "name_taken":
		return Errorf(protocol.Conflict, "the name %q is taken in this room (or one that looks like it): choose another", p.Name)
	case "id_taken":
		return Errorf(protocol.Conflict, "player %s exists", p.ID)
	}
	return fmt.Errorf("add_player.lua: unknown status %q", status)
}

// RemovePlayer implements Store: it reads the player, for its token and name, and one
// script, remove_player.lua, removes it. A player's record never changes once written, so
// what was read still holds when the script runs, or the script finds no player.
func (s *RedisStore) RemovePlayer(ctx context.Context, room, playerID string) (Player, error) {
	for range 3 {
		p, err := s.removePlayer(ctx, room, playerID)
		if !errors.Is(err, ErrStaleQuiz) {
			return p, err
		}
		s.quizzes.Delete(room)
	}
	return Player{}, Errorf(protocol.Conflict, "the quiz of room %s keeps changing: try again", room)
}

func (s *RedisStore) removePlayer(ctx context.Context, room, playerID string) (Player, error) {
	qz, err := s.Quiz(ctx, room)
	if err != nil {
		return Player{}, err
	}
	b, err := s.rdb.HGet(ctx, s.key(room, "players"), playerID).Bytes()
	if errors.Is(err, redis.Nil) {
		return Player{}, Errorf(protocol.NotFound, "player %s is not in room %s", playerID, room)
	}
	if err != nil {
		return Player{}, fail("reading a player", err)
	}
	var rp redisPlayer
	if err := json.Unmarshal(b, &rp); err != nil {
		return Player{}, fmt.Errorf("decoding player %s of room %s: %w", playerID, room, err)
	}
	keys := []string{
		s.key(room, "room"), s.key(room, "players"), s.key(room, "names"), s.key(room, "scores"),
		s.key(room, "version"), s.tokenKey(rp.Token), s.key(room, "active"),
	}
	for n, q := range qz.Questions {
		if q.Kind == KindCode {
			keys = append(keys, s.qkey(room, n+1, "winners"))
		}
	}
	status, err := removePlayerScript.Run(ctx, s.rdb, keys, playerID, foldName(rp.Name), s.now().UnixMicro(), qz.Version).Text()
	if err != nil {
		return Player{}, fail("removing a player", err)
	}
	switch status {
	case "ok":
		return Player{ID: rp.ID, Name: rp.Name, Token: rp.Token, JoinedAt: rp.JoinedAt}, nil
	case "no_room":
		return Player{}, roomNotFound(room)
	case "no_player":
		return Player{}, Errorf(protocol.NotFound, "player %s is not in room %s", playerID, room)
	case "stale_quiz":
		return Player{}, ErrStaleQuiz
	}
	return Player{}, fmt.Errorf("remove_player.lua: unknown status %q", status)
}

// Identify implements Store.
func (s *RedisStore) Identify(ctx context.Context, token string) (Identity, error) {
	b, err := s.rdb.Get(ctx, s.tokenKey(token)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Identity{}, Errorf(protocol.Unauthorized, "unknown token")
	}
	if err != nil {
		return Identity{}, fail("identifying a token", err)
	}
	var id redisIdentity
	if err := json.Unmarshal(b, &id); err != nil {
		return Identity{}, fmt.Errorf("decoding an identity: %w", err)
	}
	return Identity(id), nil
}

// Update implements Store as an optimistic transaction: it WATCHes the room hash, reads the
// room, applies fn and writes the room's fields back in one MULTI, which Redis refuses if
// the room hash changed meanwhile; then it starts again, with a short random pause, at
// most maxUpdateAttempts times (then Conflict). fn may therefore run more than once, each
// time on a fresh copy. Only Current, Phase, StartAt, StartedAt, CloseAt, Locked and an
// edited quiz are written back.
func (s *RedisStore) Update(ctx context.Context, room string, fn func(*Room) error) (*Room, error) {
	roomKey := s.key(room, "room")
	for attempt := range maxUpdateAttempts {
		qz, err := s.Quiz(ctx, room)
		if err != nil {
			return nil, err
		}
		var next *Room
		var final error // fn's refusal, or a failure to read the room, already as returned
		err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			var rr roomReads
			_, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error { // not MULTI: EXEC would end the WATCH
				rr = s.queueRoomReads(ctx, p, room)
				return nil
			})
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			r, err := rr.room(room, qz)
			if err != nil {
				final = err
				return nil
			}
			if err := fn(r); err != nil {
				final = err
				return nil
			}
			fields := roomFields(r)
			if r.Quiz.Version != qz.Version { // an edit
				b, err := json.Marshal(r.Quiz)
				if err != nil {
					return fmt.Errorf("encoding the quiz of room %s: %w", room, err)
				}
				fields = append(fields, "quiz", b, "quizVersion", r.Quiz.Version)
			}
			var version *redis.IntCmd
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, roomKey, fields...)
				version = p.Incr(ctx, s.key(room, "version"))
				p.Set(ctx, s.key(room, "active"), activeAt(r, s.now()).UnixMicro(), 0)
				return nil
			})
			if err != nil {
				return err
			}
			r.Version = version.Val()
			next = r
			return nil
		}, roomKey)
		switch {
		case errors.Is(final, ErrStaleQuiz):
			s.quizzes.Delete(room) // read it anew and try again
			continue
		case final != nil:
			return nil, final
		case err == nil:
			if next.Quiz.Version != qz.Version {
				s.cacheQuiz(room, next.Quiz)
			}
			return cloneRoom(next), nil
		case !errors.Is(err, redis.TxFailedErr):
			return nil, fail("updating a room", err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, fail("updating a room", err)
		}
	}
	return nil, Errorf(protocol.Conflict, "room %s changed too often meanwhile: try again", room)
}
