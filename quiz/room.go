package quiz

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// Phase is the state of a room's current question.
type Phase string

// The phases of a room. A room starts in PhaseLobby; each question then goes Open (shown, bulb
// off), Live (bulb lit, answers accepted) and Closed.
const (
	PhaseLobby  Phase = "lobby"
	PhaseOpen   Phase = "open"
	PhaseLive   Phase = "live"
	PhaseClosed Phase = "closed"
	// PhaseFinished: the host ended the quiz. No question opens and no answer is taken
	// any more; the room stays, for its results, until it expires or is deleted.
	PhaseFinished Phase = "finished"
)

// Role is what a token allows.
type Role string

// Roles of a token.
const (
	RoleAdmin  Role = "admin"
	RoleHost   Role = "host"
	RolePlayer Role = "player"
	// RolePresenter is the room's projector screen: it sees what every player sees and
	// the players seated and the count of answers, never an answer before the close; it
	// changes nothing.
	RolePresenter Role = "presenter"
)

// Room is the whole state of one running quiz except its answers.
type Room struct {
	Code      string    // six digits
	HostToken string    // secret
	Quiz      Quiz      // normalised
	Version   int64     // bumped by every change; the base of compare-and-set
	Current   int       // the current question, 1-based; 0 in the lobby
	Phase     Phase     // of the current question
	StartAt   time.Time // a scheduled timed start of the current question, if any
	CloseAt   time.Time // a scheduled timed close of the current question, if any
	StartedAt time.Time // when the current question went live
	CreatedAt time.Time
	Locked    bool     // no new players may join
	Players   []Player // in join order
}

// Player is one participant of a room.
type Player struct {
	ID       string    `json:"playerId"`
	Name     string    `json:"name"`
	Token    string    `json:"-"`
	Score    int       `json:"score"`
	JoinedAt time.Time `json:"joinedAt"`
}

// Identity is who a token belongs to.
type Identity struct {
	Room     string
	Role     Role
	PlayerID string // players only
	Name     string // players only
}

// CreateRoom validates qz and creates a room for it, returning the room's code and host token.
func (s *Service) CreateRoom(ctx context.Context, qz Quiz) (*Room, error) {
	if err := s.normalize(&qz); err != nil {
		return nil, err
	}
	for range 20 {
		r := &Room{Code: roomCode(), HostToken: Token(), Quiz: qz, Phase: PhaseLobby, CreatedAt: s.now()}
		err := s.store.CreateRoom(ctx, r)
		if ErrorCode(err) == protocol.Conflict {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.log.Info("room created", "room", r.Code, "questions", len(qz.Questions))
		return r, nil
	}
	return nil, Errorf(protocol.Unavailable, "no free room code found, try again")
}

// Room returns the room with the given code.
func (s *Service) Room(ctx context.Context, room string) (*Room, error) {
	return s.store.Room(ctx, room)
}

// RoomHead returns the room without its players, cheaply: whether it exists and its
// state. NotFound for an unknown room.
func (s *Service) RoomHead(ctx context.Context, room string) (*Room, error) {
	r, _, err := s.store.Player(ctx, room, "")
	return r, err
}

// Rooms returns all rooms, newest first.
func (s *Service) Rooms(ctx context.Context) ([]*Room, error) { return s.store.Rooms(ctx) }

// Identify returns who a host, player or presenter token belongs to.
func (s *Service) Identify(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, Errorf(protocol.Unauthorized, "a token is required")
	}
	if room, _, ok := strings.Cut(token, "."); ok {
		r, _, err := s.store.Player(ctx, room, "")
		if ErrorCode(err) == protocol.NotFound {
			return Identity{}, Errorf(protocol.Unauthorized, "unknown token")
		}
		if err != nil {
			return Identity{}, err
		}
		if !hmac.Equal([]byte(token), []byte(PresenterToken(r.Code, r.HostToken))) {
			return Identity{}, Errorf(protocol.Unauthorized, "unknown token")
		}
		return Identity{Room: r.Code, Role: RolePresenter}, nil
	}
	return s.store.Identify(ctx, token)
}

