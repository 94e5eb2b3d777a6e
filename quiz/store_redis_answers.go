package quiz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/bulbquiz/bulb/protocol"
	"github.com/redis/go-redis/v9"
)

// Accept implements Store in one script, accept.lua: see it for what it checks and
// writes. The receive time is the Redis server's.
func (s *RedisStore) Accept(ctx context.Context, room string, a protocol.Answer, sc Scoring) (protocol.Answer, bool, error) {
	head, err := json.Marshal(redisAnswerHead{N: a.N, PlayerID: a.PlayerID, Response: a.Response, Correct: a.Correct, ReactionUs: a.ReactionUs, FalseStart: a.FalseStart})
	if err != nil {
		return protocol.Answer{}, false, fmt.Errorf("encoding an answer: %w", err)
	}
	scoring, _ := json.Marshal(redisScoringOf(sc))
	correct := "0"
	if a.Correct {
		correct = "1"
	}
	keys := []string{
		s.key(room, "room"), s.key(room, "players"), s.key(room, "scores"),
		s.qkey(room, a.N, "answers"), s.qkey(room, a.N, "answered"), s.qkey(room, a.N, "correct"),
		s.qkey(room, a.N, "solved"), s.key(room, "active"),
	}
	isCode := "0"
	if sc.Code {
		isCode = "1"
	}
	arrived := "" // not checked
	if sc.Synced && !a.ReceivedAt.IsZero() {
		arrived = strconv.FormatInt(a.ReceivedAt.UnixMicro(), 10)
	}
	res, err := acceptScript.Run(ctx, s.rdb, keys, a.N, a.PlayerID, correct, head, scoring, sc.QuizVersion, responseKey(a.Response),
		isCode, MaxSubmissions, s.now().UnixMicro(), arrived).StringSlice()
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
		s.quizzes.Delete(room)
		return protocol.Answer{}, false, ErrStaleQuiz
	case "no_room":
		return protocol.Answer{}, false, roomNotFound(room)
	case "not_started":
		return protocol.Answer{}, false, Errorf(protocol.NotStarted, "question %d has not started", a.N)
	case "not_lit":
		return protocol.Answer{}, false, errBeforeTheBulb(a.N)
	case "closed":
		return protocol.Answer{}, false, Errorf(protocol.Closed, "question %d is closed", a.N)
	case "already_answered":
		return protocol.Answer{}, false, Errorf(protocol.AlreadyAnswered, "you have already answered question %d", a.N)
	case "no_player":
		return protocol.Answer{}, false, Errorf(protocol.NotFound, "player %s is not in room %s", a.PlayerID, room)
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

// Verdict implements Store: one transaction under WATCH of the question's answers,
// settled count and winners reads the unsettled submissions, records the verdict, settles
// (see settle) and writes the changed records, scores, winners and counts; a submission
// arriving, or a player removed, meanwhile makes it try again.
func (s *RedisStore) Verdict(ctx context.Context, room string, n, sub int, v protocol.Verdict, sc Scoring) (protocol.Answer, []protocol.Answer, error) {
	if !sc.Code || sub < 1 {
		return protocol.Answer{}, nil, noSubmission(n, sub)
	}
	t := &verdictTx{s: s, room: room, n: n, sub: sub, v: v, sc: sc,
		answersKey: s.qkey(room, n, "answers"), settledKey: s.qkey(room, n, "settled"),
		winnersKey: s.qkey(room, n, "winners"), correctKey: s.qkey(room, n, "correct")}
	for attempt := range maxUpdateAttempts {
		// winners too: a player removed meanwhile is entered there, and must not be ranked
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error { return t.attempt(ctx, tx) }, t.answersKey, t.settledKey, t.winnersKey)
		switch {
		case t.refused != nil:
			return protocol.Answer{}, nil, t.refused
		case err == nil:
			return t.stored, t.final, nil
		case !errors.Is(err, redis.TxFailedErr):
			return protocol.Answer{}, nil, fail("recording a verdict", err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return protocol.Answer{}, nil, fail("recording a verdict", err)
		}
	}
	return protocol.Answer{}, nil, Errorf(protocol.Conflict, "question %d of room %s changed too often meanwhile: try again", n, room)
}

func noSubmission(n, sub int) error {
	return Errorf(protocol.NotFound, "question %d has no code submission %d", n, sub)
}

// verdictTx is Verdict's transaction: the verdict v on submission sub of code question n,
// and what its last attempt found.
type verdictTx struct {
	s                                              *RedisStore
	room                                           string
	n, sub                                         int
	v                                              protocol.Verdict
	sc                                             Scoring
	answersKey, settledKey, winnersKey, correctKey string

	stored  protocol.Answer   // the submission as stored
	final   []protocol.Answer // the answers this verdict made final
	refused error             // why the verdict cannot be recorded, if it cannot
}

// attempt runs the transaction once under WATCH: it reads the unsettled submissions,
// records the verdict, settles and writes what changed in one MULTI.
func (t *verdictTx) attempt(ctx context.Context, tx *redis.Tx) error {
	t.final, t.refused = nil, nil
	from, err := tx.Get(ctx, t.settledKey).Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if t.sub <= from { // settled before, so its verdict is recorded: it stands
		rec, err := tx.LIndex(ctx, t.answersKey, int64(t.sub-1)).Result()
		if err != nil {
			return err
		}
		t.stored, t.refused = t.decode(rec)
		return nil
	}
	recs, err := tx.LRange(ctx, t.answersKey, int64(from), -1).Result()
	if err != nil {
		return err
	}
	if t.sub > from+len(recs) {
		t.refused = noSubmission(t.n, t.sub)
		return nil
	}
	answers := make([]protocol.Answer, len(recs))
	for i, rec := range recs {
		if answers[i], t.refused = t.decode(rec); t.refused != nil {
			return nil
		}
	}
	i := t.sub - 1 - from
	if answers[i].Verdict != nil { // recorded before: the first verdict stands
		t.stored = answers[i]
		return nil
	}
	answers[i].Verdict, answers[i].Correct = &t.v, t.v.Verdict == protocol.AC
	winners := map[string]bool{}
	ranked, err := tx.HKeys(ctx, t.winnersKey).Result()
	if err != nil {
		return err
	}
	for _, p := range ranked {
		winners[p] = true
	}
	correct, err := tx.Get(ctx, t.correctKey).Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	changed, next, correct := settle(answers, 0, winners, correct, t.sc)
	if err := t.write(ctx, tx, answers, from, i, changed, from+next, correct); err != nil {
		return err
	}
	t.stored = answers[i]
	for _, j := range changed {
		t.final = append(t.final, answers[j])
	}
	return nil
}

// write writes, in one MULTI, the judged submission i and the answers settle changed (all
// indexes after from), the ranked players' winners and scores, the solved flag, and the
// new settled and correct counts.
func (t *verdictTx) write(ctx context.Context, tx *redis.Tx, answers []protocol.Answer, from, i int, changed []int, settled, correct int) error {
	_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, j := range append([]int{i}, changed...) {
			b, err := json.Marshal(redisAnswerOf(answers[j]))
			if err != nil {
				return err
			}
			p.LSet(ctx, t.answersKey, int64(from+j), b)
		}
		for _, j := range changed {
			if a := answers[j]; a.Rank > 0 {
				p.HSet(ctx, t.winnersKey, a.PlayerID, a.Rank)
				p.HIncrBy(ctx, t.s.key(t.room, "scores"), a.PlayerID, int64(a.Points))
			}
		}
		if answers[i].Correct {
			p.HSet(ctx, t.s.qkey(t.room, t.n, "solved"), answers[i].PlayerID, 1)
		}
		p.Set(ctx, t.settledKey, settled, 0)
		p.Set(ctx, t.correctKey, correct, 0)
		return nil
	})
	return err
}

