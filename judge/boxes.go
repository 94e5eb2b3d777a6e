package judge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// Boxes leases sandbox boxes to runs, so that no two runs ever share a box.
type Boxes interface {
	// Lease waits until a box is free, or ctx is done, and leases it to the caller.
	Lease(ctx context.Context) (BoxLease, error)
}

// BoxLease is one leased box.
type BoxLease interface {
	// ID is the box's id.
	ID() int
	// Release makes the box clean and gives it back. A box that cannot be made clean
	// leaves the pool, with an error in the log (HostBoxes.Broken lists it).
	Release(ctx context.Context) error
}

// DefaultBoxLocks is the host-wide directory of the boxes' lock files.
const DefaultBoxLocks = "/run/lock/bulb-boxes"

// HostBoxesOptions configure NewHostBoxes.
type HostBoxesOptions struct {
	// Locks is the directory of the boxes' lock files, one for the whole host whatever
	// process judges (DefaultBoxLocks if empty). It must be root's alone.
	Locks string
	// First and Boxes give the host's box ids: First to First+Boxes−1.
	First, Boxes int
	// Clean makes box id clean: kills what runs in it and empties it. It runs when a box
	// is leased (its last holder may have died in the middle of a run) and released.
	Clean func(ctx context.Context, id int) error
	// Logger receives the boxes' diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// HostBoxes leases this host's boxes so that no two runs on the host share one, whatever
// process runs them and however it was configured: a box is a host-wide resource (a uid,
// a cgroup, a directory), and two Bulb processes on one host once killed each other's
// runs. A lease of box N is an exclusive flock(2) on the lock file box-N.lock in a
// host-wide directory, taken without blocking and held until Release, or until the
// process dies, when the kernel drops it (as isolate 2.x does with its lock files).
//
// Lease takes the lowest box of the host's that nobody holds, and logs, once per box,
// that it skipped a box another process holds. If every box is held, it waits on the lock
// of one held by another process (blocking in the kernel, not polling) and on the boxes
// this process releases, whichever comes first.
//
// A box is cleaned (HostBoxesOptions.Clean) when leased and when released; one that cannot
// be cleaned stays locked by this process and out of the pool, never reused dirty, with
// an error in the log; Broken lists them, for an alert.
//
// All methods are safe for concurrent use.
type HostBoxes struct {
	dir      string
	first, n int
	clean    func(ctx context.Context, id int) error
	log      *slog.Logger

	mu       sync.Mutex
	held     map[int]*os.File // the lock files of the boxes this process holds, broken ones too
	broken   map[int]error
	skipped  map[int]bool  // boxes seen held by another process, logged once
	released chan struct{} // closed and replaced when this process releases a box
}

var _ Boxes = (*HostBoxes)(nil)

// NewHostBoxes returns the host's boxes, having made sure their lock directory is there
// and root's alone.
func NewHostBoxes(opts HostBoxesOptions) (*HostBoxes, error) {
	if opts.Boxes < 1 || opts.First < 0 {
		return nil, fmt.Errorf("judge: boxes %d from %d: want at least one, from 0 up", opts.Boxes, opts.First)
	}
	if opts.Locks == "" {
		opts.Locks = DefaultBoxLocks
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := privateDir(opts.Locks); err != nil {
		return nil, fmt.Errorf("judge: the boxes' lock directory: %w", err)
	}
	return &HostBoxes{dir: opts.Locks, first: opts.First, n: opts.Boxes, clean: opts.Clean,
		log: opts.Logger.With("component", "judge.boxes"), held: map[int]*os.File{}, broken: map[int]error{},
		skipped: map[int]bool{}, released: make(chan struct{})}, nil
}

// privateDir makes dir if need be and checks that only its owner, this process's user,
// may write in it: a stranger who could would hold its locks.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	case !ok || int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s belongs to another user", dir)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s may be written by others (mode %v)", dir, fi.Mode().Perm())
	}
	return nil
}

func (h *HostBoxes) lockPath(id int) string {
	return filepath.Join(h.dir, fmt.Sprintf("box-%d.lock", id))
}

