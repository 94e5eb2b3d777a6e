package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/bulbquiz/bulb/internal/testenv"
)

// browserQuiz has one choice question whose right answer is choice 1 ("Transport").
const browserQuiz = `{"title":"Browser quiz","ranking":"first-come","winners":[100,60],"timing":"arrival",` +
	`"questions":[{"kind":"choice","text":"Which layer is TCP?","choices":["Network","Transport"],"answer":1}]}`

// TestBrowserQuiz drives the real pages in headless Chromium: a host creates a room and runs
// a question, two students (each in its own browser context, so with its own localStorage)
// join and answer, the fairness dashboard shows the start, and a reload keeps a student's seat.
func TestBrowserQuiz(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	b := newBrowser(t)

	b.step("host creates the room")
	host := b.open("host", s.URL+"/host")
	host.do("fill the form",
		chromedp.SendKeys(chromedp.CSS("#admin-token"), s.Admin),
		chromedp.SetValue(chromedp.CSS("#quiz-json"), browserQuiz),
		chromedp.Click(chromedp.CSS("#create")),
		chromedp.WaitVisible(chromedp.CSS("#room")),
	)
	code := host.waitMatch("#room-code", jsText("#room-code"), regexp.MustCompile(`^\d{6}$`))
	host.waitEqual("#status", jsText("#status"), "connected")

	b.step("the policy blocks an injected script and style")
	host.checkEqual("an injected inline script and style", `(() => {
  const s = document.createElement('script');
  s.textContent = 'window.injected = true';
  document.head.append(s);
  const st = document.createElement('style');
  st.textContent = 'body { display: none }';
  document.head.append(st);
  const ran = window.injected === true, styled = getComputedStyle(document.body).display === 'none';
  s.remove();
  st.remove();
  return 'script ran: ' + ran + ', style applied: ' + styled;
})()`, "script ran: false, style applied: false")
	host.waitMatch("the violations recorded", jsViolations, regexp.MustCompile(`(?s)^script-src-elem blocked inline .*\nstyle-src-elem blocked inline `))
	host.do("forget them", chromedp.Evaluate[chromedp.Void](`window.bulbViolations.length = 0`))

	b.step("students join")
	alice := b.open("alice", s.URL+"/")
	bob := b.open("bob", s.URL+"/")
	for _, p := range []*tab{alice, bob} {
		p.do("fill the join form",
			chromedp.SendKeys(chromedp.CSS("#code"), code),
			chromedp.SendKeys(chromedp.CSS("#name"), p.name),
			chromedp.Click(chromedp.CSS("#join")),
			chromedp.WaitVisible(chromedp.CSS("#game")),
		)
	}
	for _, p := range []*tab{alice, bob} {
		p.waitEqual("#status", jsText("#status"), "connected")
		p.waitEqual("#me", jsText("#me"), p.name)
	}
	// Each tab must have its own localStorage: a shared one would hold bob's seat in both.
	for _, p := range []*tab{host, alice, bob} {
		want := p.name
		if p == host {
			want = "<none>"
		}
		p.checkEqual("localStorage seat", `JSON.parse(localStorage.getItem('bulb.player'))?.name ?? '<none>'`, want)
	}
	host.waitEqual("host's player count", jsText("#player-count"), "2")

	b.step("host opens question 1")
	host.do("click Open", chromedp.Click(chromedp.CSS(`button.open[data-n="1"]`)))
	for _, p := range []*tab{alice, bob} {
		p.waitEqual("#question", jsText("#question"), "1. Which layer is TCP?")
		p.checkEqual("bulb and choices", jsStudentState, "data-lit=false lit-class=false choices=disabled,disabled")
	}
	host.waitEqual("#phase", jsText("#phase"), "open · question 1")

	b.step("host starts question 1")
	host.do("click Start", chromedp.Click(chromedp.CSS(`button.start[data-n="1"]`)))
	for _, p := range []*tab{alice, bob} {
		p.do("wait for the bulb", chromedp.WaitVisible(chromedp.CSS("#bulb.lit")))
		p.waitEqual("bulb and choices", jsStudentState, "data-lit=true lit-class=true choices=enabled,enabled")
	}
	host.waitMatch("#notice", jsText("#notice"), regexp.MustCompile(`^started: seq \d+, sent to 2$`))
	time.Sleep(humanReaction) // a person reacts: a click within 100 ms of the bulb is a false start

	b.step("alice then bob answer")
	const right = `button.choice[data-choice="1"]`
	alice.do("click the right choice", chromedp.Click(chromedp.CSS(right)))
	alice.waitEqual("#result", jsText("#result"), "Correct! Rank 1 · +100 points")
	alice.checkEqual("#score", jsText("#score"), "100")
	bob.do("click the right choice", chromedp.Click(chromedp.CSS(right)))
	bob.waitEqual("#result", jsText("#result"), "Correct! Rank 2 · +60 points")
	bob.checkEqual("#score", jsText("#score"), "60")
	for _, p := range []*tab{alice, bob} {
		p.checkEqual("choices after answering", jsStudentState, "data-lit=true lit-class=true choices=disabled,disabled")
	}

	b.step("host closes question 1")
	host.do("click Close", chromedp.Click(chromedp.CSS(`button.close[data-n="1"]`)))
	for _, p := range []*tab{alice, bob} {
		p.waitEqual("#leaderboard", jsRows("#leaderboard", 0, 1, 2), "1|alice|100\n2|bob|60")
		p.waitEqual("bulb after close", jsStudentState, "data-lit=false lit-class=false choices=disabled,disabled")
	}
	// rank | name | answer | ✔ | points | arrival rank
	host.waitEqual("#answers", jsRows("#answers", 0, 1, 2, 3, 4, 6), "1|alice|B Transport|✔|100|1\n2|bob|B Transport|✔|60|2")
	host.waitEqual("host's #leaderboard", jsRows("#leaderboard", 0, 1, 2), "1|alice|100\n2|bob|60")
	host.waitEqual("#phase", jsText("#phase"), "closed · question 1")

	// The HTTP API agrees, with the host token the page keeps in its localStorage.
	hostToken := evalOn[string](host, "host token", `JSON.parse(localStorage.getItem('bulb.host')).hostToken`)
	var lb struct {
		Entries []struct {
			Name        string
			Score, Rank int
		}
	}
	s.mustCall(t, http.StatusOK, "GET", "/api/rooms/"+code+"/leaderboard", hostToken, nil, &lb)
	if got, want := fmt.Sprint(lb.Entries), "[{alice 100 1} {bob 60 2}]"; got != want {
		t.Fatalf("GET leaderboard: got %s, want %s", got, want)
	}

	b.step("admin page shows the start")
	admin := b.open("admin", s.URL+"/admin")
	admin.do("fill the form",
		chromedp.SendKeys(chromedp.CSS("#admin-token"), s.Admin),
		chromedp.SendKeys(chromedp.CSS("#room-code"), code),
		chromedp.Click(chromedp.CSS("#refresh")),
	)
	// question | recipients | acked | dropped | nodes
	// question, recipients, reported (seen), dropped, nodes
	admin.waitEqual("#starts", jsRows("#starts", 1, 4, 5, 6, 7), "1|2|2|0|1")
	admin.waitMatch("the start's verdict", jsRows("#starts", 3), regexp.MustCompile(`^(Fair|Nearly fair|Not fair): all 2 students saw the bulb within \d+(\.\d)? ms of each other\.$`))
	// One node, so no bus: recipients | busUs
	admin.waitEqual("#start-nodes", jsRows("#start-nodes", 1, 2), "2|0")
	node := evalOn[string](admin, "the node", `document.querySelector('#start-nodes tbody td').textContent`)
	admin.checkEqual("nodes of the players", jsRows("#start-players", 0), node+"\n"+node)
	admin.waitEqual("#bias names", jsRows("#bias", 0)+`.split('\n').sort().join(',')`, "alice,bob")
	admin.checkEqual("#error", jsText("#error"), "")

	b.step("bob reloads and keeps his seat")
	bobID := evalOn[string](bob, "bob's playerId", `JSON.parse(localStorage.getItem('bulb.player')).playerId`)
	bob.do("reload", chromedp.Reload())
	bob.waitEqual("#status", jsText("#status"), "connected")
	bob.checkEqual("#join-form hidden", `String(document.getElementById('join-form').hidden)`, "true")
	bob.waitEqual("#me", jsText("#me"), "bob")
	bob.waitEqual("#score", jsText("#score"), "60")
	bob.waitEqual("#leaderboard", jsRows("#leaderboard", 0, 1, 2), "1|alice|100\n2|bob|60")
	bob.checkEqual("bob's playerId", `JSON.parse(localStorage.getItem('bulb.player')).playerId`, bobID)
	var room struct{ Players []struct{ Name string } }
	s.mustCall(t, http.StatusOK, "GET", "/api/rooms/"+code, hostToken, nil, &room)
	if got, want := fmt.Sprint(room.Players), "[{alice} {bob}]"; got != want {
		t.Fatalf("players after bob's reload: got %s, want %s", got, want)
	}

	b.step("host adds a question through the quiz editor")
	host.do("click Edit quiz", chromedp.Click(chromedp.CSS("#edit-quiz")), chromedp.WaitVisible(chromedp.CSS("#edit-json")))
	host.waitEqual("#edit-version", jsText("#edit-version"), "version 0")
	var edited map[string]any
	if err := json.Unmarshal([]byte(evalOn[string](host, "#edit-json", `document.getElementById('edit-json').value`)), &edited); err != nil {
		t.Fatalf("#edit-json: %v", err)
	}
	qs, _ := edited["questions"].([]any)
	if got, want := fmt.Sprint(edited["title"], " ", len(qs), " ", qs[0]), "Browser quiz 1 "+
		"map[answer:1 choices:[Network Transport] kind:choice points:100 text:Which layer is TCP? timeLimitMs:20000]"; got != want {
		t.Fatalf("#edit-json: got %s, want %s", got, want)
	}
	edited["questions"] = append(qs, map[string]any{"kind": "short", "text": "What does UDP stand for?", "answers": []string{"user datagram protocol"}})
	text, _ := json.MarshalIndent(edited, "", "  ")
	host.do("add a question and save",
		chromedp.SetValue(chromedp.CSS("#edit-json"), string(text)),
		chromedp.Click(chromedp.CSS("#save-quiz")),
	)
	host.waitEqual("#edit-status", jsText("#edit-status"), "saved (version 1)")
	host.waitEqual("#questions", jsQuestions, "1. Which layer is TCP?\n2. What does UDP stand for?")

	// Someone else edits meanwhile: the page's save is refused, and it offers to reload.
	edited["title"] = "Browser quiz, edited elsewhere"
	s.mustCall(t, http.StatusOK, "PUT", "/api/rooms/"+code+"/quiz", hostToken, map[string]any{"quizVersion": 1, "quiz": edited}, nil)
	host.do("save again", chromedp.Click(chromedp.CSS("#save-quiz")))
	host.waitMatch("#edit-status", jsText("#edit-status"), regexp.MustCompile(`edited meanwhile.*reload`))
	host.do("reload the quiz", chromedp.Click(chromedp.CSS("#reload-quiz")))
	host.waitEqual("#edit-version", jsText("#edit-version"), "version 2")
	host.checkEqual("#edit-json title", `JSON.parse(document.getElementById('edit-json').value).title`, "Browser quiz, edited elsewhere")
	b.step("")
}

