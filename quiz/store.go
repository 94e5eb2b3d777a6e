package quiz

import (
	"context"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// Store keeps rooms, players and answers. Implementations must make each method atomic:
// Update and Accept in particular are the places where concurrent hosts and players meet.
// Errors for users are *Error (NotFound for an unknown room, Conflict for a taken name or
// code); anything else is an engine failure.
type Store interface {
	// CreateRoom stores a new room; Conflict if its code is taken.
	CreateRoom(ctx context.Context, r *Room) error
	// Room returns a copy of the room with the given code.
	Room(ctx context.Context, room string) (*Room, error)
	// Quiz returns the room's quiz, cheaply: it is on the path of every answer. The quiz is
	// shared and must not be changed.
	Quiz(ctx context.Context, room string) (Quiz, error)
	// Player returns the room without its players (Players is nil) and the player with
	// the given ID, or only the room if the ID is empty: what Room gives without copying
	// every player, for the paths that run once per connection. NotFound if the room or
	// the player is unknown.
	Player(ctx context.Context, room, playerID string) (*Room, Player, error)
	// Rooms returns copies of all rooms, newest first.
	Rooms(ctx context.Context) ([]*Room, error)
	// AddPlayer adds p to the room; Conflict if the room is locked (Room.Locked), its name
	// is taken (another player's name has the same foldName key) or the room has
	// MaxPlayers.
	AddPlayer(ctx context.Context, room string, p Player) error
	// RemovePlayer frees a player's seat and returns the player: the player leaves the
	// room's players, its name is free again, its score leaves the room and its token
	// stops working. Its answers stay as they were (ranks given are kept), and it takes no
	// rank given after: a later verdict on one of its code submissions ranks nothing, and
	// Accept refuses its answers (NotFound). NotFound if the room or the player is unknown.
	RemovePlayer(ctx context.Context, room, playerID string) (Player, error)
	// Identify returns who a host or player token belongs to; Unauthorized if nobody.
	Identify(ctx context.Context, token string) (Identity, error)
	// Update applies fn to the room atomically and bumps its version. fn may refuse by
	// returning an error, which Update returns unchanged, changing nothing. fn must not add
	// or remove players (AddPlayer does that), and may be called more than once (optimistic
	// retries), so it must have no side effects.
	Update(ctx context.Context, room string, fn func(*Room) error) (*Room, error)
	// Accept records a marked answer atomically: it checks the answer was marked by the
	// current quiz (ErrStaleQuiz), that the question is current and live (NotStarted,
	// Closed), and that the player has not answered it (AlreadyAnswered), stamps the
	// receive time, assigns the arrival rank and, for a correct answer under non-deferred
	// scoring, the next rank and its points, which it adds to the player's score. The very
	// same submission sent again returns the stored answer with replayed set and changes
	// nothing: a retry after a lost reply learns the outcome.
	//
	// A code submission (s.Code) is one of many a player may send: it is not compared with
	// the player's others, never replayed, and stored Pending with no rank, for Verdict to
	// settle; Accept refuses it with AlreadyAnswered once the player has an accepted one,
	// and with RateLimited past MaxSubmissions.
	//
	// Under the synced reveal (s.Synced), a.ReceivedAt, if set, is when the answer
	// arrived, by the clock of the node it arrived on: an answer that arrived before the
	// question's reveal instant (Room.StartedAt, by the clock of the node that started it)
	// is refused with NotStarted. (Nodes keep their clocks in step: the synced reveal needs
	// it anyway.) The receive time stored is the store's own.
	//
	// Accept is the authority on whether question a.N takes answers now: only a check
	// atomic with the insert can be right when a close or a start races an answer. (The
	// service checks only that the question exists, to mark the answer; a.N must be one of
	// the quiz's.)
	Accept(ctx context.Context, room string, a protocol.Answer, s Scoring) (stored protocol.Answer, replayed bool, err error)
	// Verdict records the judge's verdict on submission sub (its arrival rank) of code
	// question n, once: a second verdict for it changes nothing. It then settles the
	// question: in arrival order, as far as every submission has its verdict, each
	// player's first accepted one takes the next rank and its points, which are added to
	// the player's score. It returns the submission as stored and the answers this call
	// made final (the submission among them if it was). NotFound if there is no such
	// submission. Verdicts are recorded in any phase: a submission accepted before the
	// close is judged after it.
	Verdict(ctx context.Context, room string, n, sub int, v protocol.Verdict, s Scoring) (protocol.Answer, []protocol.Answer, error)
	// Finalize applies the ranks and points of a deferred (compensated) question once,
	// adding the points to the scores; later calls for the same question change nothing.
	Finalize(ctx context.Context, room string, n int, ranked []protocol.Answer) error
	// Answers returns the answers to question n in arrival order.
	Answers(ctx context.Context, room string, n int) ([]protocol.Answer, error)
	// DeleteRoom deletes the room now, with its players, tokens and answers, as if it had
	// expired. NotFound if it does not exist.
	DeleteRoom(ctx context.Context, room string) error
	// Expire deletes every room whose last activity came before the given instant, with
	// its players, tokens and answers, and returns their codes. A room's activity is the
	// latest of: its creation, a player joining or removed, a change by Update (a host's
	// move), an accepted answer; and a timed start or close it has scheduled counts as
	// activity at its time. Each room is checked and deleted atomically: one active at the
	// instant of its check stays. Calls from several nodes at once are safe (a room is
	// deleted once), if wasteful: the service has one node sweep at a time. With an error
	// it still returns the rooms it deleted.
	Expire(ctx context.Context, before time.Time) ([]string, error)
}

// activeAt is the activity of room r changed at now: now, or a timed start or close it
// has scheduled later.
func activeAt(r *Room, now time.Time) time.Time {
	t := now
	for _, at := range []time.Time{r.StartAt, r.CloseAt} {
		if at.After(t) {
			t = at
		}
	}
	return t
}

// errLocked refuses a join to a locked room.
var errLocked = Errorf(protocol.Conflict, "the room is locked")
