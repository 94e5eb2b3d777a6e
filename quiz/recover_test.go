package quiz

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/redistest"
	"github.com/bulbquiz/bulb/protocol"
)

// failFinalize is a store whose Finalize fails while full is set, as on a full disk.
type failFinalize struct {
	Store
	full bool
}

func (f *failFinalize) Finalize(ctx context.Context, room string, n int, ranked []protocol.Answer) error {
	if f.full {
		return Errorf(protocol.Unavailable, "no space left on device")
	}
	return f.Store.Finalize(ctx, room, n, ranked)
}

// TestCloseCutInTwo: a compensated question is closed, but its finalizing fails (or the
// server stops in between). A close again finishes it; so does the next start of a node
// (Run), whichever comes first; the answer is then ranked, once.
func TestCloseCutInTwo(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"a close again", "a restart"} {
		t.Run(how, func(t *testing.T) {
			store := &failFinalize{Store: NewMemoryStore()}
			s := NewService(Options{Store: store, Broadcaster: newFake(), Locker: NewMemoryLocker(), Logger: slog.New(slog.DiscardHandler)})
			qz := validQuiz()
			qz.Timing, qz.Winners = Compensated, []int{100, 60}
			r := mustCreate(t, s, qz)
			p, err := s.Join(ctx, r.Code, "p")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Open(ctx, r.Code, 1); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Start(ctx, r.Code, 1, time.Time{}); err != nil {
				t.Fatal(err)
			}
			id := Identity{Room: r.Code, Role: RolePlayer, PlayerID: p.ID}
			if _, err := s.Answer(ctx, id, 1, protocol.Response{Choice: intp(2)}, humanly(), Delivery{}); err != nil {
				t.Fatal(err)
			}
			store.full = true
			if _, err := s.Close(ctx, r.Code, 1, time.Time{}); ErrorCode(err) != protocol.Unavailable {
				t.Fatalf("a close whose finalizing fails: got %v, want unavailable", err)
			}
			store.full = false
			if how == "a close again" {
				if _, err := s.Close(ctx, r.Code, 1, time.Time{}); ErrorCode(err) != protocol.Conflict {
					t.Fatalf("closing again: got %v, want conflict (it is closed)", err)
				}
			} else {
				restarted := NewService(Options{Store: store, Broadcaster: newFake(), Locker: NewMemoryLocker(), Logger: slog.New(slog.DiscardHandler)})
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan error)
				go func() { done <- restarted.Run(rctx) }()
				defer func() { cancel(); <-done }()
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					if a, _ := store.Answers(ctx, r.Code, 1); !a[0].Pending || time.Now().After(deadline) {
						break
					}
				}
			}
			answers, err := store.Answers(ctx, r.Code, 1)
			if err != nil || len(answers) != 1 || answers[0].Pending || answers[0].Rank != 1 || answers[0].Points != 100 {
				t.Fatalf("after %s: %+v, %v; want the answer ranked 1 with 100 points", how, answers, err)
			}
			if _, pl, _ := store.Player(ctx, r.Code, p.ID); pl.Score != 100 {
				t.Fatalf("after %s: score %d, want 100 (once)", how, pl.Score)
			}
		})
	}
}

// TestResubmitWithoutJudge: a server that comes back without a judge (its sandbox gone)
// gives each code submission still waiting an IE verdict that says so, so that the
// submissions after it are ranked.
func TestResubmitWithoutJudge(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	r, sc := codeRoom(t, store)
	ada, bob := mustPlayer(t, store, r.Code, "ada"), mustPlayer(t, store, r.Code, "bob")
	first := submit(t, store, r.Code, sc, ada)
	second := submit(t, store, r.Code, sc, bob)
	if _, final, err := store.Verdict(ctx, r.Code, 1, second.ArrivalRank, verdict(protocol.AC), sc); err != nil || len(final) != 0 {
		t.Fatalf("bob's verdict before ada's: %+v, %v; want nothing final yet", final, err)
	}
	s := NewService(Options{Store: store, Broadcaster: newFake(), Locker: NewMemoryLocker(), Logger: slog.New(slog.DiscardHandler)})
	if n, err := s.Resubmit(ctx); err != nil || n != 1 {
		t.Fatalf("Resubmit: %d, %v; want 1", n, err)
	}
	answers, _ := store.Answers(ctx, r.Code, 1)
	if v := answers[0].Verdict; answers[0].ArrivalRank != first.ArrivalRank || v == nil || v.Verdict != protocol.IE {
		t.Fatalf("ada's submission: %+v, want an IE verdict", answers[0])
	}
	if answers[1].Rank != 1 || answers[1].Pending {
		t.Fatalf("bob's submission: %+v, want ranked 1 now", answers[1])
	}
}

