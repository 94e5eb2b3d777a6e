package quiz

import (
	"context"

	"github.com/bulbquiz/bulb/protocol"
)

// Results are a room's results for export: a row per player per question asked (players
// in join order, seated or not once they answered), and the final leaderboard.
type Results struct {
	Code        string
	Title       string
	Questions   []Question // the questions asked, 1 to Asked
	Rows        []ResultRow
	Leaderboard []protocol.Entry
}

// ResultRow is one player's answer to one question; Answered is false (and the rest
// zero) for a player who did not answer it.
type ResultRow struct {
	N        int
	PlayerID string
	Name     string
	Answered bool
	Answer   protocol.Answer // for a code question: the ranked submission, else the latest
	// Submissions is how many code submissions the player sent to the question.
	Submissions int
}

// Results gathers the room's results: every question asked so far (the current one
// included, closed or not).
func (s *Service) Results(ctx context.Context, room string) (Results, error) {
	r, err := s.store.Room(ctx, room)
	if err != nil {
		return Results{}, err
	}
	lb, err := s.Leaderboard(ctx, room)
	if err != nil {
		return Results{}, err
	}
	res := Results{Code: r.Code, Title: r.Quiz.Title, Questions: r.Quiz.Questions[:min(r.Current, len(r.Quiz.Questions))], Leaderboard: lb}
	type who struct{ id, name string }
	for n := 1; n <= len(res.Questions); n++ {
		answers, err := s.store.Answers(ctx, room, n)
		if err != nil {
			return Results{}, err
		}
		numberSubmissions(answers)
		// The seated players in join order, then anyone who answered and left.
		var order []who
		seen := map[string]bool{}
		for _, p := range r.Players {
			order, seen[p.ID] = append(order, who{p.ID, p.Name}), true
		}
		mine := map[string]protocol.Answer{}
		subs := map[string]int{}
		for _, a := range answers {
			if !seen[a.PlayerID] {
				order, seen[a.PlayerID] = append(order, who{a.PlayerID, a.Name}), true
			}
			if old, ok := mine[a.PlayerID]; !ok || old.Rank == 0 {
				mine[a.PlayerID] = a
			}
			if a.Response.Language != "" {
				subs[a.PlayerID]++
			}
		}
		for _, p := range order {
			a, ok := mine[p.id]
			res.Rows = append(res.Rows, ResultRow{N: n, PlayerID: p.id, Name: p.name, Answered: ok, Answer: a, Submissions: subs[p.id]})
		}
	}
	return res, nil
}
