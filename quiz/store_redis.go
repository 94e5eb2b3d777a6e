package quiz

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bulbquiz/bulb/protocol"
	"github.com/redis/go-redis/v9"
)

// RedisStore is the Redis engine's Store: every node of a cluster of Bulb servers keeps
// its rooms in one Redis, and first-come ranking happens there, in one Lua script per
// answer, so that ranks are unique across nodes and come from one clock (Redis's).
//
// Keys, with the default prefix "bulb:" (the room code in braces is a Redis Cluster hash
// tag: all of a room's keys live in one slot, so its scripts and transactions may touch
// them together):
//
//	bulb:{CODE}:room             hash: quiz (JSON), quizVersion, hostToken, current, phase,
//	                             closeAt, startAt and
//	                             createdAt (RFC 3339, "" for none), startedAt (µs since the
//	                             epoch, "" for none)
//	bulb:{CODE}:version          integer: Room.Version, bumped by Update and AddPlayer
//	bulb:{CODE}:players          hash: player ID → player JSON (seq, its place in join
//	                             order, and everything but the score)
//	bulb:{CODE}:names            hash: folded name → player ID
//	bulb:{CODE}:scores           hash: player ID → score
//	bulb:{CODE}:q:N:answers      list: question N's answers (JSON), in arrival order
//	bulb:{CODE}:q:N:answered     hash: player ID → "arrival-rank key" (code: submissions)
//	bulb:{CODE}:q:N:correct      integer: correct answers ranked so far
//	bulb:{CODE}:q:N:final        flag: question N was finalized
//	bulb:{CODE}:q:N:settled      integer: code question N's submissions settled (Verdict)
//	bulb:{CODE}:q:N:winners      hash: player ID → rank, the players a code question ranked
//	bulb:{CODE}:q:N:solved       hash: player ID → 1, players with an accepted submission
//	bulb:token:{TOKEN}           string: the identity (JSON) a token stands for
//	bulb:rooms                   sorted set: room codes by creation time (µs)
//
// The version has a key of its own so that players joining do not touch the room hash,
// which Update watches: a join storm never makes a host's move retry.
//
// Every change that touches several keys is one Lua script (CreateRoom, AddPlayer, Accept,
// Finalize) or one MULTI under WATCH (Update), so a failure never leaves half of it
// written. CreateRoom and AddPlayer also write the token and rooms keys, which lie outside
// the room's slot: they are atomic on one Redis server but not (yet) fit for Redis Cluster.
//
// When Redis cannot be reached, every method returns an Unavailable *Error that wraps the
// cause, as soon as the client gives up: its dial and read timeouts and MaxRetries decide
// how soon.
//
// All methods are safe to call concurrently, from any number of nodes.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string

	// quizzes caches each room's decoded Quiz (code → Quiz): Quiz is on the path of every
	// answer. An entry may go stale when another node edits the quiz: accept.lua refuses an
	// answer judged by an old version (ErrStaleQuiz), and reads of the room compare the
	// version they read with the cached one.
	quizzes sync.Map
}

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

	// acceptScript is one script: the points rule, then the accept itself.
	acceptScript     = redis.NewScript(awardLua + acceptLua)
	finalizeScript   = redis.NewScript(finalizeLua)
	addPlayerScript  = redis.NewScript(addPlayerLua)
	createRoomScript = redis.NewScript(createRoomLua)
)

// NewRedisStore returns a RedisStore on rdb whose keys all begin with prefix
// (DefaultRedisPrefix if empty).
func NewRedisStore(rdb redis.UniversalClient, prefix string) *RedisStore {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &RedisStore{rdb: rdb, prefix: prefix}
}

// key returns the key of one of a room's parts, e.g. key("482913", "room").
func (s *RedisStore) key(code, part string) string {
	return s.prefix + "{" + code + "}:" + part
}

// qkey returns the key of a part of a room's question n, e.g. qkey("482913", 1, "answers").
func (s *RedisStore) qkey(code string, n int, part string) string {
	return s.key(code, "q:"+strconv.Itoa(n)+":"+part)
}

func (s *RedisStore) tokenKey(token string) string { return s.prefix + "token:{" + token + "}" }
func (s *RedisStore) roomsKey() string             { return s.prefix + "rooms" }