// TestStartNotSentIsUndoneOnEveryEngine: a start that reached nobody puts the question
// back to open on every engine (Redis keeps instants to the microsecond: the undo compares
// the one it wrote), and the host's retry starts it.
func TestStartNotSentIsUndoneOnEveryEngine(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	engines := map[string]func() Store{
		"memory":   func() Store { return NewMemoryStore() },
		"embedded": func() Store { return openBolt(t, t.TempDir()) },
		"redis":    func() Store { return NewRedisStore(rdb, "undo:") },
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			bc := newFake()
			s := NewService(Options{Store: open(), Broadcaster: bc, Locker: NewMemoryLocker(), Logger: slog.New(slog.DiscardHandler)})
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error)
			go func() { done <- s.Run(runCtx) }()
			t.Cleanup(func() { cancel(); <-done })
			r := mustCreate(t, s, validQuiz())
			if _, err := s.Open(ctx, r.Code, 1); err != nil {
				t.Fatal(err)
			}
			bc.mu.Lock()
			bc.startErr = errors.New("the hub is down")
			bc.mu.Unlock()
			if _, err := s.Start(ctx, r.Code, 1, time.Time{}); ErrorCode(err) != protocol.Unavailable {
				t.Fatalf("a start that reached nobody: got %v, want unavailable", err)
			}
			if got, _ := s.Room(ctx, r.Code); got.Phase != PhaseOpen {
				t.Fatalf("after it: phase %s, want open", got.Phase)
			}
			bc.mu.Lock()
			bc.startErr = nil
			bc.mu.Unlock()
			if _, err := s.Start(ctx, r.Code, 1, time.Time{}); err != nil {
				t.Fatalf("the host's retry: %v", err)
			}
		})
	}
}

// TestAskAgainCompensated: a question under compensated timing is ranked once, at its
// close: asked again after it had answers, it is refused (rather than take answers that
// would stay pending for ever); one closed without answers may be asked again, and its
// answers then are ranked.
func TestAskAgainCompensated(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t)
	qz := validQuiz()
	qz.Timing = Compensated
	r := mustCreate(t, s, qz)
	ann, _ := s.Join(ctx, r.Code, "ann")
	ask := func(n int, p *Player) {
		t.Helper()
		if _, err := s.Open(ctx, r.Code, n); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Start(ctx, r.Code, n, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if p != nil {
			id := Identity{Room: r.Code, Role: RolePlayer, PlayerID: p.ID}
			if _, err := s.Answer(ctx, id, n, protocol.Response{Choice: intp(2)}, humanly(), Delivery{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Close(ctx, r.Code, n, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	ask(1, nil) // nobody answered
	ask(2, nil)
	ask(1, &ann) // asked again: answered now, and ranked at its close
	answers, err := s.Answers(ctx, r.Code, 1)
	if err != nil || len(answers) != 1 || answers[0].Pending || answers[0].Rank != 1 {
		t.Fatalf("question 1 asked again: got %+v, %v; want ann's answer ranked 1", answers, err)
	}
	if _, err := s.Open(ctx, r.Code, 1); ErrorCode(err) != protocol.Conflict {
		t.Fatalf("asking it a third time, after answers: got %v, want conflict", err)
	}
}
