package quiz

import (
	"context"
	"time"
)

// Locker grants named leases among the nodes: whoever holds a lease may do the one thing it
// names (fire a timed start) until it expires, so that a crashed holder blocks nobody for
// longer than its TTL. A lease alone is not enough for exactly-once: the work it guards
// must itself be a compare-and-set, so that a late or duplicate holder changes nothing.
type Locker interface {
	// Acquire takes the lease named key for ttl. It returns ok=false, and no error, if
	// someone else holds it.
	Acquire(ctx context.Context, key string, ttl time.Duration) (lease Lease, ok bool, err error)
}

// Lease is a held lease.
type Lease interface {
	// Extend keeps the lease for ttl from now, if it is still ours; ok=false if it expired
	// and was lost.
	Extend(ctx context.Context, ttl time.Duration) (ok bool, err error)
	// Release gives the lease up, if it is still ours.
	Release(ctx context.Context) error
}
