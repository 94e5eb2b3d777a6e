package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/judge"
	"github.com/bulbquiz/bulb/protocol"
	"github.com/bulbquiz/bulb/quiz"
)

// TestCodeJudge: the quiz's judge checks languages and checkers against the judge
// package's, turns full jobs into busy with their length, and makes jobs that carry the
// question's tests (which of them are samples) and limits and name their submission.
func TestCodeJudge(t *testing.T) {
	t.Parallel()
	q := quiz.Question{Kind: quiz.KindCode, Text: "sum", Languages: []string{"python", "cpp"}, TimeLimitMs: 1500, MemoryLimitMB: 64,
		Checker: "float:1e-6", Tests: []quiz.CodeTest{{In: "1 2\n", Out: "3\n"}, {In: "2 2\n", Out: "4\n", Sample: true}}}
	jobs := judge.NewMemoryJobs(1)
	j := codeJudge{jobs: jobs}
	if err := j.Check(q); err != nil {
		t.Fatalf("Check of a valid question: %v", err)
	}
	for _, bad := range []func(*quiz.Question){
		func(q *quiz.Question) { q.Languages = []string{"python", "cobol"} },
		func(q *quiz.Question) { q.Checker = "float:x" },
	} {
		b := q
		bad(&b)
		if err := j.Check(b); quiz.ErrorCode(err) != protocol.Invalid {
			t.Errorf("Check(%v, %q): got %v, want invalid", b.Languages, b.Checker, err)
		}
	}
	job := quiz.CodeJob{Room: "123456", N: 2, Submission: 5, PlayerID: "p1", Language: "cpp", Source: "int main(){}", Question: q}
	if err := j.Submit(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	err := j.Submit(context.Background(), job)
	if quiz.ErrorCode(err) != protocol.Busy || !strings.Contains(err.Error(), "1 submissions waiting") {
		t.Errorf("Submit to full jobs: got %v, want busy with the length", err)
	}
	d, err := jobs.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := judge.Limits{CPU: 1500 * time.Millisecond, Wall: 4 * time.Second, Memory: 64 << 20}
	if g := d.Job; g.ID != (judge.JobID{Room: "123456", Question: 2, Submission: 5}) || g.Player != "p1" ||
		string(g.Program.Source) != "int main(){}" || g.Program.Language != "cpp" || len(g.Tests) != 2 ||
		string(g.Tests[1].Output) != "4\n" || g.Tests[0].Sample || !g.Tests[1].Sample || g.Options.Checker != "float:1e-6" || g.Options.Limits != want {
		t.Errorf("job %+v", g)
	}
}

// TestCodeJudgeDrop: a player who left takes the submissions still waiting with them: the
// judge's jobs keep only the others'.
func TestCodeJudgeDrop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := quiz.Question{Kind: quiz.KindCode, Text: "sum", Languages: []string{"python"}, TimeLimitMs: 1000, MemoryLimitMB: 64,
		Checker: "tokens", Tests: []quiz.CodeTest{{In: "1 2\n", Out: "3\n"}}}
	jobs := judge.NewMemoryJobs(0)
	j := codeJudge{jobs: jobs}
	for i, p := range []string{"gone", "stays", "gone", "gone"} {
		if err := j.Submit(ctx, quiz.CodeJob{Room: "123456", N: 1, Submission: i + 1, PlayerID: p, Language: "python", Source: "print(3)", Question: q}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Drop(ctx, "123456", "gone"); err != nil {
		t.Fatal(err)
	}
	d, err := jobs.Next(ctx)
	if err != nil || d.Job.Player != "stays" || d.Job.ID.Submission != 2 {
		t.Fatalf("the next job: got %+v, %v; want the one that stays", d.Job.ID, err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if d, err := jobs.Next(short); err == nil {
		t.Errorf("after it: got job %+v, want none: the one who left took theirs", d.Job.ID)
	}
}
