package quiz

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// Broadcaster reaches the connections of a room. The hub implements it.
type Broadcaster interface {
	// Send queues frame for every connection of the room, players and hosts.
	Send(room string, frame []byte)
	// SendHosts queues frame for the room's host connections.
	SendHosts(room string, frame []byte)
	// SendPresenters queues frame for the room's presenter connections: what they are
	// told besides what everyone is (Send), which must never give away an answer before
	// the question closes.
	SendPresenters(room string, frame []byte)
	// SendPlayer queues frame for one player's connection.
	SendPlayer(room, playerID string, frame []byte)
	// Remove queues frame for one player's connection and then closes that connection
	// with protocol.CloseRemoved: the player's seat was removed.
	Remove(room, playerID string, frame []byte)
	// Start lights the bulb of question n: the start frame goes to every player of the room
	// at as nearly the same instant as possible, revealed at reveal (a synced start) or at
	// once (reveal zero). It returns the start's sequence number and how many players it
	// was sent to. An error with seq 0 says nothing was sent; with a seq, the start went
	// out and the error says what else failed (counting its recipients, say).
	Start(ctx context.Context, room string, n int, reveal time.Time) (seq uint64, recipients int, err error)
	// Lead is how far ahead of its reveal instant a synced start of the room should be
	// sent, for the start to reach (nearly) every player before it.
	Lead(room string) time.Duration
	// Forget forgets, on every node, a room that is gone: what the broadcaster keeps of it
	// (its delivery records), and its hosts' and presenters' connections, which get
	// farewell as their last frame and are closed with protocol.CloseRemoved.
	Forget(ctx context.Context, room string, farewell []byte)
}

// Limits of a room.
const (
	LeaderboardTop = 20     // entries in the leaderboard frame after each close
	MaxName        = 32     // the longest player name, in characters
	MaxPlayers     = 20_000 // players one room takes
)

// Nodes reaches the other nodes that serve the same rooms: the hub's node messaging.
type Nodes interface {
	// Notify sends data to the handler of topic on every other node.
	Notify(ctx context.Context, topic string, data []byte) error
	// OnNotify sets this node's handler of the notifications of topic.
	OnNotify(topic string, fn func(data []byte))
}

// Options are what a Service runs on. Store, Broadcaster and Locker are required.
type Options struct {
	Store       Store
	Broadcaster Broadcaster
	Nodes       Nodes  // nil on a single node
	Locker      Locker // leases for timed starts and closes
	Judge       Judge  // nil: quizzes with code questions are refused
	Logger      *slog.Logger
	// RoomTTL is how long a room lives after its last activity (see Store.Expire);
	// DefaultRoomTTL if zero.
	RoomTTL time.Duration
}

// DefaultRoomTTL is how long a room lives after its last activity unless told otherwise:
// a day, so that a class that meets again tomorrow finds a new room, and a room nobody
// uses does not hold its players, tokens and answers for ever.
const DefaultRoomTTL = 24 * time.Hour

// Service runs rooms: it is what the server's handlers call. Create one with NewService and
// run its Run method for timed starts.
type Service struct {
	store  Store
	bc     Broadcaster
	nodes  Nodes
	locker Locker
	judge  Judge
	log    *slog.Logger
	now    func() time.Time
	ttl    time.Duration // RoomTTL

	mu     sync.Mutex
	ctx    context.Context // Run's, for timed starts; nil until Run
	timers map[string]*time.Timer
	wg     sync.WaitGroup
}

// NewService returns a Service on opts. With Nodes, it registers its handler of the
// schedules that other nodes announce: create it before the nodes' messaging runs.
func NewService(opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RoomTTL <= 0 {
		opts.RoomTTL = DefaultRoomTTL
	}
	s := &Service{store: opts.Store, bc: opts.Broadcaster, nodes: opts.Nodes, locker: opts.Locker, judge: opts.Judge,
		log: opts.Logger.With("component", "quiz"), now: time.Now, ttl: opts.RoomTTL, timers: map[string]*time.Timer{}}
	if s.nodes != nil {
		s.nodes.OnNotify(scheduleTopic, s.onSchedule)
	}
	return s
}