// redisPlayer is a player as stored: Player less its score, plus its place in join order.
type redisPlayer struct {
	Seq      int       `json:"seq,omitempty"` // set by add_player.lua
	ID       string    `json:"playerId"`
	Name     string    `json:"name"`
	Token    string    `json:"token"`
	JoinedAt time.Time `json:"joinedAt"`
}

// redisIdentity is an Identity as stored under its token.
type redisIdentity struct {
	Room     string `json:"room"`
	Role     Role   `json:"role"`
	PlayerID string `json:"playerId,omitempty"`
	Name     string `json:"name,omitempty"`
}

// redisAnswerHead is the part of an answer that Accept's caller knows; accept.lua adds
// the rest to make a redisAnswer.
type redisAnswerHead struct {
	N          int               `json:"n"`
	PlayerID   string            `json:"playerId"`
	Submission protocol.Response `json:"answer"`
	Correct    bool              `json:"correct"`
	ReactionUs *int64            `json:"reactionUs,omitempty"`
}

// redisAnswer is an answer as stored: times in µs since the epoch.
type redisAnswer struct {
	N           int               `json:"n"`
	PlayerID    string            `json:"playerId"`
	Submission  protocol.Response `json:"answer"`
	Correct     bool              `json:"correct"`
	ReactionUs  *int64            `json:"reactionUs,omitempty"`
	Name        string            `json:"name"`
	Rank        int               `json:"rank"`
	ArrivalRank int               `json:"arrivalRank"`
	Points      int               `json:"points"`
	Pending     bool              `json:"pending"`
	ReceivedUs  int64             `json:"receivedUs"`
	ElapsedUs   int64             `json:"elapsedUs"`
	Verdict     *protocol.Verdict `json:"verdict,omitempty"`
}

func (a redisAnswer) answer() protocol.Answer {
	return protocol.Answer{
		N: a.N, PlayerID: a.PlayerID, Name: a.Name, Response: a.Submission, Correct: a.Correct,
		Rank: a.Rank, ArrivalRank: a.ArrivalRank, Points: a.Points, Pending: a.Pending,
		ReceivedAt: time.UnixMicro(a.ReceivedUs).UTC(), ElapsedUs: a.ElapsedUs, ReactionUs: a.ReactionUs,
		Verdict: a.Verdict,
	}
}

func redisAnswerOf(a protocol.Answer) redisAnswer {
	return redisAnswer{
		N: a.N, PlayerID: a.PlayerID, Submission: a.Response, Correct: a.Correct, ReactionUs: a.ReactionUs,
		Name: a.Name, Rank: a.Rank, ArrivalRank: a.ArrivalRank, Points: a.Points, Pending: a.Pending,
		ReceivedUs: a.ReceivedAt.UnixMicro(), ElapsedUs: a.ElapsedUs, Verdict: a.Verdict,
	}
}

// redisScoring is a Scoring as award.lua reads it.
type redisScoring struct {
	Speed       bool  `json:"speed"`
	Winners     []int `json:"winners"`
	Points      int   `json:"points"`
	TimeLimitNs int64 `json:"timeLimitNs"`
	Deferred    bool  `json:"deferred"`
}

func redisScoringOf(sc Scoring) redisScoring {
	return redisScoring{
		Speed: sc.Speed, Winners: append([]int{}, sc.Winners...), Points: sc.Points,
		TimeLimitNs: int64(sc.TimeLimit), Deferred: sc.Deferred,
	}
}

// CreateRoom implements Store. Players in r are not stored: AddPlayer adds them.
func (s *RedisStore) CreateRoom(ctx context.Context, r *Room) error {
	qz, err := json.Marshal(r.Quiz)
	if err != nil {
		return fmt.Errorf("encoding the quiz of room %s: %w", r.Code, err)
	}
	host, _ := json.Marshal(redisIdentity{Room: r.Code, Role: RoleHost})
	args := []any{r.CreatedAt.UnixMicro(), r.Code, host, r.Version,
		"quiz", qz, "hostToken", r.HostToken, "createdAt", formatTime(r.CreatedAt)}
	args = append(args, roomFields(r)...)
	keys := []string{s.key(r.Code, "room"), s.key(r.Code, "version"), s.tokenKey(r.HostToken), s.roomsKey()}
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
	return []any{"current", r.Current, "phase", string(r.Phase), "startAt", formatTime(r.StartAt), "startedAt", started,
		"closeAt", formatTime(r.CloseAt)}
}