// ---- the browser harness ------------------------------------------------------------

// stepTimeout bounds each browser action and each wait, so that a hang names its step.
const stepTimeout = 5 * time.Second

// browser is one headless Chromium for a test; each tab gets its own browser context.
type browser struct {
	t     *testing.T
	ctx   context.Context // the browser's first tab: the parent of every tab
	tabs  []*tab
	cur   string
	began time.Time
}

// tab is one page in its own browser context, like a separate browser profile.
type tab struct {
	b      *browser
	name   string
	ctx    context.Context
	cancel context.CancelFunc // closes the tab and disposes of its browser context

	mu  sync.Mutex
	log []string // console messages and uncaught exceptions, shown on failure
}

// newBrowser starts Chromium, or skips when it is not installed. When the test ends it takes
// a screenshot of every tab if the test failed, then closes the tabs and the browser.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := testenv.Program(t, "chromium", "chromium-browser", "google-chrome")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	b := &browser{t: t, ctx: ctx}
	t.ArtifactDir() // first: its cleanup then runs after the screenshots of a failure
	t.Cleanup(func() {
		b.closeTabs()
		cancelBrowser() // stops Chromium
		cancelAlloc()
	})

	if err := firstRun(ctx, 20*time.Second); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return b
}

// closeTabs ends a browser's part of a test: it checks the policy (or, if the test
// failed, logs the consoles and takes screenshots), then closes its tabs.
func (b *browser) closeTabs() {
	if !b.t.Failed() {
		b.checkPolicy()
	}
	if b.t.Failed() {
		b.dump()
	}
	for _, p := range b.tabs {
		p.cancel()
	}
}

