package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/chromedp/chromedp"
)

// Screen sizes the pages are looked at in: a phone (an iPhone 12 to 15's viewport), a
// laptop, and a projector.
var (
	phone     = [2]int64{390, 844}
	laptop    = [2]int64{1366, 768}
	projector = [2]int64{1920, 1080}
)

// resize gives the tab the viewport of a screen of size wh.
func (p *tab) resize(wh [2]int64) {
	p.b.t.Helper()
	p.do(fmt.Sprintf("a %d×%d viewport", wh[0], wh[1]), chromedp.EmulateViewport(wh[0], wh[1]))
}

// shot saves what the tab's viewport shows (not the whole page: what a person sees without
// scrolling) as name.png in the test's artifact directory (kept with go test -artifacts).
func (p *tab) shot(name string) {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.fatalf("screenshot %s: %v", name, err)
	}
	file := filepath.Join(p.b.t.ArtifactDir(), name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		p.fatalf("screenshot %s: %v", name, err)
	}
	p.b.t.Logf("screenshot %s", file)
}

var (
	axeOnce   sync.Once
	axeSource string
	axeErr    error
)

// jsAxe runs axe-core on the page for WCAG 2.2 A and AA and gives its violations, one a
// line: the rule, its impact, and the first nodes it found.
const jsAxe = `axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})
  .then((r) => r.violations.map((v) => v.id + ' (' + v.impact + '): ' + v.help + ' — ' +
    v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ' ' + (n.failureSummary || '').replace(/\s+/g, ' ')).join(' | ')).join('\n'))`

// checkA11y runs axe-core (vendored in testdata; it is no part of the pages) in the tab,
// as the page is now, and fails on any WCAG 2.2 AA violation. what names the state.
func (p *tab) checkA11y(what string) {
	p.b.t.Helper()
	axeOnce.Do(func() {
		var b []byte
		b, axeErr = os.ReadFile("testdata/vendor/axe-core/axe.min.js")
		axeSource = string(b)
	})
	if axeErr != nil {
		p.fatalf("axe-core: %v", axeErr)
	}
	ctx, cancel := context.WithTimeout(p.ctx, 4*stepTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.axe || (0, eval)(`+jsString(axeSource)+`), true)`)); err != nil {
		p.fatalf("injecting axe-core: %v", err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](jsAxe, chromedp.EvalAwaitPromise))
	if err != nil {
		p.fatalf("axe-core on %s: %v", what, err)
	}
	if got != "" {
		p.b.t.Errorf("step %q, %s: accessibility violations (WCAG 2.2 AA) on %s:\n%s", p.b.cur, p.name, what, got)
	}
}

// jsRecordFrames runs in a page before its own scripts: it keeps every frame the page's
// sockets receive, in window.bulbFrames.
const jsRecordFrames = `window.bulbFrames = [];
(() => {
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => window.bulbFrames.push(e.data));
    }
  };
})();`

// frames gives the frames the tab's sockets received so far (jsRecordFrames).
func (p *tab) frames() []string {
	p.b.t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(evalOn[string](p, "the frames", `JSON.stringify(window.bulbFrames)`)), &out); err != nil {
		p.fatalf("the frames: %v", err)
	}
	return out
}

// jsFits gives "yes" if the elements sel (each one shown) lie wholly inside the viewport
// without scrolling, else what sticks out.
func jsFits(sels ...string) string {
	list, _ := json.Marshal(sels)
	return `(() => {
  const out = [];
  for (const sel of ` + string(list) + `) {
    for (const el of document.querySelectorAll(sel)) {
      if (el.offsetParent === null) continue;
      const r = el.getBoundingClientRect();
      if (r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5 || r.top < 0 || r.left < 0)
        out.push(sel + ' at ' + Math.round(r.left) + ',' + Math.round(r.top) + '–' + Math.round(r.right) + ',' + Math.round(r.bottom));
    }
  }
  if (scrollY !== 0) out.push('the page is scrolled by ' + scrollY);
  return out.length ? out.join('; ') + ' (viewport ' + innerWidth + '×' + innerHeight + ')' : 'yes';
})()`
}