// Quiz implements Store. The quiz comes from the process's cache after the first call.
func (s *RedisStore) Quiz(ctx context.Context, code string) (Quiz, error) {
	if qz, ok := s.quizzes.Load(code); ok {
		return qz.(Quiz), nil
	}
	f, err := s.rdb.HMGet(ctx, s.key(code, "room"), "quiz", "quizVersion").Result()
	if err != nil {
		return Quiz{}, fail("reading a quiz", err)
	}
	b, ok := f[0].(string)
	if !ok {
		return Quiz{}, roomNotFound(code)
	}
	var qz Quiz
	if err := json.Unmarshal([]byte(b), &qz); err != nil {
		return Quiz{}, fmt.Errorf("decoding the quiz of room %s: %w", code, err)
	}
	if v, ok := f[1].(string); ok {
		if qz.Version, err = strconv.ParseInt(v, 10, 64); err != nil {
			return Quiz{}, fmt.Errorf("the quiz version of room %s: %w", code, err)
		}
	}
	s.quizzes.Store(code, qz)
	return qz, nil
}

// freshQuiz returns the room's quiz of the given version, from the cache if it has that
// one, else read anew: another node may have edited it.
func (s *RedisStore) freshQuiz(ctx context.Context, code string, version int64) (Quiz, error) {
	if qz, ok := s.quizzes.Load(code); ok && qz.(Quiz).Version == version {
		return qz.(Quiz), nil
	}
	s.quizzes.Delete(code)
	return s.Quiz(ctx, code)
}

func roomNotFound(code string) error { return Errorf(protocol.NotFound, "room %s not found", code) }

// roomReads are the reads that make a Room, queued in one pipeline; players and scores
// are nil for a room without its players.
type roomReads struct {
	fields  *redis.SliceCmd
	version *redis.StringCmd
	players *redis.MapStringStringCmd
	scores  *redis.MapStringStringCmd
}

func (s *RedisStore) queueRoomReads(ctx context.Context, p redis.Pipeliner, code string) roomReads {
	rr := s.queueRoomHead(ctx, p, code)
	rr.players = p.HGetAll(ctx, s.key(code, "players"))
	rr.scores = p.HGetAll(ctx, s.key(code, "scores"))
	return rr
}

// queueRoomHead queues the reads of a room without its players.
func (s *RedisStore) queueRoomHead(ctx context.Context, p redis.Pipeliner, code string) roomReads {
	return roomReads{
		fields:  p.HMGet(ctx, s.key(code, "room"), "hostToken", "current", "phase", "startAt", "startedAt", "createdAt", "quizVersion", "closeAt"),
		version: p.Get(ctx, s.key(code, "version")),
	}
}

// room builds the Room that rr read, with a copy of its quiz qz.
func (rr roomReads) room(code string, qz Quiz) (*Room, error) {
	cmds := []redis.Cmder{rr.fields, rr.version}
	if rr.players != nil {
		cmds = append(cmds, rr.players, rr.scores)
	}
	for _, c := range cmds {
		if err := c.Err(); errors.Is(err, redis.Nil) {
			return nil, roomNotFound(code)
		} else if err != nil {
			return nil, fail("reading a room", err)
		}
	}
	f := rr.fields.Val()
	if f[0] == nil {
		return nil, roomNotFound(code)
	}
	str := func(v any) string { s, _ := v.(string); return s }
	r := &Room{Code: code, HostToken: str(f[0]), Phase: Phase(str(f[2])), Quiz: qz}
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
			return nil, fmt.Errorf("decoding room %s: %w", code, err)
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
		return nil, fmt.Errorf("decoding room %s: %w", code, err)
	}
	return r, nil
}

