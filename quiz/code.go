package quiz

import (
	"context"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// CodeJob is one code submission for the judge: which it is, and the question (its tests
// and limits) that judges it.
type CodeJob struct {
	Room       string
	N          int
	Submission int // its number among question N's submissions: its arrival rank
	PlayerID   string
	Language   string
	Source     string
	Question   Question
}

// Judge judges code submissions, asynchronously: the server wires the judge package in
// and hands each verdict to Service.Verdict.
type Judge interface {
	// Check says whether the judge can judge question q (its languages and checker); an
	// Invalid *Error if not.
	Check(q Question) error
	// Submit queues job for judging, or returns a Busy *Error when the queue is full
	// (nothing was queued).
	Submit(ctx context.Context, job CodeJob) error
	// Drop takes the jobs of a player of a room that are still waiting out of the queue:
	// the player left. A job being judged may still get its verdict.
	Drop(ctx context.Context, room, playerID string) error
}

// settle ranks a code question's submissions in arrival order, from index from, for as
// long as each has its verdict: a player's first accepted submission (by arrival) takes
// the next rank after correct and its points, unless the player has a rank already
// (winners); every other judged submission is final with no rank. It updates answers and
// winners in place and returns the indexes of the answers it made final, the index of the
// first submission still waiting for its verdict, and the correct answers ranked now.
//
// Ranking waits for the verdicts of earlier submissions, so a rank once given is final:
// a later verdict can never take it away.
func settle(answers []protocol.Answer, from int, winners map[string]bool, correct int, sc Scoring) (changed []int, next, ranked int) {
	next = from
	for ; next < len(answers) && answers[next].Verdict != nil; next++ {
		a := &answers[next]
		a.Pending = false
		if a.Verdict.Verdict == protocol.AC && !winners[a.PlayerID] {
			winners[a.PlayerID] = true
			correct++
			a.Rank = correct
			a.Points = sc.Award(a.Rank, time.Duration(a.ElapsedUs)*time.Microsecond)
		}
		changed = append(changed, next)
	}
	return changed, next, correct
}

// Resubmit submits again every code submission that has no verdict yet, for a judge whose
// queue did not survive a restart that the submissions did (the embedded engine's judge
// keeps its queue in memory). It returns how many it submitted. A submission being judged
// when the server stopped is judged again; should it be judged twice, the first verdict
// stands (Store.Verdict). Without a judge (the sandbox is gone since), each gets an IE
// verdict that says so, rather than wait for ever and hold up the ranking of the others.
func (s *Service) Resubmit(ctx context.Context) (int, error) {
	rooms, err := s.store.Rooms(ctx)
	if err != nil {
		return 0, err
	}
	submitted := 0
	for _, r := range rooms {
		for i, q := range r.Quiz.Questions {
			if q.Kind != KindCode {
				continue
			}
			answers, err := s.store.Answers(ctx, r.Code, i+1)
			if err != nil {
				return submitted, err
			}
			for _, a := range answers {
				if a.Verdict != nil {
					continue
				}
				if s.judge == nil {
					v := protocol.Verdict{Verdict: protocol.IE, Total: len(q.Tests), Message: "not judged: this server cannot judge code now"}
					err = s.Verdict(ctx, r.Code, a.N, a.ArrivalRank, v)
				} else {
					// A judge that cannot take it records an IE verdict: one verdict still.
					err = s.submit(ctx, r.Code, a, q)
				}
				if err != nil && ErrorCode(err) != protocol.Busy {
					return submitted, err
				}
				submitted++
			}
		}
	}
	return submitted, nil
}
