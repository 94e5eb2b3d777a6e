package quiz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// fakeBroadcaster records what the service sends. It stands in for the hub in unit tests
// of the rules; the hub itself is tested with real sockets.
type fakeBroadcaster struct {
	mu        sync.Mutex
	startErr  error    // Start fails with it, sending nothing
	frames    []string // every frame sent to anyone
	present   []string // every frame sent to presenters only
	toPlayer  map[string][]string
	removed   map[string]string // player ID → the frame its connection was closed after
	starts    int
	reveals   []time.Time // of each start: zero for an immediate one
	lead      time.Duration
	sentErr   error // what Start says went wrong after the start went out
	forgotten []string
}

// fakeLead is a lead the fake broadcaster can be told to measure for every room. By
// default it measures none: a synced start lights at once, and the tests of everything
// but the reveal answer at once without being early.
const fakeLead = 200 * time.Millisecond

// humanly is when a person's answer arrives: a quick reaction after a bulb that lit now
// (the fake broadcaster's synced starts light at once); any sooner is a false start.
func humanly() time.Time { return time.Now().Add(150 * time.Millisecond) }

func newFake() *fakeBroadcaster {
	return &fakeBroadcaster{toPlayer: map[string][]string{}, removed: map[string]string{}}
}

func (f *fakeBroadcaster) Send(_ string, frame []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frames = append(f.frames, string(frame))
}
func (f *fakeBroadcaster) SendHosts(room string, frame []byte) { f.Send(room, frame) }
func (f *fakeBroadcaster) SendPresenters(_ string, frame []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.present = append(f.present, string(frame))
}
func (f *fakeBroadcaster) SendPlayer(_, id string, frame []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.toPlayer[id] = append(f.toPlayer[id], string(frame))
}
func (f *fakeBroadcaster) Remove(_, id string, frame []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed[id] = string(frame)
}
func (f *fakeBroadcaster) Forget(_ context.Context, room string, farewell []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgotten = append(f.forgotten, room)
	f.present = append(f.present, string(farewell)) // the watchers' last frame
}
func (f *fakeBroadcaster) Lead(string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lead
}
func (f *fakeBroadcaster) Start(_ context.Context, _ string, _ int, reveal time.Time) (uint64, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return 0, 0, f.startErr
	}
	f.starts++
	f.reveals = append(f.reveals, reveal)
	return uint64(f.starts), 0, f.sentErr
}

// framesOfType keeps the frames of the given type.
func framesOfType(frames []string, typ string) []string {
	var out []string
	for _, f := range frames {
		if strings.HasPrefix(f, `{"type":"`+typ+`"`) {
			out = append(out, f)
		}
	}
	return out
}

func (f *fakeBroadcaster) startCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts
}

