package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/proc"
	"github.com/bulbquiz/bulb/internal/redistest"
	"github.com/bulbquiz/bulb/internal/testenv"
	"github.com/bulbquiz/bulb/judge"
	"github.com/bulbquiz/bulb/quiz"
)

// mustSandbox skips a test that needs the real sandbox where it cannot run (see
// testenv.Program for the programs; the sandbox gives each box its own uid, so root).
func mustSandbox(tb testing.TB) {
	tb.Helper()
	testenv.Program(tb, "bwrap")
	testenv.Program(tb, "prlimit")
	if os.Geteuid() != 0 {
		tb.Skip("the sandbox gives each box its own uid, which needs root")
	}
}

// codeQuiz has one code question: print a+b, in Python, C or C++.
const codeQuiz = `{"winners":[300,200],"questions":[{"kind":"code","text":"Print a+b.",
 "languages":["python","c","cpp"],"tests":[{"in":"1 2\n","out":"3\n"},{"in":"40 2\n","out":"42\n"}],
 "timeLimitMs":1000,"memoryLimitMB":64,"checker":"tokens","points":300}]}`

// Programs for codeQuiz.
const (
	pyRight   = "a, b = map(int, input().split())\nprint(a + b)\n"
	pyWrong   = "a, b = map(int, input().split())\nprint(a - b)\n"
	pyLoop    = "while True:\n    pass\n"
	cRight    = "#include <stdio.h>\nint main(void){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",a+b);return 0;}\n"
	cppBroken = "int main() { return undefined_name; }\n"
)

// verdictFrame is a verdict frame as docs/protocol.md gives it.
type verdictFrame struct {
	Type       string `json:"type"`
	N          int    `json:"n"`
	Submission int    `json:"submission"`
	Verdict    string `json:"verdict"`
	Passed     int    `json:"passed"`
	Total      int    `json:"total"`
	TimeMs     int64  `json:"timeMs"`
	MemoryKB   int64  `json:"memoryKB"`
	Message    string `json:"message"`
}

// submit sends a code answer and returns the submission number of its result, failing
// the test unless the answer is accepted for judging.
func (w *wsClient) submit(tb testing.TB, language, code string) int {
	tb.Helper()
	w.send(tb, map[string]any{"type": "answer", "n": 1, "language": language, "code": code})
	r := w.reply(tb)
	var res struct {
		Accepted, Judging bool
		Submission        int
	}
	if err := json.Unmarshal(r.raw, &res); err != nil || r.Type != "result" || !res.Accepted || !res.Judging || res.Submission < 1 {
		tb.Fatalf("sent %s code: got %s, want a result accepted, judging, with a submission", language, r.raw)
	}
	return res.Submission
}

// verdict waits up to d for the verdict frame of submission sub.
func (w *wsClient) verdict(tb testing.TB, sub int, d time.Duration) verdictFrame {
	tb.Helper()
	var v verdictFrame
	w.awaitWithin(tb, fmt.Sprintf("verdict of submission %d", sub), d, func(f received) bool {
		if f.Type != "verdict" {
			return false
		}
		if err := json.Unmarshal(f.raw, &v); err != nil {
			tb.Fatal(err)
		}
		return v.Submission == sub
	})
	return v
}

