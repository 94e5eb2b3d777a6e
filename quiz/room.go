package quiz

import "time"

// Phase is the state of a room's current question.
type Phase string

// The phases of a room. A room starts in PhaseLobby; each question then goes Open (shown, bulb
// off), Live (bulb lit, answers accepted) and Closed.
const (
	PhaseLobby  Phase = "lobby"
	PhaseOpen   Phase = "open"
	PhaseLive   Phase = "live"
	PhaseClosed Phase = "closed"
)

// Role is what a token allows.
type Role string

// Roles of a token.
const (
	RoleAdmin  Role = "admin"
	RoleHost   Role = "host"
	RolePlayer Role = "player"
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