// Broken returns the ids of the boxes this process took out of the pool because they
// could not be made clean.
func (h *HostBoxes) Broken() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]int, 0, len(h.broken))
	for id := range h.broken {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Lease implements Boxes.
func (h *HostBoxes) Lease(ctx context.Context) (BoxLease, error) {
	for {
		h.mu.Lock()
		released := h.released
		h.mu.Unlock()
		l, others, err := h.tryEach(ctx)
		if l != nil || err != nil {
			return l, err
		}
		if l, err = h.wait(ctx, others, released); l != nil || err != nil {
			return l, err
		}
		// A box of this process's was released, or the one waited for turned out
		// broken: look again.
	}
}

// tryEach tries to lock each box in turn, lowest first, and leases the first it locks
// and can clean. It returns nil and the boxes other processes hold if it leased none.
func (h *HostBoxes) tryEach(ctx context.Context) (*hostLease, []int, error) {
	var others []int
	for id := h.first; id < h.first+h.n; id++ {
		h.mu.Lock()
		_, mine := h.held[id]
		h.mu.Unlock()
		if mine {
			continue
		}
		f, err := lockBox(h.lockPath(id), false)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			others = append(others, id)
			h.mu.Lock()
			first := !h.skipped[id]
			h.skipped[id] = true
			h.mu.Unlock()
			if first {
				h.log.Info("box held by another process on this host: leasing the next free one", "box", id)
			}
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("judge: lock box %d: %w", id, err)
		}
		if l := h.take(ctx, id, f); l != nil {
			return l, nil, nil
		}
	}
	return nil, others, ctx.Err()
}

// take makes the box this process just locked clean and leases it; if it cannot be
// cleaned, the box stays locked and out of the pool, and take returns nil.
func (h *HostBoxes) take(ctx context.Context, id int, f *os.File) *hostLease {
	h.mu.Lock()
	h.held[id] = f
	h.mu.Unlock()
	if err := h.cleanBox(ctx, id); err != nil {
		return nil
	}
	return &hostLease{boxes: h, id: id}
}

// cleanBox cleans box id, which this process holds; if that fails, the box is broken.
func (h *HostBoxes) cleanBox(ctx context.Context, id int) error {
	if h.clean == nil {
		return nil
	}
	err := h.clean(ctx, id)
	if err != nil {
		h.mu.Lock()
		h.broken[id] = err
		h.mu.Unlock()
		h.log.Error("box cannot be made clean: out of the pool until this process ends", "box", id, "err", err)
	}
	return err
}

// wait waits for the lock of one of others (boxes other processes hold), for a box of
// this process's to be released, or for ctx. It returns a lease if it got the lock.
func (h *HostBoxes) wait(ctx context.Context, others []int, released <-chan struct{}) (*hostLease, error) {
	if len(others) == 0 {
		select {
		case <-released:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	id := others[0]
	p := &pendingLock{done: make(chan struct{})}
	go p.lock(h.lockPath(id))
	select {
	case <-p.done:
		if p.err != nil {
			return nil, fmt.Errorf("judge: lock box %d: %w", id, p.err)
		}
		return h.take(ctx, id, p.f), nil
	case <-released:
		p.abandon()
		return nil, nil
	case <-ctx.Done():
		p.abandon()
		return nil, ctx.Err()
	}
}

// pendingLock is a blocking flock under way on a goroutine of its own, which lives until
// the holder lets the box go (at most one run). Abandoned, it lets the lock go as soon as
// it gets it.
type pendingLock struct {
	done chan struct{} // closed once the lock is got, or failed

	mu        sync.Mutex
	f         *os.File
	err       error
	abandoned bool
}

func (p *pendingLock) lock(path string) {
	f, err := lockBox(path, true)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.abandoned {
		if f != nil {
			f.Close()
		}
		return
	}
	p.f, p.err = f, err
	close(p.done)
}

func (p *pendingLock) abandon() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.abandoned = true
	select {
	case <-p.done: // got it meanwhile: let it go
		if p.f != nil {
			p.f.Close()
		}
	default:
	}
}

// lockBox opens the lock file at path, creating it, and takes an exclusive flock on it,
// waiting for it if block. The lock is held while the file is open.
func lockBox(path string, block bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_EX
	if !block {
		how |= syscall.LOCK_NB
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

type hostLease struct {
	boxes *HostBoxes
	id    int
	once  sync.Once
}

func (l *hostLease) ID() int { return l.id }

// Release implements BoxLease; a second release does nothing.
func (l *hostLease) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() { err = l.boxes.release(ctx, l.id) })
	return err
}

func (h *HostBoxes) release(ctx context.Context, id int) error {
	if err := h.cleanBox(ctx, id); err != nil {
		return err // broken: it keeps its lock
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.held[id]
	delete(h.held, id)
	close(h.released)
	h.released = make(chan struct{})
	return f.Close()
}
