package judge

import "context"

// Boxes leases one host's sandbox boxes to the runs on that host, so that no two runs ever
// share a box. A box is a per-host resource (a uid, a directory, a cgroup), so leases are
// per host: in one process a MemoryBoxes is enough; judge processes sharing a host share a
// RedisBoxes.
type Boxes interface {
	// Lease waits until a box is free, or ctx is done, and leases it to the caller.
	Lease(ctx context.Context) (BoxLease, error)
}

// BoxLease is one leased box.
type BoxLease interface {
	// ID is the box's id, 0 to the number of boxes − 1.
	ID() int
	// Release gives the box back. The caller must have left it clean.
	Release(ctx context.Context) error
}