func newTestService(t *testing.T) (*Service, *fakeBroadcaster) {
	t.Helper()
	bc := newFake()
	s := NewService(Options{Store: NewMemoryStore(), Broadcaster: bc, Locker: NewMemoryLocker(), Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, bc
}

func mustCreate(t *testing.T, s *Service, qz Quiz) *Room {
	t.Helper()
	r, err := s.CreateRoom(context.Background(), qz)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTransitions(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t)
	r := mustCreate(t, s, validQuiz())
	steps := []struct {
		name string
		do   func() error
		want protocol.ErrorCode // "" for success
	}{
		{"start before open", func() error { _, err := s.Start(ctx, r.Code, 1, time.Time{}); return err }, protocol.Conflict},
		{"close in lobby", func() error { _, err := s.Close(ctx, r.Code, 1, time.Time{}); return err }, protocol.Conflict},
		{"open 0", func() error { _, err := s.Open(ctx, r.Code, 0); return err }, protocol.NotFound},
		{"open 3 of 2", func() error { _, err := s.Open(ctx, r.Code, 3); return err }, protocol.NotFound},
		{"open 1", func() error { _, err := s.Open(ctx, r.Code, 1); return err }, ""},
		{"open 2 while 1 is open", func() error { _, err := s.Open(ctx, r.Code, 2); return err }, protocol.Conflict},
		{"start 2 while 1 is open", func() error { _, err := s.Start(ctx, r.Code, 2, time.Time{}); return err }, protocol.Conflict},
		{"start 1", func() error { _, err := s.Start(ctx, r.Code, 1, time.Time{}); return err }, ""},
		{"start 1 twice", func() error { _, err := s.Start(ctx, r.Code, 1, time.Time{}); return err }, protocol.Conflict},
		{"open 2 while 1 is live", func() error { _, err := s.Open(ctx, r.Code, 2); return err }, protocol.Conflict},
		{"close 1", func() error { _, err := s.Close(ctx, r.Code, 1, time.Time{}); return err }, ""},
		{"close 1 twice", func() error { _, err := s.Close(ctx, r.Code, 1, time.Time{}); return err }, protocol.Conflict},
		{"reopen 1", func() error { _, err := s.Open(ctx, r.Code, 1); return err }, protocol.Conflict},
		{"open 2", func() error { _, err := s.Open(ctx, r.Code, 2); return err }, ""},
		{"close 2 from open", func() error { _, err := s.Close(ctx, r.Code, 2, time.Time{}); return err }, ""},
		{"unknown room", func() error { _, err := s.Open(ctx, "999999x", 1); return err }, protocol.NotFound},
	}
	for _, st := range steps {
		err := st.do()
		if st.want == "" && err != nil || st.want != "" && ErrorCode(err) != st.want {
			t.Fatalf("%s: got %v, want %q", st.name, err, st.want)
		}
	}
}

func TestTimedStart(t *testing.T) {
	ctx := context.Background()
	s, bc := newTestService(t)

	t.Run("past and far times are refused", func(t *testing.T) {
		r := mustCreate(t, s, validQuiz())
		if _, err := s.Open(ctx, r.Code, 1); err != nil {
			t.Fatal(err)
		}
		for _, at := range []time.Time{time.Now().Add(-time.Second), time.Now().Add(25 * time.Hour)} {
			if _, err := s.Start(ctx, r.Code, 1, at); ErrorCode(err) != protocol.Invalid {
				t.Fatalf("at %v: got %v, want invalid", at, err)
			}
		}
	})

	t.Run("synced: sent ahead, lights at its time", func(t *testing.T) {
		r := mustCreate(t, s, validQuiz()) // synced by default
		if _, err := s.Open(ctx, r.Code, 1); err != nil {
			t.Fatal(err)
		}
		before := bc.startCount()
		at := time.Now().Add(1500 * time.Millisecond) // the timer fires a second before
		if _, err := s.Start(ctx, r.Code, 1, at); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return bc.startCount() == before+1 })
		sent := time.Now()
		if !sent.Before(at) {
			t.Fatalf("sent at %v, want ahead of its time %v", sent, at)
		}
		bc.mu.Lock()
		reveal := bc.reveals[len(bc.reveals)-1]
		bc.mu.Unlock()
		room, _ := s.Room(ctx, r.Code)
		if !reveal.Equal(at) || !room.StartedAt.Equal(at) || room.Phase != PhaseLive {
			t.Fatalf("got reveal %v, started %v, phase %s; want both at its time %v, live", reveal, room.StartedAt, room.Phase, at)
		}
	})

	t.Run("synced: a start now lights after the lead", func(t *testing.T) {
		setLead := func(d time.Duration) {
			bc.mu.Lock()
			defer bc.mu.Unlock()
			bc.lead = d
		}
		setLead(fakeLead)
		t.Cleanup(func() { setLead(0) })
		r := mustCreate(t, s, validQuiz())
		if _, err := s.Open(ctx, r.Code, 1); err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		res, err := s.Start(ctx, r.Code, 1, time.Time{})
		if err != nil || res.Reveal.Before(before.Add(fakeLead)) || res.Reveal.After(time.Now().Add(fakeLead)) {
			t.Fatalf("got %+v, %v; want revealed the lead (%v) after the call", res, err, fakeLead)
		}
	})

	t.Run("fires once, at its time", func(t *testing.T) {
		r := mustCreate(t, s, immediateQuiz())
		if _, err := s.Open(ctx, r.Code, 1); err != nil {
			t.Fatal(err)
		}
		before := bc.startCount()
		at := time.Now().Add(80 * time.Millisecond)
		res, err := s.Start(ctx, r.Code, 1, at)
		if err != nil || !res.At.Equal(at) {
			t.Fatalf("got %+v %v, want scheduled at %v", res, err, at)
		}
		p, err := s.Join(ctx, r.Code, "eve")
		if err != nil {
			t.Fatal(err)
		}
		id := Identity{Room: r.Code, Role: RolePlayer, PlayerID: p.ID}
		if _, err := s.Answer(ctx, id, 1, protocol.Response{Choice: intp(2)}, humanly(), Delivery{}); ErrorCode(err) != protocol.NotStarted {
			t.Fatalf("answer before at: got %v, want not_started", err)
		}
		waitFor(t, func() bool { return bc.startCount() == before+1 })
		if time.Now().Before(at) {
			t.Fatalf("fired before %v", at)
		}
		room, _ := s.Room(ctx, r.Code)
		if room.Phase != PhaseLive || room.StartedAt.Before(at) {
			t.Fatalf("got phase %s started %v, want live from %v", room.Phase, room.StartedAt, at)
		}
		if _, err := s.Answer(ctx, id, 1, protocol.Response{Choice: intp(2)}, humanly(), Delivery{}); err != nil {
			t.Fatalf("answer after at: %v", err)
		}
		// a late duplicate firing of the same schedule is a no-op
		if _, err := s.start(ctx, r.Code, 1, at); ErrorCode(err) != protocol.Conflict {
			t.Fatalf("second firing: got %v, want conflict", err)
		}
		time.Sleep(50 * time.Millisecond)
		if got := bc.startCount(); got != before+1 {
			t.Fatalf("got %d starts, want 1", got-before)
		}
	})

	t.Run("close cancels a schedule", func(t *testing.T) {
		r := mustCreate(t, s, immediateQuiz()) // its timer fires at its time
		if _, err := s.Open(ctx, r.Code, 1); err != nil {
			t.Fatal(err)
		}
		before := bc.startCount()
		if _, err := s.Start(ctx, r.Code, 1, time.Now().Add(30*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Close(ctx, r.Code, 1, time.Time{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(80 * time.Millisecond)
		if got := bc.startCount(); got != before {
			t.Fatalf("got %d starts after close, want 0", got-before)
		}
	})

	t.Run("a manual start wins over the schedule", func(t *testing.T) {
		r := mustCreate(t, s, immediateQuiz()) // its timer fires at its time
		if _, err := s.Open(ctx, r.Code, 1); err != nil {
			t.Fatal(err)
		}
		before := bc.startCount()
		at := time.Now().Add(30 * time.Millisecond)
		if _, err := s.Start(ctx, r.Code, 1, at); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Start(ctx, r.Code, 1, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.start(ctx, r.Code, 1, at); err == nil {
			t.Fatal("a stale firing after a manual start succeeded")
		}
		time.Sleep(80 * time.Millisecond)
		if got := bc.startCount(); got != before+1 {
			t.Fatalf("got %d starts, want 1", got-before)
		}
	})
}

// immediateQuiz is validQuiz under the immediate reveal: a timed start's timer fires at
// its time, not a second ahead.
func immediateQuiz() Quiz {
	qz := validQuiz()
	qz.Reveal = RevealImmediate
	return qz
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestCompensatedTiming(t *testing.T) {
	ctx := context.Background()
	s, bc := newTestService(t)
	qz := validQuiz()
	qz.Timing, qz.Winners = Compensated, []int{100, 60}
	r := mustCreate(t, s, qz)
	far, _ := s.Join(ctx, r.Code, "far")
	near, _ := s.Join(ctx, r.Code, "near")
	cheat, _ := s.Join(ctx, r.Code, "cheat")
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	// far got the signal 100 ms late and has a 120 ms RTT; near got it at once with 2 ms;
	// cheat claims a 2 s RTT, which the cap limits to 150 ms.
	delivery := map[string]Delivery{
		far.ID:   {Written: t0.Add(100 * time.Millisecond), RTT: 120 * time.Millisecond},
		near.ID:  {Written: t0, RTT: 2 * time.Millisecond},
		cheat.ID: {Written: t0, RTT: 2 * time.Second},
	}
	answer := func(p Player, after time.Duration) protocol.Answer {
		t.Helper()
		a, err := s.Answer(ctx, Identity{Room: r.Code, Role: RolePlayer, PlayerID: p.ID}, 1, protocol.Response{Choice: intp(2)}, t0.Add(after), delivery[p.ID])
		if err != nil {
			t.Fatal(err)
		}
		if !a.Pending || a.Rank != 0 {
			t.Fatalf("got %+v, want a pending result", a)
		}
		return a
	}
	answer(far, 400*time.Millisecond)   // reaction 400 − 100 − 120 = 180 ms, arrived first
	answer(cheat, 390*time.Millisecond) // reaction 390 − 150 = 240 ms
	answer(near, 300*time.Millisecond)  // reaction 300 − 2 = 298 ms
	if _, err := s.Close(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	answers, _ := s.Answers(ctx, r.Code, 1)
	wantOrder := []struct {
		name     string
		rank     int
		reaction int64
	}{{"far", 1, 180_000}, {"cheat", 2, 240_000}, {"near", 3, 298_000}}
	for i, w := range wantOrder {
		a := answers[i]
		if a.Name != w.name || a.Rank != w.rank || a.ReactionUs == nil || *a.ReactionUs != w.reaction {
			t.Errorf("place %d: got %s rank %d reaction %v, want %s rank %d reaction %d µs", i, a.Name, a.Rank, a.ReactionUs, w.name, w.rank, w.reaction)
		}
	}
	if answers[0].ArrivalRank != 1 || answers[2].ArrivalRank != 3 {
		t.Errorf("arrival ranks must be kept: got %d and %d, want 1 and 3", answers[0].ArrivalRank, answers[2].ArrivalRank)
	}
	var final struct {
		Type   string `json:"type"`
		Rank   int    `json:"rank"`
		Points int    `json:"points"`
	}
	bc.mu.Lock()
	frames := framesOfType(bc.toPlayer[far.ID], "result")
	bc.mu.Unlock()
	if len(frames) != 1 || json.Unmarshal([]byte(frames[0]), &final) != nil || final.Rank != 1 || final.Points != 100 {
		t.Fatalf("far's final result: got %v, want rank 1 with 100 points", frames)
	}
	lb, _ := s.Leaderboard(ctx, r.Code)
	if lb[0].Name != "far" || lb[0].Score != 100 || lb[1].Name != "cheat" || lb[1].Score != 60 || lb[2].Score != 0 {
		t.Fatalf("got leaderboard %+v, want far 100, cheat 60, near 0", lb)
	}
}

func TestLeaderboardTies(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t)
	r := mustCreate(t, s, validQuiz())
	var ids []string
	for _, n := range []string{"a", "b", "c", "d"} {
		p, err := s.Join(ctx, r.Code, n)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	scores := map[string]int{ids[0]: 10, ids[1]: 30, ids[2]: 10, ids[3]: 30}
	if _, err := s.store.Update(ctx, r.Code, func(r *Room) error {
		for i := range r.Players {
			r.Players[i].Score = scores[r.Players[i].ID]
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	lb, err := s.Leaderboard(ctx, r.Code)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		rank int
	}{{"b", 1}, {"d", 1}, {"a", 3}, {"c", 3}}
	for i, w := range want {
		if lb[i].Name != w.name || lb[i].Rank != w.rank {
			t.Errorf("place %d: got %s rank %d, want %s rank %d", i, lb[i].Name, lb[i].Rank, w.name, w.rank)
		}
	}
}

func TestJoinNames(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t)
	r := mustCreate(t, s, validQuiz())
	for _, tt := range []struct {
		name string
		want protocol.ErrorCode
	}{{"  ada   lovelace ", ""}, {"ADA LOVELACE", protocol.Conflict}, {"", protocol.Invalid}, {"   ", protocol.Invalid}, {"x\x00y", protocol.Invalid},
		{"0123456789012345678901234567890123", protocol.Invalid},
		{"\u0430da lovelace", protocol.Conflict}, // Cyrillic а
		{"ａｄａ ｌｏｖｅｌａｃｅ", protocol.Conflict},      // fullwidth
		{"ada\u3000lovelace", protocol.Conflict}, // an ideographic space is a space
		{"eve\u202Exe.exe", protocol.Invalid},    // right-to-left override: shows as "eveexe.exe" backwards
		{"eve\u2066x", protocol.Invalid},         // left-to-right isolate
		{"e\u200Bve", protocol.Invalid},          // zero-width space
		{"e\u200Dve", protocol.Invalid},          // zero-width joiner
		{"\u0007bell", protocol.Invalid},
		{"e\u034Fve", protocol.Invalid},               // combining grapheme joiner: invisible, yet printable to Go
		{"Zoë", ""}, {"zoe\u0308", protocol.Conflict}, // the same name, composed or not
		{"ada lovelace\u2800", protocol.Invalid},                         // a braille blank: ada lovelace, seemingly
		{"\u2800", protocol.Invalid}, {"\u3164\u3164", protocol.Invalid}, // a name of blanks
		{"...", protocol.Invalid},           // no letter, digit or symbol
		{"ADA LOVEIACE", protocol.Conflict}, // a capital I for an l
		{"🐙", ""},
		{"李小龍", ""}} {
		_, err := s.Join(ctx, r.Code, tt.name)
		if tt.want == "" && err != nil || tt.want != "" && ErrorCode(err) != tt.want {
			t.Errorf("join %q: got %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := s.Join(ctx, "123", "zed"); ErrorCode(err) != protocol.NotFound {
		t.Errorf("join unknown room: got %v, want not_found", err)
	}
	room, _ := s.Room(ctx, r.Code)
	var names []string
	for _, p := range room.Players {
		names = append(names, p.Name)
	}
	if want := []string{"ada lovelace", "Zoë", "🐙", "李小龍"}; !slices.Equal(names, want) {
		t.Fatalf("got players %q, want %q, as typed", names, want)
	}
}

func TestStartNotSentIsUndone(t *testing.T) {
	ctx := context.Background()
	s, bc := newTestService(t)
	r := mustCreate(t, s, validQuiz())
	p, _ := s.Join(ctx, r.Code, "uma")
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	bc.mu.Lock()
	bc.startErr = errors.New("bus down")
	bc.mu.Unlock()
	if _, err := s.Start(ctx, r.Code, 1, time.Time{}); ErrorCode(err) != protocol.Unavailable {
		t.Fatalf("start with the bus down: got %v, want unavailable", err)
	}
	room, _ := s.Room(ctx, r.Code)
	if room.Phase != PhaseOpen {
		t.Fatalf("got phase %s, want open again", room.Phase)
	}
	id := Identity{Room: r.Code, Role: RolePlayer, PlayerID: p.ID}
	if _, err := s.Answer(ctx, id, 1, protocol.Response{Choice: intp(2)}, humanly(), Delivery{}); ErrorCode(err) != protocol.NotStarted {
		t.Fatalf("answer after a failed start: got %v, want not_started", err)
	}
	bc.mu.Lock()
	bc.startErr = nil
	bc.mu.Unlock()
	if _, err := s.Start(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatalf("start again: %v", err)
	}
}

// TestStartSentWithAnError: a start that went out, though the broadcaster then failed
// (to count its recipients, say), is a start: the question is live, its time limit
// closes it, and the players get its timer.
func TestStartSentWithAnError(t *testing.T) {
	ctx := context.Background()
	s, bc := newTestService(t)
	qz := validQuiz()
	qz.Questions[0].TimeLimitMs = 1000
	r := mustCreate(t, s, qz)
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	bc.mu.Lock()
	bc.sentErr = errors.New("redis: connection pool timeout")
	bc.mu.Unlock()
	if res, err := s.Start(ctx, r.Code, 1, time.Time{}); err != nil || res.Seq == 0 {
		t.Fatalf("got %+v, %v; want the start", res, err)
	}
	bc.mu.Lock()
	timers := framesOfType(bc.frames, "timer")
	bc.mu.Unlock()
	if len(timers) != 1 {
		t.Fatalf("got timer frames %v, want one", timers)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		room, err := s.Room(ctx, r.Code)
		if err != nil {
			t.Fatal(err)
		}
		if room.Phase == PhaseClosed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("phase %s 5 s after a 1 s question started, want closed by its time limit", room.Phase)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEditQuiz(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t)
	r := mustCreate(t, s, validQuiz())
	p, _ := s.Join(ctx, r.Code, "edd")
	edit := func(version int64, change func(*Quiz)) error {
		qz := validQuiz()
		change(&qz)
		_, err := s.EditQuiz(ctx, r.Code, version, qz)
		return err
	}
	if err := edit(0, func(q *Quiz) { q.Questions = nil }); ErrorCode(err) != protocol.Invalid {
		t.Fatalf("an invalid quiz: got %v, want invalid", err)
	}
	if err := edit(0, func(q *Quiz) { q.Questions[0].Answer = intp(1) }); err != nil {
		t.Fatalf("a valid edit: %v", err)
	}
	if err := edit(0, func(q *Quiz) { q.Title = "late" }); ErrorCode(err) != protocol.Conflict {
		t.Fatalf("a stale edit (version 0, now 1): got %v, want conflict", err)
	}
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	if err := edit(1, func(q *Quiz) { q.Questions[0].Answer = intp(1) }); ErrorCode(err) != protocol.Conflict {
		t.Fatalf("an edit while a question is open: got %v, want conflict", err)
	}
	if _, err := s.Start(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	a, err := s.Answer(ctx, Identity{Room: r.Code, Role: RolePlayer, PlayerID: p.ID}, 1, protocol.Response{Choice: intp(1)}, humanly(), Delivery{})
	if err != nil || !a.Correct {
		t.Fatalf("answer 1 after the edit made it right: got %+v, %v", a, err)
	}
	if _, err := s.Close(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := edit(1, func(q *Quiz) { q.Questions[0].Text = "changed" }); ErrorCode(err) != protocol.Conflict {
		t.Fatalf("changing a question already asked: got %v, want conflict", err)
	}
	if err := edit(1, func(q *Quiz) { q.Questions[0].Answer = intp(1); q.Questions[1].Text = "next one, new" }); err != nil {
		t.Fatalf("changing a question not yet asked: %v", err)
	}
	room, _ := s.Room(ctx, r.Code)
	if room.Quiz.Version != 2 || room.Quiz.Questions[1].Text != "next one, new" {
		t.Fatalf("got quiz v%d %q, want v2 with the new question 2", room.Quiz.Version, room.Quiz.Questions[1].Text)
	}
}

func TestTimedClose(t *testing.T) {
	ctx := context.Background()
	s, bc := newTestService(t)
	r := mustCreate(t, s, immediateQuiz()) // a timed start that fires at its time, not ahead
	closes := func() int {
		bc.mu.Lock()
		defer bc.mu.Unlock()
		n := 0
		for _, f := range bc.frames {
			if strings.HasPrefix(f, `{"type":"close"`) {
				n++
			}
		}
		return n
	}
	if _, err := s.Close(ctx, r.Code, 1, time.Now().Add(time.Second)); ErrorCode(err) != protocol.Conflict {
		t.Fatalf("a timed close in the lobby: got %v, want conflict", err)
	}
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	startAt := time.Now().Add(50 * time.Millisecond)
	if _, err := s.Start(ctx, r.Code, 1, startAt); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Close(ctx, r.Code, 1, startAt.Add(-time.Millisecond)); ErrorCode(err) != protocol.Invalid {
		t.Fatalf("a close before the scheduled start: got %v, want invalid", err)
	}
	closeAt := startAt.Add(100 * time.Millisecond)
	if _, err := s.Close(ctx, r.Code, 1, closeAt); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return closes() == 1 })
	room, _ := s.Room(ctx, r.Code)
	if time.Now().Before(closeAt) || room.Phase != PhaseClosed || bc.startCount() != 1 {
		t.Fatalf("got phase %s, %d starts, closed at %v; want closed after one start, not before %v", room.Phase, bc.startCount(), time.Now(), closeAt)
	}
	if _, err := s.close(ctx, r.Code, 1, closeAt); err == nil {
		t.Fatal("a duplicate firing of the close succeeded")
	}

	// a manual close wins over a scheduled one
	if _, err := s.Open(ctx, r.Code, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Close(ctx, r.Code, 2, time.Now().Add(30*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Close(ctx, r.Code, 2, time.Time{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(80 * time.Millisecond)
	if got := closes(); got != 2 {
		t.Fatalf("got %d close frames, want 2: the scheduled close must not fire after a manual one", got)
	}
}

// lostReply is a store whose first Update is made but reported as unavailable, as when the
// engine goes away between doing a change and replying.
type lostReply struct {
	Store
	lost bool
}

func (l *lostReply) Update(ctx context.Context, code string, fn func(*Room) error) (*Room, error) {
	r, err := l.Store.Update(ctx, code, fn)
	if err == nil && !l.lost {
		l.lost = true
		return nil, Errorf(protocol.Unavailable, "storage unavailable")
	}
	return r, err
}

func TestStartAndCloseWhoseReplyWasLost(t *testing.T) {
	ctx := context.Background()
	bc := newFake()
	store := &lostReply{Store: NewMemoryStore(), lost: true}
	s := NewService(Options{Store: store, Broadcaster: bc, Locker: NewMemoryLocker(), Logger: slog.New(slog.DiscardHandler)})
	r := mustCreate(t, s, validQuiz())
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	store.lost = false // the start's Update is made, its reply lost
	if _, err := s.Start(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatalf("start whose reply was lost: got %v, want the start sent", err)
	}
	if bc.startCount() != 1 {
		t.Fatalf("got %d starts sent, want 1: the room went live", bc.startCount())
	}
	store.lost = false // the close's Update is made, its reply lost
	if _, err := s.Close(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatalf("close whose reply was lost: got %v, want the close announced", err)
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if !slices.ContainsFunc(bc.frames, func(f string) bool { return strings.HasPrefix(f, `{"type":"close","n":1}`) }) {
		t.Fatalf("got frames %v, want a close of question 1", bc.frames)
	}
}

// TestLeaderboardFrameIsTheTop: the frame after a close carries the top of the board and
// its size, not the whole board, which would grow with the room squared.
func TestLeaderboardFrameIsTheTop(t *testing.T) {
	ctx := context.Background()
	s, bc := newTestService(t)
	r := mustCreate(t, s, validQuiz())
	for i := range LeaderboardTop + 5 {
		if _, err := s.Join(ctx, r.Code, fmt.Sprint("p", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Close(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	bc.mu.Lock()
	last := bc.frames[len(bc.frames)-1]
	bc.mu.Unlock()
	var lb struct {
		Type    string
		Entries []protocol.Entry
		Players int
	}
	if err := json.Unmarshal([]byte(last), &lb); err != nil || lb.Type != "leaderboard" || len(lb.Entries) != LeaderboardTop || lb.Players != LeaderboardTop+5 {
		t.Fatalf("got %.200s, want a leaderboard of the top %d of %d players", last, LeaderboardTop, LeaderboardTop+5)
	}
}

// fakeJudge records the jobs submitted; it refuses languages other than python and c, and
// is busy while busy is set. It stands in for the judge package in unit tests of the
// rules; the real judge is tested in the server's tests.
type fakeJudge struct {
	mu      sync.Mutex
	jobs    []CodeJob
	busy    bool
	dropped []string // room/player of every Drop
}

func (j *fakeJudge) Check(q Question) error {
	for _, l := range q.Languages {
		if l != "python" && l != "c" {
			return Errorf(protocol.Invalid, "unknown language %q", l)
		}
	}
	return nil
}

func (j *fakeJudge) Submit(_ context.Context, job CodeJob) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.busy {
		return Errorf(protocol.Busy, "the judge is busy: 7 submissions waiting")
	}
	j.jobs = append(j.jobs, job)
	return nil
}

func (j *fakeJudge) Drop(_ context.Context, room, playerID string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.dropped = append(j.dropped, room+"/"+playerID)
	return nil
}

func TestCodeQuestion(t *testing.T) {
	ctx := context.Background()
	bc := newFake()
	qz := Quiz{Questions: []Question{codeQuestion()}}
	if _, err := NewService(Options{Store: NewMemoryStore(), Broadcaster: bc, Locker: NewMemoryLocker(), Logger: slog.New(slog.DiscardHandler)}).CreateRoom(ctx, qz); ErrorCode(err) != protocol.Invalid || !strings.Contains(err.Error(), "need a judge") {
		t.Fatalf("a code question without a judge: got %v, want invalid, naming the judge", err)
	}
	judge := &fakeJudge{}
	s := NewService(Options{Store: NewMemoryStore(), Broadcaster: bc, Locker: NewMemoryLocker(), Judge: judge, Logger: slog.New(slog.DiscardHandler)})
	bad := Quiz{Questions: []Question{codeQuestion()}}
	bad.Questions[0].Languages = []string{"cobol"}
	if _, err := s.CreateRoom(ctx, bad); ErrorCode(err) != protocol.Invalid || !strings.Contains(err.Error(), "cobol") {
		t.Fatalf("an unknown language: got %v, want invalid naming it", err)
	}
	r := mustCreate(t, s, qz)
	alice, _ := s.Join(ctx, r.Code, "alice")
	bob, _ := s.Join(ctx, r.Code, "bob")
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	player := func(p Player) Identity { return Identity{Room: r.Code, Role: RolePlayer, PlayerID: p.ID} }
	src := protocol.Response{Language: "python", Source: "a, b = map(int, input().split())\nprint(a + b)\n"}
	a1, err := s.Answer(ctx, player(alice), 1, src, humanly(), Delivery{})
	if err != nil {
		t.Fatal(err)
	}
	if f := string(ResultFrame(a1)); f != `{"type":"result","n":1,"accepted":true,"correct":false,"rank":0,"points":0,"pending":true,"judging":true,"submission":1,"language":"python"}` {
		t.Errorf("result frame of a submission: %s", f)
	}
	b1, err := s.Answer(ctx, player(bob), 1, protocol.Response{Language: "c", Source: "int main(){}"}, humanly(), Delivery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(judge.jobs) != 2 || judge.jobs[0].Source != src.Source || judge.jobs[0].Submission != 1 || judge.jobs[1].Language != "c" ||
		judge.jobs[0].Question.Tests[1].Out != "10\n" || judge.jobs[0].PlayerID != alice.ID {
		t.Fatalf("jobs submitted: %+v", judge.jobs)
	}
	// Bob's verdict comes first, but alice's submission arrived first: bob's rank waits.
	v := protocol.Verdict{Verdict: protocol.AC, Passed: 2, Total: 2, TimeMs: 3, MemoryKB: 900}
	if err := s.Verdict(ctx, r.Code, 1, b1.ArrivalRank, v); err != nil {
		t.Fatal(err)
	}
	// Bob's first submission is his number 1, whoever submitted before him.
	if got := bc.toPlayer[bob.ID]; len(got) != 1 || got[0] != `{"type":"verdict","n":1,"submission":1,"language":"c","verdict":"AC","passed":2,"total":2,"timeMs":3,"memoryKB":900,"message":""}` {
		t.Fatalf("bob's frames after his verdict: %v, want only the verdict", got)
	}
	if err := s.Verdict(ctx, r.Code, 1, a1.ArrivalRank, protocol.Verdict{Verdict: "WA", Passed: 1, Total: 2, Message: "test 2: wrong answer"}); err != nil {
		t.Fatal(err)
	}
	if got := bc.toPlayer[bob.ID]; len(got) != 2 || !strings.Contains(got[1], `"type":"result"`) || !strings.Contains(got[1], `"rank":1,"points":100`) {
		t.Fatalf("bob's frames once alice's earlier submission was judged: %v, want his final result, rank 1", got)
	}
	if got := bc.toPlayer[alice.ID]; len(got) != 1 || !strings.Contains(got[0], `"verdict":"WA"`) {
		t.Fatalf("alice's frames: %v, want her WA verdict only", got)
	}

	// A busy judge: the player is told so, and the submission is kept with an IE verdict
	// saying it was not judged.
	judge.busy = true
	_, err = s.Answer(ctx, player(alice), 1, src, humanly(), Delivery{})
	if ErrorCode(err) != protocol.Busy || !strings.Contains(err.Error(), "7 submissions waiting") {
		t.Fatalf("a submission to a busy judge: got %v, want busy with the queue length", err)
	}
	answers, _ := s.Answers(ctx, r.Code, 1)
	if last := answers[len(answers)-1]; last.Verdict == nil || last.Verdict.Verdict != "IE" || !strings.Contains(last.Verdict.Message, "not judged") {
		t.Fatalf("the busy submission as stored: %+v", last)
	}
	w, err := s.Welcome(ctx, Identity{Room: r.Code, Role: RolePlayer, PlayerID: bob.ID})
	if err != nil || !strings.Contains(string(w), `"answered":{"type":"result","n":1,"accepted":true,"correct":true,"rank":1`) ||
		!strings.Contains(string(w), `"verdicts":[{"type":"verdict","n":1,"submission":1,"language":"c","verdict":"AC"`) ||
		!strings.Contains(string(w), `"submissions":[{"type":"result","n":1,"accepted":true,"correct":true,"rank":1,"points":100,"submission":1,"language":"c"}]`) ||
		!strings.Contains(string(w), `"languages":["python","c"]`) || strings.Contains(string(w), "tests") {
		t.Fatalf("bob's welcome after reconnecting: %s, %v", w, err)
	}
}

// TestSyncedReveal: under the synced reveal a reaction counts from the reveal instant,
// less the player's return delay (capped); an answer faster than falseStartMs is a false
// start, refused, stored wrong, and it uses up the player's answer; compensated timing
// ranks by that reaction, whatever the way out took.
func TestSyncedReveal(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t)
	qz := validQuiz()
	qz.Timing = Compensated
	r := mustCreate(t, s, qz)
	players := map[string]Player{}
	for _, name := range []string{"quick", "near", "far", "greedy"} {
		p, err := s.Join(ctx, r.Code, name)
		if err != nil {
			t.Fatal(err)
		}
		players[name] = p
	}
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	res, err := s.Start(ctx, r.Code, 1, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	S := res.Reveal
	answerWith := func(name string, choice int, after, returnDelay time.Duration) (protocol.Answer, error) {
		id := Identity{Room: r.Code, Role: RolePlayer, PlayerID: players[name].ID}
		d := Delivery{Reveal: S, ReturnDelay: returnDelay, Written: S.Add(-time.Second)} // the start went out long before
		return s.Answer(ctx, id, 1, protocol.Response{Choice: intp(choice)}, S.Add(after), d)
	}
	answer := func(name string, after, returnDelay time.Duration) (protocol.Answer, error) {
		return answerWith(name, 2, after, returnDelay)
	}
	// 60 ms after the reveal, 5 ms of it the way back: 55 ms, no person is that quick.
	a, err := answer("quick", 60*time.Millisecond, 5*time.Millisecond)
	if ErrorCode(err) != protocol.FalseStart || !a.FalseStart || a.Correct || *a.ReactionUs != 55_000 {
		t.Fatalf("a 55 ms reaction: got %+v, %v; want a false start, stored wrong", a, err)
	}
	if _, err := answerWith("quick", 1, 900*time.Millisecond, 5*time.Millisecond); ErrorCode(err) != protocol.AlreadyAnswered {
		t.Fatalf("another answer after a false start: got %v, want already_answered", err)
	}
	if _, err := answer("quick", 900*time.Millisecond, 5*time.Millisecond); ErrorCode(err) != protocol.FalseStart {
		t.Fatalf("the same answer again (a retry): got %v, want the stored false start", err)
	}
	// far's answer arrives later but took 60 ms to come back: it reacted first.
	if a, err := answer("far", 300*time.Millisecond, 60*time.Millisecond); err != nil || *a.ReactionUs != 240_000 {
		t.Fatalf("far: got %+v, %v; want reaction 240 ms", a, err)
	}
	if a, err := answer("near", 250*time.Millisecond, 2*time.Millisecond); err != nil || *a.ReactionUs != 248_000 {
		t.Fatalf("near: got %+v, %v; want reaction 248 ms", a, err)
	}
	// A claimed return delay of 2 s is capped.
	if a, err := answer("greedy", 400*time.Millisecond, 2*time.Second); err != nil || *a.ReactionUs != (400*time.Millisecond-ReturnDelayCap).Microseconds() {
		t.Fatalf("greedy: got %+v, %v; want the return delay capped at %v", a, err, ReturnDelayCap)
	}
	if _, err := s.Close(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ranked, err := s.Answers(ctx, r.Code, 1)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, a := range ranked {
		order = append(order, a.Name)
	}
	if want := []string{"far", "near", "greedy", "quick"}; !slices.Equal(order, want) {
		t.Errorf("ranked %v, want %v: by reaction from the reveal, the false start last", order, want)
	}
}

// TestSyncedRevealOnANewSocket: a player whose socket got no start of the question (it
// connected after the start went out; its welcome gave the reveal instant) is held to the
// room's reveal instant like everyone else: before it the answer is refused and changes
// nothing, too soon after it a false start.
func TestSyncedRevealOnANewSocket(t *testing.T) {
	ctx := context.Background()
	s, bc := newTestService(t)
	bc.mu.Lock()
	bc.lead = fakeLead
	bc.mu.Unlock()
	r := mustCreate(t, s, validQuiz())
	p, err := s.Join(ctx, r.Code, "mallory")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	res, err := s.Start(ctx, r.Code, 1, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{Room: r.Code, Role: RolePlayer, PlayerID: p.ID}
	answer := func(after time.Duration) (protocol.Answer, error) {
		return s.Answer(ctx, id, 1, protocol.Response{Choice: intp(2)}, res.Reveal.Add(after), Delivery{})
	}
	if _, err := answer(-10 * time.Millisecond); ErrorCode(err) != protocol.NotStarted {
		t.Fatalf("10 ms before the bulb: got %v, want not_started", err)
	}
	if a, err := answer(50 * time.Millisecond); ErrorCode(err) != protocol.FalseStart || !a.FalseStart || *a.ReactionUs != 50_000 {
		t.Fatalf("50 ms after the bulb: got %+v, %v; want a false start (the refused answer changed nothing)", a, err)
	}
}
