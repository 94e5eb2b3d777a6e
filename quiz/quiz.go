package quiz

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bulbquiz/bulb/protocol"
)

// Ranking modes.
const (
	FirstCome = "first-come" // the first len(winners) correct answers score winners[rank-1]
	Speed     = "speed"      // every correct answer scores by how fast it came (Kahoot's rule)
)

// Timing modes.
const (
	Arrival     = "arrival"     // rank by the server's accept order
	Compensated = "compensated" // rank by reaction time: arrival minus delivery minus min(RTT, cap)
)

// Reveal modes: when a start's bulb lights on the students' screens.
const (
	RevealSynced    = "synced"    // at the start's reveal instant, on clocks synced with the server's
	RevealImmediate = "immediate" // when the start arrives
)

// Question kinds.
const (
	KindChoice = "choice" // pick one of Choices; Answer is the 0-based index of the right one
	KindShort  = "short"  // free text compared with Answers, normalised
	KindCode   = "code"   // a program judged against Tests in a sandbox, asynchronously
)

// Limits and defaults of a quiz.
const (
	MaxQuestions     = 200
	MaxTitle         = 200
	MaxText          = 2000
	MaxChoices       = 26
	MaxAnswerText    = 1000
	MaxWinners       = 100
	DefaultPoints    = 100
	DefaultTimeLimit = 20 * time.Second
	minTimeLimitMs   = 1000
	maxTimeLimitMs   = 3_600_000
	maxPoints        = 1_000_000
	fullPointsWithin = 500 * time.Millisecond
	CompensationCap  = 150 * time.Millisecond // most a measured RTT may take off a reaction time
	// ReturnDelayCap is the most a student's return delay (the way back of an answer) may
	// take off a reaction time under the synced reveal.
	ReturnDelayCap = CompensationCap / 2
	// DefaultFalseStartMs is the reaction time, in ms, below which an answer under the
	// synced reveal is a false start: no person reacts faster (athletics counts a start
	// within 0.100 s of the gun as false).
	DefaultFalseStartMs = 100
	maxFalseStartMs     = 1000
	defaultQuizTitle    = "Quiz"
	maxAnswersPerQues   = 50

	// Code questions.
	MaxCode             = 64 << 10 // bytes of one code submission
	MaxLanguages        = 10
	MaxTests            = 50
	MaxTestBytes        = 512 << 10 // of every test's input and output together
	MaxSubmissions      = 50        // one player's submissions to one code question
	DefaultChecker      = "tokens"
	DefaultCodeTimeMs   = 1000 // a code question's CPU time limit per test
	DefaultCodeMemoryMB = 256
	minCodeTimeMs       = 100
	maxCodeTimeMs       = 10_000
	minCodeMemoryMB     = 16
	maxCodeMemoryMB     = 1024
	// CodeSpeedWindow is a code question's T under the speed rule: points fall from P to
	// P/2 over the first five minutes after the start.
	CodeSpeedWindow = 5 * time.Minute
)

// Quiz is what a host creates a room from.
type Quiz struct {
	Version int64  `json:"-"` // bumped by every edit; the base of optimistic edits
	Title   string `json:"title"`
	Ranking string `json:"ranking"`
	Winners []int  `json:"winners,omitempty"`
	Timing  string `json:"timing"`
	Reveal  string `json:"reveal"`
	// FalseStartMs is the reaction time below which an answer is a false start, under the
	// synced reveal; nil means DefaultFalseStartMs, 0 none.
	FalseStartMs *int `json:"falseStartMs,omitempty"`
	// ManualClose keeps every question open until the host closes it: no question's time
	// limit closes it by itself (see AutoClose).
	ManualClose bool       `json:"manualClose,omitempty"`
	Questions   []Question `json:"questions"`
}

// AutoClose is how long after its start question n (1-based) closes by itself: its time
// limit, or 0 when the host closes it (the quiz's ManualClose, a time limit of 0, and code
// questions, whose timeLimitMs is the CPU time of one test run).
func (q Quiz) AutoClose(n int) time.Duration {
	qu := q.Questions[n-1]
	if q.ManualClose || qu.Kind == KindCode {
		return 0
	}
	return time.Duration(qu.TimeLimitMs) * time.Millisecond
}

// Question is one question of a quiz. Which fields apply depends on Kind.
type Question struct {
	Kind    string   `json:"kind"`
	Text    string   `json:"text"`
	Choices []string `json:"choices,omitempty"`
	Answer  *int     `json:"answer,omitempty"`
	Answers []string `json:"answers,omitempty"`
	Points  int      `json:"points"`
	// TimeLimitMs closes a choice or short question that long after its start, and is T
	// of the speed rule; 0 means no time limit (the host closes it; T is then
	// DefaultTimeLimit). Left out of a quiz's JSON it is DefaultTimeLimit. For a code
	// question it is the CPU time limit of one test run.
	TimeLimitMs int `json:"timeLimitMs"`

	// Code questions: the languages a submission may use, the tests it must pass, its
	// memory limit and how its output is compared (see the judge's checkers).
	Languages     []string   `json:"languages,omitempty"`
	Tests         []CodeTest `json:"tests,omitempty"`
	MemoryLimitMB int        `json:"memoryLimitMB,omitempty"`
	Checker       string     `json:"checker,omitempty"`
}

