package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/bulbquiz/bulb/internal/clocksync"
)

// jsSkewedClock makes a page's clocks (performance.now and Date.now) run offsetMs ahead of
// the machine's, and records, on the machine's own clock, when a start frame arrived and
// when the bulb lit: window.bulbTruth = {startAt, litAt}, ms since the epoch.
const jsSkewedClock = `(() => {
  const perfNow = performance.now.bind(performance);
  const dateNow = Date.now;
  const real = () => performance.timeOrigin + perfNow();
  performance.now = () => perfNow() + %[1]d;
  Date.now = () => dateNow() + %[1]d;
  window.bulbTruth = { startAt: null, litAt: null };
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        if (typeof e.data === 'string' && e.data.startsWith('{"type":"start"')) window.bulbTruth.startAt = real();
      });
    }
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.target.id === 'bulb' && r.target.dataset.lit === 'true' && window.bulbTruth.litAt === null) window.bulbTruth.litAt = real();
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-lit'] });
})();`

// latencyProxy puts toxiproxy in front of the server with a latency of oneWay each way,
// and returns the URL to reach the server through it.
func latencyProxy(t *testing.T, server string, name string, oneWay time.Duration) string {
	t.Helper()
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	tp := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(tp, name, "127.0.0.1:0", u.Host)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	for _, stream := range []string{"upstream", "downstream"} {
		toxic := fmt.Sprintf(`{"name":"latency_%s","type":"latency","stream":%q,"attributes":{"latency":%d}}`, stream, stream, oneWay.Milliseconds())
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
			t.Fatal(err)
		}
	}
	return "http://" + p.Listen
}

