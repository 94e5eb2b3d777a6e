package quiz

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bulbquiz/bulb/protocol"
)

// Broadcaster reaches the connections of a room. The hub implements it.
type Broadcaster interface {
	// Send queues frame for every connection of the room, players and hosts.
	Send(room string, frame []byte)
	// SendHosts queues frame for the room's host connections.
	SendHosts(room string, frame []byte)
	// SendPlayer queues frame for one player's connection.
	SendPlayer(room, playerID string, frame []byte)
	// Start lights the bulb of question n: the start frame goes to every player of the room
	// at as nearly the same instant as possible. It returns the start's sequence number and
	// how many players it was sent to.
	Start(ctx context.Context, room string, n int) (seq uint64, recipients int, err error)
}

// Limits of a room.
const (
	LeaderboardTop = 20     // entries in the leaderboard frame after each close
	MaxName        = 32     // the longest player name, in characters
	MaxPlayers     = 20_000 // players one room takes
)

// Nodes reaches the other nodes that serve the same rooms: the hub's node messaging.
type Nodes interface {
	// Notify sends data to the handler of topic on every other node.
	Notify(ctx context.Context, topic string, data []byte) error
	// OnNotify sets this node's handler of the notifications of topic.
	OnNotify(topic string, fn func(data []byte))
}

// Options are what a Service runs on. Store, Broadcaster and Locker are required.
type Options struct {
	Store       Store
	Broadcaster Broadcaster
	Nodes       Nodes  // nil on a single node
	Locker      Locker // leases for timed starts and closes
	Judge       Judge  // nil: quizzes with code questions are refused
	Logger      *slog.Logger
}

// Service runs rooms: it is what the server's handlers call. Create one with NewService and
// run its Run method for timed starts.
type Service struct {
	store  Store
	bc     Broadcaster
	nodes  Nodes
	locker Locker
	judge  Judge
	log    *slog.Logger
	now    func() time.Time

	mu     sync.Mutex
	ctx    context.Context // Run's, for timed starts; nil until Run
	timers map[string]*time.Timer
	wg     sync.WaitGroup
}

// NewService returns a Service on opts. With Nodes, it registers its handler of the
// schedules that other nodes announce: create it before the nodes' messaging runs.
func NewService(opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Service{store: opts.Store, bc: opts.Broadcaster, nodes: opts.Nodes, locker: opts.Locker, judge: opts.Judge,
		log: opts.Logger.With("component", "quiz"), now: time.Now, timers: map[string]*time.Timer{}}
	if s.nodes != nil {
		s.nodes.OnNotify(scheduleTopic, s.onSchedule)
	}
	return s
}

// normalize normalizes qz and checks that the judge can judge its code questions.
func (s *Service) normalize(qz *Quiz) error {
	if err := qz.Normalize(); err != nil {
		return err
	}
	for i, q := range qz.Questions {
		if q.Kind != KindCode {
			continue
		}
		if s.judge == nil {
			return Errorf(protocol.Invalid, "question %d: code questions need a judge, and this server has none (see the README: the sandbox needs root and bubblewrap)", i+1)
		}
		if err := s.judge.Check(q); err != nil {
			return Errorf(protocol.Invalid, "question %d: %s", i+1, ErrorMessage(err))
		}
	}
	return nil
}