// CodeTest is one test of a code question: the program reads In and must print Out. A
// sample test is one students may see: a verdict on it may show the program's stderr and
// its expected and actual output; a verdict on any other, a hidden test, shows none of
// them (see the judge's Evaluate).
type CodeTest struct {
	In     string `json:"in"`
	Out    string `json:"out"`
	Sample bool   `json:"sample,omitempty"`
}

// timeLimitUnset marks a question whose JSON left timeLimitMs out, until Normalize gives it
// the default: 0 says "no time limit".
const timeLimitUnset = -1

// UnmarshalJSON implements json.Unmarshaler: a timeLimitMs left out is told from one of 0,
// and a field the question does not have is refused (a misspelt "point" must not be
// dropped unsaid) but for "n", the question's number in a room's state, so that the
// state's quiz can be sent back as it is.
func (q *Question) UnmarshalJSON(b []byte) error {
	type plain Question
	var p struct {
		plain
		N *int `json:"n"` // accepted, and ignored
	}
	p.plain = plain{TimeLimitMs: timeLimitUnset}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*q = Question(p.plain)
	return nil
}

// TimeLimit is the question's time limit T of the speed rule.
func (q Question) TimeLimit() time.Duration {
	if q.Kind == KindCode {
		return CodeSpeedWindow
	}
	if q.TimeLimitMs <= 0 {
		return DefaultTimeLimit
	}
	return time.Duration(q.TimeLimitMs) * time.Millisecond
}

// Normalize fills in defaults and checks q, returning an Invalid *Error that names the first
// problem found. It changes q only by adding defaults and trimming text.
func (q *Quiz) Normalize() error {
	q.Title = strings.TrimSpace(q.Title)
	if q.Title == "" {
		q.Title = defaultQuizTitle
	}
	if utf8.RuneCountInString(q.Title) > MaxTitle {
		return Errorf(protocol.Invalid, "title is longer than %d characters", MaxTitle)
	}
	switch q.Ranking {
	case "":
		q.Ranking = FirstCome
	case FirstCome, Speed:
	default:
		return Errorf(protocol.Invalid, "ranking must be %q or %q, got %q", FirstCome, Speed, q.Ranking)
	}
	switch q.Reveal {
	case "":
		q.Reveal = RevealSynced
	case RevealSynced, RevealImmediate:
	default:
		return Errorf(protocol.Invalid, "reveal must be %q or %q, got %q", RevealSynced, RevealImmediate, q.Reveal)
	}
	if q.FalseStartMs == nil {
		d := DefaultFalseStartMs
		q.FalseStartMs = &d
	}
	if *q.FalseStartMs < 0 || *q.FalseStartMs > maxFalseStartMs {
		return Errorf(protocol.Invalid, "falseStartMs must be between 0 and %d", maxFalseStartMs)
	}
	switch q.Timing {
	case "":
		q.Timing = Arrival
	case Arrival, Compensated:
	default:
		return Errorf(protocol.Invalid, "timing must be %q or %q, got %q", Arrival, Compensated, q.Timing)
	}
	if len(q.Winners) > MaxWinners {
		return Errorf(protocol.Invalid, "at most %d winners", MaxWinners)
	}
	for i, w := range q.Winners {
		if w < 0 || w > maxPoints {
			return Errorf(protocol.Invalid, "winners[%d] must be between 0 and %d", i, maxPoints)
		}
	}
	if len(q.Questions) == 0 {
		return Errorf(protocol.Invalid, "a quiz needs at least one question")
	}
	if len(q.Questions) > MaxQuestions {
		return Errorf(protocol.Invalid, "a quiz has at most %d questions", MaxQuestions)
	}
	for i := range q.Questions {
		if err := q.Questions[i].normalize(); err != nil {
			return Errorf(protocol.Invalid, "question %d: %s", i+1, ErrorMessage(err))
		}
	}
	return nil
}

