package protocol

import (
	"encoding/json"
	"strconv"
	"time"
)

// ServerFrame is a frame the server sends. Every one encodes as a JSON object whose first
// member is its "type", nested in another frame too (a welcome carries a question frame).
type ServerFrame interface {
	json.Marshaler
	// FrameType is the frame's "type".
	FrameType() string
}

// Encode returns f as a JSON text frame. The frames are plain structs of strings, numbers
// and times, so encoding cannot fail.
func Encode(f ServerFrame) []byte {
	b, err := json.Marshal(f)
	if err != nil {
		panic("protocol: encoding a " + f.FrameType() + " frame: " + err.Error())
	}
	return b
}

// withType encodes fields, f's fields in a type without f's methods, with f's type first.
func withType(f ServerFrame, fields any) ([]byte, error) {
	body, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(body)+len(f.FrameType())+12)
	b = append(b, `{"type":`...)
	b = strconv.AppendQuote(b, f.FrameType())
	if len(body) > 2 { // not {}
		b = append(b, ',')
	}
	return append(b, body[1:]...), nil
}

// WelcomeFrame is sent right after a connection opens: who it is, the room's state and,
// for a player, its answers to the current question.
type WelcomeFrame struct {
	PlayerID string         `json:"playerId,omitempty"`
	Name     string         `json:"name,omitempty"`
	Room     string         `json:"room"`
	Role     string         `json:"role"`
	Phase    string         `json:"phase"`
	Current  int            `json:"current"`
	Score    int            `json:"score"`
	Question *QuestionFrame `json:"question,omitempty"`
	// Answered is the player's result on the current question: for code, the submission
	// that ranked, else the latest.
	Answered *ResultFrame `json:"answered,omitempty"`
	// Submissions are the result frames of all the player's submissions to the current
	// code question, in arrival order; Verdicts the verdict frames of those judged.
	Submissions []ResultFrame  `json:"submissions,omitempty"`
	Verdicts    []VerdictFrame `json:"verdicts,omitempty"`
	// Reveal is the current question's reveal once it is closed (players and presenters).
	Reveal *RevealFrame `json:"reveal,omitempty"`
	// Presenters only: the quiz's title and number of questions, the players seated, the
	// answers to the current question so far, and the podium once the quiz is finished.
	Title     string       `json:"title,omitempty"`
	Questions int          `json:"questions,omitempty"`
	Players   []PlayerName `json:"players,omitempty"`
	Answers   int          `json:"answers,omitempty"`
	Podium    []Entry      `json:"podium,omitempty"`
}

// PlayerName is a seated player, as a presenter lists them.
type PlayerName struct {
	PlayerID string `json:"playerId"`
	Name     string `json:"name"`
}

// QuestionFrame shows a question, bulb off. Code questions give their languages and
// limits, never their tests.
type QuestionFrame struct {
	N             int        `json:"n"`
	Kind          string     `json:"kind"`
	Text          string     `json:"text"`
	Choices       []string   `json:"choices,omitempty"`
	TimeLimitMs   int        `json:"timeLimitMs"`
	Phase         string     `json:"phase"`
	StartAt       *time.Time `json:"startAt,omitempty"` // a timed start's instant
	At            float64    `json:"at,omitempty"`      // a live synced question's reveal instant, as in StartFrame
	EndsAt        float64    `json:"endsAt,omitempty"`  // when a live question closes by itself, as in TimerFrame
	Languages     []string   `json:"languages,omitempty"`
	MemoryLimitMB int        `json:"memoryLimitMB,omitempty"`
}

// StartFrame lights the bulb of question N; Seq numbers the start. At, under the synced
// reveal, is the reveal instant in server time (ms since the Unix epoch): the page lights
// its bulb then, on its synced clock; without it (the immediate reveal) at once. It is the
// frame of the hot path: AppendStart encodes it without reflection.
type StartFrame struct {
	N   int     `json:"n"`
	Seq uint64  `json:"seq"`
	At  float64 `json:"at,omitempty"`
}

