package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/protocol"
	"golang.org/x/sync/errgroup"
)

// Options configure a Hub. Zero fields take the defaults given.
type Options struct {
	QueueSize    int           // frames waiting per player connection; default 64
	HostQueue    int           // frames waiting per host connection; default 4096: a host gets a frame per answer
	WriteTimeout time.Duration // one write to one socket, cut off within 1.25 times this; default 5 s
	PingInterval time.Duration // between RTT pings; default 5 s
	PingTimeout  time.Duration // for a pong to come back; default 15 s
	ReadLimit    int64         // largest frame read, in bytes; default protocol.MaxFrame
	FrameRate    float64       // client frames a connection may send a second, sustained; default 20
	FrameBurst   int           // client frames a connection may send at once; default 40
	Shards       int           // concurrent enqueuers of a start; default GOMAXPROCS
	WriterIdle   time.Duration // how long an idle writer goroutine waits for work before it ends; default 30 s
	History      int           // starts kept per room for fairness; default 200
	MinLead      time.Duration // the shortest lead of a synced start (see Lead); default 150 ms
	MaxLead      time.Duration // the longest; default 1 s
	LeadMargin   time.Duration // added to what Lead measured; default 30 ms
	Logger       *slog.Logger  // default slog.Default()
	Metrics      *Metrics      // default: unregistered metrics
	Bus          Bus           // other nodes; nil for a single node
	Archive      Archive       // keeps fairness records across restarts (Run saves them); nil: kept in memory only
	Node         string        // this node's name, in fairness records; default the host name
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.QueueSize, 64)
	def(&o.HostQueue, 4096)
	def(&o.Shards, runtime.GOMAXPROCS(0))
	def(&o.History, 200)
	def(&o.FrameBurst, 40)
	if o.FrameRate <= 0 {
		o.FrameRate = 20
	}
	defDur(&o.WriteTimeout, 5*time.Second)
	defDur(&o.PingInterval, 5*time.Second)
	defDur(&o.PingTimeout, 15*time.Second)
	defDur(&o.WriterIdle, 30*time.Second)
	defDur(&o.MinLead, 150*time.Millisecond)
	defDur(&o.MaxLead, time.Second)
	defDur(&o.LeadMargin, 30*time.Millisecond)
	o.MaxLead = max(o.MaxLead, o.MinLead)
	if o.ReadLimit <= 0 {
		o.ReadLimit = protocol.MaxFrame
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	if o.Node == "" {
		o.Node, _ = os.Hostname()
	}
	return o
}

// Hub is the set of rooms and their connections on this node.
type Hub struct {
	opts Options
	log  *slog.Logger
	m    *Metrics
	bus  Bus

	handlersMu sync.RWMutex
	onNotify   map[string]func(data []byte)
	onSurvey   map[string]func(ctx context.Context, data []byte) ([]byte, error)

	mu      sync.RWMutex
	rooms   map[string]*room
	closed  bool
	serving sync.WaitGroup // Serve calls under way

	seqMu sync.Mutex
	seq   uint64

	archiving chan toArchive // start records for runArchive to save

	rateLimited []byte // the error frame of a frame over the connection's rate

	work      chan *Conn     // unbuffered: hands a connection with frames to an idle writer
	writers   sync.WaitGroup // the writer goroutines and their watchdog's sweeper
	dog       *watchdog      // cuts off the writers' hung writes
	closeWork sync.Once      // closes work once Shutdown has seen every connection end
}

type room struct {
	mu      sync.RWMutex
	players map[string]*Conn   // by player ID: one connection per player
	hosts   map[*Conn]struct{} // the watchers: hosts and presenters
	starts  []*startRecord     // oldest first, at most History
}

// unusedLocked reports whether the room holds nothing: no connection, no start record.
func (r *room) unusedLocked() bool {
	return len(r.players) == 0 && len(r.hosts) == 0 && len(r.starts) == 0
}

// topicForget tells every node to forget a room (Forget).
const topicForget = "hub.forget"