// Player implements Store: the room's fields and version, the player and its score, in
// one MULTI.
func (s *RedisStore) Player(ctx context.Context, code, playerID string) (*Room, Player, error) {
	var r *Room
	var p Player
	err := s.withFreshQuiz(code, func() error {
		qz, err := s.Quiz(ctx, code)
		if err != nil {
			return err
		}
		var rr roomReads
		var stored, score *redis.StringCmd
		_, err = s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			rr = s.queueRoomHead(ctx, pipe, code)
			if playerID != "" {
				stored = pipe.HGet(ctx, s.key(code, "players"), playerID)
				score = pipe.HGet(ctx, s.key(code, "scores"), playerID)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fail("reading a room", err)
		}
		if r, err = rr.room(code, qz); err != nil || playerID == "" {
			return err
		}
		if errors.Is(stored.Err(), redis.Nil) {
			return Errorf(protocol.NotFound, "player %s is not in room %s", playerID, code)
		}
		var rp redisPlayer
		if err := json.Unmarshal([]byte(stored.Val()), &rp); err != nil {
			return fmt.Errorf("decoding player %s of room %s: %w", playerID, code, err)
		}
		p = Player{ID: rp.ID, Name: rp.Name, Token: rp.Token, JoinedAt: rp.JoinedAt}
		if v, err := score.Result(); err == nil { // no score yet: 0
			if p.Score, err = strconv.Atoi(v); err != nil {
				return fmt.Errorf("the score of player %s of room %s: %w", playerID, code, err)
			}
		}
		return nil
	})
	return r, p, err
}

// Room implements Store. Its fields, players and scores are read in one MULTI, so they
// are of one instant.
func (s *RedisStore) Room(ctx context.Context, code string) (*Room, error) {
	var r *Room
	err := s.withFreshQuiz(code, func() error {
		qz, err := s.Quiz(ctx, code)
		if err != nil {
			return err
		}
		var rr roomReads
		_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			rr = s.queueRoomReads(ctx, p, code)
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fail("reading a room", err)
		}
		r, err = rr.room(code, qz)
		return err
	})
	return r, err
}

// withFreshQuiz runs read, which reads a room with the cached quiz, and, if that quiz was
// stale (ErrStaleQuiz: another node edited it), again with the quiz read anew.
func (s *RedisStore) withFreshQuiz(code string, read func() error) error {
	err := read()
	for i := 0; errors.Is(err, ErrStaleQuiz) && i < 3; i++ {
		s.quizzes.Delete(code)
		err = read()
	}
	if errors.Is(err, ErrStaleQuiz) {
		return Errorf(protocol.Conflict, "the quiz of room %s keeps changing: try again", code)
	}
	return err
}

