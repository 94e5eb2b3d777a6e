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
//
// It is also the state of the embedded engine (BoltStore), whose journal writes every
// change to disk before the call that made it returns.
type MemoryStore struct {
	mu     sync.RWMutex
	rooms  map[string]*memRoom
	tokens map[string]Identity
	now    func() time.Time
	j      *journal // nil on the memory engine
}

var _ Store = (*MemoryStore)(nil)

type memRoom struct {
	mu      sync.Mutex
	gone    bool   // expired: deleted from the store
	pending *flush // the journal's flush with the room's latest change; nil on the memory engine
	memState
}

// memState is what a room holds: the room, and what its calls look up.
type memState struct {
	active    time.Time // last activity (see Store.Expire)
	room      Room
	joins     int                            // players who ever joined: the next one's seat
	seats     map[string]int                 // player ID → its seat: its place in join order, for good
	byID      map[string]int                 // player ID → index in room.Players
	names     map[string]string              // the players' foldName keys → player ID
	answers   map[int][]protocol.Answer      // by question, in arrival order
	answered  map[int]map[string]memAnswered // by question and player
	correct   map[int]int                    // by question, correct answers ranked so far
	finalized map[int]bool
	coding    map[int]*memCode // by code question
}

// change is what one call changed in a room: the records a durable engine writes.
type change struct {
	created, deleted bool
	head             bool        // the room's own record: phase, schedule, version, lock, activity
	quiz             bool        // the room's quiz
	joined           []string    // IDs of players who joined
	left             []int       // seats of players who left
	answers          []answerPos // answers stored or changed
	finalized        []int       // questions finalized
}

// answerPos is where an answer is: the i-th (from 0) to question n.
type answerPos struct{ n, i int }

func (c *change) empty() bool {
	return !c.created && !c.deleted && !c.head && !c.quiz && len(c.joined)+len(c.left)+len(c.answers)+len(c.finalized) == 0
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

// newMemState returns the state of a new room r, active at now.
func newMemState(r *Room, now time.Time) memState {
	return memState{
		active:    activeAt(r, now),
		room:      *cloneRoom(r),
		seats:     map[string]int{},
		byID:      map[string]int{},
		names:     map[string]string{},
		answers:   map[int][]protocol.Answer{},
		answered:  map[int]map[string]memAnswered{},
		correct:   map[int]int{},
		finalized: map[int]bool{},
		coding:    map[int]*memCode{},
	}
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
	return nil, roomNotFound(room)
}

// edit runs fn on the room under its lock; fn records in ch what it changed, and must
// change nothing if it fails. On the embedded engine edit returns once the room's changes
// so far, this one's too, are on disk: no reply tells of a change that could still be
// lost. If they could not be written, it returns Unavailable and the room is as it was.
func (s *MemoryStore) edit(room string, fn func(r *memRoom, ch *change) error) error {
	if s.j == nil {
		r, err := s.lock(room)
		if err != nil {
			return err
		}
		defer r.mu.Unlock()
		return fn(r, &change{})
	}
	s.j.world.RLock()
	r, err := s.lock(room)
	if err != nil {
		s.j.world.RUnlock()
		return err
	}
	var ch change
	err = fn(r, &ch)
	if err == nil && !ch.empty() {
		s.j.write(r, &ch)
	}
	f := r.pending
	r.mu.Unlock()
	s.j.world.RUnlock()
	if werr := s.j.wait(f); werr != nil {
		return werr
	}
	return err
}

// CreateRoom implements Store.
func (s *MemoryStore) CreateRoom(_ context.Context, r *Room) error {
	if s.j == nil {
		_, err := s.create(r)
		return err
	}
	s.j.world.RLock()
	f, err := s.create(r)
	s.j.world.RUnlock()
	if err != nil {
		return err
	}
	return s.j.wait(f)
}

// create adds room r and returns the journal's flush of its creation (nil on the memory
// engine).
func (s *MemoryStore) create(r *Room) (*flush, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[r.Code] != nil {
		return nil, Errorf(protocol.Conflict, "room %s exists", r.Code)
	}
	m := &memRoom{memState: newMemState(r, s.now())}
	s.rooms[r.Code] = m
	s.tokens[r.HostToken] = Identity{Room: r.Code, Role: RoleHost}
	if s.j != nil {
		// Under the store's lock: nobody finds the room before its creation is queued.
		s.j.write(m, &change{created: true})
	}
	return m.pending, nil
}

// view runs fn on the room under its lock. On the embedded engine it then waits until
// the room's changes so far are on disk: nobody is shown a change that could still be
// undone. If they could not be written, it returns Unavailable (the room is back as it
// was: read it again).
func (s *MemoryStore) view(room string, fn func(r *memRoom)) error {
	r, err := s.lock(room)
	if err != nil {
		return err
	}
	fn(r)
	f := r.pending
	r.mu.Unlock()
	if s.j != nil {
		return s.j.wait(f)
	}
	return nil
}

// Room implements Store.
func (s *MemoryStore) Room(_ context.Context, room string) (*Room, error) {
	var out *Room
	if err := s.view(room, func(r *memRoom) { out = cloneRoom(&r.room) }); err != nil {
		return nil, err
	}
	return out, nil
}

// Quiz implements Store. It does not wait for the room's changes to be on disk, as the
// other reads do: it is on the path of every answer, which waits for its own change (and
// the quiz changes only in the lobby or between questions).
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
	return s.edit(room, func(r *memRoom, ch *change) error {
		switch {
		case r.room.Locked:
			return errLocked
		case len(r.room.Players) >= MaxPlayers:
			return Errorf(protocol.Conflict, "room %s is full: %d players", room, MaxPlayers)
		case r.names[key] != "":
			return Errorf(protocol.Conflict, "the name %q is taken in this room (or one that looks like it): choose another", p.Name)
		}
		r.names[key] = p.ID
		r.byID[p.ID] = len(r.room.Players)
		r.seats[p.ID] = r.joins
		r.joins++
		r.room.Players = append(r.room.Players, p)
		r.room.Version++
		r.touch(s.now())
		s.mu.Lock()
		s.tokens[p.Token] = Identity{Room: room, Role: RolePlayer, PlayerID: p.ID, Name: p.Name}
		s.mu.Unlock()
		ch.head, ch.joined = true, append(ch.joined, p.ID)
		return nil
	})
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
	var p Player
	err := s.edit(room, func(r *memRoom, ch *change) error {
		i, ok := r.byID[playerID]
		if !ok {
			return Errorf(protocol.NotFound, "player %s is not in room %s", playerID, room)
		}
		p = r.room.Players[i]
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
		ch.left = append(ch.left, r.seats[playerID])
		delete(r.seats, playerID)
		r.room.Version++
		r.touch(s.now())
		s.mu.Lock()
		delete(s.tokens, p.Token)
		s.mu.Unlock()
		ch.head = true
		return nil
	})
	if err != nil {
		return Player{}, err
	}
	return p, nil
}