// Forget forgets, on every node, a room that is gone (deleted, or expired): its start
// records go, and its host and presenter connections still open get farewell as their last
// frame and are closed with protocol.CloseRemoved; the room goes once its connections
// have (players are removed one by one, with Remove). A room's records are
// otherwise kept (up to Options.History starts) for as long as the hub runs.
func (h *Hub) Forget(ctx context.Context, roomName string, farewell []byte) {
	h.forgetLocal(roomName, true, farewell)
	data, _ := json.Marshal(forgetting{Room: roomName, Farewell: farewell})
	if err := h.Notify(ctx, topicForget, data); err != nil {
		h.log.Warn("telling the other nodes to forget a room", "room", roomName, "err", err)
	}
}

// forgetting is a Forget sent to the other nodes.
type forgetting struct {
	Room     string `json:"room"`
	Farewell []byte `json:"farewell"`
}

// forgetLocal drops the room's start records and closes its watchers' connections with
// farewell if records is set, and drops the room if it is then unused.
func (h *Hub) forgetLocal(roomName string, records bool, farewell []byte) {
	var open []*Conn
	defer func() { // not under the locks: a close takes the connection's own
		for _, c := range open {
			c.Close(protocol.CloseRemoved, "the room is gone", farewell)
		}
	}()
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[roomName]
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if records {
		r.starts = nil
		for c := range r.hosts { // players are the quiz's to remove, each with its reason
			open = append(open, c)
		}
	}
	if r.unusedLocked() {
		delete(h.rooms, roomName)
	}
}

// New returns an empty Hub.
func New(opts Options) *Hub {
	opts = opts.withDefaults()
	h := &Hub{opts: opts, log: opts.Logger.With("component", "hub"), m: opts.Metrics, bus: opts.Bus, rooms: map[string]*room{},
		onNotify: map[string]func([]byte){}, onSurvey: map[string]func(context.Context, []byte) ([]byte, error){},
		work: make(chan *Conn), dog: newWatchdog(opts.WriteTimeout), archiving: make(chan toArchive, archiveQueue)}
	if opts.Archive != nil {
		// Numbers go on well past the last start saved: a record's number is its key.
		seq, err := opts.Archive.LastStartSeq(context.Background())
		if err != nil {
			h.log.Error("reading the last start's number: numbering from 0 again", "err", err)
		}
		if seq > 0 {
			h.seq = seq + seqGap
		}
	}
	h.rateLimited = protocol.Encode(protocol.ErrorFrame{Code: protocol.RateLimited,
		Message: fmt.Sprintf("more than %d frames at once or %g a second: frame refused", opts.FrameBurst, opts.FrameRate)})
	h.OnSurvey(topicOnline, answerJSON(h.online))
	h.OnNotify(topicForget, func(data []byte) {
		var f forgetting
		if err := json.Unmarshal(data, &f); err != nil {
			h.log.Error("a room to forget", "err", err)
			return
		}
		h.forgetLocal(f.Room, true, f.Farewell)
	})
	h.OnSurvey(topicFairness, answerJSON(h.localStarts))
	return h
}

// dispatch gives c, which has frames waiting, to an idle writer goroutine, or starts a new
// one if none is idle: a writer blocked on a slow client never holds up another
// connection. Writers are pooled rather than one per connection so that an idle
// connection costs no writer (its stack is most of a goroutine's memory), while a burst,
// such as a start to every player right after the question frame went to every player,
// finds writers parked and waiting: waking one costs far less than starting one, whose
// stack must be allocated anew once the garbage collector has freed the stacks of ended
// goroutines. A writer ends after Options.WriterIdle without work.
func (h *Hub) dispatch(c *Conn) {
	select {
	case h.work <- c:
	default:
		h.writers.Add(1)
		go h.writer(c)
	}
}

// writer is a writer goroutine: it writes c's frames, then those of every connection it
// is given, until it has waited Options.WriterIdle for one or Shutdown has closed work.
func (h *Hub) writer(c *Conn) {
	defer h.writers.Done()
	slot := h.watch()
	defer h.unwatch(slot)
	idle := time.NewTimer(h.opts.WriterIdle)
	defer idle.Stop()
	for ok := true; ok; {
		slot.conn.Store(c)
		c.write()
		slot.conn.Store(nil)
		idle.Reset(h.opts.WriterIdle)
		select {
		case c, ok = <-h.work:
		case <-idle.C:
			return
		}
	}
}