// Rooms implements Store.
func (s *RedisStore) Rooms(ctx context.Context) ([]*Room, error) {
	codes, err := s.rdb.ZRevRange(ctx, s.roomsKey(), 0, -1).Result()
	if err != nil {
		return nil, fail("listing rooms", err)
	}
	quizzes := make([]Quiz, len(codes))
	for i, code := range codes {
		if quizzes[i], err = s.Quiz(ctx, code); err != nil {
			return nil, err
		}
	}
	reads := make([]roomReads, len(codes))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, code := range codes {
			reads[i] = s.queueRoomReads(ctx, p, code)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fail("reading rooms", err)
	}
	out := make([]*Room, len(codes))
	for i, code := range codes {
		out[i], err = reads[i].room(code, quizzes[i])
		if errors.Is(err, ErrStaleQuiz) {
			out[i], err = s.Room(ctx, code)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AddPlayer implements Store.
func (s *RedisStore) AddPlayer(ctx context.Context, code string, p Player) error {
	player, err := json.Marshal(redisPlayer{ID: p.ID, Name: p.Name, Token: p.Token, JoinedAt: p.JoinedAt})
	if err != nil {
		return fmt.Errorf("encoding player %s: %w", p.ID, err)
	}
	id, _ := json.Marshal(redisIdentity{Room: code, Role: RolePlayer, PlayerID: p.ID, Name: p.Name})
	keys := []string{
		s.key(code, "room"), s.key(code, "players"), s.key(code, "names"), s.key(code, "scores"),
		s.key(code, "version"), s.tokenKey(p.Token),
	}
	status, err := addPlayerScript.Run(ctx, s.rdb, keys, p.ID, foldName(p.Name), player, id, MaxPlayers).Text()
	if err != nil {
		return fail("adding a player", err)
	}
	switch status {
	case "ok":
		return nil
	case "no_room":
		return roomNotFound(code)
	case "full":
		return Errorf(protocol.Conflict, "room %s is full: %d players", code, MaxPlayers)
	case "name_taken":
		return Errorf(protocol.Conflict, "the name %q is taken in this room", p.Name)
	case "id_taken":
		return Errorf(protocol.Conflict, "player %s exists", p.ID)
	}
	return fmt.Errorf("add_player.lua: unknown status %q", status)
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
	return Identity{Room: id.Room, Role: id.Role, PlayerID: id.PlayerID, Name: id.Name}, nil
}

// Update implements Store as an optimistic transaction: it WATCHes the room hash, reads the
// room, applies fn and writes the room's fields back in one MULTI, which Redis refuses if
// the room hash changed meanwhile; then it starts again, with a short random pause, at
// most maxUpdateAttempts times (then Conflict). fn may therefore run more than once, each
// time on a fresh copy. Only Current, Phase, StartAt, StartedAt, CloseAt and an edited
// quiz are written back.
func (s *RedisStore) Update(ctx context.Context, code string, fn func(*Room) error) (*Room, error) {
	roomKey := s.key(code, "room")
	for attempt := range maxUpdateAttempts {
		qz, err := s.Quiz(ctx, code)
		if err != nil {
			return nil, err
		}
		var next *Room
		var final error // fn's refusal, or a failure to read the room, already as returned
		err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			var rr roomReads
			_, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error { // not MULTI: EXEC would end the WATCH
				rr = s.queueRoomReads(ctx, p, code)
				return nil
			})
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			r, err := rr.room(code, qz)
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
					return fmt.Errorf("encoding the quiz of room %s: %w", code, err)
				}
				fields = append(fields, "quiz", b, "quizVersion", r.Quiz.Version)
			}
			var version *redis.IntCmd
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, roomKey, fields...)
				version = p.Incr(ctx, s.key(code, "version"))
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
			s.quizzes.Delete(code) // read it anew and try again
			continue
		case final != nil:
			return nil, final
		case err == nil:
			if next.Quiz.Version != qz.Version {
				s.quizzes.Store(code, next.Quiz)
			}
			return cloneRoom(next), nil
		case !errors.Is(err, redis.TxFailedErr):
			return nil, fail("updating a room", err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, fail("updating a room", err)
		}
	}
	return nil, Errorf(protocol.Conflict, "room %s changed too often meanwhile: try again", code)
}

// Accept implements Store in one script, accept.lua: see it for what it checks and
// writes. The receive time is the Redis server's.
func (s *RedisStore) Accept(ctx context.Context, code string, a protocol.Answer, sc Scoring) (protocol.Answer, bool, error) {
	qz, err := s.Quiz(ctx, code)
	if err != nil {
		return protocol.Answer{}, false, err
	}
	if a.N < 1 || a.N > len(qz.Questions) {
		return protocol.Answer{}, false, Errorf(protocol.NotFound, "question %d not found", a.N)
	}
	head, err := json.Marshal(redisAnswerHead{N: a.N, PlayerID: a.PlayerID, Submission: a.Response, Correct: a.Correct, ReactionUs: a.ReactionUs})
	if err != nil {
		return protocol.Answer{}, false, fmt.Errorf("encoding an answer: %w", err)
	}
	scoring, _ := json.Marshal(redisScoringOf(sc))
	correct := "0"
	if a.Correct {
		correct = "1"
	}
	keys := []string{
		s.key(code, "room"), s.key(code, "players"), s.key(code, "scores"),
		s.qkey(code, a.N, "answers"), s.qkey(code, a.N, "answered"), s.qkey(code, a.N, "correct"),
		s.qkey(code, a.N, "solved"),
	}
	isCode := "0"
	if sc.Code {
		isCode = "1"
	}
	res, err := acceptScript.Run(ctx, s.rdb, keys, a.N, a.PlayerID, correct, head, scoring, sc.QuizVersion, responseKey(a.Response),
		isCode, MaxSubmissions).StringSlice()
	if err != nil {
		return protocol.Answer{}, false, fail("accepting an answer", err)
	}
	if len(res) != 2 {
		return protocol.Answer{}, false, fmt.Errorf("accept.lua: got %d values, want 2", len(res))
	}
	replay := false
	switch res[0] {
	case "ok":
	case "replay":
		replay = true
	case "stale_quiz":
		s.quizzes.Delete(code)
		return protocol.Answer{}, false, ErrStaleQuiz
	case "no_room":
		return protocol.Answer{}, false, roomNotFound(code)
	case "not_started":
		return protocol.Answer{}, false, Errorf(protocol.NotStarted, "question %d has not started", a.N)
	case "closed":
		return protocol.Answer{}, false, Errorf(protocol.Closed, "question %d is closed", a.N)
	case "already_answered":
		return protocol.Answer{}, false, Errorf(protocol.AlreadyAnswered, "you have already answered question %d", a.N)
	case "no_player":
		return protocol.Answer{}, false, Errorf(protocol.NotFound, "player %s is not in room %s", a.PlayerID, code)
	case "solved":
		return protocol.Answer{}, false, Errorf(protocol.AlreadyAnswered, "you already have an accepted submission to question %d", a.N)
	case "too_many":
		return protocol.Answer{}, false, Errorf(protocol.RateLimited, "at most %d submissions to one question", MaxSubmissions)
	default:
		return protocol.Answer{}, false, fmt.Errorf("accept.lua: unknown status %q", res[0])
	}
	var stored redisAnswer
	if err := json.Unmarshal([]byte(res[1]), &stored); err != nil {
		return protocol.Answer{}, false, fmt.Errorf("decoding an accepted answer: %w", err)
	}
	return stored.answer(), replay, nil
}

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

