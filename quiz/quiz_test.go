package quiz

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

func intp(i int) *int { return &i }

func validQuiz() Quiz {
	return Quiz{Questions: []Question{
		{Kind: KindChoice, Text: "Which layer is TCP?", Choices: []string{"2", "3", "4"}, Answer: intp(2)},
		{Kind: KindShort, Text: "TCP stands for?", Answers: []string{"tcp", "Transmission  Control Protocol"}},
	}}
}

// codeQuestion is a valid code question: print the sum of two numbers.
func codeQuestion() Question {
	return Question{Kind: KindCode, Text: "Print a+b.", Languages: []string{"python", "c"},
		Tests: []CodeTest{{In: "1 2\n", Out: "3\n"}, {In: "5 5\n", Out: "10\n"}}}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Quiz)
		want   string // substring of the error; empty for valid
	}{
		{"valid", func(*Quiz) {}, ""},
		{"no questions", func(q *Quiz) { q.Questions = nil }, "at least one question"},
		{"bad ranking", func(q *Quiz) { q.Ranking = "fastest" }, "ranking must be"},
		{"bad timing", func(q *Quiz) { q.Timing = "late" }, "timing must be"},
		{"negative winner", func(q *Quiz) { q.Winners = []int{100, -1} }, "winners[1]"},
		{"empty text", func(q *Quiz) { q.Questions[0].Text = "  " }, "question 1: text is empty"},
		{"one choice", func(q *Quiz) { q.Questions[0].Choices = []string{"a"} }, "2 to 26 choices"},
		{"empty choice", func(q *Quiz) { q.Questions[0].Choices[1] = "" }, "choice 1 is empty"},
		{"answer out of range", func(q *Quiz) { q.Questions[0].Answer = intp(3) }, "answer 3 is out of range"},
		{"negative answer", func(q *Quiz) { q.Questions[0].Answer = intp(-1) }, "out of range"},
		{"missing answer", func(q *Quiz) { q.Questions[0].Answer = nil }, "answer (the 0-based index"},
		{"short without answers", func(q *Quiz) { q.Questions[1].Answers = nil }, "question 2: a short question needs"},
		{"short blank answer", func(q *Quiz) { q.Questions[1].Answers = []string{" "} }, "accepted answer 0 is empty"},
		{"unknown kind", func(q *Quiz) { q.Questions[1].Kind = "essay" }, "kind must be"},
		{"code with answers", func(q *Quiz) { q.Questions[1].Kind = KindCode }, "a code question takes tests"},
		{"code without tests", func(q *Quiz) { q.Questions[1] = codeQuestion(); q.Questions[1].Tests = nil }, "1 to 50 tests"},
		{"code without languages", func(q *Quiz) { q.Questions[1] = codeQuestion(); q.Questions[1].Languages = nil }, "1 to 10 languages"},
		{"code with a language twice", func(q *Quiz) {
			q.Questions[1] = codeQuestion()
			q.Questions[1].Languages = []string{"c", "c"}
		}, "language 1 is empty or repeated"},
		{"code tests too big", func(q *Quiz) {
			q.Questions[1] = codeQuestion()
			q.Questions[1].Tests[0].In = strings.Repeat("1", MaxTestBytes)
		}, "over 524288 bytes"},
		{"code time limit", func(q *Quiz) { q.Questions[1] = codeQuestion(); q.Questions[1].TimeLimitMs = 60000 }, "per test"},
		{"code memory limit", func(q *Quiz) { q.Questions[1] = codeQuestion(); q.Questions[1].MemoryLimitMB = 8 }, "memoryLimitMB"},
		{"tests on a choice question", func(q *Quiz) { q.Questions[0].Tests = codeQuestion().Tests }, "are for code questions"},
		{"valid code", func(q *Quiz) { q.Questions[1] = codeQuestion() }, ""},
		{"negative points", func(q *Quiz) { q.Questions[0].Points = -5 }, "points must be"},
		{"time limit too short", func(q *Quiz) { q.Questions[0].TimeLimitMs = 10 }, "timeLimitMs"},
		{"title too long", func(q *Quiz) { q.Title = strings.Repeat("x", MaxTitle+1) }, "title is longer"},
		{"too many questions", func(q *Quiz) {
			for len(q.Questions) <= MaxQuestions {
				q.Questions = append(q.Questions, q.Questions[1])
			}
		}, "at most 200 questions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := validQuiz()
			tt.change(&q)
			err := q.Normalize()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || ErrorCode(err) != protocol.Invalid {
				t.Fatalf("got %v, want an invalid error containing %q", err, tt.want)
			}
		})
	}
}

