package quiz

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// finalize ranks a compensated question's correct answers by reaction time (ties by
// arrival), stores ranks and points, and sends each answering player its final result.
// The answers of players removed since they answered are final with no rank.
func (s *Service) finalize(ctx context.Context, room string, n int, sc Scoring) error {
	answers, err := s.store.Answers(ctx, room, n)
	if err != nil {
		return err
	}
	if len(answers) == 0 {
		return nil // nothing to rank: the question may be asked again
	}
	r, err := s.store.Room(ctx, room)
	if err != nil {
		return err
	}
	seated := make(map[string]bool, len(r.Players))
	for _, p := range r.Players {
		seated[p.ID] = true
	}
	var gone []protocol.Answer // final too, with no rank
	answers = slices.DeleteFunc(answers, func(a protocol.Answer) bool {
		if !seated[a.PlayerID] {
			a.Pending, a.Rank, a.Points = false, 0, 0
			gone = append(gone, a)
		}
		return !seated[a.PlayerID]
	})
	ranked := append(Rank(answers, sc), gone...)
	if err := s.store.Finalize(ctx, room, n, ranked); err != nil {
		return err
	}
	for _, a := range ranked {
		s.bc.SendPlayer(room, a.PlayerID, protocol.Encode(resultFrameOf(a)))
	}
	return nil
}

// finalizeClosed finalizes the deferred questions of room r that were closed but are not
// finalized: a close is a change of phase and then the finalizing, and the server may have
// stopped, or its store failed, in between. Finalize changes nothing the second time, so
// a question finalized meanwhile (by another node) is no harm.
func (s *Service) finalizeClosed(ctx context.Context, r *Room) {
	for n := 1; n <= min(r.Current, len(r.Quiz.Questions)); n++ {
		sc := ScoringFor(r.Quiz, n)
		if !sc.Deferred || n == r.Current && r.Phase != PhaseClosed && r.Phase != PhaseFinished {
			continue
		}
		answers, err := s.store.Answers(ctx, r.Code, n)
		if err == nil && slices.ContainsFunc(answers, func(a protocol.Answer) bool { return a.Pending }) {
			err = s.finalize(ctx, r.Code, n, sc)
		}
		if err != nil {
			s.log.Error("finalizing a closed question", "room", r.Code, "n", n, "err", err)
		}
	}
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
// the write of the start frame to it returned, the round trip of that start's signal (the
// lesser of its ack's and the connection's median ping), the start's reveal instant if it
// was synced, and the client's return delay (the way back of its answer: half its median
// ping round trip). Written is zero if the connection got no start of the question.
type Delivery struct {
	Written     time.Time
	RTT         time.Duration
	Reveal      time.Time
	ReturnDelay time.Duration
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
		// the host edited the quiz meanwhile: mark it again by the new one
	}
	return protocol.Answer{}, Errorf(protocol.Conflict, "the quiz keeps changing: answer again")
}