// Verdict implements Store: one transaction under WATCH of the question's answers and
// settled count reads the unsettled submissions, records the verdict, settles (see settle)
// and writes the changed records, scores, winners and counts; a submission arriving
// meanwhile makes it try again.
func (s *RedisStore) Verdict(ctx context.Context, code string, n, sub int, v protocol.Verdict, sc Scoring) (protocol.Answer, []protocol.Answer, error) {
	notFound := Errorf(protocol.NotFound, "question %d has no code submission %d", n, sub)
	if !sc.Code || sub < 1 {
		return protocol.Answer{}, nil, notFound
	}
	answersKey, settledKey := s.qkey(code, n, "answers"), s.qkey(code, n, "settled")
	winnersKey, correctKey := s.qkey(code, n, "winners"), s.qkey(code, n, "correct")
	var stored protocol.Answer
	var final []protocol.Answer
	var refused error
	decode := func(rec string) (protocol.Answer, error) {
		var a redisAnswer
		if err := json.Unmarshal([]byte(rec), &a); err != nil {
			return protocol.Answer{}, fmt.Errorf("decoding an answer of room %s: %w", code, err)
		}
		return a.answer(), nil
	}
	txf := func(tx *redis.Tx) error {
		final, refused = nil, nil
		from, err := tx.Get(ctx, settledKey).Int()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if sub <= from { // settled before, so its verdict is recorded: it stands
			rec, err := tx.LIndex(ctx, answersKey, int64(sub-1)).Result()
			if err != nil {
				return err
			}
			stored, refused = decode(rec)
			return nil
		}
		recs, err := tx.LRange(ctx, answersKey, int64(from), -1).Result()
		if err != nil {
			return err
		}
		if sub > from+len(recs) {
			refused = notFound
			return nil
		}
		answers := make([]protocol.Answer, len(recs))
		for i, rec := range recs {
			if answers[i], refused = decode(rec); refused != nil {
				return nil
			}
		}
		i := sub - 1 - from
		if answers[i].Verdict != nil { // recorded before: the first verdict stands
			stored = answers[i]
			return nil
		}
		answers[i].Verdict, answers[i].Correct = &v, v.Verdict == protocol.AC
		winners := map[string]bool{}
		ranked, err := tx.HKeys(ctx, winnersKey).Result()
		if err != nil {
			return err
		}
		for _, p := range ranked {
			winners[p] = true
		}
		correct, err := tx.Get(ctx, correctKey).Int()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		changed, next, correct := settle(answers, 0, winners, correct, sc)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, j := range append([]int{i}, changed...) {
				b, err := json.Marshal(redisAnswerOf(answers[j]))
				if err != nil {
					return err
				}
				p.LSet(ctx, answersKey, int64(from+j), b)
			}
			for _, j := range changed {
				if a := answers[j]; a.Rank > 0 {
					p.HSet(ctx, winnersKey, a.PlayerID, a.Rank)
					p.HIncrBy(ctx, s.key(code, "scores"), a.PlayerID, int64(a.Points))
				}
			}
			if answers[i].Correct {
				p.HSet(ctx, s.qkey(code, n, "solved"), answers[i].PlayerID, 1)
			}
			p.Set(ctx, settledKey, from+next, 0)
			p.Set(ctx, correctKey, correct, 0)
			return nil
		})
		if err != nil {
			return err
		}
		stored = answers[i]
		for _, j := range changed {
			final = append(final, answers[j])
		}
		return nil
	}
	for attempt := range maxUpdateAttempts {
		err := s.rdb.Watch(ctx, txf, answersKey, settledKey)
		switch {
		case refused != nil:
			return protocol.Answer{}, nil, refused
		case err == nil:
			return stored, final, nil
		case !errors.Is(err, redis.TxFailedErr):
			return protocol.Answer{}, nil, fail("recording a verdict", err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return protocol.Answer{}, nil, fail("recording a verdict", err)
		}
	}
	return protocol.Answer{}, nil, Errorf(protocol.Conflict, "question %d of room %s changed too often meanwhile: try again", n, code)
}