func TestNormalizeDefaults(t *testing.T) {
	q := validQuiz()
	if err := q.Normalize(); err != nil {
		t.Fatal(err)
	}
	if q.Title != "Quiz" || q.Ranking != FirstCome || q.Timing != Arrival {
		t.Errorf("got title %q ranking %q timing %q, want Quiz, first-come, arrival", q.Title, q.Ranking, q.Timing)
	}
	if got := q.Questions[0]; got.Points != 100 || got.TimeLimitMs != 0 || got.TimeLimit() != DefaultTimeLimit {
		t.Errorf("got points %d time limit %d (T %v), want 100 and 0 (T %v): a Go zero is no time limit", got.Points, got.TimeLimitMs, got.TimeLimit(), DefaultTimeLimit)
	}
	// In a quiz's JSON, a time limit left out is the default; 0 is none (the host closes).
	var js Quiz
	if err := json.Unmarshal([]byte(`{"questions":[{"kind":"choice","text":"a","choices":["x","y"],"answer":0},
		{"kind":"choice","text":"b","choices":["x","y"],"answer":0,"timeLimitMs":0}]}`), &js); err != nil {
		t.Fatal(err)
	}
	if err := js.Normalize(); err != nil {
		t.Fatal(err)
	}
	if a, b := js.Questions[0].TimeLimitMs, js.Questions[1].TimeLimitMs; a != 20000 || b != 0 || js.AutoClose(1) != 20*time.Second || js.AutoClose(2) != 0 {
		t.Errorf("from JSON: got time limits %d and %d, want 20000 (left out) and 0", a, b)
	}
	js.ManualClose = true
	if d := js.AutoClose(1); d != 0 {
		t.Errorf("manualClose: AutoClose got %v, want 0", d)
	}
	c := Quiz{Timing: Compensated, Questions: []Question{codeQuestion()}}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	if got := c.Questions[0]; got.TimeLimitMs != 1000 || got.MemoryLimitMB != 256 || got.Checker != "tokens" {
		t.Errorf("code question: got time limit %d, memory %d MB, checker %q; want 1000, 256, tokens", got.TimeLimitMs, got.MemoryLimitMB, got.Checker)
	}
	if sc := ScoringFor(c, 1); !sc.Code || sc.Deferred || sc.TimeLimit != CodeSpeedWindow {
		t.Errorf("code question's scoring %+v: want Code, not Deferred (code ranks by arrival), T %v", sc, CodeSpeedWindow)
	}
}

func TestJudge(t *testing.T) {
	q := validQuiz()
	if err := q.Normalize(); err != nil {
		t.Fatal(err)
	}
	choice, short := q.Questions[0], q.Questions[1]
	code := codeQuestion()
	tests := []struct {
		name    string
		q       Question
		s       protocol.Response
		correct bool
		invalid bool
	}{
		{"code", code, protocol.Response{Language: "c", Source: "int main(){}"}, false, false},
		{"code in another language", code, protocol.Response{Language: "cpp", Source: "int main(){}"}, false, true},
		{"code without language", code, protocol.Response{Source: "print(1)"}, false, true},
		{"empty code", code, protocol.Response{Language: "python", Source: " \n "}, false, true},
		{"choice for code", code, protocol.Response{Choice: intp(1)}, false, true},
		{"code for short", short, protocol.Response{Language: "python", Source: "print(1)"}, false, true},
		{"right choice", choice, protocol.Response{Choice: intp(2)}, true, false},
		{"wrong choice", choice, protocol.Response{Choice: intp(0)}, false, false},
		{"choice out of range", choice, protocol.Response{Choice: intp(3)}, false, true},
		{"negative choice", choice, protocol.Response{Choice: intp(-1)}, false, true},
		{"text for choice", choice, protocol.Response{Text: "4"}, false, true},
		{"no choice", choice, protocol.Response{}, false, true},
		{"exact text", short, protocol.Response{Text: "tcp"}, true, false},
		{"case and spaces", short, protocol.Response{Text: "  transmission   CONTROL\tprotocol "}, true, false},
		{"wrong text", short, protocol.Response{Text: "udp"}, false, false},
		{"empty text", short, protocol.Response{Text: "   "}, false, true},
		{"choice for short", short, protocol.Response{Choice: intp(0)}, false, true},
		{"text too long", short, protocol.Response{Text: strings.Repeat("a", MaxAnswerText+1)}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.q.Mark(tt.s)
			if (err != nil) != tt.invalid {
				t.Fatalf("got error %v, want invalid %v", err, tt.invalid)
			}
			if err != nil && ErrorCode(err) != protocol.Invalid {
				t.Fatalf("got code %s, want invalid", ErrorCode(err))
			}
			if got != tt.correct {
				t.Fatalf("got correct %v, want %v", got, tt.correct)
			}
		})
	}
}