// firstRun makes the browser or the tab of a chromedp context. That first Run binds the
// browser or tab to the context it is given, which must therefore carry no timeout (or the
// tab dies with it): the timeout is enforced here instead.
func firstRun(ctx context.Context, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("not ready within %v", timeout)
	}
}

// step names the part of the test that runs now, and logs how long the previous one took.
func (b *browser) step(name string) {
	if b.cur != "" {
		b.t.Logf("step %q took %v", b.cur, time.Since(b.began).Round(time.Millisecond))
	}
	b.cur, b.began = name, time.Now()
}

// open loads url in a new tab of its own browser context; scripts run in every page of the
// tab before its own.
func (b *browser) open(name, url string, scripts ...string) *tab {
	b.t.Helper()
	p := &tab{b: b, name: name}
	// The browser's cleanup closes the tab, after the screenshots of a failure.
	p.ctx, p.cancel = chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(p.listen))
	b.tabs = append(b.tabs, p)
	if err := firstRun(p.ctx, 10*time.Second); err != nil {
		p.fatalf("new tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	for _, src := range append([]string{jsRecordViolations}, scripts...) {
		if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src}); err != nil {
			p.fatalf("a script before the page's: %v", err)
		}
	}
	p.do("open "+url, chromedp.Navigate(url))
	return p
}