// Finalize implements Store. It reads the answers, and one script, finalize.lua, writes
// them back with their ranks and points and adds the points to the scores, unless the
// question was finalized before. Reading first is safe: answers are only ever appended,
// and only Finalize rewrites them, once.
func (s *RedisStore) Finalize(ctx context.Context, code string, n int, ranked []protocol.Answer) error {
	if _, err := s.Quiz(ctx, code); err != nil {
		return err
	}
	answersKey := s.qkey(code, n, "answers")
	records, err := s.rdb.LRange(ctx, answersKey, 0, -1).Result()
	if err != nil {
		return fail("reading answers", err)
	}
	byPlayer := make(map[string]protocol.Answer, len(ranked))
	for _, a := range ranked {
		byPlayer[a.PlayerID] = a
	}
	args := make([]any, 1, 1+4*len(ranked))
	args[0] = len(records)
	for i, rec := range records {
		var a redisAnswer
		if err := json.Unmarshal([]byte(rec), &a); err != nil {
			return fmt.Errorf("decoding an answer of room %s: %w", code, err)
		}
		f, ok := byPlayer[a.PlayerID]
		if !ok {
			continue
		}
		a.Rank, a.Points, a.Pending, a.ReactionUs = f.Rank, f.Points, false, f.ReactionUs
		b, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("encoding an answer: %w", err)
		}
		args = append(args, i, b, a.PlayerID, a.Points)
	}
	keys := []string{s.key(code, "room"), s.qkey(code, n, "final"), answersKey, s.key(code, "scores")}
	status, err := finalizeScript.Run(ctx, s.rdb, keys, args...).Text()
	if err != nil {
		return fail("finalizing a question", err)
	}
	switch status {
	case "ok", "done":
		return nil
	case "no_room":
		return roomNotFound(code)
	}
	return fmt.Errorf("finalize.lua: question %d of room %s: %s", n, code, status)
}

// Answers implements Store.
func (s *RedisStore) Answers(ctx context.Context, code string, n int) ([]protocol.Answer, error) {
	if _, err := s.Quiz(ctx, code); err != nil {
		return nil, err
	}
	records, err := s.rdb.LRange(ctx, s.qkey(code, n, "answers"), 0, -1).Result()
	if err != nil {
		return nil, fail("reading answers", err)
	}
	var out []protocol.Answer // nil when there are none, as MemoryStore's
	for _, rec := range records {
		var a redisAnswer
		if err := json.Unmarshal([]byte(rec), &a); err != nil {
			return nil, fmt.Errorf("decoding an answer of room %s: %w", code, err)
		}
		out = append(out, a.answer())
	}
	return out, nil
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
	code, _, _ := strings.Cut(reply.Error(), " ")
	switch code {
	case "LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "OOM", "NOREPLICAS", "MISCONF":
		return true
	}
	return false
}

// formatTime and parseTime store a time to the nanosecond; "" is the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
