package main

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserJudging bounds the wait for a verdict in the browser: a compilation in the real
// sandbox, on a loaded machine, under the race detector.
const browserJudging = 60 * time.Second

// Programs the student types for codeQuiz. The right one is typed with a Tab for its
// indentation and relies on the editor keeping it on the next line: Python refuses
// anything else.
const (
	browserCWrong = "#include <stdio.h>\nint main(void) { long a, b; scanf(\"%ld %ld\", &a, &b); printf(\"%ld\\n\", a - b); return 0; }\n"
	browserPyKeys = "import sys\nfor line in sys.stdin:\n\ta, b = map(int, line.split())\nprint(a + b)\n"
	// what the editor holds once browserPyKeys is typed: Tab gave 4 spaces, each Enter the
	// indentation of the line it ended
	browserPyRight = "import sys\nfor line in sys.stdin:\n    a, b = map(int, line.split())\n    print(a + b)\n    "
)

// TestBrowserCodeQuestion drives a code question through the real pages in headless
// Chromium, judged in the real sandbox: a host opens a room made through the API, a student
// picks a language and submits a wrong program (WA shows, with its message), then a right one
// in another language (AC and rank 1 show), and after a reload still sees both verdicts; the
// host's list shows each submission with its verdict and rank.
func TestBrowserCodeQuestion(t *testing.T) {
	t.Parallel()
	mustSandbox(t)
	s := MustStartServer(t, nil)
	code, hostToken := s.MustRoom(t, codeQuiz)
	b := newBrowser(t)

	b.step("host opens the room")
	host := b.hostPage("host", s.URL, code, hostToken)
	host.checkEqual("#questions", jsQuestions, "1. Print a+b.")
	host.checkEqual("question kind", `document.querySelector('#questions tbody tr').cells[1].textContent`, "code")
	host.checkEqual("code question detail", jsText("#questions .code-langs"),
		"Python 3, C, C++ · 2 tests · per test 1000 ms CPU, 64 MB · checker tokens")

	// The quiz editor's JSON holds the code question whole, and saves it back unchanged.
	host.do("click Edit quiz", chromedp.Click(chromedp.CSS("#edit-quiz")), chromedp.WaitVisible(chromedp.CSS("#edit-json")))
	host.checkEqual("the code question in #edit-json", `(() => {
  const q = JSON.parse(document.getElementById('edit-json').value).questions[0];
  return [q.kind, q.languages.join(','), q.tests.length, q.tests[1].out, q.timeLimitMs, q.memoryLimitMB, q.checker].join('|');
})()`, "code|python,c,cpp|2|42\n|1000|64|tokens")
	host.do("save it", chromedp.Click(chromedp.CSS("#save-quiz")))
	host.waitEqual("#edit-status", jsText("#edit-status"), "saved (version 1)")
	host.do("close the editor", chromedp.Click(chromedp.CSS("#cancel-edit")))

	b.step("a student joins")
	ada := b.open("ada", s.URL+"/?code="+code)
	ada.do("join",
		chromedp.SendKeys(chromedp.CSS("#name"), "ada"),
		chromedp.Click(chromedp.CSS("#join")),
		chromedp.WaitVisible(chromedp.CSS("#game")),
	)
	ada.waitEqual("#status", jsText("#status"), "connected")
	host.waitEqual("host's player count", jsText("#player-count"), "1")

	b.step("host opens question 1")
	host.do("click Open", chromedp.Click(chromedp.CSS(`button.open[data-n="1"]`)))
	ada.waitEqual("#question", jsText("#question"), "1. Print a+b.")
	ada.do("the editor shows", chromedp.WaitVisible(chromedp.CSS("#code-editor")))
	ada.checkEqual("languages", `[...document.querySelectorAll('#language option')].map((o) => o.value + '=' + o.textContent).join(',')`,
		"python=Python 3,c=C,cpp=C++")
	ada.checkEqual("#limits", jsText("#limits"), "Per test: 1 s of CPU time, 64 MB of memory")
	ada.checkEqual("the editor's label", `document.getElementById('code-editor').labels[0].textContent.trim()`, "Your program")
	ada.checkEqual("Submit before the start", jsDisabled("#submit-code"), "true")

	b.step("host starts question 1")
	host.do("click Start", chromedp.Click(chromedp.CSS(`button.start[data-n="1"]`)))
	ada.waitEqual("Submit once live", jsDisabled("#submit-code"), "false")

	b.step("a wrong program in C")
	ada.checkEqual("pick C", jsPick("#language", "c"), "c")
	ada.do("type and submit",
		chromedp.SendKeys(chromedp.CSS("#code-editor"), browserCWrong),
		chromedp.Click(chromedp.CSS("#submit-code")),
	)
	ada.checkEqual("the editor holds the C program", `document.getElementById('code-editor').value`, browserCWrong)
	// number | language | verdict | tests passed | message | rank
	ada.waitWithin(browserJudging, "the WA verdict", jsSubmissions, "WA with its message",
		regexp.MustCompile(`^1\|C\|WA\|0/2 tests passed\|test 1: .*\|$`).MatchString)
	ada.checkMatch("the WA's figures", jsText(`#submissions li[data-submission="1"] .sub-stats`),
		regexp.MustCompile(`^0/2 tests passed · \d+ ms · \d+(\.\d)? [KM]B$`))
	ada.checkEqual("#result after WA", jsText("#result"), "")
	ada.waitEqual("Submit after WA", jsDisabled("#submit-code"), "false")

	b.step("a right program in Python")
	ada.checkEqual("pick Python", jsPick("#language", "python"), "python")
	ada.checkEqual("clear the editor", `(() => {
  const e = document.getElementById('code-editor');
  e.select();
  document.execCommand('delete');
  return e.value;
})()`, "")
	ada.do("type with Tab and Enter", chromedp.SendKeys(chromedp.CSS("#code-editor"), browserPyKeys))
	ada.checkEqual("the editor indents", `document.getElementById('code-editor').value`, browserPyRight)
	ada.do("submit", chromedp.Click(chromedp.CSS("#submit-code")))
	ada.waitWithin(browserJudging, "the AC verdict and rank", jsSubmissions, "AC ranked 1, above the WA",
		regexp.MustCompile(`^2\|Python 3\|AC\|2/2 tests passed\|\|rank 1 · \+300 points\n1\|C\|WA\|0/2 tests passed\|test 1: .*\|$`).MatchString)
	ada.waitEqual("#result after AC", jsText("#result"), "Accepted! Rank 1 · +300 points")
	ada.checkEqual("#score", jsText("#score"), "300")
	ada.checkEqual("Submit after AC", jsDisabled("#submit-code"), "true")
	verdicts := evalOn[string](ada, "the submissions", jsSubmissions)

	b.step("host sees the submissions")
	// rank | name | language | verdict | points | submission
	host.waitEqual("#answers", jsCodeAnswers, "1|ada|Python 3|AC|300|2\n–|ada|C|WA|0|1")
	host.checkEqual("the right program", `document.querySelector('#answers tr[data-submission="2"] pre.code').textContent`, browserPyRight)
	host.checkMatch("the WA's message", jsText(`#answers tr[data-submission="1"] td:nth-child(4)`),
		regexp.MustCompile(`^WA\s*0/2 tests passed · \d+ ms · .*B\s*test 1: `))

	b.step("the student reloads and sees the verdicts again")
	ada.do("reload", chromedp.Reload())
	ada.waitEqual("#status", jsText("#status"), "connected")
	ada.waitEqual("#submissions", jsSubmissions, verdicts)
	ada.checkEqual("#result", jsText("#result"), "Accepted! Rank 1 · +300 points")
	ada.checkEqual("#score", jsText("#score"), "300")
	ada.checkEqual("the editor keeps the program", `document.getElementById('code-editor').value`, browserPyRight)
	ada.checkEqual("the language", `document.getElementById('language').value`, "python")
	ada.checkEqual("Submit after the reload", jsDisabled("#submit-code"), "true")

	b.step("without the page's draft (another device), the server's welcome rebuilds the list")
	evalOn[bool](ada, "forget the draft", `localStorage.removeItem('bulb.draft') === undefined`)
	ada.do("reload", chromedp.Reload())
	ada.waitEqual("#status", jsText("#status"), "connected")
	ada.waitEqual("#submissions", jsSubmissions, verdicts)

	b.step("host closes question 1")
	host.do("click Close", chromedp.Click(chromedp.CSS(`button.close[data-n="1"]`)))
	ada.waitEqual("#leaderboard", jsRows("#leaderboard", 0, 1, 2), "1|ada|300")
	host.waitEqual("#answers after the close", jsCodeAnswers, "1|ada|Python 3|AC|300|2\n–|ada|C|WA|0|1")
	var answers struct {
		Answers []struct {
			Name, PlayerID string
			Rank, Points   int
		}
	}
	s.mustCall(t, http.StatusOK, "GET", "/api/rooms/"+code+"/questions/1/answers", hostToken, nil, &answers)
	if a := answers.Answers; len(a) != 2 || a[0].Rank != 1 || a[0].Points != 300 || a[1].Rank != 0 {
		t.Fatalf("answers: got %+v, want ada's AC ranked 1 with 300 points, then her WA", a)
	}
	b.step("")
}

