package quiz

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bulbquiz/bulb/protocol"
)

// journal writes a MemoryStore's changes to its bbolt database, in the order they were
// made, many calls' at once: each change's records join the open flush; one goroutine
// commits the flushes one after another, each in one transaction (one fsync of the pages,
// one of the meta page), and wakes the calls whose changes it held. While a flush is being
// committed the next one fills up, so under load hundreds of answers share one commit and
// none waits longer than the commit before its own.
//
// A flush that fails takes every later change with it, since they may build on it (a rank,
// a score): undo puts the rooms they touched back to what the database has, and their
// calls fail with Unavailable.
type journal struct {
	db    *bolt.DB
	store *MemoryStore
	log   *slog.Logger

	// world is held for reading by every change, from its first look at a room until its
	// records are queued; undo holds it for writing, so that no change is half made while
	// rooms go back to the database's state.
	world sync.RWMutex

	mu       sync.Mutex
	open     *flush        // the flush being filled
	wake     chan struct{} // cap 1: the open flush has records
	closed   bool
	broken   error     // why the last commit failed; nil once one succeeds
	brokenAt time.Time // when it first failed
	needs    int       // bytes the failed flush wrote: what a probe must be able to write
	// fatal is why memory may differ from the database for good (rooms could not be read
	// back after a failed commit): every change is refused until a restart.
	fatal error

	commits, changes atomic.Int64 // see Stats

	stop chan struct{}
	done chan struct{}
}

// flush is a group of changes committed together.
type flush struct {
	ops   []op
	rooms map[string]struct{} // the rooms it changes
	done  chan struct{}       // closed once committed or failed
	err   error               // why it failed (Unavailable), set before done closes
}

func newFlush() *flush {
	return &flush{rooms: map[string]struct{}{}, done: make(chan struct{})}
}

// probeEvery is how often a broken journal tries a write of its own, as large as the one
// that failed, so that Health recovers when space returns even if no call changes
// anything, and not before.
const probeEvery = time.Second

func newJournal(db *bolt.DB, store *MemoryStore, log *slog.Logger) *journal {
	j := &journal{db: db, store: store, log: log, open: newFlush(), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	store.j = j
	go j.run()
	return j
}

// write queues the records of ch, a change of room r, and makes the open flush r's
// pending one. The caller holds r's lock, or r is not yet in the store (so the records
// are the room's state just after the change, and a room's changes are queued in the
// order they were made), and the world lock for reading.
func (j *journal) write(r *memRoom, ch *change) {
	ops := r.records(ch)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed || j.fatal != nil {
		// Refused: this change stays in memory only, which is what a server shutting down
		// or one that must be restarted can afford.
		f := newFlush()
		f.err = Errorf(protocol.Unavailable, "the server is shutting down, or must be restarted: changes are not saved")
		close(f.done)
		r.pending = f
		return
	}
	j.changes.Add(1)
	j.open.ops = append(j.open.ops, ops...)
	j.open.rooms[r.room.Code] = struct{}{}
	r.pending = j.open
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// wait returns once flush f is committed, or why it failed; nil if f is nil (nothing to
// wait for). It has no time limit: a flush always ends committed or undone, and a call
// told anything else could not know whether its change was made.
func (j *journal) wait(f *flush) error {
	if f == nil {
		return nil
	}
	<-f.done
	return f.err
}

// run commits the flushes one after another until close.
func (j *journal) run() {
	defer close(j.done)
	probe := time.NewTicker(probeEvery)
	defer probe.Stop()
	for {
		select {
		case <-j.wake:
		case <-probe.C:
			if j.health() != nil {
				j.probe()
			}
			continue
		case <-j.stop:
			j.flushOpen()
			return
		}
		j.flushOpen()
	}
}

// flushOpen commits the open flush, and opens the next.
func (j *journal) flushOpen() {
	j.mu.Lock()
	f := j.open
	j.open = newFlush()
	j.mu.Unlock()
	if len(f.ops) == 0 {
		close(f.done)
		return
	}
	err := j.db.Update(func(tx *bolt.Tx) error {
		rooms := tx.Bucket(bucketRooms)
		for _, o := range f.ops {
			if err := o.apply(rooms); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		j.undo(f, err)
	} else {
		j.commits.Add(1)
		j.setBroken(nil, 0)
	}
	close(f.done)
}

// undo fails flush f, which could not be committed, and every change queued since, and
// puts the rooms they changed back to the database's state.
func (j *journal) undo(f *flush, cause error) {
	j.world.Lock()
	defer j.world.Unlock()
	j.mu.Lock()
	rest := j.open
	j.open = newFlush()
	j.mu.Unlock()
	needs := 0
	for _, o := range f.ops {
		needs += len(o.key) + len(o.value)
	}
	j.setBroken(cause, needs)
	j.log.Error("changes could not be saved: undone, and their calls failed", "rooms", len(f.rooms), "err", cause)
	rooms := f.rooms
	for room := range rest.rooms {
		rooms[room] = struct{}{}
	}
	if err := j.store.reload(j.db, rooms); err != nil {
		// Memory keeps changes the database has not, and the records of later changes
		// would not fit with those on disk: refuse every change until a restart reads
		// the database afresh.
		j.mu.Lock()
		j.fatal = fmt.Errorf("rooms could not be read back after a failed save (%v): restart the server", err)
		j.mu.Unlock()
		j.log.Error("reading rooms back after a failed save: no more changes are saved until a restart", "err", err)
	}
	f.err = Errorf(protocol.Unavailable, "the change could not be saved (%v): try again", cause)
	rest.err = f.err
	close(rest.done)
}

// probe tries a write of its own as large as the failed flush's, then takes it back, to
// learn whether writes succeed again: a small one could fit in pages the file already has
// while real changes still fail.
func (j *journal) probe() {
	j.mu.Lock()
	needs := j.needs
	j.mu.Unlock()
	err := j.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(probeKey, make([]byte, needs))
	})
	if err == nil {
		err = j.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(probeKey) })
	}
	if err == nil {
		j.setBroken(nil, 0)
	}
}

// setBroken records why commits fail and how much the failed one wrote, or, with a nil
// err, that they succeed again.
func (j *journal) setBroken(err error, needs int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case err == nil && j.broken != nil:
		j.log.Info("changes are saved again", "after", time.Since(j.brokenAt).Round(time.Millisecond))
		j.broken = nil
	case err != nil && j.broken == nil:
		j.brokenAt = time.Now()
		j.broken = err
	case err != nil:
		j.broken = err
	}
	if err != nil {
		j.needs = needs
	}
}

func (j *journal) health() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.fatal != nil:
		return j.fatal
	case j.broken != nil:
		return fmt.Errorf("changes cannot be saved since %s: %w", j.brokenAt.UTC().Format(time.RFC3339), j.broken)
	}
	return nil
}

// close commits what is queued and stops; later changes fail.
func (j *journal) close() {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return
	}
	j.closed = true
	j.mu.Unlock()
	close(j.stop)
	<-j.done
}