// room returns the named room, creating it if create is set.
func (h *Hub) room(name string, create bool) *room {
	h.mu.RLock()
	r := h.rooms[name]
	h.mu.RUnlock()
	if r != nil || !create {
		return r
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if r = h.rooms[name]; r == nil {
		r = &room{players: map[string]*Conn{}, hosts: map[*Conn]struct{}{}}
		h.rooms[name] = r
	}
	return r
}

// Send queues frame for every connection of the room, on every node.
func (h *Hub) Send(roomName string, frame []byte) { h.send(roomName, toAll, "", frame) }

// SendHosts queues frame for the room's host connections, on every node.
func (h *Hub) SendHosts(roomName string, frame []byte) { h.send(roomName, toHosts, "", frame) }

// SendPresenters queues frame for the room's presenter connections, on every node.
func (h *Hub) SendPresenters(roomName string, frame []byte) {
	h.send(roomName, toPresenters, "", frame)
}

// SendPlayer queues frame for one player's connection, on whichever node holds it.
func (h *Hub) SendPlayer(roomName, playerID string, frame []byte) {
	h.send(roomName, toPlayer, playerID, frame)
}

// Remove queues frame for one player's connection, on whichever node holds it, and then
// closes that connection with protocol.CloseRemoved: the frame is the last it gets.
func (h *Hub) Remove(roomName, playerID string, frame []byte) {
	h.send(roomName, toRemove, playerID, frame)
}

// Audiences of a frame.
const (
	toAll        = "all"
	toHosts      = "hosts"
	toPresenters = "presenters"
	toWatchers   = "watchers" // hosts and presenters
	toPlayer     = "player"
	toRemove     = "remove" // one player, whose connection is closed after the frame
)

// send delivers a frame here, or publishes it to every node when there is a bus.
func (h *Hub) send(roomName, to, playerID string, frame []byte) {
	if h.bus == nil {
		h.local(roomName, to, playerID, frame)
		return
	}
	h.publish(message{Kind: to, Room: roomName, Player: playerID, Frame: frame})
}

// local queues frame for this node's connections of the room in the audience.
func (h *Hub) local(roomName, to, playerID string, frame []byte) {
	switch to {
	case toPlayer:
		if c := h.player(roomName, playerID); c != nil {
			c.Send(frame)
		}
		return
	case toRemove:
		if c := h.player(roomName, playerID); c != nil {
			c.Close(protocol.CloseRemoved, "removed", frame)
		}
		return
	}
	for _, c := range h.conns(roomName, to == toAll, true) {
		if r := c.client.Role; to == toHosts && r != Host || to == toPresenters && r != Presenter {
			continue
		}
		c.Send(frame)
	}
}

// online returns the IDs of the room's players connected to this node.
func (h *Hub) online(roomName string) []string {
	conns := h.conns(roomName, true, false)
	ids := make([]string, len(conns))
	for i, c := range conns {
		ids[i] = c.client.ID
	}
	return ids
}

func (h *Hub) player(roomName, playerID string) *Conn {
	r := h.room(roomName, false)
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.players[playerID]
}

// conns returns a snapshot of the room's player and/or watcher (host and presenter)
// connections.
func (h *Hub) conns(roomName string, players, hosts bool) []*Conn {
	r := h.room(roomName, false)
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0 // sized for the audience: a frame for the hosts, sent per join, is not O(players)
	if players {
		n += len(r.players)
	}
	if hosts {
		n += len(r.hosts)
	}
	out := make([]*Conn, 0, n)
	if players {
		for _, c := range r.players {
			out = append(out, c)
		}
	}
	if hosts {
		for c := range r.hosts {
			out = append(out, c)
		}
	}
	return out
}

// Start lights the bulb of question n in the room. The start frame is encoded once; the
// room's players are taken in a fresh random order, split into shards, and enqueued
// concurrently on their connections' start queues. A connection that cannot take the
// frame is dropped, without holding up the others. Start returns the start's sequence
// number and the number of players it was enqueued for; hosts get the frame afterwards,
// outside the measured fan-out.
//
// reveal is the instant the bulbs light, for a synced start (the frame carries it and
// pages light at it, on their synced clocks; see Lead for how far ahead to choose it), or
// zero for an immediate start (pages light on receipt).
//
// With a Bus, the start is published once and every node, this one included, fans out to
// its own players when the message reaches it; the recipients are the sum over the nodes.
func (h *Hub) Start(ctx context.Context, roomName string, n int, reveal time.Time) (uint64, int, error) {
	if h.bus == nil {
		seq := h.nextSeq()
		recipients, err := h.fanout(ctx, roomName, n, seq, reveal, 0)
		return seq, recipients, err
	}
	return h.startOnBus(ctx, roomName, n, reveal)
}

// fanout enqueues the start frame of seq (revealed at reveal, if not zero) for every local
// player of the room and records the deliveries; busDelay is how long the start took to
// reach this node, if it came over the bus.
func (h *Hub) fanout(ctx context.Context, roomName string, n int, seq uint64, reveal time.Time, busDelay time.Duration) (int, error) {
	players := h.conns(roomName, true, false)
	var at float64
	if !reveal.IsZero() {
		at = clocksync.Millis(reveal)
	}
	frame := protocol.AppendStart(make([]byte, 0, 72), n, seq, at)
	rand.Shuffle(len(players), func(i, j int) { players[i], players[j] = players[j], players[i] })

	rec := &startRecord{Seq: seq, N: n, At: time.Now(), Reveal: reveal, Node: h.opts.Node, BusDelay: busDelay, frame: frame, deliveries: make([]delivery, len(players))}
	rec.t0 = rec.At
	shards := min(h.opts.Shards, len(players))
	var g errgroup.Group // no WithContext: one client's failure must not cancel the others
	for s := range shards {
		lo, hi := s*len(players)/shards, (s+1)*len(players)/shards
		g.Go(func() error {
			for i := lo; i < hi; i++ {
				d := &rec.deliveries[i]
				d.rec, d.order, d.player, d.name = rec, i, players[i].client.ID, players[i].client.Name
				if ctx.Err() != nil { // not sent: recorded as such, not as an empty player
					d.dropped.Store(true)
					continue
				}
				d.enqueued.Store(int64(time.Since(rec.t0)))
				if !players[i].sendStart(d) {
					d.dropped.Store(true)
				}
			}
			return ctx.Err()
		})
	}
	err := g.Wait()
	h.m.fanout.Observe(time.Since(rec.t0).Seconds())
	h.m.starts.Inc()
	h.record(roomName, rec)
	h.archive(roomName, rec)
	h.local(roomName, toWatchers, "", frame)
	if err != nil {
		return 0, err
	}
	return len(players) - rec.droppedCount(), nil
}

func (h *Hub) nextSeq() uint64 {
	h.seqMu.Lock()
	defer h.seqMu.Unlock()
	h.seq++
	return h.seq
}

func (h *Hub) record(roomName string, rec *startRecord) {
	r := h.room(roomName, true)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts = append(r.starts, rec)
	if over := len(r.starts) - h.opts.History; over > 0 {
		r.starts = slices.Delete(r.starts, 0, over)
	}
}

// Shutdown closes every connection with 1001 (going away) and waits until their Serve
// calls have returned and the writer goroutines have ended, or ctx is done. New
// connections are refused from then on.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	var all []*Conn
	for _, r := range h.rooms {
		r.mu.RLock()
		for _, c := range r.players {
			all = append(all, c)
		}
		for c := range r.hosts {
			all = append(all, c)
		}
		r.mu.RUnlock()
	}
	h.mu.Unlock()
	for _, c := range all {
		c.drop(protocol.CloseGoingAway, "server shutting down", "")
	}
	done := make(chan struct{})
	go func() {
		// Every connection has ended and let its writer go: nothing is dispatched any more,
		// so closing work is safe, and it ends the idle writers.
		h.serving.Wait()
		h.closeWork.Do(func() { close(h.work) })
		h.writers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrClosed is returned by Serve once the hub is shutting down.
var ErrClosed = errors.New("hub: shutting down")
