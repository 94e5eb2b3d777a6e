package quiz

import (
	"encoding/json"
	"time"
)

// The frames the service sends. The hub sends the start frame itself; docs/protocol.md
// describes them all.

type welcomeFrame struct {
	Type     string         `json:"type"`
	PlayerID string         `json:"playerId,omitempty"`
	Name     string         `json:"name,omitempty"`
	Room     string         `json:"room"`
	Role     Role           `json:"role"`
	Phase    Phase          `json:"phase"`
	Current  int            `json:"current"`
	Score    int            `json:"score"`
	Question *questionFrame `json:"question,omitempty"`
	Answered *resultFrame   `json:"answered,omitempty"`
	// Code: the player's submissions to the current question (result frames, in arrival
	// order) and the verdicts of those judged.
	Submissions []resultFrame  `json:"submissions,omitempty"`
	Verdicts    []verdictFrame `json:"verdicts,omitempty"`
}

type questionFrame struct {
	Type        string     `json:"type"`
	N           int        `json:"n"`
	Kind        string     `json:"kind"`
	Text        string     `json:"text"`
	Choices     []string   `json:"choices,omitempty"`
	TimeLimitMs int        `json:"timeLimitMs"`
	Phase       Phase      `json:"phase"`
	StartAt     *time.Time `json:"startAt,omitempty"`
	// Code questions: never the tests.
	Languages     []string `json:"languages,omitempty"`
	MemoryLimitMB int      `json:"memoryLimitMB,omitempty"`
}

func questionFrameOf(r *Room) questionFrame {
	q := r.Quiz.Questions[r.Current-1]
	f := questionFrame{Type: "question", N: r.Current, Kind: q.Kind, Text: q.Text, Choices: q.Choices, TimeLimitMs: q.TimeLimitMs, Phase: r.Phase,
		Languages: q.Languages, MemoryLimitMB: q.MemoryLimitMB}
	if !r.StartAt.IsZero() {
		at := r.StartAt.UTC()
		f.StartAt = &at
	}
	return f
}

type closeFrame struct {
	Type string `json:"type"`
	N    int    `json:"n"`
}

type leaderboardFrame struct {
	Type    string  `json:"type"`
	Entries []Entry `json:"entries"` // the top LeaderboardTop
	Players int     `json:"players"` // on the whole board
}

type joinedFrame struct {
	Type     string `json:"type"`
	PlayerID string `json:"playerId"`
	Name     string `json:"name"`
}

type answeredFrame struct {
	Type string `json:"type"`
	Answer
}

type resultFrame struct {
	Type       string `json:"type"`
	N          int    `json:"n"`
	Accepted   bool   `json:"accepted"`
	Correct    bool   `json:"correct"`
	Rank       int    `json:"rank"`
	Points     int    `json:"points"`
	Pending    bool   `json:"pending,omitempty"`
	Judging    bool   `json:"judging,omitempty"`    // code: the verdict is still to come
	Submission int    `json:"submission,omitempty"` // code: the submission's number
	Language   string `json:"language,omitempty"`   // code: the submission's language
}

func resultFrameOf(a Answer) resultFrame {
	f := resultFrame{Type: "result", N: a.N, Accepted: true, Correct: a.Correct, Rank: a.Rank, Points: a.Points, Pending: a.Pending}
	if a.Submission.Language != "" { // a code submission
		f.Submission, f.Judging, f.Language = a.ArrivalRank, a.Verdict == nil, a.Submission.Language
	}
	return f
}

type verdictFrame struct {
	Type       string `json:"type"`
	N          int    `json:"n"`
	Submission int    `json:"submission"`
	Language   string `json:"language"`
	CodeVerdict
}

// verdictFrameOf returns the verdict frame of a code submission a that has its verdict.
func verdictFrameOf(a Answer) verdictFrame {
	return verdictFrame{Type: "verdict", N: a.N, Submission: a.ArrivalRank, Language: a.Submission.Language, CodeVerdict: *a.Verdict}
}

// ResultFrame returns the result frame that tells a player its answer a was accepted.
func ResultFrame(a Answer) []byte { return mustFrame(resultFrameOf(a)) }

type errorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	N       int    `json:"n,omitempty"`
}

// ErrorFrame returns the error frame for err, about question n if n > 0.
func ErrorFrame(err error, n int) []byte {
	return mustFrame(errorFrame{Type: "error", Code: ErrorCode(err), Message: ErrorMessage(err), N: n})
}

// mustFrame encodes a frame. The frames are plain structs of strings and numbers, so
// encoding cannot fail.
func mustFrame(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("quiz: encoding a frame: " + err.Error())
	}
	return b
}