// Run serves timed starts until ctx is done, then stops the pending timers and waits for
// a start that is firing to finish. It first picks up the starts already scheduled in the
// store, so that a node that (re)starts fires them too.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	rooms, err := s.store.Rooms(ctx)
	if err != nil {
		s.log.Error("reading the scheduled starts", "err", err)
	}
	for _, r := range rooms {
		if r.Phase == PhaseOpen && !r.StartAt.IsZero() {
			s.setTimer(r.Code, r.Current, ActionStart, r.StartAt)
		}
		if (r.Phase == PhaseOpen || r.Phase == PhaseLive) && !r.CloseAt.IsZero() {
			s.setTimer(r.Code, r.Current, ActionClose, r.CloseAt)
		}
	}
	<-ctx.Done()
	s.mu.Lock()
	for k, t := range s.timers {
		t.Stop()
		delete(s.timers, k)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// CreateRoom validates qz and creates a room for it, returning the room's code and host token.
func (s *Service) CreateRoom(ctx context.Context, qz Quiz) (*Room, error) {
	if err := s.normalize(&qz); err != nil {
		return nil, err
	}
	for range 20 {
		r := &Room{Code: roomCode(), HostToken: Token(), Quiz: qz, Phase: PhaseLobby, CreatedAt: s.now()}
		err := s.store.CreateRoom(ctx, r)
		if ErrorCode(err) == protocol.Conflict {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.log.Info("room created", "room", r.Code, "questions", len(qz.Questions))
		return r, nil
	}
	return nil, Errorf(protocol.Unavailable, "no free room code found, try again")
}

// Room returns the room with the given code.
func (s *Service) Room(ctx context.Context, code string) (*Room, error) {
	return s.store.Room(ctx, code)
}

// Rooms returns all rooms, newest first.
func (s *Service) Rooms(ctx context.Context) ([]*Room, error) { return s.store.Rooms(ctx) }

// Identify returns who a host or player token belongs to.
func (s *Service) Identify(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, Errorf(protocol.Unauthorized, "a token is required")
	}
	return s.store.Identify(ctx, token)
}

// Join adds a player called name to the room.
func (s *Service) Join(ctx context.Context, code, name string) (Player, error) {
	name = normalizeText(name)
	if name == "" || utf8.RuneCountInString(name) > MaxName {
		return Player{}, Errorf(protocol.Invalid, "a name has 1 to %d characters", MaxName)
	}
	if strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return Player{}, Errorf(protocol.Invalid, "a name must be printable")
	}
	p := Player{ID: randomHex(8), Name: name, Token: Token(), JoinedAt: s.now()}
	if err := s.store.AddPlayer(ctx, code, p); err != nil {
		return Player{}, err
	}
	s.bc.SendHosts(code, protocol.Encode(protocol.JoinedFrame{PlayerID: p.ID, Name: p.Name}))
	return p, nil
}

