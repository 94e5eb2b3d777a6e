package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/hub"
	"github.com/bulbquiz/bulb/internal/clocksync"
)

// TestSync: the hub answers a client's sync at once, with the client's t0 back and its
// own receive and send times, t1 ≤ t2, both between the client's send and receipt on this
// machine's clock (the server's).
func TestSync(t *testing.T) {
	ts := MustServer(t, hub.Options{})
	r := MustDial(t, ts, "a", "p1", hub.Player)
	for i := range 5 {
		t0 := clocksync.Millis(time.Now())
		r.write(t, fmt.Sprintf(`{"type":"sync","t0":%v}`, t0))
		f, err := r.next(testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t3 := clocksync.Millis(f.at)
		var s struct {
			Type       string
			T0, T1, T2 float64
		}
		if err := json.Unmarshal([]byte(f.data), &s); err != nil || s.Type != "sync" {
			t.Fatalf("sync %d: got %s, %v; want a sync frame", i, f.data, err)
		}
		if s.T0 != t0 || s.T1 < t0 || s.T2 < s.T1 || s.T2 > t3 {
			t.Fatalf("sync %d: got t0 %v t1 %v t2 %v, want t0 = %v ≤ t1 ≤ t2 ≤ t3 = %v", i, s.T0, s.T1, s.T2, t0, t3)
		}
	}
}

// TestSyncedStart: a start with a reveal instant carries it; the clients' seen reports
// make the start's reveal view: on time and late, the spread of the reported reveals and
// the bound on their true spread from the clocks' error bounds.
func TestSyncedStart(t *testing.T) {
	ts := MustServer(t, hub.Options{})
	rs := MustDialMany(t, ts, "a", "p", 4, hub.Player)
	liar := rs[3]
	rs = rs[:3]
	reveal := time.Now().Add(200 * time.Millisecond)
	at := clocksync.Millis(reveal)
	seq, n, err := ts.h.Start(context.Background(), "a", 1, reveal)
	if err != nil || n != 4 {
		t.Fatalf("Start: got %d recipients, %v; want 4", n, err)
	}
	want := fmt.Sprintf(`{"type":"start","n":1,"seq":%d,"at":%s}`, seq, strconv.FormatFloat(at, 'f', -1, 64))
	// A made-up report, its bulb lit five minutes after the start: it would make the start
	// look five minutes unfair. It is left out.
	MustFrame(t, liar, want)
	liar.write(t, fmt.Sprintf(`{"type":"seen","seq":%d,"receivedAt":%v,"revealedAt":%v,"errorMs":2,"late":false}`, seq, at-10, at+300_000))
	for i, r := range rs {
		MustFrame(t, r, want)
		// Each reports: received 10 ms before the instant, revealed at it (±1 ms), with
		// an error bound of 2 ms; the third arrived late.
		late := i == 2
		revealed := at + float64(i-1)
		received := at - 10
		if late {
			received, revealed = at+30, at+31
		}
		r.write(t, fmt.Sprintf(`{"type":"seen","seq":%d,"receivedAt":%v,"revealedAt":%v,"errorMs":2,"late":%v}`, seq, received, revealed, late))
	}
	st := MustLatest(t, ts, "a", func(st hub.StartStats) string {
		if st.Seen != 3 {
			return fmt.Sprintf("seen: got %d, want 3", st.Seen)
		}
		return ""
	})
	time.Sleep(50 * time.Millisecond) // the liar's report, read by now, must not count
	st = MustLatest(t, ts, "a", func(hub.StartStats) string { return "" })
	rv := st.Reveal
	if st.Seen != 3 || rv == nil || rv.At.Sub(reveal).Abs() > time.Microsecond || rv.OnTime != 2 || rv.Late != 1 {
		t.Fatalf("reveal: got %+v, want at %v, 2 on time, 1 late", rv, reveal)
	}
	if rv.LeadUs < 150_000 || rv.LeadUs > 200_000 {
		t.Errorf("lead: got %d µs, want about 200 ms", rv.LeadUs)
	}
	// reported reveals −1, 0 and +31 ms from the instant: spread 32 ms; ±2 ms each: 36 ms
	if rv.SpreadUs != 32_000 || rv.SkewUs != 36_000 || rv.ErrorUs.Max != 2000 {
		t.Errorf("spread %d, skew %d, error %+v; want 32000, 36000, max 2000 µs", rv.SpreadUs, rv.SkewUs, rv.ErrorUs)
	}
	for _, p := range st.Players {
		if honest := p.PlayerID != "p003"; honest != (p.RevealedUs != nil) || honest && (p.ErrorUs == nil || *p.ErrorUs != 2000) {
			t.Errorf("player %s: got %+v, want its report if honest, none if made up", p.PlayerID, p)
		}
	}
}

// TestLead: a room's lead covers its fan-out and its players' way out, within bounds.
func TestLead(t *testing.T) {
	ts := MustServer(t, hub.Options{MinLead: 50 * time.Millisecond, MaxLead: 400 * time.Millisecond, LeadMargin: 10 * time.Millisecond,
		PingInterval: 10 * time.Millisecond})
	if got := ts.h.Lead("nobody"); got != 50*time.Millisecond {
		t.Errorf("an empty room's lead: got %v, want the minimum", got)
	}
	rs := MustDialMany(t, ts, "a", "p", 50, hub.Player)
	for range 3 {
		seq, _, err := ts.h.Start(context.Background(), "a", 1, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			MustFrame(t, r, startFrame(1, seq))
		}
	}
	st := MustLatest(t, ts, "a", func(hub.StartStats) string { return "" })
	lead := ts.h.Lead("a")
	fanout := time.Duration(st.WrittenUs.Max) * time.Microsecond
	if lead < min(fanout+10*time.Millisecond, 400*time.Millisecond) || lead > 400*time.Millisecond {
		t.Errorf("lead: got %v, want at least the last fan-out (%v) and the margin, at most the maximum", lead, fanout)
	}
}