func (s *Service) answer(ctx context.Context, id Identity, n int, resp protocol.Response, received time.Time, d Delivery) (protocol.Answer, error) {
	qz, err := s.store.Quiz(ctx, id.Room)
	if err != nil {
		return protocol.Answer{}, err
	}
	// Only that question n exists, to mark the answer: whether it takes answers now is the
	// store's to say, atomically with recording it (Store.Accept).
	if err := checkQuestion(qz, n); err != nil {
		return protocol.Answer{}, err
	}
	correct, err := qz.Questions[n-1].Mark(resp)
	if err != nil {
		return protocol.Answer{}, err
	}
	a := protocol.Answer{N: n, PlayerID: id.PlayerID, Response: resp, Correct: correct}
	sc := ScoringFor(qz, n)
	a.ReceivedAt = received // under the synced reveal, the store refuses it before the reveal instant
	if sc.Synced && d.Reveal.IsZero() && d.Written.IsZero() {
		if d.Reveal, err = s.revealOf(ctx, id.Room, n); err != nil {
			return protocol.Answer{}, err
		}
	}
	synced := sc.Synced && !d.Reveal.IsZero()
	if sc.Deferred || synced {
		a.ReactionUs = reactionTime(d, synced, received)
	}
	if synced && !sc.Code && a.ReactionUs != nil && *a.ReactionUs < int64(*qz.FalseStartMs)*1000 {
		a.Correct, a.FalseStart = false, true // it still uses up the answer
	}
	a, replayed, err := s.store.Accept(ctx, id.Room, a, sc)
	if err != nil {
		return protocol.Answer{}, err
	}
	if sc.Code {
		if err := s.numberSubmission(ctx, id.Room, &a); err != nil {
			return protocol.Answer{}, err
		}
	}
	if !replayed {
		s.bc.SendHosts(id.Room, protocol.Encode(protocol.AnsweredFrame{Answer: a}))
		// Presenters count the answers coming in, and learn nothing of them.
		s.bc.SendPresenters(id.Room, protocol.Encode(protocol.TallyFrame{N: n, Answers: a.ArrivalRank}))
	}
	if a.FalseStart {
		return a, Errorf(protocol.FalseStart, "a false start: the answer came %d ms after the bulb lit, faster than anyone reacts (%d ms); it counts as your answer",
			*a.ReactionUs/1000, *qz.FalseStartMs)
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
	if err := s.numberSubmission(ctx, room, &a, final...); err != nil {
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

// numberSubmission fills in the Submission of code submissions a and more, all to one
// question: each one's number among its player's own submissions, from the question's
// answers in arrival order. The engines do not keep it; reading the question's answers
// costs one read per submission and per verdict, which the judge's pace bounds.
func (s *Service) numberSubmission(ctx context.Context, room string, a *protocol.Answer, more ...protocol.Answer) error {
	answers, err := s.store.Answers(ctx, room, a.N)
	if err != nil {
		return err
	}
	numberSubmissions(answers)
	byArrival := make(map[int]int, len(answers))
	for _, x := range answers {
		byArrival[x.ArrivalRank] = x.Submission
	}
	a.Submission = byArrival[a.ArrivalRank]
	for i := range more {
		more[i].Submission = byArrival[more[i].ArrivalRank]
	}
	return nil
}

// numberSubmissions numbers the code submissions among answers (one question's, in any
// order) per player, by arrival: a player's first is 1.
func numberSubmissions(answers []protocol.Answer) {
	order := make([]int, 0, len(answers))
	for i, a := range answers {
		if a.Response.Language != "" {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(i, j int) int { return cmp.Compare(answers[i].ArrivalRank, answers[j].ArrivalRank) })
	count := map[string]int{}
	for _, i := range order {
		count[answers[i].PlayerID]++
		answers[i].Submission = count[answers[i].PlayerID]
	}
}

// revealOf is the reveal instant of question n if it is live: for an answer on a
// connection that got no start of n (it connected after the start went out, and its
// welcome told it the instant), and so knows no reveal of its own to time its reaction
// from. Zero otherwise: the store then says why the answer is refused.
func (s *Service) revealOf(ctx context.Context, room string, n int) (time.Time, error) {
	r, _, err := s.store.Player(ctx, room, "")
	if err != nil {
		return time.Time{}, err
	}
	if r.Current != n || r.Phase != PhaseLive {
		return time.Time{}, nil
	}
	return r.StartedAt, nil
}

// reactionTime is a player's reaction time, or nil without a delivery. Under the synced
// reveal everyone saw the bulb at its reveal instant, so it is the time from that instant
// to the answer's arrival, less the way back (the return delay, capped: a client can make
// its round trips look longer, never shorter). Under the immediate reveal it is the time
// from when the player's start frame was written, less the signal's round trip, capped;
// without a delivery, ranking falls back to the time since the question went live.
func reactionTime(d Delivery, synced bool, received time.Time) *int64 {
	var us int64
	switch {
	case synced:
		us = (received.Sub(d.Reveal) - min(d.ReturnDelay, ReturnDelayCap)).Microseconds()
	case !d.Written.IsZero():
		us = (received.Sub(d.Written) - min(d.RTT, CompensationCap)).Microseconds()
	default:
		return nil
	}
	return &us
}