// Open shows question n: players get it with the bulb off.
func (s *Service) Open(ctx context.Context, code string, n int) (*Room, error) {
	r, err := s.store.Update(ctx, code, func(r *Room) error {
		if err := checkQuestion(r.Quiz, n); err != nil {
			return err
		}
		switch {
		case r.Phase == PhaseLive:
			return Errorf(protocol.Conflict, "question %d is live: close it first", r.Current)
		case r.Phase == PhaseOpen && r.Current != n:
			return Errorf(protocol.Conflict, "question %d is open: close it first", r.Current)
		case r.Phase == PhaseClosed && r.Current == n:
			return Errorf(protocol.Conflict, "question %d is already closed", n)
		}
		r.Current, r.Phase, r.StartAt, r.StartedAt, r.CloseAt = n, PhaseOpen, time.Time{}, time.Time{}, time.Time{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.cancelTimer(code, ActionStart)
	s.cancelTimer(code, ActionClose)
	s.bc.Send(code, protocol.Encode(questionFrameOf(r)))
	return r, nil
}

// StartResult is what a start did: the start's sequence number and recipients, or, for a
// timed start, when it is scheduled.
type StartResult struct {
	Seq        uint64
	Recipients int
	At         time.Time // zero unless scheduled
}

// Start lights the bulb of question n now, or schedules it for at if at is not zero.
func (s *Service) Start(ctx context.Context, code string, n int, at time.Time) (StartResult, error) {
	if at.IsZero() {
		return s.start(ctx, code, n, time.Time{})
	}
	if err := s.checkSchedule(at); err != nil {
		return StartResult{}, err
	}
	r, err := s.store.Update(ctx, code, func(r *Room) error {
		if err := checkCurrentOpen(r, n); err != nil {
			return err
		}
		if !r.CloseAt.IsZero() && !at.Before(r.CloseAt) {
			return Errorf(protocol.Invalid, "the start must come before the scheduled close")
		}
		r.StartAt = at
		return nil
	})
	if err != nil {
		return StartResult{}, err
	}
	s.schedule(ctx, code, n, ActionStart, at)
	s.bc.Send(code, protocol.Encode(questionFrameOf(r)))
	return StartResult{At: at}, nil
}

// start moves question n from open to live and fans the start out. A timed start passes
// the time it was scheduled for: if the room no longer has that schedule (the host started
// by hand, closed or rescheduled), the firing is stale and changes nothing.
func (s *Service) start(ctx context.Context, code string, n int, scheduled time.Time) (StartResult, error) {
	ctx = context.WithoutCancel(ctx) // a start, once begun, reaches everyone even if the host hangs up
	started := s.now()
	_, err := s.store.Update(ctx, code, func(r *Room) error {
		if err := checkCurrentOpen(r, n); err != nil {
			return err
		}
		if !scheduled.IsZero() && !r.StartAt.Equal(scheduled) {
			return errStale
		}
		r.Phase, r.StartedAt, r.StartAt = PhaseLive, started, time.Time{}
		return nil
	})
	if ErrorCode(err) == protocol.Unavailable {
		if _, made := s.afterLostReply(ctx, code, func(r *Room) bool {
			return r.Current == n && r.Phase == PhaseLive && r.StartedAt.UnixMicro() == started.UnixMicro()
		}); made {
			err = nil // the room went live, only the reply was lost: send the start
		}
	}
	if err != nil {
		return StartResult{}, err
	}
	if scheduled.IsZero() {
		s.cancelTimer(code, ActionStart)
	}
	seq, recipients, err := s.bc.Start(ctx, code, n)
	if err != nil && seq == 0 {
		// Nothing was sent: back to open, so that nobody can answer a question whose
		// bulb they never saw, and the host can try again.
		if _, rerr := s.store.Update(ctx, code, func(r *Room) error {
			if r.Current != n || r.Phase != PhaseLive || !r.StartedAt.Equal(started) {
				return errStale
			}
			r.Phase, r.StartedAt = PhaseOpen, time.Time{}
			return nil
		}); rerr != nil && !errors.Is(rerr, errStale) {
			s.log.Error("undoing a start that was not sent", "room", code, "n", n, "err", rerr)
		}
		s.log.Error("start not sent", "room", code, "n", n, "err", err)
		return StartResult{}, Errorf(protocol.Unavailable, "the start signal could not be sent, try again")
	}
	if err != nil {
		return StartResult{}, fmt.Errorf("start fan-out: %w", err)
	}
	s.log.Info("started", "room", code, "n", n, "seq", seq, "recipients", recipients)
	return StartResult{Seq: seq, Recipients: recipients}, nil
}

var errStale = errors.New("stale timed start")

// afterLostReply looks, a few times, whether a change the engine reported as unavailable
// was made after all: an engine that goes away may make a change and lose only its reply.
// It returns the room if made says the change is there.
func (s *Service) afterLostReply(ctx context.Context, code string, made func(*Room) bool) (*Room, bool) {
	for try := range 3 {
		if try > 0 {
			time.Sleep(300 * time.Millisecond)
		}
		r, err := s.store.Room(ctx, code)
		if err == nil {
			return r, made(r)
		}
	}
	s.log.Error("cannot tell whether a change whose reply was lost was made", "room", code)
	return nil, false
}

func checkQuestion(qz Quiz, n int) error {
	if n < 1 || n > len(qz.Questions) {
		return Errorf(protocol.NotFound, "question %d not found: the quiz has %d", n, len(qz.Questions))
	}
	return nil
}

func checkCurrentOpen(r *Room, n int) error {
	if err := checkQuestion(r.Quiz, n); err != nil {
		return err
	}
	if r.Current != n || r.Phase != PhaseOpen {
		return Errorf(protocol.Conflict, "question %d is not open (current %d is %s)", n, r.Current, r.Phase)
	}
	return nil
}

// Close ends question n now: no more answers; or, if at is not zero, schedules that for
// at. Under compensated timing it ranks the answers by reaction time and sends every player
// its final result. Everyone then gets close and the leaderboard.
func (s *Service) Close(ctx context.Context, code string, n int, at time.Time) (*Room, error) {
	if at.IsZero() {
		return s.close(ctx, code, n, time.Time{})
	}
	if err := s.checkSchedule(at); err != nil {
		return nil, err
	}
	r, err := s.store.Update(ctx, code, func(r *Room) error {
		if err := checkOpenOrLive(r, n); err != nil {
			return err
		}
		if !r.StartAt.IsZero() && !at.After(r.StartAt) {
			return Errorf(protocol.Invalid, "the close must come after the scheduled start")
		}
		r.CloseAt = at
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.schedule(ctx, code, n, ActionClose, at)
	return r, nil
}

func checkOpenOrLive(r *Room, n int) error {
	if err := checkQuestion(r.Quiz, n); err != nil {
		return err
	}
	if r.Current != n || (r.Phase != PhaseLive && r.Phase != PhaseOpen) {
		return Errorf(protocol.Conflict, "question %d is not open or live (current %d is %s)", n, r.Current, r.Phase)
	}
	return nil
}

// close closes question n. A timed close passes the time it was scheduled for: if the room
// no longer has that schedule, the firing is stale and changes nothing.
func (s *Service) close(ctx context.Context, code string, n int, scheduled time.Time) (*Room, error) {
	ctx = context.WithoutCancel(ctx) // a close, once begun, finalizes and tells everyone
	r, err := s.store.Update(ctx, code, func(r *Room) error {
		if err := checkOpenOrLive(r, n); err != nil {
			return err
		}
		if !scheduled.IsZero() && !r.CloseAt.Equal(scheduled) {
			return errStale
		}
		r.Phase, r.StartAt, r.CloseAt = PhaseClosed, time.Time{}, time.Time{}
		return nil
	})
	if ErrorCode(err) == protocol.Unavailable {
		// Closed, with only the reply lost: finish the close. Its announcements and the
		// finalizing are idempotent, so doing them after another close harms nothing.
		if closed, made := s.afterLostReply(ctx, code, func(r *Room) bool {
			return r.Current == n && r.Phase == PhaseClosed
		}); made {
			r, err = closed, nil
		}
	}
	if err != nil {
		return nil, err
	}
	s.cancelTimer(code, ActionStart)
	if scheduled.IsZero() {
		s.cancelTimer(code, ActionClose)
	}
	if sc := ScoringFor(r.Quiz, n); sc.Deferred {
		if err := s.finalize(ctx, code, n, sc); err != nil {
			return nil, err
		}
	}
	s.bc.Send(code, protocol.Encode(protocol.CloseFrame{N: n}))
	if err := s.sendLeaderboard(ctx, code); err != nil {
		return nil, err
	}
	return r, nil
}

// sendLeaderboard sends the room's leaderboard frame to everyone.
func (s *Service) sendLeaderboard(ctx context.Context, code string) error {
	lb, err := s.Leaderboard(ctx, code)
	if err != nil {
		return err
	}
	// The frame goes to every player: with the whole board it would grow with the room
	// squared (10,000 players: 600 KB to each of them). The top of it is what a screen
	// shows; the full board is one GET away.
	s.bc.Send(code, protocol.Encode(protocol.LeaderboardFrame{Entries: lb[:min(len(lb), LeaderboardTop)], Players: len(lb)}))
	return nil
}

// finalize ranks a compensated question's correct answers by reaction time (ties by
// arrival), stores ranks and points, and sends each answering player its final result.
func (s *Service) finalize(ctx context.Context, code string, n int, sc Scoring) error {
	answers, err := s.store.Answers(ctx, code, n)
	if err != nil {
		return err
	}
	ranked := Rank(answers, sc)
	if err := s.store.Finalize(ctx, code, n, ranked); err != nil {
		return err
	}
	for _, a := range ranked {
		s.bc.SendPlayer(code, a.PlayerID, protocol.Encode(resultFrameOf(a)))
	}
	return nil
}

// Rank ranks a deferred question's answers: correct ones by reaction time, ties by arrival,
// with points by sc; wrong ones keep rank 0. It returns every answer with Pending cleared.
func Rank(answers []protocol.Answer, sc Scoring) []protocol.Answer {
	out := slices.Clone(answers)
	slices.SortStableFunc(out, func(a, b protocol.Answer) int {
		if a.Correct != b.Correct {
			if a.Correct {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(reaction(a), reaction(b)), cmp.Compare(a.ArrivalRank, b.ArrivalRank))
	})
	for i := range out {
		out[i].Pending = false
		if out[i].Correct {
			out[i].Rank = i + 1
			out[i].Points = sc.Award(i+1, time.Duration(reaction(out[i]))*time.Microsecond)
		}
	}
	return out
}

func reaction(a protocol.Answer) int64 {
	if a.ReactionUs != nil {
		return *a.ReactionUs
	}
	return a.ElapsedUs
}

// Delivery is what the connection an answer came on knows of the question's start: when
// the write of the start frame to it returned, and the round trip of that start's signal
// (the lesser of its ack's and the connection's median ping). Written is zero if the
// connection got no start of the question. Compensated timing credits it.
type Delivery struct {
	Written time.Time
	RTT     time.Duration
}

// Answer marks and records a player's response to question n, received at the given
// instant on a connection that knows d of the question's start. Invalid responses and
// answers out of phase are refused with an *Error and change nothing.
func (s *Service) Answer(ctx context.Context, id Identity, n int, resp protocol.Response, received time.Time, d Delivery) (protocol.Answer, error) {
	for range 3 {
		a, err := s.answer(ctx, id, n, resp, received, d)
		if !errors.Is(err, ErrStaleQuiz) {
			return a, err
		}
		// the host edited the quiz meanwhile: judge again by the new one
	}
	return protocol.Answer{}, Errorf(protocol.Conflict, "the quiz keeps changing: answer again")
}

func (s *Service) answer(ctx context.Context, id Identity, n int, resp protocol.Response, received time.Time, d Delivery) (protocol.Answer, error) {
	qz, err := s.store.Quiz(ctx, id.Room)
	if err != nil {
		return protocol.Answer{}, err
	}
	if err := checkQuestion(qz, n); err != nil {
		return protocol.Answer{}, err
	}
	correct, err := qz.Questions[n-1].Mark(resp)
	if err != nil {
		return protocol.Answer{}, err
	}
	a := protocol.Answer{N: n, PlayerID: id.PlayerID, Response: resp, Correct: correct}
	sc := ScoringFor(qz, n)
	if sc.Deferred {
		a.ReactionUs = reactionTime(d, received)
	}
	a, replayed, err := s.store.Accept(ctx, id.Room, a, sc)
	if err != nil {
		return protocol.Answer{}, err
	}
	if !replayed {
		s.bc.SendHosts(id.Room, protocol.Encode(protocol.AnsweredFrame{Answer: a}))
	}
	if sc.Code {
		return a, s.submit(ctx, id.Room, a, qz.Questions[n-1])
	}
	return a, nil
}

// submit hands an accepted code submission to the judge. If the judge cannot take it, the
// submission gets an IE verdict saying so, and the player a Busy error: submit again.
func (s *Service) submit(ctx context.Context, room string, a protocol.Answer, q Question) error {
	job := CodeJob{Room: room, N: a.N, Submission: a.ArrivalRank, PlayerID: a.PlayerID,
		Language: a.Response.Language, Source: a.Response.Source, Question: q}
	err := s.judge.Submit(ctx, job)
	if err == nil {
		return nil
	}
	if ErrorCode(err) != protocol.Busy {
		s.log.Error("submitting code to the judge", "room", room, "n", a.N, "submission", a.ArrivalRank, "err", err)
		err = Errorf(protocol.Busy, "the judge cannot take submissions now: submit again shortly")
	}
	v := protocol.Verdict{Verdict: "IE", Total: len(q.Tests), Message: "not judged: " + ErrorMessage(err)}
	if verr := s.Verdict(context.WithoutCancel(ctx), room, a.N, a.ArrivalRank, v); verr != nil {
		s.log.Error("recording a submission the judge did not take", "room", room, "n", a.N, "submission", a.ArrivalRank, "err", verr)
	}
	return err
}

// Verdict records the judge's verdict on submission sub of code question n and tells
// everyone concerned: the player gets a verdict frame, the hosts the updated answers, and
// every player whose submission the verdict made final and ranked a result frame with its
// rank and points. If that happens after the question closed, everyone gets the new
// leaderboard. A second verdict for one submission changes nothing (the first stands) but
// its frame is sent again, for a judge that recorded it and died before telling anyone.
func (s *Service) Verdict(ctx context.Context, room string, n, sub int, v protocol.Verdict) error {
	qz, err := s.store.Quiz(ctx, room)
	if err != nil {
		return err
	}
	if err := checkQuestion(qz, n); err != nil {
		return err
	}
	a, final, err := s.store.Verdict(ctx, room, n, sub, v, ScoringFor(qz, n))
	if err != nil {
		return err
	}
	s.bc.SendPlayer(room, a.PlayerID, protocol.Encode(verdictFrameOf(a)))
	s.bc.SendHosts(room, protocol.Encode(protocol.AnsweredFrame{Answer: a}))
	ranked := false
	for _, f := range final {
		if f.ArrivalRank != a.ArrivalRank {
			s.bc.SendHosts(room, protocol.Encode(protocol.AnsweredFrame{Answer: f}))
		}
		if f.Rank > 0 {
			ranked = true
			s.bc.SendPlayer(room, f.PlayerID, ResultFrame(f))
		}
	}
	if !ranked {
		return nil
	}
	r, _, err := s.store.Player(ctx, room, "")
	if err != nil {
		return err
	}
	if r.Current > n || r.Phase == PhaseClosed {
		return s.sendLeaderboard(ctx, room)
	}
	return nil
}

// EditQuiz replaces the room's quiz with qz, if the quiz is still at the version the host
// edited (else Conflict: a stale edit never overwrites a newer one). Questions already
// asked cannot change, and no question may be open or live.
func (s *Service) EditQuiz(ctx context.Context, code string, version int64, qz Quiz) (*Room, error) {
	if err := s.normalize(&qz); err != nil {
		return nil, err
	}
	return s.store.Update(ctx, code, func(r *Room) error {
		switch {
		case r.Quiz.Version != version:
			return Errorf(protocol.Conflict, "the quiz was edited meanwhile (version %d, not %d): reload it and edit again", r.Quiz.Version, version)
		case r.Phase == PhaseOpen || r.Phase == PhaseLive:
			return Errorf(protocol.Conflict, "question %d is %s: close it before editing the quiz", r.Current, r.Phase)
		case len(qz.Questions) < r.Current:
			return Errorf(protocol.Conflict, "the quiz must keep the %d questions already asked", r.Current)
		}
		for i := range r.Current {
			if !reflect.DeepEqual(qz.Questions[i], r.Quiz.Questions[i]) {
				return Errorf(protocol.Conflict, "question %d was already asked and cannot change", i+1)
			}
		}
		if r.Current > 0 && (qz.Ranking != r.Quiz.Ranking || qz.Timing != r.Quiz.Timing || !slices.Equal(qz.Winners, r.Quiz.Winners)) {
			return Errorf(protocol.Conflict, "ranking, timing and winners cannot change once a question was asked")
		}
		qz.Version = r.Quiz.Version + 1
		r.Quiz = qz
		return nil
	})
}

// reactionTime is a player's reaction time: from when its start frame was written, less
// what the signal's travel took (its round trip, capped). Without a delivery it is nil,
// and ranking falls back to the time since the question went live.
func reactionTime(d Delivery, received time.Time) *int64 {
	if d.Written.IsZero() {
		return nil
	}
	us := (received.Sub(d.Written) - min(d.RTT, CompensationCap)).Microseconds()
	return &us
}

// Answers returns the answers to question n in rank order: correct ones by rank, then the
// wrong and pending ones in arrival order.
func (s *Service) Answers(ctx context.Context, code string, n int) ([]protocol.Answer, error) {
	qz, err := s.store.Quiz(ctx, code)
	if err != nil {
		return nil, err
	}
	if err := checkQuestion(qz, n); err != nil {
		return nil, err
	}
	answers, err := s.store.Answers(ctx, code, n)
	if err != nil {
		return nil, err
	}
	if answers == nil {
		answers = []protocol.Answer{} // a list, never null, in JSON
	}
	slices.SortStableFunc(answers, func(a, b protocol.Answer) int {
		if (a.Rank == 0) != (b.Rank == 0) {
			if a.Rank != 0 {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Rank, b.Rank), cmp.Compare(a.ArrivalRank, b.ArrivalRank))
	})
	return answers, nil
}

// Leaderboard returns the room's players by score, highest first. Equal scores share a rank
// (1, 2, 2, 4) and are listed in join order.
func (s *Service) Leaderboard(ctx context.Context, code string) ([]protocol.Entry, error) {
	r, err := s.store.Room(ctx, code)
	if err != nil {
		return nil, err
	}
	players := slices.Clone(r.Players)
	slices.SortStableFunc(players, func(a, b Player) int { return cmp.Compare(b.Score, a.Score) })
	out := make([]protocol.Entry, len(players))
	for i, p := range players {
		rank := i + 1
		if i > 0 && p.Score == players[i-1].Score {
			rank = out[i-1].Rank
		}
		out[i] = protocol.Entry{PlayerID: p.ID, Name: p.Name, Score: p.Score, Rank: rank}
	}
	return out, nil
}

// Welcome returns the welcome frame for a connection that just opened.
func (s *Service) Welcome(ctx context.Context, id Identity) ([]byte, error) {
	r, p, err := s.store.Player(ctx, id.Room, id.PlayerID) // not Room: that copies every player
	if err != nil {
		return nil, err
	}
	w := protocol.WelcomeFrame{PlayerID: id.PlayerID, Name: id.Name, Room: r.Code, Role: string(id.Role), Phase: string(r.Phase), Current: r.Current}
	if r.Current > 0 && r.Phase != PhaseLobby {
		q := questionFrameOf(r)
		w.Question = &q
	}
	if id.Role == RolePlayer {
		w.Score = p.Score
		if r.Current > 0 {
			answers, err := s.store.Answers(ctx, id.Room, r.Current)
			if err != nil {
				return nil, err
			}
			for _, a := range answers {
				if a.PlayerID != id.PlayerID {
					continue
				}
				if a.Response.Language != "" {
					w.Submissions = append(w.Submissions, resultFrameOf(a))
				}
				if a.Verdict != nil {
					w.Verdicts = append(w.Verdicts, verdictFrameOf(a))
				}
				// The answer, or the code submission that ranked, else the latest one.
				if w.Answered == nil || w.Answered.Rank == 0 {
					res := resultFrameOf(a)
					w.Answered = &res
				}
			}
		}
	}
	return protocol.Encode(w), nil
}

// Token returns a new random token: 128 bits from crypto/rand, in hex.
func Token() string { return randomHex(16) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on supported platforms
	return hex.EncodeToString(b)
}

func roomCode() string {
	v, _ := rand.Int(rand.Reader, big.NewInt(1_000_000))
	return fmt.Sprintf("%06d", v.Int64())
}
