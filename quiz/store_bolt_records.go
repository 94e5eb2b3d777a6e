package quiz

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/bulbquiz/bulb/protocol"
)

// How the embedded engine stores a room (see the layout by bucketRooms). Only what cannot
// be worked out from the rest is stored: a player's score is the sum of its answers'
// points, and the lookups of memState (names, who answered, ranks given, code questions'
// progress) follow from the players and answers; loadRoom works them out.

// boltRoom is a room's own record: the Room without its quiz and players.
type boltRoom struct {
	Code        string    `json:"code"`
	HostToken   string    `json:"hostToken"`
	QuizVersion int64     `json:"quizVersion"`
	Version     int64     `json:"version"`
	Current     int       `json:"current"`
	Phase       Phase     `json:"phase"`
	StartAt     time.Time `json:"startAt"`
	CloseAt     time.Time `json:"closeAt"`
	StartedAt   time.Time `json:"startedAt"`
	CreatedAt   time.Time `json:"createdAt"`
	Locked      bool      `json:"locked,omitempty"`
	Active      time.Time `json:"active"`
	Joins       int       `json:"joins"`
}

// boltPlayer is a player's record, under its seat: the Player less its score.
type boltPlayer struct {
	ID       string    `json:"playerId"`
	Name     string    `json:"name"`
	Token    string    `json:"token"`
	JoinedAt time.Time `json:"joinedAt"`
}

// opKind is what an op does.
type opKind uint8

const (
	opCreate opKind = iota // make the room's bucket and its sub-buckets
	opDrop                 // delete the room's bucket
	opPut                  // put key, value in the room's bucket or sub-bucket
	opDelete               // delete key from it
)

// op is one write of a change.
type op struct {
	kind       opKind
	room       string
	sub        []byte // a sub-bucket of the room's; nil for the room's bucket itself
	key, value []byte
}

// apply does the op in the rooms bucket.
func (o op) apply(rooms *bolt.Bucket) error {
	switch o.kind {
	case opCreate:
		b, err := rooms.CreateBucket([]byte(o.room))
		if err != nil {
			return fmt.Errorf("room %s: %w", o.room, err)
		}
		for _, sub := range [][]byte{bucketPlayers, bucketAnswers, bucketFinalized} {
			if _, err := b.CreateBucket(sub); err != nil {
				return err
			}
		}
		return nil
	case opDrop:
		if err := rooms.DeleteBucket([]byte(o.room)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		return nil
	}
	b := rooms.Bucket([]byte(o.room))
	if b != nil && o.sub != nil {
		b = b.Bucket(o.sub)
	}
	if b == nil {
		return fmt.Errorf("room %s: no bucket %q to write to", o.room, o.sub)
	}
	if o.kind == opDelete {
		return b.Delete(o.key)
	}
	return b.Put(o.key, o.value)
}

// records returns the ops that write change ch of the room. The room's lock is held.
func (r *memRoom) records(ch *change) []op {
	code := r.room.Code
	var ops []op
	put := func(sub, key []byte, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("quiz: encoding a record of room %s: %v", code, err)) // plain data: cannot fail
		}
		ops = append(ops, op{kind: opPut, room: code, sub: sub, key: key, value: b})
	}
	if ch.deleted {
		return []op{{kind: opDrop, room: code}}
	}
	if ch.created {
		ops = append(ops, op{kind: opCreate, room: code})
	}
	if ch.created || ch.head {
		put(nil, roomKey, boltRoom{
			Code: code, HostToken: r.room.HostToken, QuizVersion: r.room.Quiz.Version, Version: r.room.Version,
			Current: r.room.Current, Phase: r.room.Phase, StartAt: r.room.StartAt, CloseAt: r.room.CloseAt,
			StartedAt: r.room.StartedAt, CreatedAt: r.room.CreatedAt, Locked: r.room.Locked, Active: r.active, Joins: r.joins,
		})
	}
	if ch.created || ch.quiz {
		put(nil, quizKey, r.room.Quiz)
	}
	for _, id := range ch.joined {
		p := r.room.Players[r.byID[id]]
		put(bucketPlayers, seatKey(r.seats[id]), boltPlayer{ID: p.ID, Name: p.Name, Token: p.Token, JoinedAt: p.JoinedAt})
	}
	for _, seat := range ch.left {
		ops = append(ops, op{kind: opDelete, room: code, sub: bucketPlayers, key: seatKey(seat)})
	}
	for _, at := range ch.answers {
		put(bucketAnswers, answerKey(at.n, at.i), r.answers[at.n][at.i])
	}
	for _, n := range ch.finalized {
		ops = append(ops, op{kind: opPut, room: code, sub: bucketFinalized, key: binary.BigEndian.AppendUint32(nil, uint32(n)), value: []byte{}})
	}
	return ops
}

// seatKey and answerKey are big-endian, so that a bucket's order is join order, and
// question then arrival order.
func seatKey(seat int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(seat)) }

func answerKey(n, i int) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(n)), uint32(i))
}

