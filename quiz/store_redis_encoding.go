package quiz

import (
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

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
	Response   protocol.Response `json:"answer"`
	Correct    bool              `json:"correct"`
	ReactionUs *int64            `json:"reactionUs,omitempty"`
	FalseStart bool              `json:"falseStart,omitempty"`
}

// redisAnswer is an answer as stored: times in µs since the epoch.
type redisAnswer struct {
	N           int               `json:"n"`
	PlayerID    string            `json:"playerId"`
	Response    protocol.Response `json:"answer"`
	Correct     bool              `json:"correct"`
	ReactionUs  *int64            `json:"reactionUs,omitempty"`
	FalseStart  bool              `json:"falseStart,omitempty"`
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
		N: a.N, PlayerID: a.PlayerID, Name: a.Name, Response: a.Response, Correct: a.Correct,
		Rank: a.Rank, ArrivalRank: a.ArrivalRank, Points: a.Points, Pending: a.Pending,
		ReceivedAt: time.UnixMicro(a.ReceivedUs).UTC(), ElapsedUs: a.ElapsedUs, ReactionUs: a.ReactionUs,
		FalseStart: a.FalseStart, Verdict: a.Verdict,
	}
}

func redisAnswerOf(a protocol.Answer) redisAnswer {
	return redisAnswer{
		N: a.N, PlayerID: a.PlayerID, Response: a.Response, Correct: a.Correct, ReactionUs: a.ReactionUs, FalseStart: a.FalseStart,
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