// normalize normalizes qz and checks that the judge can judge its code questions.
func (s *Service) normalize(qz *Quiz) error {
	if err := qz.Normalize(); err != nil {
		return err
	}
	for i, q := range qz.Questions {
		if q.Kind != KindCode {
			continue
		}
		if s.judge == nil {
			return Errorf(protocol.Invalid, "question %d: code questions need a judge, and this server has none (see the README: the sandbox needs root and bubblewrap)", i+1)
		}
		if err := s.judge.Check(q); err != nil {
			return Errorf(protocol.Invalid, "question %d: %s", i+1, ErrorMessage(err))
		}
	}
	return nil
}

// Run serves timed starts and expires quiet rooms (sweep) until ctx is done, then stops
// the pending timers and waits for a start that is firing to finish. It first picks up the
// starts already scheduled in the store, so that a node that (re)starts fires them too,
// and finishes the closes a stop cut in two (finalizeClosed).
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	rooms, err := s.store.Rooms(ctx)
	if err != nil {
		s.log.Error("reading the scheduled starts", "err", err)
	}
	for _, r := range rooms {
		if r.Phase == PhaseOpen && !r.StartAt.IsZero() {
			s.setTimer(r.Code, r.Current, ActionStart, r.StartAt)
		}
		if (r.Phase == PhaseOpen || r.Phase == PhaseLive) && !r.CloseAt.IsZero() {
			s.setTimer(r.Code, r.Current, ActionClose, r.CloseAt)
		}
		s.finalizeClosed(ctx, r)
	}
	sweeps := time.NewTicker(sweepEvery(s.ttl))
	defer sweeps.Stop()
	for done := false; !done; {
		select {
		case <-sweeps.C:
			s.sweep(ctx)
		case <-ctx.Done():
			done = true
		}
	}
	s.mu.Lock()
	for k, t := range s.timers {
		t.Stop()
		delete(s.timers, k)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// sweepEvery is how often a node sweeps for rooms that expired with the given TTL: a
// tenth of it, at most every minute, at least every 10 ms. Every node sweeps; the sweep's
// lease makes it one at a time, so the rooms are swept about that often however many
// nodes there are.
func sweepEvery(ttl time.Duration) time.Duration {
	return min(max(ttl/10, 10*time.Millisecond), time.Minute)
}

// sweepLease names the lease of the sweep, and sweepLeaseTTL bounds how long a node that
// died while sweeping holds it.
const (
	sweepLease    = "rooms:sweep"
	sweepLeaseTTL = 30 * time.Second
)

// sweep expires the rooms quiet for longer than the TTL, if this node takes the sweep's
// lease (Locker): one node sweeps at a time. Should two ever overlap (a sweep longer than
// the lease), Store.Expire is still right, only wasteful. The timers of the expired rooms
// stop here; another node's fire finds the room gone and stops too.
func (s *Service) sweep(ctx context.Context) {
	lease, ok, err := s.locker.Acquire(ctx, sweepLease, sweepLeaseTTL)
	if err != nil {
		s.log.Warn("the sweep's lease", "err", err)
	}
	if !ok {
		return
	}
	defer func() {
		if err := lease.Release(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("releasing the sweep's lease", "err", err)
		}
	}()
	gone, err := s.store.Expire(ctx, s.now().Add(-s.ttl))
	for _, room := range gone {
		s.cancelTimer(room, ActionStart)
		s.cancelTimer(room, ActionClose)
		s.bc.Forget(ctx, room, protocol.Encode(protocol.DeletedFrame{Message: "the room expired"}))
		s.log.Info("room expired", "room", room, "quietFor", s.ttl)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Error("expiring rooms", "err", err)
	}
}
