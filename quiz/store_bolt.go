package quiz

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/bulbquiz/bulb/protocol"
)

// BoltStore is the embedded engine's Store: the rooms live in memory, as in a MemoryStore,
// and every change is also written to a bbolt database file before the call that made it
// returns, so that a restart, even after kill -9, finds every room as its last
// acknowledged change left it. Changes of concurrent calls share one transaction and one
// fsync (group commit; see journal). If a write fails (a full disk, say), the calls whose
// changes it held fail with Unavailable and their rooms go back to what is on disk;
// Health says why until a write succeeds again. Reads of a room (but Quiz) wait for its
// changes to be on disk, so that nobody is shown what could still be undone.
//
// One limit is bbolt's: should the flush of its meta page fail after the data pages were
// written, the change may be on disk although its call was told it failed; a restart then
// shows it. Sending it again is safe (see Store.Accept's replays).
//
// The database file is locked while it is open: a second process opening it fails.
type BoltStore struct {
	*MemoryStore
	db   *bolt.DB
	path string
}

var _ Store = (*BoltStore)(nil)

// The database's layout: a bucket per room in rooms, with the room's record (roomKey),
// its quiz (quizKey) and a bucket each of players (by seat), answers (by question and
// arrival), finalized questions and the fairness records of its starts (by sequence
// number); and meta, with the layout's version and the last start's sequence number.
var (
	bucketRooms     = []byte("rooms")
	bucketMeta      = []byte("meta")
	bucketPlayers   = []byte("players")
	bucketAnswers   = []byte("answers")
	bucketFinalized = []byte("finalized")
	bucketStarts    = []byte("starts")
	roomKey         = []byte("room")
	quizKey         = []byte("quiz")
	schemaKey       = []byte("schema")
	lastSeqKey      = []byte("lastSeq")
	probeKey        = []byte("probe")
)

// boltSchema is the version of the layout this code writes and reads.
const boltSchema = "1"

// ErrDataLocked is returned by OpenBoltStore when another process has the database open.
var ErrDataLocked = errors.New("the database is in use by another process")

// lockWait is how long OpenBoltStore waits for another process to let the file go.
const lockWait = time.Second

// OpenBoltStore opens the database at path, creating it (mode 0600) if it does not exist,
// and loads every room. It fails with ErrDataLocked if another process has it open, and
// with a clear error if the file cannot be read or is not a Bulb database. Close it when
// done.
func OpenBoltStore(path string, log *slog.Logger) (*BoltStore, error) {
	if log == nil {
		log = slog.Default()
	}
	_, statErr := os.Stat(path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockWait, FreelistType: bolt.FreelistMapType})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%s: %w", path, ErrDataLocked)
	case err != nil:
		return nil, fmt.Errorf("opening the database %s: %w", path, err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		// A new file: its name must survive a power loss too.
		if err := syncDir(filepath.Dir(path)); err != nil {
			db.Close()
			return nil, err
		}
	}
	s := &BoltStore{MemoryStore: NewMemoryStore(), db: db, path: path}
	if err := db.Update(initSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRooms).ForEachBucket(func(code []byte) error {
			st, err := loadRoom(tx.Bucket(bucketRooms).Bucket(code))
			if err != nil {
				return fmt.Errorf("room %s: %w", code, err)
			}
			s.insert(&memRoom{memState: *st})
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	s.j = newJournal(db, s.MemoryStore, log.With("component", "store"))
	return s, nil
}

// initSchema makes the buckets of a new database, or checks those of an old one.
func initSchema(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		if tx.Bucket(bucketRooms) != nil {
			return errors.New("not a Bulb database: it has rooms but no version")
		}
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return err
		}
		if err := meta.Put(schemaKey, []byte(boltSchema)); err != nil {
			return err
		}
		_, err = tx.CreateBucket(bucketRooms)
		return err
	}
	if v := string(meta.Get(schemaKey)); v != boltSchema {
		return fmt.Errorf("the database's layout is version %q; this Bulb reads version %q", v, boltSchema)
	}
	if tx.Bucket(bucketRooms) == nil {
		return errors.New("the database has no rooms bucket: it is damaged")
	}
	return nil
}

// syncDir flushes a directory's entries to the disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// insert adds a loaded room and its tokens to the store.
func (s *MemoryStore) insert(r *memRoom) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rooms[r.room.Code] = r
	s.addTokens(&r.memState)
}

// addTokens and dropTokens add and remove the tokens of a room's host and players.
// The store's lock is held.
func (s *MemoryStore) addTokens(st *memState) {
	s.tokens[st.room.HostToken] = Identity{Room: st.room.Code, Role: RoleHost}
	for _, p := range st.room.Players {
		s.tokens[p.Token] = Identity{Room: st.room.Code, Role: RolePlayer, PlayerID: p.ID, Name: p.Name}
	}
}

func (s *MemoryStore) dropTokens(st *memState) {
	delete(s.tokens, st.room.HostToken)
	for _, p := range st.room.Players {
		delete(s.tokens, p.Token)
	}
}

// Close writes what is queued and closes the database. Changes after Close fail with
// Unavailable.
func (s *BoltStore) Close() error {
	s.j.close()
	return s.db.Close()
}

// Health returns why changes cannot be saved, or nil: the error of the last write, until a
// write succeeds again (the store retries on its own every second).
func (s *BoltStore) Health() error {
	return s.j.health()
}

// BoltStats count the embedded engine's writes.
type BoltStats struct {
	Changes int64 // changes written (calls that changed something)
	Commits int64 // transactions committed: each holds the changes made while the one before was written
}

// Stats returns the store's counts since it was opened.
func (s *BoltStore) Stats() BoltStats {
	return BoltStats{Changes: s.j.changes.Load(), Commits: s.j.commits.Load()}
}

// Path returns the database file's path.
func (s *BoltStore) Path() string { return s.path }

// SaveStart keeps the fairness record of a start of the room (opaque to the store) under
// its sequence number, replacing an earlier one of the same start, and keeps only the
// room's newest keep records. The records go with the room when it expires. NotFound if
// the room does not exist.
func (s *BoltStore) SaveStart(_ context.Context, room string, seq uint64, record []byte, keep int) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRooms).Bucket([]byte(room))
		if rb == nil {
			return roomNotFound(room)
		}
		b, err := rb.CreateBucketIfNotExists(bucketStarts)
		if err != nil {
			return err
		}
		if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), record); err != nil {
			return err
		}
		c, n := b.Cursor(), 0
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			if n++; n > keep {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		meta := tx.Bucket(bucketMeta)
		if last := meta.Get(lastSeqKey); last != nil && binary.BigEndian.Uint64(last) >= seq {
			return nil
		}
		return meta.Put(lastSeqKey, binary.BigEndian.AppendUint64(nil, seq))
	})
	if err != nil && ErrorCode(err) == "" {
		return Errorf(protocol.Unavailable, "saving a start's record: %v", err)
	}
	return err
}

// Starts returns the fairness records the room keeps (SaveStart), oldest first, but those
// of the starts in except.
func (s *BoltStore) Starts(_ context.Context, room string, except map[uint64]bool) ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRooms).Bucket([]byte(room))
		if rb == nil {
			return nil
		}
		b := rb.Bucket(bucketStarts)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if !except[binary.BigEndian.Uint64(k)] {
				out = append(out, append([]byte(nil), v...))
			}
			return nil
		})
	})
	return out, err
}

// LastStartSeq returns the highest sequence number SaveStart was given, 0 if none.
func (s *BoltStore) LastStartSeq(context.Context) (uint64, error) {
	var seq uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(lastSeqKey); v != nil {
			seq = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return seq, err
}