func (q *Question) normalize() error {
	q.Text = strings.TrimSpace(q.Text)
	if q.Text == "" {
		return Errorf(protocol.Invalid, "text is empty")
	}
	if utf8.RuneCountInString(q.Text) > MaxText {
		return Errorf(protocol.Invalid, "text is longer than %d characters", MaxText)
	}
	if q.Points == 0 {
		q.Points = DefaultPoints
	}
	if q.Points < 0 || q.Points > maxPoints {
		return Errorf(protocol.Invalid, "points must be between 1 and %d", maxPoints)
	}
	if q.Kind == KindCode {
		return q.normalizeCode()
	}
	if len(q.Languages) > 0 || len(q.Tests) > 0 || q.MemoryLimitMB != 0 || q.Checker != "" {
		return Errorf(protocol.Invalid, "languages, tests, memoryLimitMB and checker are for code questions")
	}
	if q.TimeLimitMs == timeLimitUnset {
		q.TimeLimitMs = int(DefaultTimeLimit / time.Millisecond)
	}
	if q.TimeLimitMs != 0 && (q.TimeLimitMs < minTimeLimitMs || q.TimeLimitMs > maxTimeLimitMs) {
		return Errorf(protocol.Invalid, "timeLimitMs must be 0 (no time limit) or between %d and %d", minTimeLimitMs, maxTimeLimitMs)
	}
	switch q.Kind {
	case KindChoice:
		if len(q.Choices) < 2 || len(q.Choices) > MaxChoices {
			return Errorf(protocol.Invalid, "a choice question needs 2 to %d choices", MaxChoices)
		}
		for i, c := range q.Choices {
			q.Choices[i] = strings.TrimSpace(c)
			if q.Choices[i] == "" || utf8.RuneCountInString(c) > MaxText {
				return Errorf(protocol.Invalid, "choice %d is empty or too long", i)
			}
		}
		if q.Answer == nil {
			return Errorf(protocol.Invalid, "answer (the 0-based index of the right choice) is missing")
		}
		if *q.Answer < 0 || *q.Answer >= len(q.Choices) {
			return Errorf(protocol.Invalid, "answer %d is out of range 0..%d", *q.Answer, len(q.Choices)-1)
		}
		if len(q.Answers) > 0 {
			return Errorf(protocol.Invalid, "a choice question takes answer, not answers")
		}
	case KindShort:
		if len(q.Answers) == 0 || len(q.Answers) > maxAnswersPerQues {
			return Errorf(protocol.Invalid, "a short question needs 1 to %d accepted answers", maxAnswersPerQues)
		}
		for i, a := range q.Answers {
			if normalizeText(a) == "" || utf8.RuneCountInString(a) > MaxAnswerText {
				return Errorf(protocol.Invalid, "accepted answer %d is empty or too long", i)
			}
		}
		if q.Answer != nil || len(q.Choices) > 0 {
			return Errorf(protocol.Invalid, "a short question takes answers, not answer or choices")
		}
	default:
		return Errorf(protocol.Invalid, "kind must be %q, %q or %q, got %q", KindChoice, KindShort, KindCode, q.Kind)
	}
	return nil
}

// normalizeCode checks a code question's own fields. Which languages and checkers exist
// is the judge's to say (Judge.Check).
func (q *Question) normalizeCode() error {
	if q.Answer != nil || len(q.Answers) > 0 || len(q.Choices) > 0 {
		return Errorf(protocol.Invalid, "a code question takes tests, not answer, answers or choices")
	}
	if q.TimeLimitMs <= 0 {
		q.TimeLimitMs = DefaultCodeTimeMs
	}
	if q.TimeLimitMs < minCodeTimeMs || q.TimeLimitMs > maxCodeTimeMs {
		return Errorf(protocol.Invalid, "a code question's timeLimitMs (per test) must be between %d and %d", minCodeTimeMs, maxCodeTimeMs)
	}
	if q.MemoryLimitMB == 0 {
		q.MemoryLimitMB = DefaultCodeMemoryMB
	}
	if q.MemoryLimitMB < minCodeMemoryMB || q.MemoryLimitMB > maxCodeMemoryMB {
		return Errorf(protocol.Invalid, "memoryLimitMB must be between %d and %d", minCodeMemoryMB, maxCodeMemoryMB)
	}
	if q.Checker == "" {
		q.Checker = DefaultChecker
	}
	if len(q.Languages) == 0 || len(q.Languages) > MaxLanguages {
		return Errorf(protocol.Invalid, "a code question needs 1 to %d languages", MaxLanguages)
	}
	for i, l := range q.Languages {
		if l == "" || slices.Contains(q.Languages[:i], l) {
			return Errorf(protocol.Invalid, "language %d is empty or repeated", i)
		}
	}
	if len(q.Tests) == 0 || len(q.Tests) > MaxTests {
		return Errorf(protocol.Invalid, "a code question needs 1 to %d tests", MaxTests)
	}
	size := 0
	for _, t := range q.Tests {
		size += len(t.In) + len(t.Out)
	}
	if size > MaxTestBytes {
		return Errorf(protocol.Invalid, "the tests' inputs and outputs are over %d bytes", MaxTestBytes)
	}
	return nil
}

