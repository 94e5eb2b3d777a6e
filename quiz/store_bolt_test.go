package quiz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bulbquiz/bulb/internal/testenv"
	"github.com/bulbquiz/bulb/protocol"
)

// openBolt opens a BoltStore on a database in dir, closed when the test ends.
func openBolt(t *testing.T, dir string) *BoltStore {
	t.Helper()
	s, err := OpenBoltStore(filepath.Join(dir, "bulb.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestBoltStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return openBolt(t, t.TempDir()) })
}

// TestBoltStoreReopened runs the contract on a BoltStore that is closed and opened again
// from its file before every read that follows a change: whatever the contract checks
// after a change holds of what the database kept, not only of what was in memory.
func TestBoltStoreReopened(t *testing.T) {
	testStore(t, func(t *testing.T) Store {
		w := &reopening{t: t, path: filepath.Join(t.TempDir(), "bulb.db"), now: time.Now}
		w.open()
		t.Cleanup(func() { w.s.Close() })
		return w
	})
}

// reopening is a Store that reopens its BoltStore before a read if anything changed.
type reopening struct {
	t     *testing.T
	path  string
	mu    sync.RWMutex
	s     *BoltStore
	dirty atomic.Bool
	now   func() time.Time
}

func (w *reopening) open() {
	s, err := OpenBoltStore(w.path, slog.New(slog.DiscardHandler))
	if err != nil {
		w.t.Fatal(err)
	}
	s.now = w.now
	w.s = s
}

// change runs a changing call; read runs a reading one, on a store reopened if need be.
func (w *reopening) change(fn func(s *BoltStore)) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	fn(w.s)
	w.dirty.Store(true)
}

func (w *reopening) read(fn func(s *BoltStore)) {
	w.mu.Lock()
	if w.dirty.Swap(false) {
		if err := w.s.Close(); err != nil {
			w.t.Error(err)
		}
		w.open()
	}
	w.mu.Unlock()
	w.mu.RLock()
	defer w.mu.RUnlock()
	fn(w.s)
}

func (w *reopening) setNow(now func() time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now, w.s.now = now, now
}

func (w *reopening) CreateRoom(ctx context.Context, r *Room) (err error) {
	w.change(func(s *BoltStore) { err = s.CreateRoom(ctx, r) })
	return
}

func (w *reopening) Room(ctx context.Context, room string) (r *Room, err error) {
	w.read(func(s *BoltStore) { r, err = s.Room(ctx, room) })
	return
}

func (w *reopening) Quiz(ctx context.Context, room string) (q Quiz, err error) {
	w.read(func(s *BoltStore) { q, err = s.Quiz(ctx, room) })
	return
}

func (w *reopening) Player(ctx context.Context, room, id string) (r *Room, p Player, err error) {
	w.read(func(s *BoltStore) { r, p, err = s.Player(ctx, room, id) })
	return
}

func (w *reopening) Rooms(ctx context.Context) (rs []*Room, err error) {
	w.read(func(s *BoltStore) { rs, err = s.Rooms(ctx) })
	return
}

func (w *reopening) AddPlayer(ctx context.Context, room string, p Player) (err error) {
	w.change(func(s *BoltStore) { err = s.AddPlayer(ctx, room, p) })
	return
}

func (w *reopening) RemovePlayer(ctx context.Context, room, id string) (p Player, err error) {
	w.change(func(s *BoltStore) { p, err = s.RemovePlayer(ctx, room, id) })
	return
}

func (w *reopening) Identify(ctx context.Context, token string) (id Identity, err error) {
	w.read(func(s *BoltStore) { id, err = s.Identify(ctx, token) })
	return
}

func (w *reopening) Update(ctx context.Context, room string, fn func(*Room) error) (r *Room, err error) {
	w.change(func(s *BoltStore) { r, err = s.Update(ctx, room, fn) })
	return
}

func (w *reopening) Accept(ctx context.Context, room string, a protocol.Answer, sc Scoring) (got protocol.Answer, replayed bool, err error) {
	w.change(func(s *BoltStore) { got, replayed, err = s.Accept(ctx, room, a, sc) })
	return
}

func (w *reopening) Verdict(ctx context.Context, room string, n, sub int, v protocol.Verdict, sc Scoring) (got protocol.Answer, final []protocol.Answer, err error) {
	w.change(func(s *BoltStore) { got, final, err = s.Verdict(ctx, room, n, sub, v, sc) })
	return
}

func (w *reopening) Finalize(ctx context.Context, room string, n int, ranked []protocol.Answer) (err error) {
	w.change(func(s *BoltStore) { err = s.Finalize(ctx, room, n, ranked) })
	return
}

func (w *reopening) Answers(ctx context.Context, room string, n int) (as []protocol.Answer, err error) {
	w.read(func(s *BoltStore) { as, err = s.Answers(ctx, room, n) })
	return
}

func (w *reopening) DeleteRoom(ctx context.Context, room string) (err error) {
	w.change(func(s *BoltStore) { err = s.DeleteRoom(ctx, room) })
	return
}

func (w *reopening) Expire(ctx context.Context, before time.Time) (gone []string, err error) {
	w.change(func(s *BoltStore) { gone, err = s.Expire(ctx, before) })
	return
}

// TestBoltStoreGroupCommit checks that changes made at once share commits: 256 answers
// from as many goroutines take far fewer commits than answers, and every one is kept.
func TestBoltStoreGroupCommit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openBolt(t, dir)
	r := mustRoom(t, s, []int{100, 60, 30})
	const players = 256
	var ps []Player
	for i := range players {
		ps = append(ps, mustPlayer(t, s, r.Code, fmt.Sprintf("p%03d", i)))
	}
	goLive(t, s, r.Code, 1)
	before := s.Stats()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() {
			if _, _, err := s.Accept(ctx, r.Code, protocol.Answer{N: 1, PlayerID: p.ID, Response: protocol.Response{Choice: intp(2)}, Correct: true}, ScoringFor(r.Quiz, 1)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	after := s.Stats()
	commits, changes := after.Commits-before.Commits, after.Changes-before.Changes
	t.Logf("%d answers: %d changes in %d commits", players, changes, commits)
	if changes != players || commits >= players/4 {
		t.Errorf("%d answers made %d changes in %d commits: want %d changes in fewer than %d commits", players, changes, commits, players, players/4)
	}
	s.Close()
	s = openBolt(t, dir)
	answers, err := s.Answers(ctx, r.Code, 1)
	if err != nil || len(answers) != players {
		t.Fatalf("after reopening: %d answers, %v; want %d", len(answers), err, players)
	}
	mustRaceRanks(t, answers, make([]error, len(answers)))
}

// TestBoltStoreLocked checks that a second store on the same file is refused at once.
func TestBoltStoreLocked(t *testing.T) {
	dir := t.TempDir()
	openBolt(t, dir)
	_, err := OpenBoltStore(filepath.Join(dir, "bulb.db"), nil)
	if !errors.Is(err, ErrDataLocked) {
		t.Fatalf("second open: got %v, want ErrDataLocked", err)
	}
}

// TestBoltStoreNotADatabase checks that a file that is not a Bulb database is refused,
// and left as it was.
func TestBoltStoreNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bulb.db")
	junk := []byte(strings.Repeat("not a database\n", 1000))
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBoltStore(path, nil); err == nil {
		t.Fatal("opening a file of text: no error")
	}
	if got, _ := os.ReadFile(path); string(got) != string(junk) {
		t.Fatal("the file was changed")
	}
}

// TestBoltStoreDiskFull fills the file system under the database (a small tmpfs): a change
// that cannot be written fails with Unavailable and changes nothing, in memory or on disk;
// Health says why; once space returns, Health recovers by itself and changes work again.
func TestBoltStoreDiskFull(t *testing.T) {
	ctx := context.Background()
	dir := testenv.SmallFS(t, 4<<20)
	s := openBolt(t, dir)
	r, sc := codeRoom(t, s)
	alice := mustPlayer(t, s, r.Code, "alice")
	bob := mustPlayer(t, s, r.Code, "bob")
	first := submit(t, s, r.Code, sc, alice)

	filler := filepath.Join(dir, "filler")
	testenv.Fill(t, filler)
	big := protocol.Answer{N: 1, PlayerID: bob.ID, Response: protocol.Response{Language: "python", Source: strings.Repeat("#", MaxCode-10)}}
	var err error
	for range 20 { // a change that fits in pages the file already has is saved: write more
		if _, _, err = s.Accept(ctx, r.Code, big, sc); err != nil {
			break
		}
	}
	if ErrorCode(err) != protocol.Unavailable {
		t.Fatalf("a submission on a full disk: got %v, want unavailable", err)
	}
	if s.Health() == nil || !strings.Contains(s.Health().Error(), "no space left") {
		t.Fatalf("Health on a full disk: got %v, want why", s.Health())
	}
	// The store probes with writes as large as the one that failed: should Health say all
	// is well while the disk is still full (the failed write's pages may be the file's
	// now), a change as large fits.
	time.Sleep(2 * probeEvery)
	if s.Health() == nil {
		if _, _, err := s.Accept(ctx, r.Code, big, sc); err != nil {
			t.Fatalf("Health is nil on the full disk, but a change as large as the one that failed fails: %v", err)
		}
	}
	// Submissions at once, some of them in the flushes that fail: what the store shows
	// afterwards is what the database has.
	var wg sync.WaitGroup
	for i := range 8 {
		p := mustPlayerOrSkip(s, r.Code, "late"+string(rune('a'+i)))
		wg.Go(func() {
			a := big
			a.PlayerID = p.ID
			s.Accept(ctx, r.Code, a, sc)
		})
	}
	wg.Wait()
	before := snapshot(t, s, r.Code)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Health() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Health 5 s after space returned: %v", s.Health())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Close()
	s = openBolt(t, dir)
	if after := snapshot(t, s, r.Code); after != before {
		t.Fatalf("reopened:\n%s\nwant what the store showed on the full disk:\n%s", after, before)
	}
	if _, final, err := s.Verdict(ctx, r.Code, 1, first.ArrivalRank, verdict(protocol.AC), sc); err != nil || len(final) != 1 || final[0].Rank != 1 {
		t.Fatalf("a verdict once space returned: got %+v, %v; want rank 1", final, err)
	}
	if _, _, err := s.Accept(ctx, r.Code, big, sc); err != nil {
		t.Fatalf("a submission once space returned: %v", err)
	}
	saved, _ := s.Answers(ctx, r.Code, 1)
	s.Close()
	s = openBolt(t, dir)
	got, err := s.Answers(ctx, r.Code, 1)
	if err != nil || len(got) != len(saved) || got[0].Rank != 1 {
		t.Fatalf("after reopening: %+v, %v; want the %d saved submissions, the first ranked", got, err, len(saved))
	}
	_, p, _ := s.Player(ctx, r.Code, alice.ID)
	if p.Score != got[0].Points || p.Score == 0 {
		t.Fatalf("alice's score after reopening: %d, want %d", p.Score, got[0].Points)
	}
}

// mustPlayerOrSkip adds a player if the store can (the disk may be full); the player is
// returned either way, for its answers to be refused if it is not there.
func mustPlayerOrSkip(s Store, code, name string) Player {
	p := Player{ID: "id-" + name, Name: name, Token: Token()}
	s.AddPlayer(context.Background(), code, p)
	return p
}

// snapshot is all a room holds, as text to compare.
func snapshot(t *testing.T, s Store, code string) string {
	t.Helper()
	ctx := context.Background()
	r, err := s.Room(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	out := []any{r}
	for n := range len(r.Quiz.Questions) {
		answers, err := s.Answers(ctx, code, n+1)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, answers)
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBoltRoomKeepsEveryField: a room's record keeps every field of Room (a field added to
// Room and not to boltRoom would be lost in a restart). Each field but the quiz and the
// players, which have records of their own, is set to a value other than its zero and
// must come back from the database as it was.
func TestBoltRoomKeepsEveryField(t *testing.T) {
	s := openBolt(t, t.TempDir())
	r := mustRoom(t, s, nil)
	at := time.Date(2026, 12, 6, 10, 11, 12, 13, time.UTC)
	v := reflect.ValueOf(r).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch {
		case name == "Quiz" || name == "Players" || name == "Code" || name == "HostToken":
			continue // records of their own, or the room's key and identity
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(at.Add(time.Duration(i) * time.Hour)))
		case f.Type() == reflect.TypeFor[Phase]():
			f.Set(reflect.ValueOf(PhaseLive))
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.CanInt():
			f.SetInt(int64(40 + i))
		case f.Kind() == reflect.String:
			f.SetString("value of " + name)
		default:
			t.Fatalf("Room.%s is a %s: teach this test to set one", name, f.Type())
		}
	}
	want := *r
	if _, err := s.Update(context.Background(), r.Code, func(room *Room) error {
		version := room.Version
		*room = want
		room.Players = nil
		room.Version = version
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	path := s.Path()
	s.Close()
	s, err := OpenBoltStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Room(context.Background(), r.Code)
	if err != nil {
		t.Fatal(err)
	}
	gv := reflect.ValueOf(got).Elem()
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if name == "Quiz" || name == "Players" || name == "Version" {
			continue
		}
		if !reflect.DeepEqual(gv.Field(i).Interface(), v.Field(i).Interface()) {
			t.Errorf("Room.%s: %v after a restart, want %v", name, gv.Field(i).Interface(), v.Field(i).Interface())
		}
	}
}

// holdWriter takes the database's writer for the test until release is closed: the
// journal's next commit waits, as behind a slow disk.
func holdWriter(t *testing.T, s *BoltStore) (release func()) {
	t.Helper()
	held, free, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.db.Update(func(*bolt.Tx) error { close(held); <-free; return nil })
	}()
	<-held
	return func() {
		close(free)
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestBoltStoreWaitsForTheDisk: while a change waits for its commit (a slow disk), its
// call waits however long that takes (a call told it failed must not see its change made
// later), and so do reads of the room: nobody is shown what could still be undone.
func TestBoltStoreWaitsForTheDisk(t *testing.T) {
	ctx := context.Background()
	s := openBolt(t, t.TempDir())
	r := mustRoom(t, s, nil)
	release := holdWriter(t, s)
	updated, read := make(chan error, 1), make(chan *Room, 1)
	go func() {
		_, err := s.Update(ctx, r.Code, func(r *Room) error { r.Current, r.Phase = 1, PhaseOpen; return nil })
		updated <- err
	}()
	time.Sleep(50 * time.Millisecond) // the change is made in memory and waits for the disk
	go func() {
		room, err := s.Room(ctx, r.Code)
		if err != nil {
			t.Error(err)
		}
		read <- room
	}()
	select {
	case err := <-updated:
		t.Fatalf("the change returned (%v) before it was on disk", err)
	case room := <-read:
		t.Fatalf("a read returned the room (phase %s) before its change was on disk", room.Phase)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	if err := <-updated; err != nil {
		t.Fatal(err)
	}
	if room := <-read; room.Phase != PhaseOpen {
		t.Fatalf("the read after the commit: phase %s, want open", room.Phase)
	}
}
