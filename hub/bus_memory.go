package hub

import (
	"context"
	"sync"
)

// MemoryBus joins hubs in one process: every hub that runs on it is a node. It serves tests
// of several nodes without Redis.
type MemoryBus struct {
	mu      sync.Mutex
	subs    map[chan []byte]struct{}
	seq     uint64
	reports map[uint64][]int
	changed chan struct{} // closed and replaced whenever reports or subs change
}

var _ Bus = (*MemoryBus)(nil)

// NewMemoryBus returns a bus with no nodes.
func NewMemoryBus() *MemoryBus {
	return &MemoryBus{subs: map[chan []byte]struct{}{}, reports: map[uint64][]int{}, changed: make(chan struct{})}
}

func (b *MemoryBus) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// Publish implements Bus.
func (b *MemoryBus) Publish(ctx context.Context, msg []byte) error {
	b.mu.Lock()
	subs := make([]chan []byte, 0, len(b.subs))
	for ch := range b.subs {
		subs = append(subs, ch)
	}
	b.mu.Unlock()
	for _, ch := range subs {
		select {
		case ch <- msg:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Run implements Bus.
func (b *MemoryBus) Run(ctx context.Context, deliver func([]byte)) error {
	ch := make(chan []byte, 1024)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.notifyLocked()
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.notifyLocked()
		b.mu.Unlock()
	}()
	for {
		select {
		case msg := <-ch:
			deliver(msg)
		case <-ctx.Done():
			return nil
		}
	}
}

// NextSeq implements Bus.
func (b *MemoryBus) NextSeq(context.Context) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	return b.seq, nil
}

// Report implements Bus.
func (b *MemoryBus) Report(_ context.Context, seq uint64, recipients int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reports[seq] = append(b.reports[seq], recipients)
	b.notifyLocked()
	return nil
}

// Recipients implements Bus.
func (b *MemoryBus) Recipients(ctx context.Context, seq uint64) (int, error) {
	for {
		b.mu.Lock()
		sum := 0
		for _, r := range b.reports[seq] {
			sum += r
		}
		done := len(b.reports[seq]) >= len(b.subs)
		changed := b.changed
		b.mu.Unlock()
		if done {
			return sum, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return sum, ctx.Err()
		}
	}
}
