package quiz

import (
	"cmp"
	"context"
	"slices"

	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/protocol"
)

// Answers returns the answers to question n in rank order: correct ones by rank, then the
// wrong and pending ones in arrival order.
func (s *Service) Answers(ctx context.Context, room string, n int) ([]protocol.Answer, error) {
	qz, err := s.store.Quiz(ctx, room)
	if err != nil {
		return nil, err
	}
	if err := checkQuestion(qz, n); err != nil {
		return nil, err
	}
	answers, err := s.store.Answers(ctx, room, n)
	if err != nil {
		return nil, err
	}
	if answers == nil {
		answers = []protocol.Answer{} // a list, never null, in JSON
	}
	numberSubmissions(answers)
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
func (s *Service) Leaderboard(ctx context.Context, room string) ([]protocol.Entry, error) {
	r, err := s.store.Room(ctx, room)
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
	var answers []protocol.Answer
	if r.Current > 0 && id.Role != RoleHost {
		if answers, err = s.store.Answers(ctx, id.Room, r.Current); err != nil {
			return nil, err
		}
		numberSubmissions(answers)
		if r.Phase == PhaseClosed || r.Phase == PhaseFinished {
			rv := RevealOf(r.Quiz, r.Current, answers)
			w.Reveal = &rv
		}
	}
	if id.Role == RolePresenter {
		if err := s.presenterWelcome(ctx, &w, answers); err != nil {
			return nil, err
		}
	}
	if id.Role == RolePlayer {
		w.Score = p.Score
		if r.Current > 0 {
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

// The frames the service builds from its rooms and answers; the hub builds the start
// frame. protocol has their shapes and encoding.

func questionFrameOf(r *Room) protocol.QuestionFrame {
	q := r.Quiz.Questions[r.Current-1]
	f := protocol.QuestionFrame{N: r.Current, Kind: q.Kind, Text: q.Text, Choices: q.Choices, TimeLimitMs: q.TimeLimitMs,
		Phase: string(r.Phase), Languages: q.Languages, MemoryLimitMB: q.MemoryLimitMB}
	if !r.StartAt.IsZero() {
		at := r.StartAt.UTC()
		f.StartAt = &at
	}
	if r.Phase == PhaseLive && !r.CloseAt.IsZero() {
		f.EndsAt = clocksync.Millis(r.CloseAt)
	}
	if r.Phase == PhaseLive && r.Quiz.Reveal == RevealSynced && !r.StartedAt.IsZero() {
		f.At = clocksync.Millis(r.StartedAt)
	}
	return f
}

func resultFrameOf(a protocol.Answer) protocol.ResultFrame {
	f := protocol.ResultFrame{N: a.N, Accepted: true, Correct: a.Correct, Rank: a.Rank, Points: a.Points, Pending: a.Pending}
	if a.Response.Language != "" { // a code submission
		f.Submission, f.Judging, f.Language = a.Submission, a.Verdict == nil, a.Response.Language
	}
	return f
}

// verdictFrameOf returns the verdict frame of a code submission a that has its verdict.
func verdictFrameOf(a protocol.Answer) protocol.VerdictFrame {
	return protocol.VerdictFrame{N: a.N, Submission: a.Submission, Language: a.Response.Language, Verdict: *a.Verdict}
}

// presenterWelcome adds what a presenter's screen shows to its welcome w: the quiz's
// title and size, the players seated, how many answered the current question (answers),
// and the podium of a finished quiz. Nothing of an answer before the close.
func (s *Service) presenterWelcome(ctx context.Context, w *protocol.WelcomeFrame, answers []protocol.Answer) error {
	r, err := s.store.Room(ctx, w.Room)
	if err != nil {
		return err
	}
	w.Title, w.Questions, w.Answers = r.Quiz.Title, len(r.Quiz.Questions), len(answers)
	w.Players = make([]protocol.PlayerName, len(r.Players))
	for i, p := range r.Players {
		w.Players[i] = protocol.PlayerName{PlayerID: p.ID, Name: p.Name}
	}
	if r.Phase == PhaseFinished {
		lb, err := s.Leaderboard(ctx, w.Room)
		if err != nil {
			return err
		}
		w.Podium = Podium(lb)
	}
	return nil
}

// ResultFrame returns the result frame that tells a player its answer a was accepted.
func ResultFrame(a protocol.Answer) []byte { return protocol.Encode(resultFrameOf(a)) }
