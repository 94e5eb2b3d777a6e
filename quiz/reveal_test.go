package quiz

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// answerAt answers question n as p, a person's reaction after the start (no false start).
func answerAt(t *testing.T, s *Service, room string, p Player, n int, resp protocol.Response) protocol.Answer {
	t.Helper()
	r, _ := s.Room(context.Background(), room)
	received := time.Now()
	if wait := time.Until(r.StartedAt.Add(150 * time.Millisecond)); wait > 0 {
		time.Sleep(wait) // the synced reveal's instant, and a person's reaction after it
		received = time.Now()
	}
	a, err := s.Answer(context.Background(), Identity{Room: room, Role: RolePlayer, PlayerID: p.ID}, n, resp, received,
		Delivery{Reveal: r.StartedAt})
	if err != nil {
		t.Fatalf("%s answers %d: %v", p.Name, n, err)
	}
	return a
}

// TestRevealAndStandings: at the close everyone gets the reveal (the right answer, the
// count per choice, the fastest right answers), then each player its standing: points and
// rank on the question, score and place. Before the close, presenters get only counts.
func TestRevealAndStandings(t *testing.T) {
	ctx := context.Background()
	s, bc := newTestService(t)
	qz := validQuiz()
	qz.Winners = []int{100, 60}
	r := mustCreate(t, s, qz)
	ada, _ := s.Join(ctx, r.Code, "ada")
	bob, _ := s.Join(ctx, r.Code, "bob")
	cy, _ := s.Join(ctx, r.Code, "cy")
	dee, _ := s.Join(ctx, r.Code, "dee") // never answers
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	answerAt(t, s, r.Code, bob, 1, protocol.Response{Choice: intp(2)})
	answerAt(t, s, r.Code, ada, 1, protocol.Response{Choice: intp(2)})
	answerAt(t, s, r.Code, cy, 1, protocol.Response{Choice: intp(0)})

	bc.mu.Lock()
	present := strings.Join(bc.present, "\n")
	bc.mu.Unlock()
	if want := `{"type":"tally","n":1,"answers":1}` + "\n" + `{"type":"tally","n":1,"answers":2}` + "\n" + `{"type":"tally","n":1,"answers":3}`; !strings.Contains(present, want) {
		t.Errorf("presenters before the close: got %s, want the three tallies", present)
	}
	if strings.Contains(present, "correct") || strings.Contains(present, "choice") || strings.Contains(present, `"answer"`) {
		t.Errorf("presenters before the close got an answer: %s", present)
	}

	if _, err := s.Close(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	bc.mu.Lock()
	reveals := framesOfType(bc.frames, "reveal")
	standings := map[string][]string{}
	for _, p := range []Player{ada, bob, cy, dee} {
		standings[p.Name] = framesOfType(bc.toPlayer[p.ID], "standing")
	}
	bc.mu.Unlock()
	if len(reveals) != 1 {
		t.Fatalf("reveals: got %v, want one", reveals)
	}
	var rv protocol.RevealFrame
	if err := json.Unmarshal([]byte(reveals[0]), &rv); err != nil {
		t.Fatal(err)
	}
	if rv.Answer == nil || *rv.Answer != 2 || len(rv.Counts) != 3 || rv.Counts[0] != 1 || rv.Counts[2] != 2 || rv.Answered != 3 || rv.Correct != 2 ||
		len(rv.Fastest) != 2 || rv.Fastest[0].Name != "bob" || rv.Fastest[0].Points != 100 || rv.Fastest[1].Name != "ada" {
		t.Errorf("reveal: got %s, want answer 2, counts [1 0 2], 3 answered, 2 right, bob then ada fastest", reveals[0])
	}
	for name, want := range map[string]string{
		"bob": `{"type":"standing","n":1,"answered":true,"correct":true,"rank":1,"points":100,"score":100,"place":1,"players":4}`,
		"ada": `{"type":"standing","n":1,"answered":true,"correct":true,"rank":2,"points":60,"score":60,"place":2,"players":4}`,
		"cy":  `{"type":"standing","n":1,"answered":true,"correct":false,"rank":0,"points":0,"score":0,"place":3,"players":4}`,
		"dee": `{"type":"standing","n":1,"answered":false,"correct":false,"rank":0,"points":0,"score":0,"place":3,"players":4}`,
	} {
		if got := standings[name]; len(got) != 1 || got[0] != want {
			t.Errorf("%s's standing: got %v, want %s", name, got, want)
		}
	}
	// A player who connects again after the close finds the reveal in its welcome.
	w, err := s.Welcome(ctx, Identity{Room: r.Code, Role: RolePlayer, PlayerID: cy.ID})
	if err != nil || !strings.Contains(string(w), `"reveal":{"type":"reveal","n":1,"kind":"choice","answer":2`) {
		t.Errorf("cy's welcome after the close: %s, %v", w, err)
	}
}

// TestTimeLimitClosesOnce: a question with a time limit closes by itself that long after
// its start (its reveal instant), once; everyone is told when (a timer frame), and the
// close comes with its reveal. A manual close first cancels it.
func TestTimeLimitClosesOnce(t *testing.T) {
	ctx := context.Background()
	s, bc := newTestService(t)
	qz := validQuiz()
	qz.Questions[0].TimeLimitMs = 1000
	r := mustCreate(t, s, qz)
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	res, err := s.Start(ctx, r.Code, 1, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	room, _ := s.Room(ctx, r.Code)
	if want := res.Reveal.Add(time.Second); !room.CloseAt.Equal(want) {
		t.Fatalf("closeAt: got %v, want the reveal instant plus the limit, %v", room.CloseAt, want)
	}
	bc.mu.Lock()
	timers := framesOfType(bc.frames, "timer")
	bc.mu.Unlock()
	if len(timers) != 1 || !strings.Contains(timers[0], `"n":1,"endsAt":`) {
		t.Fatalf("timer frames: got %v, want one", timers)
	}
	waitFor(t, func() bool {
		room, _ := s.Room(ctx, r.Code)
		return room.Phase == PhaseClosed
	})
	if late := time.Since(res.Reveal.Add(time.Second)); late < 0 || late > time.Second {
		t.Errorf("closed %v after its time, want within a second", late)
	}
	time.Sleep(50 * time.Millisecond)
	bc.mu.Lock()
	closes, reveals := len(framesOfType(bc.frames, "close")), len(framesOfType(bc.frames, "reveal"))
	bc.mu.Unlock()
	if closes != 1 || reveals != 1 {
		t.Errorf("got %d close and %d reveal frames, want one each", closes, reveals)
	}

	// Question 2 has no time limit (a Go zero): it stays live until the host closes it.
	if _, err := s.Open(ctx, r.Code, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx, r.Code, 2, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if room, _ := s.Room(ctx, r.Code); !room.CloseAt.IsZero() || room.Phase != PhaseLive {
		t.Errorf("a question without a time limit: got phase %s, close at %v, want live with no close", room.Phase, room.CloseAt)
	}
}

// TestFinish: ending the quiz closes a live question, finishes the room for good (no
// answers, no question opens), and tells everyone the podium and each player its final
// place.
func TestFinish(t *testing.T) {
	ctx := context.Background()
	s, bc := newTestService(t)
	r := mustCreate(t, s, validQuiz())
	ada, _ := s.Join(ctx, r.Code, "ada")
	bob, _ := s.Join(ctx, r.Code, "bob")
	if _, err := s.Open(ctx, r.Code, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx, r.Code, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	answerAt(t, s, r.Code, ada, 1, protocol.Response{Choice: intp(2)})
	if _, err := s.Finish(ctx, r.Code); err != nil {
		t.Fatal(err)
	}
	room, _ := s.Room(ctx, r.Code)
	if room.Phase != PhaseFinished {
		t.Fatalf("phase: got %s, want finished", room.Phase)
	}
	_, err := s.Answer(ctx, Identity{Room: r.Code, Role: RolePlayer, PlayerID: bob.ID}, 1, protocol.Response{Choice: intp(2)}, humanly(), Delivery{})
	if ErrorCode(err) != protocol.Closed {
		t.Errorf("an answer once finished: got %v, want closed", err)
	}
	for what, err := range map[string]error{
		"open":   func() error { _, err := s.Open(ctx, r.Code, 2); return err }(),
		"finish": func() error { _, err := s.Finish(ctx, r.Code); return err }(),
	} {
		if ErrorCode(err) != protocol.Conflict {
			t.Errorf("%s once finished: got %v, want conflict", what, err)
		}
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if f := framesOfType(bc.frames, "finished"); len(f) != 1 ||
		f[0] != `{"type":"finished","podium":[{"playerId":"`+ada.ID+`","name":"ada","score":100,"rank":1},{"playerId":"`+bob.ID+`","name":"bob","score":0,"rank":2}],"players":2}` {
		t.Errorf("finished frames: got %v", f)
	}
	if n := len(framesOfType(bc.frames, "close")); n != 1 {
		t.Errorf("close frames: got %d, want 1 (the live question)", n)
	}
	st := framesOfType(bc.toPlayer[bob.ID], "standing")
	if len(st) != 2 || !strings.Contains(st[1], `"place":2,"players":2,"final":true`) {
		t.Errorf("bob's standings: got %v, want the close's, then his final place 2 of 2", st)
	}
}

// TestPresenterToken: a room's presenter token identifies a presenter of that room only;
// a forged or another room's is unknown, as is one of an unknown room.
func TestPresenterToken(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestService(t)
	r := mustCreate(t, s, validQuiz())
	other := mustCreate(t, s, validQuiz())
	tok := PresenterToken(r.Code, r.HostToken)
	if id, err := s.Identify(ctx, tok); err != nil || id.Role != RolePresenter || id.Room != r.Code {
		t.Fatalf("the presenter token: got %+v, %v", id, err)
	}
	for name, bad := range map[string]string{
		"another room's":  r.Code + tok[strings.IndexByte(tok, '.'):len(tok)-1] + "0",
		"for another key": PresenterToken(r.Code, other.HostToken),
		"of no room":      PresenterToken("000000x", r.HostToken),
		"empty mac":       r.Code + ".",
	} {
		if bad == tok {
			continue
		}
		if _, err := s.Identify(ctx, bad); ErrorCode(err) != protocol.Unauthorized {
			t.Errorf("%s: got %v, want unauthorized", name, err)
		}
	}
}

// TestDeleteRoom: a deleted room is gone at once, with its tokens; its players are told
// and disconnected, its hosts and presenters told.
func TestDeleteRoom(t *testing.T) {
	ctx := context.Background()
	s, bc := newTestService(t)
	r := mustCreate(t, s, validQuiz())
	ada, _ := s.Join(ctx, r.Code, "ada")
	if err := s.DeleteRoom(ctx, r.Code); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Room(ctx, r.Code); ErrorCode(err) != protocol.NotFound {
		t.Errorf("the room after deletion: got %v, want not found", err)
	}
	for _, tok := range []string{r.HostToken, ada.Token, PresenterToken(r.Code, r.HostToken)} {
		if _, err := s.Identify(ctx, tok); ErrorCode(err) != protocol.Unauthorized {
			t.Errorf("a token after deletion: got %v, want unauthorized", err)
		}
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if got := bc.removed[ada.ID]; !strings.Contains(got, "deleted") {
		t.Errorf("ada's last frame: got %q, want removed, the room deleted", got)
	}
	if len(framesOfType(bc.present, "deleted")) != 1 {
		t.Errorf("presenters: got %v, want a deleted frame", bc.present)
	}
	if !slices.Equal(bc.forgotten, []string{r.Code}) {
		t.Errorf("rooms the broadcaster was told to forget: got %v, want the deleted one", bc.forgotten)
	}
	if err := s.DeleteRoom(ctx, r.Code); ErrorCode(err) != protocol.NotFound {
		t.Errorf("deleting it again: got %v, want not found", err)
	}
}