// AppendStart appends the start frame of question n, sequence number seq and reveal
// instant at (ms since the Unix epoch; 0 for none) to b: the same bytes as
// Encode(StartFrame{n, seq, at}), without reflection or a second allocation.
func AppendStart(b []byte, n int, seq uint64, at float64) []byte {
	b = append(b, `{"type":"start","n":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	if at != 0 {
		b = append(b, `,"at":`...)
		b = appendMillis(b, at)
	}
	return append(b, '}')
}

// appendMillis appends ms as encoding/json does a float64 of its size: plain digits, the
// shortest that reads back to ms.
func appendMillis(b []byte, ms float64) []byte { return strconv.AppendFloat(b, ms, 'f', -1, 64) }

// SyncFrame answers a client's sync: T0 as the client sent it, T1 when the server received
// it and T2 when the server sent the answer (ms since the Unix epoch, server time, T2
// stamped just before the write). AppendSync encodes it at the moment it is written.
type SyncFrame struct {
	T0 float64 `json:"t0"`
	T1 float64 `json:"t1"`
	T2 float64 `json:"t2"`
}

// AppendSync appends the sync frame of t0, t1 and t2 to b: the same bytes as
// Encode(SyncFrame{t0, t1, t2}).
func AppendSync(b []byte, t0, t1, t2 float64) []byte {
	b = append(b, `{"type":"sync","t0":`...)
	b = appendMillis(b, t0)
	b = append(b, `,"t1":`...)
	b = appendMillis(b, t1)
	b = append(b, `,"t2":`...)
	b = appendMillis(b, t2)
	return append(b, '}')
}

// CloseFrame says question N takes no more answers.
type CloseFrame struct {
	N int `json:"n"`
}

// ResultFrame answers a player's answer (and, under compensated timing or for code, gives
// its final rank later).
type ResultFrame struct {
	N          int    `json:"n"`
	Accepted   bool   `json:"accepted"`
	Correct    bool   `json:"correct"`
	Rank       int    `json:"rank"`
	Points     int    `json:"points"`
	Pending    bool   `json:"pending,omitempty"`
	Judging    bool   `json:"judging,omitempty"`    // code: the verdict is still to come
	Submission int    `json:"submission,omitempty"` // code: the submission's number among the player's own
	Language   string `json:"language,omitempty"`   // code: the submission's language
}

// VerdictFrame gives a player the judge's verdict on its code submission.
type VerdictFrame struct {
	N          int    `json:"n"`
	Submission int    `json:"submission"`
	Language   string `json:"language"`
	Verdict
}

// LeaderboardFrame follows every close: the top entries and the size of the whole board.
type LeaderboardFrame struct {
	Entries []Entry `json:"entries"`
	Players int     `json:"players"`
}

// ErrorFrame says a frame was refused, and why; N is the question it was about, if any.
type ErrorFrame struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
	N       int       `json:"n,omitempty"`
}

// AnsweredFrame tells hosts that a player answered, or that a code submission changed
// (a verdict, a final rank).
type AnsweredFrame struct {
	Answer
}

// JoinedFrame tells hosts that a player joined.
type JoinedFrame struct {
	PlayerID string `json:"playerId"`
	Name     string `json:"name"`
}

// RemovedFrame tells a player its seat was removed, just before its socket is closed with
// CloseRemoved: by the host, or because the player left.
type RemovedFrame struct {
	Message string `json:"message"`
}

// LeftFrame tells hosts that a player's seat was removed: the host removed the player, or
// the player left.
type LeftFrame struct {
	PlayerID string `json:"playerId"`
	Name     string `json:"name"`
}

// TimerFrame says when question N closes by itself: EndsAt, in server time (ms since the
// Unix epoch, as a start's At). It follows a start whose question has a time limit, and a
// timed close the host scheduled.
type TimerFrame struct {
	N      int     `json:"n"`
	EndsAt float64 `json:"endsAt"`
}

// TallyFrame tells presenters how many answers (code: submissions) question N has had.
type TallyFrame struct {
	N       int `json:"n"`
	Answers int `json:"answers"`
}

// RevealFrame follows the close of question N, to everyone: the right answer (choice: its
// index; short: the accepted answers; code: none), how the players answered (Counts: per
// choice, or for short and code questions [right, wrong]), how many answered and how many
// were right, and the fastest right answers, by rank.
type RevealFrame struct {
	N        int       `json:"n"`
	Kind     string    `json:"kind"`
	Answer   *int      `json:"answer,omitempty"`
	Answers  []string  `json:"answers,omitempty"`
	Counts   []int     `json:"counts"`
	Answered int       `json:"answered"`
	Correct  int       `json:"correct"`
	Fastest  []Fastest `json:"fastest"`
}

// Fastest is one of the fastest right answers to a question: its player, rank, points and
// time from the start (the reveal instant, under the synced reveal).
type Fastest struct {
	Name      string `json:"name"`
	Rank      int    `json:"rank"`
	Points    int    `json:"points"`
	ElapsedUs int64  `json:"elapsedUs"`
}

// StandingFrame tells one player where it stands after the close of question N (Final:
// after the quiz finished): its points and rank on the question (0 if it was not right,
// Answered whether it answered), its score, and its place among Players (equal scores
// share a place).
type StandingFrame struct {
	N        int  `json:"n"`
	Answered bool `json:"answered"`
	Correct  bool `json:"correct"`
	Rank     int  `json:"rank"`
	Points   int  `json:"points"`
	Score    int  `json:"score"`
	Place    int  `json:"place"`
	Players  int  `json:"players"`
	Final    bool `json:"final,omitempty"`
}

// FinishedFrame says the quiz is over, to everyone: no more questions or answers. Podium
// is the top three entries of the leaderboard (more on a tie), Players its size.
type FinishedFrame struct {
	Podium  []Entry `json:"podium"`
	Players int     `json:"players"`
}

// DeletedFrame tells hosts and presenters that the room was deleted; its players get a
// RemovedFrame.
type DeletedFrame struct {
	Message string `json:"message"`
}

// FrameType implements ServerFrame.
func (TimerFrame) FrameType() string { return "timer" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f TimerFrame) MarshalJSON() ([]byte, error) {
	type fields TimerFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (TallyFrame) FrameType() string { return "tally" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f TallyFrame) MarshalJSON() ([]byte, error) {
	type fields TallyFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (RevealFrame) FrameType() string { return "reveal" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f RevealFrame) MarshalJSON() ([]byte, error) {
	type fields RevealFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (StandingFrame) FrameType() string { return "standing" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f StandingFrame) MarshalJSON() ([]byte, error) {
	type fields StandingFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (FinishedFrame) FrameType() string { return "finished" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f FinishedFrame) MarshalJSON() ([]byte, error) {
	type fields FinishedFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (DeletedFrame) FrameType() string { return "deleted" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f DeletedFrame) MarshalJSON() ([]byte, error) {
	type fields DeletedFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (WelcomeFrame) FrameType() string { return "welcome" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f WelcomeFrame) MarshalJSON() ([]byte, error) {
	type fields WelcomeFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (QuestionFrame) FrameType() string { return "question" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f QuestionFrame) MarshalJSON() ([]byte, error) {
	type fields QuestionFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (StartFrame) FrameType() string { return "start" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f StartFrame) MarshalJSON() ([]byte, error) {
	type fields StartFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (SyncFrame) FrameType() string { return "sync" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f SyncFrame) MarshalJSON() ([]byte, error) {
	type fields SyncFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (CloseFrame) FrameType() string { return "close" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f CloseFrame) MarshalJSON() ([]byte, error) {
	type fields CloseFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (ResultFrame) FrameType() string { return "result" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f ResultFrame) MarshalJSON() ([]byte, error) {
	type fields ResultFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (VerdictFrame) FrameType() string { return "verdict" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f VerdictFrame) MarshalJSON() ([]byte, error) {
	type fields VerdictFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (LeaderboardFrame) FrameType() string { return "leaderboard" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f LeaderboardFrame) MarshalJSON() ([]byte, error) {
	type fields LeaderboardFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (ErrorFrame) FrameType() string { return "error" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f ErrorFrame) MarshalJSON() ([]byte, error) {
	type fields ErrorFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (AnsweredFrame) FrameType() string { return "answered" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f AnsweredFrame) MarshalJSON() ([]byte, error) {
	type fields AnsweredFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (JoinedFrame) FrameType() string { return "joined" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f JoinedFrame) MarshalJSON() ([]byte, error) {
	type fields JoinedFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (RemovedFrame) FrameType() string { return "removed" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f RemovedFrame) MarshalJSON() ([]byte, error) {
	type fields RemovedFrame
	return withType(f, fields(f))
}

// FrameType implements ServerFrame.
func (LeftFrame) FrameType() string { return "left" }

// MarshalJSON implements json.Marshaler: the fields, after the type.
func (f LeftFrame) MarshalJSON() ([]byte, error) {
	type fields LeftFrame
	return withType(f, fields(f))
}