// PresenterToken is the presenter token of a room: its code, a dot, and an HMAC of it
// keyed by the host token (128 bits, hex). It is derived rather than stored, so that no
// engine keeps another secret: it lives as long as the room and its host token, and
// knowing it gives nothing of the host token.
func PresenterToken(room, hostToken string) string {
	m := hmac.New(sha256.New, []byte(hostToken))
	m.Write([]byte("bulb presenter " + room))
	return room + "." + hex.EncodeToString(m.Sum(nil)[:16])
}

// DeleteRoom deletes the room now, with its players, tokens and answers: players get a
// removed frame and are disconnected (protocol.CloseRemoved), hosts and presenters a
// deleted frame. NotFound for an unknown room.
func (s *Service) DeleteRoom(ctx context.Context, room string) error {
	r, err := s.store.Room(ctx, room)
	if err != nil {
		return err
	}
	if err := s.store.DeleteRoom(ctx, room); err != nil {
		return err
	}
	s.cancelTimer(room, ActionStart)
	s.cancelTimer(room, ActionClose)
	removed := protocol.Encode(protocol.RemovedFrame{Message: "the host deleted the room"})
	for _, p := range r.Players {
		s.bc.Remove(room, p.ID, removed)
	}
	// Hosts and presenters hear of it, and their sockets close too: a code is given
	// again some day, and they must not see another room's frames.
	s.bc.Forget(ctx, room, protocol.Encode(protocol.DeletedFrame{Message: "the room was deleted"}))
	s.log.Info("room deleted", "room", room)
	return nil
}

// Join adds a player called name to the room. The name is kept as typed, trimmed and
// with inner white space collapsed; it must pass checkName, and its key (foldName) must be
// free in the room.
func (s *Service) Join(ctx context.Context, room, name string) (Player, error) {
	name = normalizeText(name)
	if err := checkName(name); err != nil {
		return Player{}, err
	}
	p := Player{ID: randomHex(8), Name: name, Token: Token(), JoinedAt: s.now()}
	if err := s.store.AddPlayer(ctx, room, p); err != nil {
		return Player{}, err
	}
	joined := protocol.Encode(protocol.JoinedFrame{PlayerID: p.ID, Name: p.Name})
	s.bc.SendHosts(room, joined)
	s.bc.SendPresenters(room, joined)
	return p, nil
}

// Lock locks the room, so that nobody new may join (Join gets Conflict), or unlocks it.
func (s *Service) Lock(ctx context.Context, room string, locked bool) (*Room, error) {
	return s.store.Update(ctx, room, func(r *Room) error {
		r.Locked = locked
		return nil
	})
}

// Remove frees a player's seat: the host removed the player (byHost), or the player left.
// The store removes the player (Store.RemovePlayer: its name is free again, its score and
// token are gone); its connection gets a removed frame and is closed with
// protocol.CloseRemoved, and the hosts get a left frame. Its code submissions still
// waiting for a verdict get an IE verdict saying it left, so that nobody's rank waits for
// them, and leave the judge's queue. If the current question is closed, everyone gets the
// leaderboard without the player.
func (s *Service) Remove(ctx context.Context, room, playerID string, byHost bool) (Player, error) {
	qz, err := s.store.Quiz(ctx, room)
	if err != nil {
		return Player{}, err
	}
	p, err := s.store.RemovePlayer(ctx, room, playerID)
	if err != nil {
		return Player{}, err
	}
	ctx = context.WithoutCancel(ctx) // a removal, once made, is finished even if the caller hangs up
	msg := "you left the room"
	if byHost {
		msg = "the host removed you from the room"
	}
	s.bc.Remove(room, playerID, protocol.Encode(protocol.RemovedFrame{Message: msg}))
	left := protocol.Encode(protocol.LeftFrame{PlayerID: p.ID, Name: p.Name})
	s.bc.SendHosts(room, left)
	s.bc.SendPresenters(room, left)
	s.log.Info("player removed", "room", room, "player", playerID, "byHost", byHost)
	if err := s.dropSubmissions(ctx, room, qz, playerID); err != nil {
		s.log.Error("settling the submissions of a removed player", "room", room, "player", playerID, "err", err)
	}
	r, _, err := s.store.Player(ctx, room, "")
	if err == nil && r.Phase == PhaseClosed {
		err = s.sendLeaderboard(ctx, room)
	}
	if err != nil {
		s.log.Error("the leaderboard after a removal", "room", room, "err", err)
	}
	return p, nil
}

