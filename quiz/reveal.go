package quiz

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// What everyone is told when a question closes and when the quiz ends: the reveal (the
// right answer, how the room answered, the fastest), the leaderboard, and to each player
// where it stands. Nothing here goes out before the close: the presenter's screen and the
// students' pages learn the answer from the reveal alone.

// fastestShown is how many of the fastest right answers a reveal lists.
const fastestShown = 5

// podiumPlaces is how many places the podium of a finished quiz shows, and podiumMax how
// many players at most (ties share a place).
const (
	podiumPlaces = 3
	podiumMax    = 10
)

// errFinished refuses a move once the quiz is over.
var errFinished = Errorf(protocol.Conflict, "the quiz is over")

// announceClose tells everyone that question n closed: the close, the reveal, the
// leaderboard, and each player its standing. final says the quiz finished with it.
func (s *Service) announceClose(ctx context.Context, room string, n int, final bool) error {
	s.bc.Send(room, protocol.Encode(protocol.CloseFrame{N: n}))
	qz, err := s.store.Quiz(ctx, room)
	if err != nil {
		return err
	}
	answers, err := s.store.Answers(ctx, room, n)
	if err != nil {
		return err
	}
	s.bc.Send(room, protocol.Encode(RevealOf(qz, n, answers)))
	return s.announceStandings(ctx, room, n, answers, final)
}

// announceStandings sends everyone the leaderboard and each player its standing after
// question n (0: none asked), given the answers to it.
func (s *Service) announceStandings(ctx context.Context, room string, n int, answers []protocol.Answer, final bool) error {
	lb, err := s.Leaderboard(ctx, room)
	if err != nil {
		return err
	}
	// The frame goes to every player: with the whole board it would grow with the room
	// squared (10,000 players: 600 KB to each of them). The top of it is what a screen
	// shows; the full board is one GET away, and each player gets its own place below.
	s.bc.Send(room, protocol.Encode(protocol.LeaderboardFrame{Entries: lb[:min(len(lb), LeaderboardTop)], Players: len(lb)}))
	mine := make(map[string]protocol.Answer, len(answers))
	for _, a := range answers {
		// A player's right answer (a code question's ranked submission) stands for it,
		// else its latest.
		if old, ok := mine[a.PlayerID]; !ok || old.Rank == 0 {
			mine[a.PlayerID] = a
		}
	}
	for _, e := range lb {
		a, answered := mine[e.PlayerID]
		st := protocol.StandingFrame{N: n, Answered: answered, Correct: a.Correct || a.Rank > 0, Rank: a.Rank, Points: a.Points,
			Score: e.Score, Place: e.Rank, Players: len(lb), Final: final}
		s.bc.SendPlayer(room, e.PlayerID, protocol.Encode(st))
	}
	return nil
}

// RevealOf is the reveal of question n of qz, from its answers: the right answer, how the
// players answered, and the fastest right answers. Each player counts once: by its right
// answer if it has one (a code question's ranked submission), else its latest.
func RevealOf(qz Quiz, n int, answers []protocol.Answer) protocol.RevealFrame {
	q := qz.Questions[n-1]
	f := protocol.RevealFrame{N: n, Kind: q.Kind, Fastest: []protocol.Fastest{}}
	switch q.Kind {
	case KindChoice:
		f.Answer = q.Answer
		f.Counts = make([]int, len(q.Choices))
	case KindShort:
		f.Answers = q.Answers
		f.Counts = make([]int, 2)
	default:
		f.Counts = make([]int, 2)
	}
	mine := map[string]protocol.Answer{}
	for _, a := range answers {
		if old, ok := mine[a.PlayerID]; !ok || old.Rank == 0 && !old.Correct {
			mine[a.PlayerID] = a
		}
	}
	var right []protocol.Answer
	for _, a := range mine {
		f.Answered++
		ok := a.Correct || a.Rank > 0
		if ok {
			f.Correct++
		}
		switch {
		case q.Kind == KindChoice && a.Response.Choice != nil && *a.Response.Choice >= 0 && *a.Response.Choice < len(f.Counts):
			f.Counts[*a.Response.Choice]++
		case q.Kind != KindChoice && ok:
			f.Counts[0]++
		case q.Kind != KindChoice:
			f.Counts[1]++
		}
		if a.Rank > 0 {
			right = append(right, a)
		}
	}
	slices.SortFunc(right, func(a, b protocol.Answer) int { return cmp.Compare(a.Rank, b.Rank) })
	for _, a := range right[:min(len(right), fastestShown)] {
		t := a.ElapsedUs
		if a.ReactionUs != nil {
			t = *a.ReactionUs
		}
		f.Fastest = append(f.Fastest, protocol.Fastest{Name: a.Name, Rank: a.Rank, Points: a.Points, ElapsedUs: t})
	}
	return f
}

// Finish ends the quiz: a question open or live is closed first (as Close would), then
// the room is finished, for good: no question opens and no answer is taken. Everyone
// gets the finished frame with the podium, the final leaderboard and each player its
// final standing.
func (s *Service) Finish(ctx context.Context, room string) (*Room, error) {
	ctx = context.WithoutCancel(ctx) // once begun, everyone hears the end
	r, err := s.store.Room(ctx, room)
	if err != nil {
		return nil, err
	}
	if r.Phase == PhaseFinished {
		return nil, errFinished
	}
	if r.Phase == PhaseOpen || r.Phase == PhaseLive {
		if _, err := s.close(ctx, room, r.Current, time.Time{}); err != nil && ErrorCode(err) != protocol.Conflict {
			return nil, err
		}
	}
	r, err = s.store.Update(ctx, room, func(r *Room) error {
		switch r.Phase {
		case PhaseFinished:
			return errFinished
		case PhaseOpen, PhaseLive:
			return Errorf(protocol.Conflict, "question %d is %s again: try again", r.Current, r.Phase)
		}
		r.Phase, r.StartAt, r.CloseAt = PhaseFinished, time.Time{}, time.Time{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.cancelTimer(room, ActionStart)
	s.cancelTimer(room, ActionClose)
	lb, err := s.Leaderboard(ctx, room)
	if err != nil {
		return nil, err
	}
	s.bc.Send(room, protocol.Encode(protocol.FinishedFrame{Podium: Podium(lb), Players: len(lb)}))
	var answers []protocol.Answer
	if r.Current > 0 {
		if answers, err = s.store.Answers(ctx, room, r.Current); err != nil {
			return nil, err
		}
	}
	if err := s.announceStandings(ctx, room, r.Current, answers, true); err != nil {
		return nil, err
	}
	s.log.Info("quiz finished", "room", room, "players", len(lb))
	return r, nil
}

// Podium is the top of a leaderboard: the entries placed 1 to 3 (more on a tie, at most
// podiumMax).
func Podium(lb []protocol.Entry) []protocol.Entry {
	i := 0
	for i < len(lb) && i < podiumMax && lb[i].Rank <= podiumPlaces {
		i++
	}
	return slices.Clone(lb[:i])
}
