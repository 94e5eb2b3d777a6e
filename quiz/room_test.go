package quiz

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

func TestRemovePlayer(t *testing.T) {
	ctx := context.Background()
	bc := newFake()
	judge := &fakeJudge{}
	s := NewService(Options{Store: NewMemoryStore(), Broadcaster: bc, Locker: NewMemoryLocker(), Judge: judge, Logger: slog.New(slog.DiscardHandler)})
	r := mustCreate(t, s, Quiz{Winners: []int{300, 200}, Questions: []Question{codeQuestion()}})
	mallory, _ := s.Join(ctx, r.Code, "mallory")
	bob, _ := s.Join(ctx, r.Code, "bob")
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	player := func(p Player) Identity { return Identity{Room: r.Code, Role: RolePlayer, PlayerID: p.ID, Name: p.Name} }
	src := protocol.Response{Language: "python", Source: "print(3)\n"}
	if _, err := s.Answer(ctx, player(mallory), 1, src, humanly(), Delivery{}); err != nil {
		t.Fatal(err) // submission 1: queued, and never judged
	}
	b1, err := s.Answer(ctx, player(bob), 1, src, humanly(), Delivery{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verdict(ctx, r.Code, 1, b1.ArrivalRank, protocol.Verdict{Verdict: protocol.AC, Passed: 2, Total: 2}); err != nil {
		t.Fatal(err)
	}
	bobsFrames := func() []string {
		bc.mu.Lock()
		defer bc.mu.Unlock()
		return slices.Clone(bc.toPlayer[bob.ID])
	}
	if got := bobsFrames(); len(got) != 1 {
		t.Fatalf("bob's frames: got %v, want his verdict only: his rank waits for mallory's submission", got)
	}

	p, err := s.Remove(ctx, r.Code, mallory.ID, true)
	if err != nil || p.ID != mallory.ID || p.Name != "mallory" {
		t.Fatalf("Remove: got %+v, %v; want mallory", p, err)
	}
	bc.mu.Lock()
	removed, frames := bc.removed[mallory.ID], slices.Clone(bc.frames)
	bc.mu.Unlock()
	if want := `{"type":"removed","message":"the host removed you from the room"}`; removed != want {
		t.Errorf("mallory's connection: closed after %q, want %s", removed, want)
	}
	if want := `{"type":"left","playerId":"` + mallory.ID + `","name":"mallory"}`; !slices.Contains(frames, want) {
		t.Errorf("the hosts' frames: got %v, want %s", frames, want)
	}
	// mallory's unjudged submission got an IE verdict, so bob's AC ranks at once
	if got := bobsFrames(); len(got) != 2 || !strings.Contains(got[1], `"type":"result"`) || !strings.Contains(got[1], `"rank":1,"points":300`) {
		t.Errorf("bob's frames after the removal: got %v, want his final result, rank 1 with 300", got)
	}
	answers, _ := s.Answers(ctx, r.Code, 1)
	if len(answers) != 2 || answers[1].PlayerID != mallory.ID || answers[1].Verdict == nil || answers[1].Verdict.Verdict != protocol.IE ||
		answers[1].Verdict.Message != "not judged: the player left the room" || answers[1].Pending {
		t.Errorf("mallory's submission: got %+v, want an IE verdict saying she left", answers)
	}
	if want := []string{r.Code + "/" + mallory.ID}; !slices.Equal(judge.dropped, want) {
		t.Errorf("judge drops: got %v, want %v", judge.dropped, want)
	}
	if _, err := s.Identify(ctx, mallory.Token); ErrorCode(err) != protocol.Unauthorized {
		t.Errorf("mallory's token: got %v, want unauthorized", err)
	}
	if _, err := s.Answer(ctx, player(mallory), 1, src, humanly(), Delivery{}); ErrorCode(err) != protocol.NotFound {
		t.Errorf("mallory's answer after the removal: got %v, want not_found", err)
	}
	if _, err := s.Remove(ctx, r.Code, mallory.ID, true); ErrorCode(err) != protocol.NotFound {
		t.Errorf("removing mallory twice: got %v, want not_found", err)
	}

	// A locked room takes nobody new; unlocked, it does again.
	if room, err := s.Lock(ctx, r.Code, true); err != nil || !room.Locked {
		t.Fatalf("Lock: got %+v, %v", room, err)
	}
	if _, err := s.Join(ctx, r.Code, "MALLORY"); ErrorCode(err) != protocol.Conflict || ErrorMessage(err) != "the room is locked" {
		t.Fatalf("joining a locked room: got %v, want conflict: the room is locked", err)
	}
	if _, err := s.Lock(ctx, r.Code, false); err != nil {
		t.Fatal(err)
	}
	again, err := s.Join(ctx, r.Code, "MALLORY") // her name is free again
	if err != nil {
		t.Fatalf("joining again once unlocked: %v", err)
	}

	// Once the question is closed, a removal sends everyone the leaderboard without the
	// player; a player that leaves is told it left.
	if _, err := s.Close(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(ctx, r.Code, bob.ID, false); err != nil {
		t.Fatal(err)
	}
	bc.mu.Lock()
	last, removed := bc.frames[len(bc.frames)-1], bc.removed[bob.ID]
	bc.mu.Unlock()
	if want := `{"type":"removed","message":"you left the room"}`; removed != want {
		t.Errorf("bob's connection: closed after %q, want %s", removed, want)
	}
	if want := `{"type":"leaderboard","entries":[{"playerId":"` + again.ID + `","name":"MALLORY","score":0,"rank":1}],"players":1}`; last != want {
		t.Errorf("the last frame: got %s, want %s", last, want)
	}
}

// TestRemovedPlayerTakesNoRankAtClose: under compensated timing, ranks are given at the
// close, among the players still in the room.
func TestRemovedPlayerTakesNoRankAtClose(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t)
	qz := validQuiz()
	qz.Timing, qz.Winners = Compensated, []int{100, 60}
	r := mustCreate(t, s, qz)
	fast, _ := s.Join(ctx, r.Code, "fast")
	slow, _ := s.Join(ctx, r.Code, "slow")
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Player{fast, slow} {
		if _, err := s.Answer(ctx, Identity{Room: r.Code, Role: RolePlayer, PlayerID: p.ID}, 1, protocol.Response{Choice: intp(2)}, humanly(), Delivery{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Remove(ctx, r.Code, fast.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Close(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	answers, _ := s.Answers(ctx, r.Code, 1)
	if len(answers) != 2 || answers[0].PlayerID != slow.ID || answers[0].Rank != 1 || answers[0].Points != 100 ||
		answers[1].PlayerID != fast.ID || answers[1].Rank != 0 || answers[1].Pending {
		t.Fatalf("got answers %+v, want slow ranked 1 with 100, the removed fast final with no rank", answers)
	}
	lb, _ := s.Leaderboard(ctx, r.Code)
	if len(lb) != 1 || lb[0].PlayerID != slow.ID || lb[0].Score != 100 {
		t.Fatalf("got leaderboard %+v, want slow alone with 100", lb)
	}
}

// sweepCounter is a store that counts the Expire calls under way at once.
type sweepCounter struct {
	Store
	mu             sync.Mutex
	running, most  int
	calls, expired int
}

func (c *sweepCounter) Expire(ctx context.Context, before time.Time) ([]string, error) {
	c.mu.Lock()
	c.running++
	c.calls++
	c.most = max(c.most, c.running)
	c.mu.Unlock()
	time.Sleep(5 * time.Millisecond) // long enough for an unguarded sweep of another node to overlap
	gone, err := c.Store.Expire(ctx, before)
	c.mu.Lock()
	c.running--
	c.expired += len(gone)
	c.mu.Unlock()
	return gone, err
}

// TestRoomsExpire runs two nodes' services on one store: a room quiet for the TTL is
// swept with its tokens, a room in use is not, and the nodes never sweep at once.
func TestRoomsExpire(t *testing.T) {
	ctx := context.Background()
	store := &sweepCounter{Store: NewMemoryStore()}
	locker := NewMemoryLocker()
	const ttl = 300 * time.Millisecond
	var nodes []*Service
	var fakes []*fakeBroadcaster
	for range 2 {
		bc := newFake()
		fakes = append(fakes, bc)
		s := NewService(Options{Store: store, Broadcaster: bc, Locker: locker, RoomTTL: ttl, Logger: slog.New(slog.DiscardHandler)})
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() { done <- s.Run(runCtx) }()
		t.Cleanup(func() { cancel(); <-done })
		nodes = append(nodes, s)
	}
	quiet := mustCreate(t, nodes[0], validQuiz())
	p, err := nodes[0].Join(ctx, quiet.Code, "quiet")
	if err != nil {
		t.Fatal(err)
	}
	busy := mustCreate(t, nodes[1], validQuiz())
	start := time.Now()
	for i := 0; ; i++ {
		if _, err := nodes[i%2].Room(ctx, quiet.Code); ErrorCode(err) == protocol.NotFound {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("the quiet room did not expire within 5 s")
		}
		if _, err := nodes[i%2].Join(ctx, busy.Code, fmt.Sprint("p", i)); err != nil { // busy stays in use
			t.Fatal(err)
		}
		time.Sleep(ttl / 6)
	}
	if took := time.Since(start); took < ttl {
		t.Fatalf("the quiet room expired after %v, before its TTL of %v", took, ttl)
	}
	if _, err := nodes[0].Identify(ctx, p.Token); ErrorCode(err) != protocol.Unauthorized {
		t.Fatalf("a player token of the expired room: got %v, want unauthorized", err)
	}
	if _, err := nodes[0].Identify(ctx, quiet.HostToken); ErrorCode(err) != protocol.Unauthorized {
		t.Fatalf("the host token of the expired room: got %v, want unauthorized", err)
	}
	if _, err := nodes[1].Room(ctx, busy.Code); err != nil {
		t.Fatalf("the room in use: %v", err)
	}
	var forgotten []string // by whichever node swept
	for _, bc := range fakes {
		bc.mu.Lock()
		forgotten = append(forgotten, bc.forgotten...)
		bc.mu.Unlock()
	}
	if !slices.Equal(forgotten, []string{quiet.Code}) {
		t.Fatalf("rooms the broadcaster was told to forget: got %v, want the expired one", forgotten)
	}
	waitFor(t, func() bool { _, err := nodes[1].Room(ctx, busy.Code); return ErrorCode(err) == protocol.NotFound })
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.most != 1 || store.calls < 4 || store.expired != 2 {
		t.Fatalf("got %d sweeps, at most %d at once, %d rooms expired; want several, one at a time, 2", store.calls, store.most, store.expired)
	}
}

// TestTimedStartOfExpiredRoom: a node whose timer fires for a room another node expired
// meanwhile gives up at once, without retrying.
func TestTimedStartOfExpiredRoom(t *testing.T) {
	ctx := context.Background()
	s, bc := newTestService(t)
	r := mustCreate(t, s, validQuiz())
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(time.Hour)
	if _, err := s.Start(ctx, r.Code, 1, at); err != nil {
		t.Fatal(err)
	}
	if gone, err := s.store.Expire(ctx, at.Add(time.Second)); err != nil || len(gone) != 1 {
		t.Fatalf("Expire: got %v, %v; want the room", gone, err)
	}
	start := time.Now()
	s.fire(ctx, r.Code, 1, ActionStart, at)
	if took := time.Since(start); took > leaseTTL/2 {
		t.Fatalf("fire took %v, want it to give up at once", took)
	}
	if bc.startCount() != 0 {
		t.Fatal("a start was sent for an expired room")
	}
}