// loadRoom reads a room's state from its bucket.
func loadRoom(b *bolt.Bucket) (*memState, error) {
	var head boltRoom
	if err := json.Unmarshal(b.Get(roomKey), &head); err != nil {
		return nil, fmt.Errorf("its record: %w", err)
	}
	r := &Room{Code: head.Code, HostToken: head.HostToken, Version: head.Version, Current: head.Current, Phase: head.Phase,
		StartAt: head.StartAt, CloseAt: head.CloseAt, StartedAt: head.StartedAt, CreatedAt: head.CreatedAt, Locked: head.Locked}
	if err := json.Unmarshal(b.Get(quizKey), &r.Quiz); err != nil {
		return nil, fmt.Errorf("its quiz: %w", err)
	}
	r.Quiz.Version = head.QuizVersion
	st := newMemState(r, head.Active)
	st.active, st.joins = head.Active, head.Joins
	players, answers, finalized := b.Bucket(bucketPlayers), b.Bucket(bucketAnswers), b.Bucket(bucketFinalized)
	if players == nil || answers == nil || finalized == nil {
		return nil, errors.New("a bucket is missing")
	}
	err := players.ForEach(func(k, v []byte) error {
		var p boltPlayer
		if err := json.Unmarshal(v, &p); err != nil || len(k) != 8 {
			return fmt.Errorf("player %x: %v", k, err)
		}
		st.seats[p.ID] = int(binary.BigEndian.Uint64(k))
		st.byID[p.ID] = len(st.room.Players)
		st.names[foldName(p.Name)] = p.ID
		st.room.Players = append(st.room.Players, Player{ID: p.ID, Name: p.Name, Token: p.Token, JoinedAt: p.JoinedAt})
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = answers.ForEach(func(k, v []byte) error {
		var a protocol.Answer
		if err := json.Unmarshal(v, &a); err != nil || len(k) != 8 {
			return fmt.Errorf("answer %x: %v", k, err)
		}
		n, i := int(binary.BigEndian.Uint32(k)), int(binary.BigEndian.Uint32(k[4:]))
		if i != len(st.answers[n]) || a.N != n {
			return fmt.Errorf("answer %d to question %d is out of place", i, n)
		}
		st.answers[n] = append(st.answers[n], a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = finalized.ForEach(func(k, _ []byte) error {
		st.finalized[int(binary.BigEndian.Uint32(k))] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	st.derive()
	return &st, nil
}

// derive works out the lookups of a loaded room from its players and answers: what the
// calls that stored them kept up to date as they went.
func (st *memState) derive() {
	for n, answers := range st.answers {
		code := n >= 1 && n <= len(st.room.Quiz.Questions) && st.room.Quiz.Questions[n-1].Kind == KindCode
		var c *memCode
		if code {
			c = &memCode{submissions: map[string]int{}, solved: map[string]bool{}, winners: map[string]bool{}, settled: len(answers)}
			st.coding[n] = c
		} else {
			st.answered[n] = map[string]memAnswered{}
		}
		for i, a := range answers {
			if a.Rank > 0 {
				st.correct[n]++
			}
			if p, ok := st.byID[a.PlayerID]; ok {
				st.room.Players[p].Score += a.Points
			}
			if !code {
				st.answered[n][a.PlayerID] = memAnswered{index: i, key: responseKey(a.Response)}
				continue
			}
			c.submissions[a.PlayerID]++
			if a.Verdict != nil && a.Verdict.Verdict == protocol.AC {
				c.solved[a.PlayerID] = true
			}
			if _, in := st.byID[a.PlayerID]; a.Rank > 0 || !in {
				c.winners[a.PlayerID] = true // ranked, or gone: no rank to come
			}
			if a.Verdict == nil && i < c.settled {
				c.settled = i
			}
		}
	}
}

// reload puts the given rooms back to the database's state: a room the database does not
// have goes, one it has that the store does not (its deletion failed) comes back. The
// journal's world lock is held: no change is under way.
func (s *MemoryStore) reload(db *bolt.DB, rooms map[string]struct{}) error {
	return db.View(func(tx *bolt.Tx) error {
		for code := range rooms {
			var fresh *memState
			if b := tx.Bucket(bucketRooms).Bucket([]byte(code)); b != nil {
				var err error
				if fresh, err = loadRoom(b); err != nil {
					return fmt.Errorf("room %s: %w", code, err)
				}
			}
			s.replace(code, fresh)
		}
		return nil
	})
}

// replace makes st the state of room code, or deletes the room if st is nil.
func (s *MemoryStore) replace(code string, st *memState) {
	s.mu.Lock()
	r := s.rooms[code]
	s.mu.Unlock()
	if r != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r != nil {
		s.dropTokens(&r.memState)
		r.pending = nil
		if st == nil {
			r.gone = true
			delete(s.rooms, code)
			return
		}
		r.memState = *st
		s.addTokens(st)
		return
	}
	if st != nil {
		s.rooms[code] = &memRoom{memState: *st}
		s.addTokens(st)
	}
}
