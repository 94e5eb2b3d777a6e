package quiz

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// MemoryStore is the in-memory engine's Store: one process, nothing to install. Each room
// has its own lock, so rooms never wait on each other. Where both are taken, a room's
// lock comes before the store's (Expire).
type MemoryStore struct {
	mu     sync.RWMutex
	rooms  map[string]*memRoom
	tokens map[string]Identity
	now    func() time.Time
}

var _ Store = (*MemoryStore)(nil)

type memRoom struct {
	mu        sync.Mutex
	gone      bool      // expired: deleted from the store
	active    time.Time // last activity (see Store.Expire)
	room      Room
	byID      map[string]int                 // player ID → index in room.Players
	names     map[string]string              // the players' foldName keys → player ID
	answers   map[int][]protocol.Answer      // by question, in arrival order
	answered  map[int]map[string]memAnswered // by question and player
	correct   map[int]int                    // by question, correct answers ranked so far
	finalized map[int]bool
	coding    map[int]*memCode // by code question
}

// memCode is what settling a code question needs besides its answers.
type memCode struct {
	settled     int            // submissions settled: the index of the first one waiting
	submissions map[string]int // per player
	solved      map[string]bool
	winners     map[string]bool // ranked players
}

// memAnswered is a player's answer to a question: where it is stored, and its submission's
// key.
type memAnswered struct {
	index int
	key   string
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{rooms: map[string]*memRoom{}, tokens: map[string]Identity{}, now: time.Now}
}

// lock returns the room with its lock held, or NotFound if it does not exist, or no
// longer: a room expired (Expire) while the caller waited for its lock is gone.
func (s *MemoryStore) lock(room string) (*memRoom, error) {
	s.mu.RLock()
	r := s.rooms[room]
	s.mu.RUnlock()
	if r != nil {
		r.mu.Lock()
		if !r.gone {
			return r, nil
		}
		r.mu.Unlock()
	}
	return nil, Errorf(protocol.NotFound, "room %s not found", room)
}

// CreateRoom implements Store.
func (s *MemoryStore) CreateRoom(_ context.Context, r *Room) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[r.Code] != nil {
		return Errorf(protocol.Conflict, "room %s exists", r.Code)
	}
	s.rooms[r.Code] = &memRoom{
		active:    activeAt(r, s.now()),
		room:      *cloneRoom(r),
		byID:      map[string]int{},
		names:     map[string]string{},
		answers:   map[int][]protocol.Answer{},
		answered:  map[int]map[string]memAnswered{},
		correct:   map[int]int{},
		finalized: map[int]bool{},
		coding:    map[int]*memCode{},
	}
	s.tokens[r.HostToken] = Identity{Room: r.Code, Role: RoleHost}
	return nil
}

// Room implements Store.
func (s *MemoryStore) Room(_ context.Context, room string) (*Room, error) {
	r, err := s.lock(room)
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	return cloneRoom(&r.room), nil
}

// Quiz implements Store.
func (s *MemoryStore) Quiz(_ context.Context, room string) (Quiz, error) {
	r, err := s.lock(room)
	if err != nil {
		return Quiz{}, err
	}
	defer r.mu.Unlock()
	return r.room.Quiz, nil
}