// jsRecordViolations runs in every page before its own scripts: it keeps what the
// Content-Security-Policy blocked, which checkPolicy reads.
const jsRecordViolations = `window.bulbViolations = [];
document.addEventListener('securitypolicyviolation', (e) =>
  window.bulbViolations.push(e.effectiveDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber));`

// jsViolations gives what the Content-Security-Policy blocked in the page, one a line.
const jsViolations = `(window.bulbViolations ?? ['no record: the page was not loaded']).join('\n')`

// checkPolicy fails the test if the Content-Security-Policy blocked anything in a tab: the
// pages must work under it, and they cannot if it blocks what they load or do.
func (b *browser) checkPolicy() {
	for _, p := range b.tabs {
		ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](jsViolations))
		cancel()
		if err != nil || got != "" {
			b.t.Errorf("%s: Content-Security-Policy violations: got %q (%v), want none", p.name, got, err)
		}
	}
}

// dump logs each tab's console and takes its screenshot, for a failed test.
func (b *browser) dump() {
	// A temporary directory, like t.TempDir, unless go test runs with -artifacts, which keeps it.
	dir := b.t.ArtifactDir()
	for _, p := range b.tabs {
		p.mu.Lock()
		for _, line := range p.log {
			b.t.Logf("%s console: %s", p.name, line)
		}
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			b.t.Logf("%s: screenshot: %v", p.name, err)
			continue
		}
		file := filepath.Join(dir, p.name+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			b.t.Logf("%s: screenshot: %v", p.name, err)
			continue
		}
		b.t.Logf("%s: screenshot in %s (go test -artifacts keeps it)", p.name, file)
	}
}