func TestJudgeCodeTooLarge(t *testing.T) {
	_, err := codeQuestion().Mark(protocol.Response{Language: "python", Source: strings.Repeat("#", MaxCode+1)})
	if ErrorCode(err) != protocol.TooLarge {
		t.Fatalf("code of %d bytes: got %v, want too_large", MaxCode+1, err)
	}
	if _, err := codeQuestion().Mark(protocol.Response{Language: "python", Source: "print(1)" + strings.Repeat("#", MaxCode-8)}); err != nil {
		t.Fatalf("code of exactly %d bytes: %v", MaxCode, err)
	}
}

func TestAward(t *testing.T) {
	firstCome := Scoring{Winners: []int{100, 60, 30}}
	speed := Scoring{Speed: true, Points: 1000, TimeLimit: 20 * time.Second}
	tests := []struct {
		name string
		s    Scoring
		rank int
		t    time.Duration
		want int
	}{
		{"first", firstCome, 1, 5 * time.Second, 100},
		{"second", firstCome, 2, 0, 60},
		{"third", firstCome, 3, 0, 30},
		{"fourth scores nothing", firstCome, 4, 0, 0},
		{"speed under half a second is full", speed, 9, 499 * time.Millisecond, 1000},
		{"speed at half a second", speed, 1, 500 * time.Millisecond, 988}, // 1000·(1 − 0.025/2) = 987.5 → 988
		{"speed at 5 s", speed, 1, 5 * time.Second, 875},
		{"speed at T", speed, 1, 20 * time.Second, 500},
		{"speed after T floors at half", speed, 1, time.Minute, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Award(tt.rank, tt.t); got != tt.want {
				t.Fatalf("got %d points, want %d", got, tt.want)
			}
		})
	}
}

func TestScoringForDefaultsWinnersToPoints(t *testing.T) {
	q := validQuiz()
	q.Questions[0].Points = 250
	if err := q.Normalize(); err != nil {
		t.Fatal(err)
	}
	if got := ScoringFor(q, 1).Winners; len(got) != 1 || got[0] != 250 {
		t.Fatalf("got winners %v, want [250]", got)
	}
}

func TestRankCompensated(t *testing.T) {
	us := func(v int64) *int64 { return &v }
	answers := []protocol.Answer{
		{PlayerID: "far", Correct: true, ArrivalRank: 1, ReactionUs: us(300_000)},
		{PlayerID: "wrong", Correct: false, ArrivalRank: 2, ReactionUs: us(10)},
		{PlayerID: "near", Correct: true, ArrivalRank: 3, ReactionUs: us(200_000)},
		{PlayerID: "tie", Correct: true, ArrivalRank: 4, ReactionUs: us(200_000)},
	}
	got := Rank(answers, Scoring{Winners: []int{100, 60}, Deferred: true})
	want := []struct {
		id     string
		rank   int
		points int
	}{{"near", 1, 100}, {"tie", 2, 60}, {"far", 3, 0}, {"wrong", 0, 0}}
	for i, w := range want {
		if got[i].PlayerID != w.id || got[i].Rank != w.rank || got[i].Points != w.points || got[i].Pending {
			t.Errorf("place %d: got %s rank %d points %d pending %v, want %s rank %d points %d",
				i, got[i].PlayerID, got[i].Rank, got[i].Points, got[i].Pending, w.id, w.rank, w.points)
		}
	}
}

// TestMaxCodeFitsAFrame: an answer frame with code of MaxCode bytes, each escaped in JSON
// at its longest (\u00XX), is not over protocol.MaxFrame, so over-long code is refused with
// too_large, never by closing the socket.
func TestMaxCodeFitsAFrame(t *testing.T) {
	frame := `{"type":"answer","n":200,"language":"python","code":"` + strings.Repeat(`\u0001`, MaxCode) + `"}`
	if len(frame) > protocol.MaxFrame {
		t.Errorf("the longest code answer frame: got %d bytes, want at most protocol.MaxFrame %d", len(frame), protocol.MaxFrame)
	}
}
