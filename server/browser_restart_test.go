package main

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// reconnecting is a page's status while its socket is down and it tries again.
var reconnecting = regexp.MustCompile(`^disconnected, reconnecting`)

// reconnectWithin bounds how long a page takes to reconnect once the server is back: its
// backoff is at most 5 s.
const reconnectWithin = 15 * time.Second

// restartQuiz has two choice questions the host closes by hand; B is right in both.
const restartQuiz = `{"title":"Restart","winners":[100,60],"questions":[
 {"kind":"choice","text":"Which layer is TCP?","choices":["Network","Transport"],"answer":1,"timeLimitMs":0},
 {"kind":"choice","text":"Port of HTTPS?","choices":["80","443"],"answer":1,"timeLimitMs":0}]}`

// TestBrowserRestart: a host page and two students in headless Chromium run a question;
// the server process is killed (kill -9) between questions and started again on the same
// data directory and address; the three pages recover by themselves, each showing what
// it showed before, and the quiz goes on with the scores kept.
//
// Not parallel: browser tests share two cores (see TestBrowserClassroom).
func TestBrowserRestart(t *testing.T) {
	dir, addr := t.TempDir(), freeLoopback(t)
	var env []string
	for k, v := range judgeEnv(t) {
		env = append(env, k+"="+v)
	}
	start := func() *node { return MustStartProcess(t, "bulb", env, nil, "--data", dir, "--addr", addr) }
	srv := start()
	code, hostToken := srv.MustRoom(t, restartQuiz)
	b := newBrowser(t)

	b.step("the host and two students")
	host := b.hostPage("host", srv.URL, code, hostToken)
	ada := b.join("ada", srv.URL, code, phone)
	bob := b.join("bob", srv.URL, code, laptop)
	students := []*tab{ada, bob}

	// question runs question n from the host page's main button: open, start, ada then
	// bob answer B (right), close; the standings say what the students have then.
	question := func(n int, text string, standings ...string) {
		t.Helper()
		host.waitEqual("the main button", jsText("#next"), fmt.Sprintf("Open question %d", n))
		host.do("open", chromedp.Click(chromedp.CSS("#next")))
		for _, p := range students {
			p.waitEqual("#question", jsText("#question"), text)
		}
		host.waitEqual("the main button", jsText("#next"), fmt.Sprintf("Start question %d", n))
		host.do("start", chromedp.Click(chromedp.CSS("#next")))
		for _, p := range students {
			p.do("wait for the bulb", chromedp.WaitVisible(chromedp.CSS("#bulb.lit")))
		}
		time.Sleep(humanReaction) // a person reacts: quicker is a false start
		for i, p := range students {
			p.do("answer B", chromedp.Click(chromedp.CSS(`button.choice[data-choice="1"]`)))
			p.waitEqual("#result", jsText("#result"), fmt.Sprintf("Correct! Rank %d · +%d points", i+1, []int{100, 60}[i]))
		}
		host.waitEqual("the main button", jsText("#next"), fmt.Sprintf("Close question %d", n))
		host.do("close", chromedp.Click(chromedp.CSS("#next")))
		for i, p := range students {
			p.waitEqual("#standing", jsText("#standing"), standings[i])
		}
	}

	b.step("question 1")
	question(1, "1. Which layer is TCP?", "You have 100 points: 1st of 2.", "You have 60 points: 2nd of 2.")
	host.waitEqual("the main button", jsText("#next"), "Open question 2")

	b.step("the server is killed, and started again")
	srv.kill(t)
	for _, p := range append([]*tab{host}, students...) {
		p.waitMatch("#status", jsText("#status"), reconnecting)
	}
	start() // stopped when the test ends
	for _, p := range append([]*tab{host}, students...) {
		p.waitWithin(reconnectWithin, "#status", jsText("#status"), "connected", func(v string) bool { return v == "connected" })
	}
	ada.waitEqual("ada's score, kept", jsText("#score"), "100")
	ada.waitEqual("ada's result, kept", jsText("#result"), "Correct! +100 points · 1st right answer")
	bob.waitEqual("bob's score, kept", jsText("#score"), "60")
	bob.waitEqual("the board, kept", jsRows("#leaderboard", 0, 1, 2), "1|ada|100\n2|bob|60")
	host.waitEqual("the host's board, kept", jsRows("#leaderboard", 0, 1, 2), "1|ada|100\n2|bob|60")

	b.step("the quiz goes on: question 2")
	question(2, "2. Port of HTTPS?", "You have 200 points: 1st of 2.", "You have 120 points: 2nd of 2.")
	b.step("")
}
