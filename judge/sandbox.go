package judge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Sandbox runs one untrusted command in a box. Implementations are safe for concurrent use
// on different boxes; a box runs one command at a time (its caller holds it, e.g. by lease).
//
// Run returns an error only when the sandbox itself failed (it could not prepare the box,
// start the command or clean up); whatever the program does, including being killed for a
// limit, is reported in the RunResult.
type Sandbox interface {
	// Run runs spec in box.
	Run(ctx context.Context, box Box, spec RunSpec) (RunResult, error)
	// Clean makes box clean again: it kills whatever still runs in it and empties it. A
	// reaper calls it before returning a dead worker's box to the pool.
	Clean(ctx context.Context, box Box) error
}

// BaseUID is the host uid of box 0; box N runs as BaseUID+N, so that no two boxes share a
// uid (RLIMIT_NPROC counts per uid, and a box's files are readable only by its uid).
const BaseUID = 60000

// Box is one sandbox slot: an id, the host directory the program sees as /box (its only
// writable place) and the uid the program runs as.
type Box struct {
	ID  int
	Dir string
	UID int
}

// NewBox creates (or reuses) the directory of box id under root, owned by the box's uid
// with mode 0700, so that other boxes cannot read it. root must be traversable by the box
// uids (mode 0711 or wider on root and its parents); NewBox does not change root.
func NewBox(root string, id int) (Box, error) {
	if id < 0 {
		return Box{}, fmt.Errorf("judge: box id %d is negative", id)
	}
	b := Box{ID: id, Dir: filepath.Join(root, fmt.Sprintf("box-%d", id)), UID: BaseUID + id}
	if err := os.MkdirAll(b.Dir, 0o700); err != nil {
		return Box{}, fmt.Errorf("judge: create box %d: %w", id, err)
	}
	if err := os.Chown(b.Dir, b.UID, b.UID); err != nil {
		return Box{}, fmt.Errorf("judge: chown box %d: %w", id, err)
	}
	if err := os.Chmod(b.Dir, 0o700); err != nil {
		return Box{}, fmt.Errorf("judge: chmod box %d: %w", id, err)
	}
	return b, nil
}

// Limits bound one run. A zero field means the package default (see DefaultLimits).
type Limits struct {
	CPU       time.Duration // CPU time of the whole run (user + system)
	Wall      time.Duration // wall-clock time
	Memory    int64         // bytes of memory (cgroup where available, else address space)
	Processes int           // processes and threads the program may have at once
	Output    int64         // bytes of stdout and stderr together
	FileSize  int64         // bytes of any one file written, and of the sandbox's /tmp
	Disk      int64         // bytes of all the files in the box together (its /box)
	Files     int           // files and directories in the box, together
}

// DefaultLimits are the limits of a run where a Limits field is zero.
var DefaultLimits = Limits{
	CPU:       2 * time.Second,
	Wall:      5 * time.Second,
	Memory:    256 << 20,
	Processes: 16,
	Output:    1 << 20,
	FileSize:  16 << 20,
	Disk:      64 << 20,
	Files:     4096,
}

// withDefaults returns l with its zero fields taken from DefaultLimits.
func (l Limits) withDefaults() Limits { return mergeLimits(l, DefaultLimits) }

// RunSpec says what to run in a box. The box is made empty, Files are written into it
// (mode 0755, owned by the box uid), the command runs in /box with Stdin on its standard
// input, the Collect files are read back, and the box is emptied again.
type RunSpec struct {
	Args    []string          // the command inside the sandbox; Args[0] is absolute or on /usr/bin:/bin
	Stdin   []byte            // standard input
	Files   map[string][]byte // files to put in the box before the run, by base name
	Collect []string          // base names of regular files to read back after the run
	Limits  Limits
}

// KillReason says which limit ended a run.
type KillReason string

// The reasons a run was ended by the sandbox.
const (
	KilledNone   KillReason = "none"
	KilledCPU    KillReason = "cpu"
	KilledWall   KillReason = "wall"
	KilledMemory KillReason = "memory"
	KilledOutput KillReason = "output"
	KilledDisk   KillReason = "disk" // the box's files went over Limits.Disk or Limits.Files
)

// RunResult is what one run did.
type RunResult struct {
	ExitCode     int           // the program's exit status; 128+N when killed by signal N
	Signal       int           // the signal that ended the program, 0 if it exited
	CPUTime      time.Duration // user + system time of every process of the run
	WallTime     time.Duration // from start to the end of the last process
	PeakMemoryKB int64         // peak memory: the cgroup's peak, else the largest max RSS
	Killed       KillReason    // the limit that ended the run, KilledNone if none did
	Stdout       []byte        // standard output, truncated to the output limit
	Stderr       []byte        // standard error, truncated to the output limit
	Files        map[string][]byte
	// Message says how memory was limited: "cgroup v1", "cgroup v2" or "RLIMIT_AS".
	Message string
}

// ErrBadSpec is wrapped by Run errors caused by an invalid RunSpec or Box.
var ErrBadSpec = errors.New("judge: invalid run")