// checkMatch checks, without waiting, that the expression matches re.
func (p *tab) checkMatch(what, expr string, re *regexp.Regexp) {
	p.b.t.Helper()
	if got := evalOn[string](p, what, expr); !re.MatchString(got) {
		p.fatalf("%s: got %q, want a match of %s", what, got, re)
	}
}

// jsDisabled gives "true" or "false": whether the control sel is disabled.
func jsDisabled(sel string) string {
	return `String(document.querySelector(` + jsString(sel) + `).disabled)`
}

// jsPick chooses value in the select sel as a person would (the page hears a change event),
// and gives the select's value.
func jsPick(sel, value string) string {
	return `(() => { const s = document.querySelector(` + jsString(sel) + `); s.value = ` + jsString(value) +
		`; s.dispatchEvent(new Event('change', { bubbles: true })); return s.value; })()`
}

// jsSubmissions gives the student's submissions, one a line, newest first, as
// number|language|verdict|tests passed|message|rank.
const jsSubmissions = `[...document.querySelectorAll('#submissions li')].map((li) => {
  const t = (sel) => li.querySelector(sel)?.textContent.trim() ?? '';
  return [li.dataset.submission, t('.sub-lang'), t('.verdict'), t('.sub-stats').split(' · ')[0], t('.sub-message'), t('.sub-rank')].join('|');
}).join('\n')`

// jsCodeAnswers gives the host's submissions, one a line, as rank|name|language|verdict|points|submission.
const jsCodeAnswers = `[...document.querySelectorAll('#answers tbody tr')].map((r) => {
  const t = (i, sel) => (sel ? r.cells[i].querySelector(sel) : r.cells[i])?.textContent.trim() ?? '';
  return [t(0), t(1), t(2, '.lang'), t(3, '.verdict'), t(4), t(6)].join('|');
}).join('\n')`