// responseKey identifies a response: the same answer sent again has the same key.
func responseKey(s protocol.Response) string {
	b, _ := json.Marshal(s) // a struct of a pointer to an int and a string: cannot fail
	return string(b)
}

// Mark checks s against q: whether it is well-formed for the question's kind (an Invalid
// *Error if not, TooLarge for code over MaxCode) and whether it is correct. A code
// submission is never correct here: the judge decides later.
func (q Question) Mark(s protocol.Response) (bool, error) {
	if q.Kind != KindCode && (s.Language != "" || s.Source != "") {
		return false, Errorf(protocol.Invalid, "language and code are for code questions")
	}
	switch q.Kind {
	case KindCode:
		if s.Choice != nil || s.Text != "" {
			return false, Errorf(protocol.Invalid, "a code question takes a language and code")
		}
		if !slices.Contains(q.Languages, s.Language) {
			return false, Errorf(protocol.Invalid, "language %q is not one of %s", s.Language, strings.Join(q.Languages, ", "))
		}
		if len(s.Source) > MaxCode {
			return false, Errorf(protocol.TooLarge, "code is %d bytes, over the limit of %d", len(s.Source), MaxCode)
		}
		if strings.TrimSpace(s.Source) == "" {
			return false, Errorf(protocol.Invalid, "code is empty")
		}
		return false, nil
	case KindChoice:
		if s.Choice == nil || s.Text != "" {
			return false, Errorf(protocol.Invalid, "a choice question takes a choice")
		}
		if *s.Choice < 0 || *s.Choice >= len(q.Choices) {
			return false, Errorf(protocol.Invalid, "choice %d is out of range 0..%d", *s.Choice, len(q.Choices)-1)
		}
		return *s.Choice == *q.Answer, nil
	case KindShort:
		if s.Choice != nil {
			return false, Errorf(protocol.Invalid, "a short question takes a text")
		}
		if utf8.RuneCountInString(s.Text) > MaxAnswerText {
			return false, Errorf(protocol.Invalid, "answer is longer than %d characters", MaxAnswerText)
		}
		got := normalizeText(s.Text)
		if got == "" {
			return false, Errorf(protocol.Invalid, "answer is empty")
		}
		for _, a := range q.Answers {
			if strings.EqualFold(got, normalizeText(a)) {
				return true, nil
			}
		}
		return false, nil
	}
	return false, Errorf(protocol.Invalid, "question kind %q takes no answers here", q.Kind)
}

// normalizeText trims s and collapses inner white space to one space.
func normalizeText(s string) string { return strings.Join(strings.Fields(s), " ") }

// Scoring is the rule that turns a correct answer's rank and time into points. It is plain
// data so that a store can apply it atomically where the rank is decided.
type Scoring struct {
	Speed     bool          // the speed rule; else first-come winners
	Winners   []int         // first-come: points of ranks 1..len(Winners)
	Points    int           // speed: the question's points P
	TimeLimit time.Duration // speed: T
	Deferred  bool          // compensated timing: ranks and points are decided at close
	// Code: a code question's submissions, several per player, ranked by arrival once
	// judged (Store.Verdict); Accept gives them no rank.
	Code bool
	// Synced: the quiz's reveal is synced, so an answer counts only from the question's
	// reveal instant (Store.Accept).
	Synced bool
	// QuizVersion is the version of the quiz the answer was marked by: a store refuses the
	// answer with ErrStaleQuiz if the quiz has been edited since.
	QuizVersion int64
}

// ErrStaleQuiz says an answer was marked by a quiz that has been edited since: mark it
// again by the current quiz.
var ErrStaleQuiz = errors.New("quiz: the quiz changed while the answer was marked")

// ScoringFor returns the scoring rule of question n (1-based) of qz.
func ScoringFor(qz Quiz, n int) Scoring {
	q := qz.Questions[n-1]
	s := Scoring{
		Speed:     qz.Ranking == Speed,
		Winners:   qz.Winners,
		Points:    q.Points,
		TimeLimit: q.TimeLimit(),
		Deferred:  qz.Timing == Compensated && q.Kind != KindCode,
		Code:      q.Kind == KindCode,
		Synced:    qz.Reveal == RevealSynced,

		QuizVersion: qz.Version,
	}
	if len(s.Winners) == 0 {
		s.Winners = []int{q.Points}
	}
	return s
}

// Award returns the points of a correct answer of the given rank (1-based) that came t
// after the start.
func (s Scoring) Award(rank int, t time.Duration) int {
	if !s.Speed {
		if rank >= 1 && rank <= len(s.Winners) {
			return s.Winners[rank-1]
		}
		return 0
	}
	if t < fullPointsWithin {
		return s.Points
	}
	frac := min(float64(t)/float64(s.TimeLimit), 1)
	return int(math.Round(float64(s.Points) * (1 - frac/2)))
}