// TestCodeAnswers: students answer a code question from their sockets, judged in the real
// sandbox by the in-process pool of the in-memory engine: each submission is accepted at
// once with its number, then gets its verdict (WA, AC, CE, TLE) with the figures; ranks
// follow arrival, not verdict order; bad submissions are refused up front.
func TestCodeAnswers(t *testing.T) {
	t.Parallel()
	mustSandbox(t)
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, codeQuiz)
	room := "/api/rooms/" + code
	dial := func(name string) *wsClient {
		_, token := s.MustJoin(t, code, name)
		c := s.MustDial(t, token)
		c.next(t, "welcome")
		return c
	}
	alice, bob, carol := dial("alice"), dial("bob"), dial("carol")
	hostWS := s.MustDial(t, host)
	s.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	q := alice.next(t, "question")
	if !strings.Contains(string(q.raw), `"languages":["python","c","cpp"]`) || strings.Contains(string(q.raw), "42") {
		t.Fatalf("question frame %s: want the languages and none of the tests", q.raw)
	}
	s.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, nil)
	for _, c := range []*wsClient{alice, bob, carol} {
		c.next(t, "start") // the bulb lit: answers count from now
	}

	// Refused up front, changing nothing: too big, unknown language, empty.
	for _, bad := range []struct{ language, code, want string }{
		{"python", "#" + strings.Repeat("x", quiz.MaxCode), "too_large"},
		{"rust", "fn main() {}", "invalid"},
		{"python", "   ", "invalid"},
	} {
		carol.send(t, map[string]any{"type": "answer", "n": 1, "language": bad.language, "code": bad.code})
		if r := carol.reply(t); r.Type != "error" || r.Code != bad.want {
			t.Fatalf("%s code of %d bytes: got %s, want error %s", bad.language, len(bad.code), r.raw, bad.want)
		}
	}

	a1 := alice.submit(t, "python", pyWrong)
	b1 := bob.submit(t, "c", cRight)
	a2 := alice.submit(t, "python", pyRight)
	c1 := carol.submit(t, "cpp", cppBroken)
	c2 := carol.submit(t, "python", pyLoop)
	// Each student numbers its own submissions: alice's second is her #2, whoever came between.
	if a1 != 1 || b1 != 1 || a2 != 2 || c1 != 1 || c2 != 2 {
		t.Fatalf("submission numbers %d %d %d %d %d, want 1 1 2 1 2: each student's own", a1, b1, a2, c1, c2)
	}
	const judging = 30 * time.Second
	for _, tt := range []struct {
		who     *wsClient
		sub     int
		verdict string
		passed  int
		message string
	}{
		{alice, a1, "WA", 0, "test 1"},
		{bob, b1, "AC", 2, ""},
		{alice, a2, "AC", 2, ""},
		{carol, c1, "CE", 0, "undefined_name"},
		{carol, c2, "TLE", 0, "time limit exceeded"}, // CPU, or the wall clock on a loaded machine
	} {
		v := tt.who.verdict(t, tt.sub, judging)
		if v.Verdict != tt.verdict || v.Passed != tt.passed || v.Total != 2 || !strings.Contains(v.Message, tt.message) {
			t.Errorf("submission %d: got %+v, want %s with %d of 2 passed and a message with %q", tt.sub, v, tt.verdict, tt.passed, tt.message)
		}
		if v.Verdict == "AC" && (v.MemoryKB <= 0 || v.TimeMs < 0) {
			t.Errorf("submission %d: AC without its figures: %+v", tt.sub, v)
		}
		if v.Verdict == "TLE" && strings.Contains(v.Message, "CPU") && v.TimeMs < 900 {
			t.Errorf("submission %d: TLE after %d ms of CPU, want about the limit of 1000", tt.sub, v.TimeMs)
		}
	}
	// bob's AC arrived before alice's: rank 1, whatever order the verdicts came in.
	for _, want := range []struct {
		who          *wsClient
		rank, points int
	}{{bob, 1, 300}, {alice, 2, 200}} {
		r := want.who.awaitWithin(t, "final result", judging, func(f received) bool { return f.Type == "result" && f.Rank > 0 })
		if r.Rank != want.rank || !strings.Contains(string(r.raw), fmt.Sprintf(`"points":%d`, want.points)) {
			t.Errorf("final result %s, want rank %d with %d points", r.raw, want.rank, want.points)
		}
	}
	bob.send(t, map[string]any{"type": "answer", "n": 1, "language": "c", "code": cRight})
	if r := bob.reply(t); r.Code != "already_answered" {
		t.Errorf("a submission after an accepted one: got %s, want already_answered", r.raw)
	}

	// The host's live list got every submission, then each again with its verdict.
	judged := map[int]string{}
	for len(judged) < 5 {
		f := hostWS.awaitWithin(t, "answered with a verdict", judging, func(f received) bool { return f.Type == "answered" })
		var a struct {
			ArrivalRank int
			Verdict     *struct{ Verdict string }
		}
		if err := json.Unmarshal(f.raw, &a); err != nil {
			t.Fatal(err)
		}
		if a.Verdict != nil {
			judged[a.ArrivalRank] = a.Verdict.Verdict
		}
	}
	if fmt.Sprint(judged) != "map[1:WA 2:AC 3:AC 4:CE 5:TLE]" {
		t.Errorf("host's list: %v", judged)
	}
	var list struct {
		Answers []struct {
			Name, PlayerID string
			Rank, Points   int
		}
	}
	s.mustCall(t, 200, "GET", room+"/questions/1/answers", host, nil, &list)
	if answers := list.Answers; len(answers) != 5 || answers[0].Name != "bob" || answers[0].Rank != 1 || answers[1].Name != "alice" || answers[1].Points != 200 {
		t.Errorf("answers: %+v, want bob rank 1 then alice rank 2 first", list.Answers)
	}
}

// TestCodeQuestionRefusedWithoutJudge: a quiz with a code question in an unknown
// language or with an unknown checker is refused with a clear error.
func TestCodeQuestionRefused(t *testing.T) {
	t.Parallel()
	mustSandbox(t)
	s := MustStartServer(t, nil)
	for _, tt := range []struct{ change, want string }{
		{`"languages":["cobol"]`, "unknown language"},
		{`"checker":"fuzzy"`, "checker"},
	} {
		q := strings.Replace(codeQuiz, `"languages":["python","c","cpp"]`, `"languages":["python"]`, 1)
		q = strings.Replace(q, `"checker":"tokens"`, `"checker":"tokens",`+tt.change, 1)
		q = strings.Replace(q, `"languages":["python"],`, "", strings.Count(tt.change, "languages"))
		var e apiError
		if code, raw := s.call(t, "POST", "/api/rooms", s.Admin, q, &e); code != 400 || !strings.Contains(e.Error.Message, tt.want) {
			t.Errorf("quiz with %s: got %d %s, want 400 naming the %s", tt.change, code, raw, tt.want)
		}
	}
}