func (t *verdictTx) decode(rec string) (protocol.Answer, error) {
	var a redisAnswer
	if err := json.Unmarshal([]byte(rec), &a); err != nil {
		return protocol.Answer{}, fmt.Errorf("decoding an answer of room %s: %w", t.room, err)
	}
	return a.answer(), nil
}

// Finalize implements Store. It reads the answers, and one script, finalize.lua, writes
// them back with their ranks and points and adds the points to the scores, unless the
// question was finalized before. Reading first is safe: answers are only ever appended,
// and only Finalize rewrites them, once.
func (s *RedisStore) Finalize(ctx context.Context, room string, n int, ranked []protocol.Answer) error {
	if _, err := s.Quiz(ctx, room); err != nil {
		return err
	}
	answersKey := s.qkey(room, n, "answers")
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
			return fmt.Errorf("decoding an answer of room %s: %w", room, err)
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
	keys := []string{s.key(room, "room"), s.qkey(room, n, "final"), answersKey, s.key(room, "scores"), s.key(room, "players")}
	status, err := finalizeScript.Run(ctx, s.rdb, keys, args...).Text()
	if err != nil {
		return fail("finalizing a question", err)
	}
	switch status {
	case "ok", "done":
		return nil
	case "no_room":
		return roomNotFound(room)
	}
	return fmt.Errorf("finalize.lua: question %d of room %s: %s", n, room, status)
}

// Answers implements Store.
func (s *RedisStore) Answers(ctx context.Context, room string, n int) ([]protocol.Answer, error) {
	if _, err := s.Quiz(ctx, room); err != nil {
		return nil, err
	}
	records, err := s.rdb.LRange(ctx, s.qkey(room, n, "answers"), 0, -1).Result()
	if err != nil {
		return nil, fail("reading answers", err)
	}
	var out []protocol.Answer // nil when there are none, as MemoryStore's
	for _, rec := range records {
		var a redisAnswer
		if err := json.Unmarshal([]byte(rec), &a); err != nil {
			return nil, fmt.Errorf("decoding an answer of room %s: %w", room, err)
		}
		out = append(out, a.answer())
	}
	return out, nil
}