// Rooms implements Store.
func (s *MemoryStore) Rooms(ctx context.Context) ([]*Room, error) {
	s.mu.RLock()
	rooms := make([]string, 0, len(s.rooms))
	for room := range s.rooms {
		rooms = append(rooms, room)
	}
	s.mu.RUnlock()
	out := make([]*Room, 0, len(rooms))
	for _, room := range rooms {
		r, err := s.Room(ctx, room)
		if ErrorCode(err) == protocol.NotFound {
			continue // expired meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Room) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// AddPlayer implements Store.
func (s *MemoryStore) AddPlayer(_ context.Context, room string, p Player) error {
	key := foldName(p.Name)
	r, err := s.lock(room)
	if err != nil {
		return err
	}
	switch {
	case r.room.Locked:
		r.mu.Unlock()
		return errLocked
	case len(r.room.Players) >= MaxPlayers:
		r.mu.Unlock()
		return Errorf(protocol.Conflict, "room %s is full: %d players", room, MaxPlayers)
	case r.names[key] != "":
		r.mu.Unlock()
		return Errorf(protocol.Conflict, "the name %q is taken in this room", p.Name)
	}
	r.names[key] = p.ID
	r.byID[p.ID] = len(r.room.Players)
	r.room.Players = append(r.room.Players, p)
	r.room.Version++
	r.touch(s.now())
	r.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[room] != r {
		return roomNotFound(room) // expired since: its players' tokens are gone, so is this one
	}
	s.tokens[p.Token] = Identity{Room: room, Role: RolePlayer, PlayerID: p.ID, Name: p.Name}
	return nil
}

// touch records activity at now; activity never moves back here (only Update, whose
// schedules count, may move it).
func (r *memRoom) touch(now time.Time) {
	if now.After(r.active) {
		r.active = now
	}
}

// RemovePlayer implements Store.
func (s *MemoryStore) RemovePlayer(_ context.Context, room, playerID string) (Player, error) {
	r, err := s.lock(room)
	if err != nil {
		return Player{}, err
	}
	i, ok := r.byID[playerID]
	if !ok {
		r.mu.Unlock()
		return Player{}, Errorf(protocol.NotFound, "player %s is not in room %s", playerID, room)
	}
	p := r.room.Players[i]
	r.room.Players = slices.Delete(r.room.Players, i, i+1)
	delete(r.byID, playerID)
	for j := i; j < len(r.room.Players); j++ {
		r.byID[r.room.Players[j].ID] = j
	}
	if key := foldName(p.Name); r.names[key] == playerID {
		delete(r.names, key)
	}
	for _, c := range r.coding {
		c.winners[playerID] = true // ranked for good: a later verdict gives it no rank
	}
	r.room.Version++
	r.touch(s.now())
	r.mu.Unlock()

	s.mu.Lock()
	delete(s.tokens, p.Token)
	s.mu.Unlock()
	return p, nil
}

// Player implements Store.
func (s *MemoryStore) Player(_ context.Context, room, playerID string) (*Room, Player, error) {
	r, err := s.lock(room)
	if err != nil {
		return nil, Player{}, err
	}
	defer r.mu.Unlock()
	if playerID == "" {
		return roomHead(&r.room), Player{}, nil
	}
	i, ok := r.byID[playerID]
	if !ok {
		return nil, Player{}, Errorf(protocol.NotFound, "player %s is not in room %s", playerID, room)
	}
	return roomHead(&r.room), r.room.Players[i], nil
}

// Identify implements Store.
func (s *MemoryStore) Identify(_ context.Context, token string) (Identity, error) {
	s.mu.RLock()
	id, ok := s.tokens[token]
	s.mu.RUnlock()
	if !ok {
		return Identity{}, Errorf(protocol.Unauthorized, "unknown token")
	}
	return id, nil
}

// Update implements Store.
func (s *MemoryStore) Update(_ context.Context, room string, fn func(*Room) error) (*Room, error) {
	r, err := s.lock(room)
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	next := cloneRoom(&r.room)
	if err := fn(next); err != nil {
		return nil, err
	}
	next.Version = r.room.Version + 1
	r.room = *next
	r.active = activeAt(next, s.now())
	return cloneRoom(next), nil
}

// Accept implements Store.
func (s *MemoryStore) Accept(_ context.Context, room string, a protocol.Answer, sc Scoring) (protocol.Answer, bool, error) {
	r, err := s.lock(room)
	if err != nil {
		return protocol.Answer{}, false, err
	}
	defer r.mu.Unlock()
	now := s.now()
	if sc.QuizVersion != r.room.Quiz.Version {
		return protocol.Answer{}, false, ErrStaleQuiz
	}
	if err := checkAcceptable(&r.room, a.N); err != nil {
		return protocol.Answer{}, false, err
	}
	if sc.Code {
		a, err := r.acceptCode(a, sc, now)
		if err == nil {
			r.touch(now)
		}
		return a, false, err
	}
	if prior, ok := r.answered[a.N][a.PlayerID]; ok {
		if prior.key == responseKey(a.Response) { // the same answer again: a retry
			return r.answers[a.N][prior.index], true, nil
		}
		return protocol.Answer{}, false, Errorf(protocol.AlreadyAnswered, "you have already answered question %d", a.N)
	}
	p, err := r.stamp(&a, now)
	if err != nil {
		return protocol.Answer{}, false, err
	}
	elapsed := time.Duration(a.ElapsedUs) * time.Microsecond
	switch {
	case a.Correct && sc.Deferred:
		a.Pending = true
	case a.Correct:
		r.correct[a.N]++
		a.Rank = r.correct[a.N]
		a.Points = sc.Award(a.Rank, elapsed)
		r.room.Players[p].Score += a.Points
	}
	if r.answered[a.N] == nil {
		r.answered[a.N] = map[string]memAnswered{}
	}
	r.answered[a.N][a.PlayerID] = memAnswered{index: len(r.answers[a.N]), key: responseKey(a.Response)}
	r.answers[a.N] = append(r.answers[a.N], a)
	r.touch(now)
	return a, false, nil
}

// stamp fills in an answer's name, receive time and arrival rank, and returns the
// player's index.
func (r *memRoom) stamp(a *protocol.Answer, now time.Time) (int, error) {
	p, ok := r.byID[a.PlayerID]
	if !ok {
		return 0, Errorf(protocol.NotFound, "player %s is not in room %s", a.PlayerID, r.room.Code)
	}
	a.Name = r.room.Players[p].Name
	a.ReceivedAt = now
	a.ElapsedUs = max(now.Sub(r.room.StartedAt), 0).Microseconds() // another node's clock may be behind
	a.ArrivalRank = len(r.answers[a.N]) + 1
	a.Rank, a.Points, a.Pending, a.Verdict = 0, 0, false, nil
	return p, nil
}

// acceptCode stores a code submission, pending its verdict.
func (r *memRoom) acceptCode(a protocol.Answer, sc Scoring, now time.Time) (protocol.Answer, error) {
	c := r.codeOf(a.N)
	if c.solved[a.PlayerID] {
		return protocol.Answer{}, Errorf(protocol.AlreadyAnswered, "you already have an accepted submission to question %d", a.N)
	}
	if c.submissions[a.PlayerID] >= MaxSubmissions {
		return protocol.Answer{}, Errorf(protocol.RateLimited, "at most %d submissions to one question", MaxSubmissions)
	}
	if _, err := r.stamp(&a, now); err != nil {
		return protocol.Answer{}, err
	}
	a.Correct, a.Pending = false, true
	c.submissions[a.PlayerID]++
	r.answers[a.N] = append(r.answers[a.N], a)
	return a, nil
}

func (r *memRoom) codeOf(n int) *memCode {
	c := r.coding[n]
	if c == nil {
		c = &memCode{submissions: map[string]int{}, solved: map[string]bool{}, winners: map[string]bool{}}
		r.coding[n] = c
	}
	return c
}

// Verdict implements Store.
func (s *MemoryStore) Verdict(_ context.Context, room string, n, sub int, v protocol.Verdict, sc Scoring) (protocol.Answer, []protocol.Answer, error) {
	r, err := s.lock(room)
	if err != nil {
		return protocol.Answer{}, nil, err
	}
	defer r.mu.Unlock()
	answers := r.answers[n]
	if !sc.Code || sub < 1 || sub > len(answers) {
		return protocol.Answer{}, nil, Errorf(protocol.NotFound, "question %d has no code submission %d", n, sub)
	}
	if answers[sub-1].Verdict != nil {
		return answers[sub-1], nil, nil // recorded before: the first verdict stands
	}
	c := r.codeOf(n)
	answers[sub-1].Verdict = &v
	answers[sub-1].Correct = v.Verdict == protocol.AC
	if answers[sub-1].Correct {
		c.solved[answers[sub-1].PlayerID] = true
	}
	changed, next, correct := settle(answers, c.settled, c.winners, r.correct[n], sc)
	c.settled, r.correct[n] = next, correct
	final := make([]protocol.Answer, len(changed))
	for i, j := range changed {
		final[i] = answers[j]
		r.addScore(answers[j].PlayerID, answers[j].Points)
	}
	return answers[sub-1], final, nil
}

// checkAcceptable says whether question n of r takes answers: the authority on the memory
// engine, under the room's lock (see Store.Accept). The phase alone decides: a question
// goes live when its start fires, and comparing the clocks of different machines must not
// refuse answers.
func checkAcceptable(r *Room, n int) error {
	switch {
	case n > r.Current || (n == r.Current && (r.Phase == PhaseOpen || r.Phase == PhaseLobby)):
		return Errorf(protocol.NotStarted, "question %d has not started", n)
	case n < r.Current || r.Phase != PhaseLive: // closed, or the quiz finished
		return Errorf(protocol.Closed, "question %d is closed", n)
	}
	return nil
}

// Finalize implements Store.
func (s *MemoryStore) Finalize(_ context.Context, room string, n int, ranked []protocol.Answer) error {
	r, err := s.lock(room)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	if r.finalized[n] {
		return nil
	}
	r.finalized[n] = true
	byPlayer := make(map[string]protocol.Answer, len(ranked))
	for _, a := range ranked {
		byPlayer[a.PlayerID] = a
	}
	for i, a := range r.answers[n] {
		f, ok := byPlayer[a.PlayerID]
		if !ok {
			continue
		}
		a.Rank, a.Points, a.Pending, a.ReactionUs = f.Rank, f.Points, false, f.ReactionUs
		r.answers[n][i] = a
		r.addScore(a.PlayerID, a.Points)
	}
	return nil
}

// Expire implements Store. It takes each room's lock, then the store's: a room is deleted
// atomically with the check of its activity.
func (s *MemoryStore) Expire(_ context.Context, before time.Time) ([]string, error) {
	s.mu.RLock()
	rooms := make([]*memRoom, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.RUnlock()
	var gone []string
	for _, r := range rooms {
		r.mu.Lock()
		if !r.gone && r.active.Before(before) {
			s.forget(r)
			gone = append(gone, r.room.Code)
		}
		r.mu.Unlock()
	}
	slices.Sort(gone)
	return gone, nil
}

// DeleteRoom implements RoomDeleter: the room goes as an expired one does.
func (s *MemoryStore) DeleteRoom(_ context.Context, room string) error {
	r, err := s.lock(room)
	if err != nil {
		return err
	}
	s.forget(r)
	r.mu.Unlock()
	return nil
}

// forget takes room r, whose lock the caller holds, out of the store with its tokens.
func (s *MemoryStore) forget(r *memRoom) {
	r.gone = true
	s.mu.Lock()
	delete(s.rooms, r.room.Code)
	delete(s.tokens, r.room.HostToken)
	for _, p := range r.room.Players {
		delete(s.tokens, p.Token)
	}
	s.mu.Unlock()
}

// addScore adds points to a player's score, unless the player has left the room.
func (r *memRoom) addScore(playerID string, points int) {
	if i, ok := r.byID[playerID]; ok {
		r.room.Players[i].Score += points
	}
}

// Answers implements Store.
func (s *MemoryStore) Answers(_ context.Context, room string, n int) ([]protocol.Answer, error) {
	r, err := s.lock(room)
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	return slices.Clone(r.answers[n]), nil
}

// cloneRoom returns a deep copy of r, so callers never share memory with the store.
func cloneRoom(r *Room) *Room {
	c := roomHead(r)
	c.Players = slices.Clone(r.Players)
	return c
}

// roomHead returns a deep copy of r without its players.
func roomHead(r *Room) *Room {
	c := *r
	c.Players = nil
	c.Quiz.Winners = slices.Clone(r.Quiz.Winners)
	c.Quiz.Questions = slices.Clone(r.Quiz.Questions)
	return &c
}