// Player implements Store.
func (s *MemoryStore) Player(_ context.Context, room, playerID string) (*Room, Player, error) {
	var (
		head  *Room
		p     Player
		found = playerID == ""
	)
	err := s.view(room, func(r *memRoom) {
		head = roomHead(&r.room)
		if i, ok := r.byID[playerID]; ok {
			p, found = r.room.Players[i], true
		}
	})
	if err != nil {
		return nil, Player{}, err
	}
	if !found {
		return nil, Player{}, Errorf(protocol.NotFound, "player %s is not in room %s", playerID, room)
	}
	return head, p, nil
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
	var out *Room
	err := s.edit(room, func(r *memRoom, ch *change) error {
		next := cloneRoom(&r.room)
		if err := fn(next); err != nil {
			return err
		}
		next.Version = r.room.Version + 1
		ch.head, ch.quiz = true, next.Quiz.Version != r.room.Quiz.Version
		r.room = *next
		r.active = activeAt(next, s.now())
		out = cloneRoom(next)
		return nil
	})
	return out, err
}

// Accept implements Store.
func (s *MemoryStore) Accept(_ context.Context, room string, a protocol.Answer, sc Scoring) (protocol.Answer, bool, error) {
	var replayed bool
	err := s.edit(room, func(r *memRoom, ch *change) error {
		now := s.now()
		if sc.QuizVersion != r.room.Quiz.Version {
			return ErrStaleQuiz
		}
		if err := checkAcceptable(&r.room, a.N); err != nil {
			return err
		}
		if sc.Synced && !a.ReceivedAt.IsZero() && a.ReceivedAt.Before(r.room.StartedAt) {
			return errBeforeTheBulb(a.N)
		}
		if sc.Code {
			return r.acceptCode(&a, sc, now, ch)
		}
		if prior, ok := r.answered[a.N][a.PlayerID]; ok {
			if prior.key == responseKey(a.Response) { // the same answer again: a retry
				a, replayed = r.answers[a.N][prior.index], true
				return nil
			}
			return Errorf(protocol.AlreadyAnswered, "you have already answered question %d", a.N)
		}
		p, err := r.stamp(&a, now)
		if err != nil {
			return err
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
		r.store(a, ch)
		r.touch(now)
		ch.head = true
		return nil
	})
	if err != nil {
		return protocol.Answer{}, false, err
	}
	return a, replayed, nil
}

// store appends a new answer to its question's.
func (r *memRoom) store(a protocol.Answer, ch *change) {
	ch.answers = append(ch.answers, answerPos{a.N, len(r.answers[a.N])})
	r.answers[a.N] = append(r.answers[a.N], a)
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
func (r *memRoom) acceptCode(a *protocol.Answer, sc Scoring, now time.Time, ch *change) error {
	c := r.codeOf(a.N)
	if c.solved[a.PlayerID] {
		return Errorf(protocol.AlreadyAnswered, "you already have an accepted submission to question %d", a.N)
	}
	if c.submissions[a.PlayerID] >= MaxSubmissions {
		return Errorf(protocol.RateLimited, "at most %d submissions to one question", MaxSubmissions)
	}
	if _, err := r.stamp(a, now); err != nil {
		return err
	}
	a.Correct, a.Pending = false, true
	c.submissions[a.PlayerID]++
	r.store(*a, ch)
	r.touch(now)
	ch.head = true
	return nil
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
	var (
		stored protocol.Answer
		final  []protocol.Answer
	)
	err := s.edit(room, func(r *memRoom, ch *change) error {
		answers := r.answers[n]
		if !sc.Code || sub < 1 || sub > len(answers) {
			return Errorf(protocol.NotFound, "question %d has no code submission %d", n, sub)
		}
		if answers[sub-1].Verdict != nil {
			stored = answers[sub-1] // recorded before: the first verdict stands
			return nil
		}
		c := r.codeOf(n)
		answers[sub-1].Verdict = &v
		answers[sub-1].Correct = v.Verdict == protocol.AC
		if answers[sub-1].Correct {
			c.solved[answers[sub-1].PlayerID] = true
		}
		ch.answers = append(ch.answers, answerPos{n, sub - 1})
		changed, next, correct := settle(answers, c.settled, c.winners, r.correct[n], sc)
		c.settled, r.correct[n] = next, correct
		final = make([]protocol.Answer, len(changed))
		for i, j := range changed {
			final[i] = answers[j]
			r.addScore(answers[j].PlayerID, answers[j].Points)
			if j != sub-1 {
				ch.answers = append(ch.answers, answerPos{n, j})
			}
		}
		stored = answers[sub-1]
		return nil
	})
	if err != nil {
		return protocol.Answer{}, nil, err
	}
	return stored, final, nil
}

// errBeforeTheBulb refuses an answer that arrived before its question's synced reveal.
func errBeforeTheBulb(n int) error {
	return Errorf(protocol.NotStarted, "question %d's bulb had not lit when your answer arrived: answer after it", n)
}

// checkAcceptable says whether question n of r takes answers by its phase: the authority
// on the memory engine, under the room's lock (see Store.Accept, which also holds an
// answer under the synced reveal to its reveal instant). A question goes live when its
// start fires.
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
	return s.edit(room, func(r *memRoom, ch *change) error {
		if r.finalized[n] {
			return nil
		}
		r.finalized[n] = true
		ch.finalized = append(ch.finalized, n)
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
			ch.answers = append(ch.answers, answerPos{n, i})
		}
		return nil
	})
}

