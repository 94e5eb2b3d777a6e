package judge

import (
	"context"
	"sync"
)

// MemoryBoxes leases the boxes of one process: a buffered channel of free box ids, so a
// waiting run wakes the moment a box is released.
type MemoryBoxes struct {
	free chan int
}

var _ Boxes = (*MemoryBoxes)(nil)

// NewMemoryBoxes returns n free boxes, ids first to first+n−1. Box ids are host-wide
// (uids and cgroups): processes sharing a host must lease disjoint ranges, or share a
// RedisBoxes.
func NewMemoryBoxes(first, n int) *MemoryBoxes {
	b := &MemoryBoxes{free: make(chan int, n)}
	for id := range n {
		b.free <- first + id
	}
	return b
}

// Lease implements Boxes.
func (b *MemoryBoxes) Lease(ctx context.Context) (BoxLease, error) {
	select {
	case id := <-b.free:
		return &memoryBoxLease{boxes: b, id: id}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type memoryBoxLease struct {
	boxes *MemoryBoxes
	id    int
	once  sync.Once
}

func (l *memoryBoxLease) ID() int { return l.id }

// Release implements BoxLease; a second release does nothing.
func (l *memoryBoxLease) Release(context.Context) error {
	l.once.Do(func() { l.boxes.free <- l.id })
	return nil
}