// dropSubmissions gives every code submission of a removed player still without a verdict
// an IE verdict (the first verdict stands: the judge's, should it come later, changes
// nothing), then takes the player's waiting jobs out of the judge's queue. In that order, a
// failure halfway leaves jobs to be judged, never a submission that waits for ever and
// holds up the ranks of the submissions after it.
func (s *Service) dropSubmissions(ctx context.Context, room string, qz Quiz, playerID string) error {
	code := false
	for i, q := range qz.Questions {
		if q.Kind != KindCode {
			continue
		}
		code = true
		answers, err := s.store.Answers(ctx, room, i+1)
		if err != nil {
			return err
		}
		for _, a := range answers {
			if a.PlayerID != playerID || a.Verdict != nil {
				continue
			}
			v := protocol.Verdict{Verdict: protocol.IE, Total: len(q.Tests), Message: "not judged: the player left the room"}
			if err := s.Verdict(ctx, room, i+1, a.ArrivalRank, v); err != nil {
				return err
			}
		}
	}
	if !code || s.judge == nil {
		return nil
	}
	return s.judge.Drop(ctx, room, playerID)
}

// EditQuiz replaces the room's quiz with qz, if the quiz is still at the version the host
// edited (else Conflict: a stale edit never overwrites a newer one). Questions already
// asked cannot change, and no question may be open or live.
func (s *Service) EditQuiz(ctx context.Context, room string, version int64, qz Quiz) (*Room, error) {
	if err := s.normalize(&qz); err != nil {
		return nil, err
	}
	return s.store.Update(ctx, room, func(r *Room) error {
		switch {
		case r.Quiz.Version != version:
			return Errorf(protocol.Conflict, "the quiz was edited meanwhile (version %d, not %d): reload it and edit again", r.Quiz.Version, version)
		case r.Phase == PhaseOpen || r.Phase == PhaseLive:
			return Errorf(protocol.Conflict, "question %d is %s: close it before editing the quiz", r.Current, r.Phase)
		case len(qz.Questions) < r.Current:
			return Errorf(protocol.Conflict, "the quiz must keep the %d questions already asked", r.Current)
		}
		for i := range r.Current {
			if !reflect.DeepEqual(qz.Questions[i], r.Quiz.Questions[i]) {
				return Errorf(protocol.Conflict, "question %d was already asked and cannot change", i+1)
			}
		}
		if r.Current > 0 && (qz.Ranking != r.Quiz.Ranking || qz.Timing != r.Quiz.Timing || !slices.Equal(qz.Winners, r.Quiz.Winners)) {
			return Errorf(protocol.Conflict, "ranking, timing and winners cannot change once a question was asked")
		}
		qz.Version = r.Quiz.Version + 1
		r.Quiz = qz
		return nil
	})
}

// Token returns a new random token: 128 bits from crypto/rand, in hex.
func Token() string { return randomHex(16) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on supported platforms
	return hex.EncodeToString(b)
}

func roomCode() string {
	v, _ := rand.Int(rand.Reader, big.NewInt(1_000_000))
	return fmt.Sprintf("%06d", v.Int64())
}
