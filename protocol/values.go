package protocol

import "time"

// Response is what a student gives for one question: Choice (0-based) for a choice
// question, Text for a short one, Language and Source for a code question. It is the
// "answer" of an Answer and the body of an answer frame.
type Response struct {
	Choice   *int   `json:"choice,omitempty"`
	Text     string `json:"text,omitempty"`
	Language string `json:"language,omitempty"`
	Source   string `json:"code,omitempty"` // a program's source code
}

// Answer is one accepted answer, as the host sees it (GET …/answers, answered frames) and
// as the engines store it.
type Answer struct {
	N           int       `json:"n"`
	PlayerID    string    `json:"playerId"`
	Name        string    `json:"name"`
	Response    Response  `json:"answer"`
	Correct     bool      `json:"correct"`
	Rank        int       `json:"rank"`        // among correct answers, 1-based; 0 if wrong or pending
	ArrivalRank int       `json:"arrivalRank"` // among all answers, 1-based, in accept order; a code submission's number
	Points      int       `json:"points"`
	Pending     bool      `json:"pending,omitempty"` // rank and points are still to come
	ReceivedAt  time.Time `json:"receivedAt"`
	ElapsedUs   int64     `json:"elapsedUs"`            // since the question went live
	ReactionUs  *int64    `json:"reactionUs,omitempty"` // compensated timing, or a synced reveal: the reaction time
	FalseStart  bool      `json:"falseStart,omitempty"` // came faster than a person can react: never correct
	// Submission is a code submission's number among its player's own submissions to the
	// question (1, 2, …); ArrivalRank numbers them among everyone's. The service fills it
	// in from the answers in arrival order: the engines do not store it.
	Submission int `json:"submission,omitempty"`
	// Verdict is the judge's verdict on a code submission; nil while it is judged. A code
	// submission is Pending until it and every earlier one have their verdicts.
	Verdict *Verdict `json:"verdict,omitempty"`
}

// The verdicts of a code submission.
const (
	AC  = "AC"  // accepted: every test passed
	WA  = "WA"  // wrong answer
	TLE = "TLE" // time limit exceeded (CPU or wall clock)
	MLE = "MLE" // memory limit exceeded
	RE  = "RE"  // runtime error: non-zero exit or killed by a signal
	OLE = "OLE" // output limit exceeded
	CE  = "CE"  // compilation error (including a compiler that exceeded its limits)
	IE  = "IE"  // internal error: the judge or the sandbox failed, not the submission
)

// Verdict is what the judge found of one code submission.
type Verdict struct {
	Verdict  string `json:"verdict"`  // AC, WA, TLE, MLE, RE, OLE, CE or IE
	Passed   int    `json:"passed"`   // tests passed before the first failure
	Total    int    `json:"total"`    // tests in all
	TimeMs   int64  `json:"timeMs"`   // the largest CPU time of a test run
	MemoryKB int64  `json:"memoryKB"` // the largest peak memory of a test run
	Message  string `json:"message"`  // for people: the compiler's errors, or what failed on which test
}

// Entry is one line of a leaderboard. Equal scores share a rank.
type Entry struct {
	PlayerID string `json:"playerId"`
	Name     string `json:"name"`
	Score    int    `json:"score"`
	Rank     int    `json:"rank"`
}