// Expire implements Store. It takes each room's lock, then the store's: a room is deleted
// atomically with the check of its activity.
func (s *MemoryStore) Expire(_ context.Context, before time.Time) ([]string, error) {
	if s.j != nil {
		s.j.world.RLock()
	}
	s.mu.RLock()
	rooms := make([]*memRoom, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.RUnlock()
	var (
		gone    []string
		flushes []*flush
	)
	for _, r := range rooms {
		r.mu.Lock()
		if !r.gone && r.active.Before(before) {
			s.forget(r)
			if s.j != nil {
				s.j.write(r, &change{deleted: true})
				flushes = append(flushes, r.pending)
			}
			gone = append(gone, r.room.Code)
		}
		r.mu.Unlock()
	}
	var err error
	if s.j != nil {
		s.j.world.RUnlock()
		kept := gone[:0]
		for i, f := range flushes {
			if werr := s.j.wait(f); werr != nil {
				err = werr // undone: the room is back
				continue
			}
			kept = append(kept, gone[i])
		}
		gone = kept
	}
	slices.Sort(gone)
	return gone, err
}

// DeleteRoom implements Store: the room goes as an expired one does.
func (s *MemoryStore) DeleteRoom(_ context.Context, room string) error {
	return s.edit(room, func(r *memRoom, ch *change) error {
		s.forget(r)
		ch.deleted = true
		return nil
	})
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
	var out []protocol.Answer
	if err := s.view(room, func(r *memRoom) { out = slices.Clone(r.answers[n]) }); err != nil {
		return nil, err
	}
	return out, nil
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