// TestBrowserSyncedReveal: two student pages in Chromium, their clocks 3 s ahead of and
// 2 s behind the machine's and their sockets 5 ms and 60 ms from the server each way,
// light the bulb of a synced start within 10 ms of each other on the machine's clock,
// though the start frame reaches them over 50 ms apart; and both report it seen, on time.
//
// Not parallel: it measures when two pages' timers fire, and the package's other tests
// (paused while it runs) would starve them of the CPU.
func TestBrowserSyncedReveal(t *testing.T) {
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)
	room := "/api/rooms/" + code
	b := newBrowser(t)
	pages := map[string]struct {
		oneWay time.Duration
		skewMs int
	}{"near": {5 * time.Millisecond, 3000}, "far": {60 * time.Millisecond, -2000}}
	tabs := map[string]*tab{}
	b.step("students join, each through its own latency, each with its own clock")
	for _, name := range []string{"near", "far"} {
		base := latencyProxy(t, s.URL, name, pages[name].oneWay)
		p := b.open(name, base+"/?code="+code, fmt.Sprintf(jsSkewedClock, pages[name].skewMs))
		p.do("join", chromedp.SendKeys(chromedp.CSS("#name"), name), chromedp.Click(chromedp.CSS("#join")))
		p.waitEqual("status", jsText("#status"), "connected")
		tabs[name] = p
	}
	time.Sleep(time.Second) // the pages' clock sync bursts (eight samples, 30 ms apart)

	b.step("the host starts the question")
	s.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	for _, p := range tabs {
		p.waitEqual("#question", jsText("#question"), "1. Which layer is TCP?")
	}
	var started struct {
		RevealAt time.Time `json:"revealAt"`
	}
	s.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, &started)
	truth := map[string]struct{ StartAt, LitAt float64 }{}
	for name, p := range tabs {
		p.do("wait for the bulb", chromedp.WaitVisible(chromedp.CSS("#bulb.lit")))
		var tr struct{ StartAt, LitAt float64 }
		if err := json.Unmarshal([]byte(evalOn[string](p, "the truth", `JSON.stringify(window.bulbTruth)`)), &tr); err != nil {
			t.Fatal(err)
		}
		truth[name] = tr
	}
	near, far := truth["near"], truth["far"]
	reveal := clocksync.Millis(started.RevealAt)
	t.Logf("reveal at %v: start frame at %+.1f ms (near) and %+.1f ms (far), bulb lit at %+.1f ms and %+.1f ms",
		started.RevealAt, near.StartAt-reveal, far.StartAt-reveal, near.LitAt-reveal, far.LitAt-reveal)
	if gap := far.StartAt - near.StartAt; gap < 50 {
		t.Errorf("the start frame reached the pages %.1f ms apart, want over 50: the test proves nothing", gap)
	}
	if d := far.LitAt - near.LitAt; d > 10 || d < -10 {
		t.Errorf("the bulbs lit %.1f ms apart on the machine's clock, want within 10", d)
	}
	for name, tr := range truth {
		if tr.StartAt >= reveal || tr.LitAt < reveal-10 || tr.LitAt > reveal+10 {
			t.Errorf("%s: start frame %+.1f ms and bulb %+.1f ms from the reveal instant, want the frame before it and the bulb within 10 ms of it",
				name, tr.StartAt-reveal, tr.LitAt-reveal)
		}
	}

	b.step("both report the start seen, on time")
	var rep struct {
		Starts []struct {
			Seen    int
			Reveal  struct{ OnTime, Late int }
			Players []struct {
				Name                                      string
				ReceivedUs, RevealedUs, ErrorUs, OffsetUs *int64
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mustCall(t, 200, "GET", room+"/fairness", host, nil, &rep)
		if len(rep.Starts) == 1 && rep.Starts[0].Seen == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, st := range rep.Starts {
		for _, p := range st.Players {
			if p.RevealedUs != nil {
				t.Logf("%s reported: received %d µs, lit %d µs after the start, clock offset %d µs ± %d µs",
					p.Name, *p.ReceivedUs, *p.RevealedUs, *p.OffsetUs, *p.ErrorUs)
			}
		}
	}
	if len(rep.Starts) != 1 || rep.Starts[0].Seen != 2 || rep.Starts[0].Reveal.OnTime != 2 {
		t.Errorf("fairness: got %+v, want one start seen by both, on time", rep.Starts)
	}
}

// TestPageClockAgrees: the page's clock sync (web/clock.js, as served) gives, in Chromium,
// on the recorded samples of internal/clocksync/testdata, exactly the estimates recorded
// there, which the Go estimator (internal/clocksync) gives too: the benchmarks' clients
// sync as the page does.
func TestPageClockAgrees(t *testing.T) {
	t.Parallel()
	recorded, err := os.ReadFile("../internal/clocksync/testdata/samples.json")
	if err != nil {
		t.Fatal(err)
	}
	s := MustStartServer(t, nil)
	b := newBrowser(t)
	p := b.open("page", s.URL+"/")
	script := `import('/static/clock.js').then(({ ClockSync }) => {
  const r = ` + string(recorded) + `;
  const cs = new ClockSync();
  const out = [];
  let next = 0;
  r.samples.forEach((s, i) => {
    cs.add(s.T0, s.T1, s.T2, s.T3);
    while (next < r.at.length && (i === r.samples.length - 1 || r.at[next] < r.samples[i + 1].T3)) {
      const e = cs.estimate(r.at[next++]);
      out.push({ Offset: e.offset, Error: e.error, RTT: e.rtt });
    }
  });
  return JSON.stringify({ got: out, want: r.want });
})`
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.Evaluate[string](script, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var cmp struct{ Got, Want []clocksync.Estimate }
	if err := json.Unmarshal([]byte(res), &cmp); err != nil {
		t.Fatal(err)
	}
	if len(cmp.Got) != len(cmp.Want) || len(cmp.Got) == 0 {
		t.Fatalf("got %d estimates, want %d", len(cmp.Got), len(cmp.Want))
	}
	for i := range cmp.Got {
		if cmp.Got[i] != cmp.Want[i] {
			t.Errorf("estimate %d: the page gives %+v, the record (and Go) %+v", i, cmp.Got[i], cmp.Want[i])
		}
	}
}

// jsFlakySocket lets a test hold back the server's sync answers from the page (as a
// slow network does; window.bulbHoldSync, then window.bulbReleaseSync() hands them
// on), drop the page's socket (window.bulbDrop()), and counts the sockets the page
// opened (window.bulbSockets) and the times the bulb lit (window.bulbLit).
const jsFlakySocket = `(() => {
  window.bulbHoldSync = false;
  window.bulbLit = 0;
  const held = [];
  let current = null;
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...args) {
      super(...args);
      current = this;
      window.bulbSockets = (window.bulbSockets ?? 0) + 1;
      this.addEventListener('message', (e) => {
        if (window.bulbHoldSync && !e.bulbReleased && typeof e.data === 'string' && e.data.startsWith('{"type":"sync"')) {
          e.stopImmediatePropagation();
          held.push([this, e.data]);
        }
      });
    }
  };
  window.bulbDrop = () => current.close();
  window.bulbReleaseSync = () => {
    window.bulbHoldSync = false;
    for (const [sock, data] of held.splice(0)) {
      const e = new MessageEvent('message', { data });
      e.bulbReleased = true;
      sock.dispatchEvent(e);
    }
  };
  new MutationObserver((records) => {
    for (const r of records) if (r.target.id === 'bulb' && r.target.dataset.lit === 'true' && r.oldValue !== 'true') window.bulbLit++;
  }).observe(document, { subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-lit'] });
})();`

// TestBrowserReconnectWaitsForTheClock: a student page lights a synced start's bulb on its
// synced clock, so before its clock has a sample it waits for one (its sync answers are held
// back here: a slow network), also after its socket dropped and connected again (the
// welcome gives the live question's instant); and once the question closed, a sample that
// comes after lights nothing. With the clock's answers flowing, the next start lights once.
func TestBrowserReconnectWaitsForTheClock(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)
	room := "/api/rooms/" + code
	b := newBrowser(t)
	bulb := `document.querySelector('#bulb').dataset.lit + ', lit ' + window.bulbLit + ' times'`
	b.step("a student joins, its clock's answers held back; the host opens and starts question 1")
	p := b.open("flaky", s.URL+"/?code="+code, jsFlakySocket, `window.bulbHoldSync = true;`)
	p.do("join", chromedp.SendKeys(chromedp.CSS("#name"), "flaky"), chromedp.Click(chromedp.CSS("#join")))
	p.waitEqual("status", jsText("#status"), "connected")
	s.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	p.waitEqual("#question", jsText("#question"), "1. Which layer is TCP?")
	var started struct {
		RevealAt time.Time `json:"revealAt"`
	}
	s.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, &started)
	time.Sleep(time.Until(started.RevealAt.Add(300 * time.Millisecond)))
	p.checkEqual("the bulb without a clock sample", bulb, "false, lit 0 times")

	b.step("the socket drops and connects again")
	evalOn[string](p, "drop the socket", `window.bulbDrop(); 'dropped'`)
	p.waitEqual("status", `window.bulbSockets + ' sockets, ' + `+jsText("#status"), "2 sockets, connected")
	time.Sleep(300 * time.Millisecond)
	p.checkEqual("the bulb without a clock sample", bulb, "false, lit 0 times")

	b.step("the host closes question 1; then the clock's answers arrive")
	s.mustCall(t, 200, "POST", room+"/questions/1/close", host, nil, nil)
	p.waitMatch("the result", jsText("#result"), regexp.MustCompile(`(?i)no answer from you`))
	evalOn[string](p, "release the sync answers", `window.bulbReleaseSync(); 'released'`)
	time.Sleep(300 * time.Millisecond) // a reveal armed before the close would light now
	p.checkEqual("the bulb after the close", bulb, "false, lit 0 times")

	b.step("question 2, the clock synced: the bulb lights once")
	s.mustCall(t, 200, "POST", room+"/questions/2/open", host, nil, nil)
	p.waitEqual("#question", jsText("#question"), "2. TCP stands for?")
	s.mustCall(t, 200, "POST", room+"/questions/2/start", host, nil, nil)
	p.waitEqual("the bulb", bulb, "true, lit 1 times")
	b.checkPolicy()
}
