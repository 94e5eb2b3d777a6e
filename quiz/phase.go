package quiz

import (
	"context"
	"errors"
	"time"

	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/protocol"
)

// Open shows question n: players get it with the bulb off. A question asked before may be
// asked again, but for one under compensated timing that has answers: its ranks were
// decided once, at its close.
func (s *Service) Open(ctx context.Context, room string, n int) (*Room, error) {
	if err := s.checkAskAgain(ctx, room, n); err != nil {
		return nil, err
	}
	r, err := s.store.Update(ctx, room, func(r *Room) error {
		if err := checkQuestion(r.Quiz, n); err != nil {
			return err
		}
		switch {
		case r.Phase == PhaseFinished:
			return errFinished
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
	s.cancelTimer(room, ActionStart)
	s.cancelTimer(room, ActionClose)
	s.bc.Send(room, protocol.Encode(questionFrameOf(r)))
	return r, nil
}

// checkAskAgain refuses to open a deferred question that has answers. (Answers come only
// while a question is live, and one being opened is not.)
func (s *Service) checkAskAgain(ctx context.Context, room string, n int) error {
	qz, err := s.store.Quiz(ctx, room)
	if err != nil {
		return err
	}
	if checkQuestion(qz, n) != nil || !ScoringFor(qz, n).Deferred {
		return nil // Update says what is wrong with n, if anything
	}
	answers, err := s.store.Answers(ctx, room, n)
	if err != nil {
		return err
	}
	if len(answers) > 0 {
		return Errorf(protocol.Conflict, "question %d was asked under compensated timing and ranked at its close: it cannot be asked again", n)
	}
	return nil
}

// StartResult is what a start did: the start's sequence number and recipients, and its
// reveal instant if it is synced; or, for a timed start, when it is scheduled.
type StartResult struct {
	Seq        uint64
	Recipients int
	Reveal     time.Time // when the bulbs light, under the synced reveal; zero if immediate
	At         time.Time // zero unless scheduled
}

// Start lights the bulb of question n now, or schedules it for at if at is not zero.
func (s *Service) Start(ctx context.Context, room string, n int, at time.Time) (StartResult, error) {
	if at.IsZero() {
		return s.start(ctx, room, n, time.Time{})
	}
	if err := s.checkSchedule(at); err != nil {
		return StartResult{}, err
	}
	r, err := s.store.Update(ctx, room, func(r *Room) error {
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
	// The question frame (with its startAt) first: a start due within the timer's lead
	// fires at once, and its frame, written before any other, must not be followed by a
	// question frame that pages take for a new question.
	s.bc.Send(room, protocol.Encode(questionFrameOf(r)))
	s.schedule(ctx, room, n, ActionStart, at)
	return StartResult{At: at}, nil
}

// start moves question n from open to live and fans the start out. A timed start passes
// the time it was scheduled for: if the room no longer has that schedule (the host started
// by hand, closed or rescheduled), the firing is stale and changes nothing.
//
// Under the synced reveal the start is sent ahead of its reveal instant, by the
// broadcaster's lead (a timed start's timer fires that early, and it lights at its time),
// and the question's StartedAt is the reveal instant: times are counted from when the
// students saw the bulb. An immediate timed start waits for its time.
func (s *Service) start(ctx context.Context, room string, n int, scheduled time.Time) (StartResult, error) {
	ctx = context.WithoutCancel(ctx) // a start, once begun, reaches everyone even if the host hangs up
	qz, err := s.store.Quiz(ctx, room)
	if err != nil {
		return StartResult{}, err
	}
	synced := qz.Reveal == RevealSynced
	if !synced && !scheduled.IsZero() {
		if wait := time.Until(scheduled); wait > 0 { // the timer fired timedStartAhead early
			time.Sleep(wait)
		}
	}
	started := s.now().Round(0).Truncate(time.Microsecond) // what every engine keeps (Redis: µs)
	var reveal time.Time
	if synced {
		reveal = started.Add(s.bc.Lead(room))
		if scheduled.After(reveal) {
			reveal = scheduled
		}
		started = reveal
	}
	// The question's time limit closes it that long after its start (the reveal instant):
	// a timed close, set with the start so that a node that dies meanwhile leaves it to
	// the others, unless the host scheduled a close already.
	limit := qz.AutoClose(n)
	var closeAt time.Time
	auto := false
	_, err = s.store.Update(ctx, room, func(r *Room) error {
		if err := checkCurrentOpen(r, n); err != nil {
			return err
		}
		if !scheduled.IsZero() && !r.StartAt.Equal(scheduled) {
			return errStale
		}
		r.Phase, r.StartedAt, r.StartAt = PhaseLive, started, time.Time{}
		auto = r.CloseAt.IsZero() && limit > 0
		if auto {
			r.CloseAt = started.Add(limit)
		}
		closeAt = r.CloseAt
		return nil
	})
	if ErrorCode(err) == protocol.Unavailable {
		if r, made := s.afterLostReply(ctx, room, func(r *Room) bool {
			return r.Current == n && r.Phase == PhaseLive && r.StartedAt.UnixMicro() == started.UnixMicro()
		}); made {
			err = nil // the room went live, only the reply was lost: send the start
			closeAt = r.CloseAt
		}
	}
	if err != nil {
		return StartResult{}, err
	}
	if scheduled.IsZero() {
		s.cancelTimer(room, ActionStart)
	}
	seq, recipients, err := s.bc.Start(ctx, room, n, reveal)
	if err != nil && seq == 0 {
		// Nothing was sent: back to open, so that nobody can answer a question whose
		// bulb they never saw, and the host can try again.
		if _, rerr := s.store.Update(ctx, room, func(r *Room) error {
			if r.Current != n || r.Phase != PhaseLive || !r.StartedAt.Equal(started) {
				return errStale
			}
			r.Phase, r.StartedAt = PhaseOpen, time.Time{}
			if auto {
				r.CloseAt = time.Time{}
			}
			return nil
		}); rerr != nil && !errors.Is(rerr, errStale) {
			s.log.Error("undoing a start that was not sent", "room", room, "n", n, "err", rerr)
		}
		s.log.Error("start not sent", "room", room, "n", n, "err", err)
		return StartResult{}, Errorf(protocol.Unavailable, "the start signal could not be sent, try again")
	}
	if err != nil {
		// It went out (seq is its number): the players have it, and the question goes on.
		s.log.Warn("a start went out with an error", "room", room, "n", n, "seq", seq, "err", err)
	}
	if !closeAt.IsZero() {
		if auto {
			s.schedule(ctx, room, n, ActionClose, closeAt)
		}
		s.bc.Send(room, protocol.Encode(protocol.TimerFrame{N: n, EndsAt: clocksync.Millis(closeAt)}))
	}
	s.log.Info("started", "room", room, "n", n, "seq", seq, "recipients", recipients, "reveal", reveal)
	return StartResult{Seq: seq, Recipients: recipients, Reveal: reveal}, nil
}

var errStale = errors.New("stale timed start")

// afterLostReply looks, a few times, whether a change the engine reported as unavailable
// was made after all: an engine that goes away may make a change and lose only its reply.
// It returns the room if made says the change is there.
func (s *Service) afterLostReply(ctx context.Context, room string, made func(*Room) bool) (*Room, bool) {
	for try := range 3 {
		if try > 0 {
			time.Sleep(300 * time.Millisecond)
		}
		r, err := s.store.Room(ctx, room)
		if err == nil {
			return r, made(r)
		}
	}
	s.log.Error("cannot tell whether a change whose reply was lost was made", "room", room)
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
func (s *Service) Close(ctx context.Context, room string, n int, at time.Time) (*Room, error) {
	if at.IsZero() {
		return s.close(ctx, room, n, time.Time{})
	}
	if err := s.checkSchedule(at); err != nil {
		return nil, err
	}
	r, err := s.store.Update(ctx, room, func(r *Room) error {
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
	s.schedule(ctx, room, n, ActionClose, at)
	if r.Phase == PhaseLive {
		s.bc.Send(room, protocol.Encode(protocol.TimerFrame{N: n, EndsAt: clocksync.Millis(at)}))
	}
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
func (s *Service) close(ctx context.Context, room string, n int, scheduled time.Time) (*Room, error) {
	ctx = context.WithoutCancel(ctx) // a close, once begun, finalizes and tells everyone
	r, err := s.store.Update(ctx, room, func(r *Room) error {
		if err := checkOpenOrLive(r, n); err != nil {
			return err
		}
		if !scheduled.IsZero() && !r.CloseAt.Equal(scheduled) {
			return errStale
		}
		r.Phase, r.StartAt, r.CloseAt = PhaseClosed, time.Time{}, time.Time{}
		return nil
	})
	if ErrorCode(err) == protocol.Conflict {
		// Closed before: if its finalizing failed then, a close again finishes it.
		if r, rerr := s.store.Room(ctx, room); rerr == nil && r.Current == n {
			s.finalizeClosed(ctx, r)
		}
	}
	if ErrorCode(err) == protocol.Unavailable {
		// Closed, with only the reply lost: finish the close. Its announcements and the
		// finalizing are idempotent, so doing them after another close harms nothing.
		if closed, made := s.afterLostReply(ctx, room, func(r *Room) bool {
			return r.Current == n && r.Phase == PhaseClosed
		}); made {
			r, err = closed, nil
		}
	}
	if err != nil {
		return nil, err
	}
	s.cancelTimer(room, ActionStart)
	if scheduled.IsZero() {
		s.cancelTimer(room, ActionClose)
	}
	if sc := ScoringFor(r.Quiz, n); sc.Deferred {
		if err := s.finalize(ctx, room, n, sc); err != nil {
			return nil, err
		}
	}
	if err := s.announceClose(ctx, room, n, false); err != nil {
		return nil, err
	}
	return r, nil
}

// sendLeaderboard sends the room's leaderboard frame to everyone.
func (s *Service) sendLeaderboard(ctx context.Context, room string) error {
	lb, err := s.Leaderboard(ctx, room)
	if err != nil {
		return err
	}
	// The frame goes to every player: with the whole board it would grow with the room
	// squared (10,000 players: 600 KB to each of them). The top of it is what a screen
	// shows; the full board is one GET away.
	s.bc.Send(room, protocol.Encode(protocol.LeaderboardFrame{Entries: lb[:min(len(lb), LeaderboardTop)], Players: len(lb)}))
	return nil
}