// listen keeps the tab's console messages and uncaught exceptions.
func (p *tab) listen(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		args := make([]string, 0, len(ev.Args))
		for _, a := range ev.Args {
			if a.Value != nil {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
		}
		line = fmt.Sprintf("console.%s %s", ev.Type, strings.Join(args, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		line = d.Text // "Uncaught"
		if d.Exception != nil {
			line += " " + d.Exception.Description
		}
	default:
		return
	}
	p.mu.Lock()
	p.log = append(p.log, line)
	p.mu.Unlock()
}

// fatalf fails the test, naming the step and the tab.
func (p *tab) fatalf(format string, args ...any) {
	p.b.t.Helper()
	p.b.t.Fatalf("step %q, %s: %s", p.b.cur, p.name, fmt.Sprintf(format, args...))
}

// do runs browser actions within stepTimeout.
func (p *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	for i, a := range actions {
		if _, err := chromedp.Run(ctx, a); err != nil {
			p.fatalf("%s: action %d of %d: %v", what, i+1, len(actions), err)
		}
	}
}

// evalOn evaluates a JavaScript expression in the tab within stepTimeout.
func evalOn[T any](p *tab, what, expr string) T {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.fatalf("%s: evaluating %s: %v", what, expr, err)
	}
	return v
}

// wait polls a JavaScript expression that gives a string until ok accepts it, for at most
// stepTimeout, and returns it; it fails with the last value seen.
func (p *tab) wait(what, expr, want string, ok func(string) bool) string {
	p.b.t.Helper()
	return p.waitWithin(stepTimeout, what, expr, want, ok)
}

// waitWithin is wait for at most d, for what takes longer than a step, such as judging code.
func (p *tab) waitWithin(d time.Duration, what, expr, want string, ok func(string) bool) string {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	var got string
	var lastErr error
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err == nil && ok(v) {
			return v
		}
		if err == nil {
			got, lastErr = v, nil
		} else if ctx.Err() == nil {
			lastErr = err // e.g. the page is reloading: try again
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				p.fatalf("%s: no answer within %v: %v", what, d, lastErr)
			}
			p.fatalf("%s: got %q, want %s (waited %v)", what, got, want, d)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// waitEqual waits until the expression gives want.
func (p *tab) waitEqual(what, expr, want string) {
	p.b.t.Helper()
	p.wait(what, expr, fmt.Sprintf("%q", want), func(s string) bool { return s == want })
}

// waitMatch waits until the expression matches re, and returns its value.
func (p *tab) waitMatch(what, expr string, re *regexp.Regexp) string {
	p.b.t.Helper()
	return p.wait(what, expr, "a match of "+re.String(), re.MatchString)
}

// checkEqual checks, without waiting, that the expression gives want.
func (p *tab) checkEqual(what, expr, want string) {
	p.b.t.Helper()
	if got := evalOn[string](p, what, expr); got != want {
		p.fatalf("%s: got %q, want %q", what, got, want)
	}
}

// ---- JavaScript probes ---------------------------------------------------------------

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// jsText gives the trimmed text of the element sel, or "<no sel>".
func jsText(sel string) string {
	return fmt.Sprintf(`(document.querySelector(%[1]s)?.textContent.trim() ?? '<no ' + %[1]s + '>')`, jsString(sel))
}

// jsRows gives the body rows of the table sel, one a line, with the trimmed text of the
// cells at the given indexes joined by "|".
func jsRows(sel string, cells ...int) string {
	idx, _ := json.Marshal(cells)
	return fmt.Sprintf(`[...document.querySelectorAll(%s)].map((r) => %s.map((i) => r.cells[i]?.textContent.trim()).join('|')).join('\n')`,
		jsString(sel+" tbody tr"), idx)
}

// jsQuestions gives the host's questions, one a line, as "n. text".
const jsQuestions = `[...document.querySelectorAll('#questions tbody tr')]
  .map((r) => r.cells[0].textContent.trim() + '. ' + r.cells[2].firstChild.textContent.trim()).join('\n')`

// jsStudentState sums up the student's bulb and answer buttons.
const jsStudentState = `(() => {
  const b = document.getElementById('bulb');
  const cs = [...document.querySelectorAll('button.choice')].map((c) => (c.disabled ? 'disabled' : 'enabled'));
  return 'data-lit=' + b.dataset.lit + ' lit-class=' + b.classList.contains('lit') + ' choices=' + cs.join(',');
})()`