// TestJudgeProcessKilled: two judge processes on one Redis share the host's one box; the
// one that judges a submission is killed mid-run. The kernel drops its lock on the box with
// its life, so the other takes the box over at once, cleans what the dead one left (its
// program, its file system), and judges the job once it has sat idle for claim-idle; the
// student gets exactly one verdict, on the server node's socket, and nothing is left of the
// box afterwards.
func TestJudgeProcessKilled(t *testing.T) {
	t.Parallel()
	mustSandbox(t)
	srv := redistest.Start(t)
	const claimIdle = 3 * time.Second
	judgeArgs := []string{"--role", "judge", "--boxes", "1", "--workers", "1", "--claim-idle", claimIdle.String()}
	server := MustStartNode(t, srv.URL(), "web", "--role", "server")
	judges := map[string]*node{
		"j1": MustStartNode(t, srv.URL(), "j1", judgeArgs...),
		"j2": MustStartNode(t, srv.URL(), "j2", judgeArgs...),
	}
	code, host := server.MustRoom(t, codeQuiz)
	room := "/api/rooms/" + code
	_, token := server.MustJoin(t, code, "ada")
	ada := server.MustDial(t, token)
	ada.next(t, "welcome")
	server.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	server.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, nil)
	ada.next(t, "start")

	// Sleeps 2 s (the wall limit is 2×1 s+1 s), then answers right.
	sub := ada.submit(t, "python", "import time\ntime.sleep(2)\n"+pyRight)

	env := judgeEnv(t)
	box := mustAtoi(t, env["BULB_BOX_BASE"])
	uid := judge.BaseUID + box
	var victim string
	for deadline := time.Now().Add(20 * time.Second); victim == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the program never ran in box %d", box)
		}
		for _, p := range proc.OfUID(uid) { // the box's first process is its judge's child
			for name, j := range judges {
				if p.PPID == j.cmd.Process.Pid {
					victim = name
				}
			}
		}
	}
	judges[victim].kill(t)
	killed := time.Now()
	t.Logf("killed %s while it judged in box %d", victim, box)

	v := ada.verdict(t, sub, claimIdle+30*time.Second)
	if v.Verdict != "AC" || v.Passed != 2 {
		t.Fatalf("verdict %+v, want AC", v)
	}
	t.Logf("verdict %s %v after the kill", v.Verdict, time.Since(killed))
	ada.awaitWithin(t, "final result", 5*time.Second, func(f received) bool { return f.Type == "result" && f.Rank == 1 })
	// exactly one verdict: nothing more comes
	select {
	case f := <-ada.frames:
		t.Errorf("after the verdict and result: got %s, want nothing more", f.raw)
	case <-time.After(2 * time.Second):
	}
	rdb := srv.Client(t)
	if n := rdb.XLen(context.Background(), quiz.DefaultRedisPrefix+"judge:{jobs}").Val(); n != 0 {
		t.Errorf("%d jobs left in the stream", n)
	}
	mustBoxLeftClean(t, env["BULB_BOX_ROOT"], box)
}

// mustBoxLeftClean checks that nothing is left of box id under root: no process of its
// uid, its directory empty and no mount point.
func mustBoxLeftClean(tb testing.TB, root string, id int) {
	tb.Helper()
	if procs := uidProcesses(judge.BaseUID + id); len(procs) != 0 {
		tb.Errorf("processes of box %d's uid left: %v", id, procs)
	}
	dir := filepath.Join(root, fmt.Sprintf("box-%d", id))
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		tb.Errorf("box %d's directory: %d entries, %v; want empty", id, len(entries), err)
	}
	if mounts, err := os.ReadFile("/proc/self/mountinfo"); err != nil || strings.Contains(string(mounts), " "+dir+" ") {
		tb.Errorf("box %d's directory is still a mount point (%v)", id, err)
	}
}

func mustAtoi(tb testing.TB, s string) int {
	tb.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// uidProcesses lists the pids of the live processes whose real uid is uid. Zombies are
// left out: a killed judge's orphans are reparented to this test process when it is a
// child subreaper (the in-process servers of other tests made it one), which does not
// reap them; they run nothing.
func uidProcesses(uid int) []int {
	var pids []int
	for _, p := range proc.OfUID(uid) {
		if !p.Zombie {
			pids = append(pids, p.PID)
		}
	}
	return pids
}
