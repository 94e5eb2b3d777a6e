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
	replies map[string][][]byte
	changed chan struct{} // closed and replaced whenever replies or subs change
}

var _ Bus = (*MemoryBus)(nil)

// NewMemoryBus returns a bus with no nodes.
func NewMemoryBus() *MemoryBus {
	return &MemoryBus{subs: map[chan []byte]struct{}{}, replies: map[string][][]byte{}, changed: make(chan struct{})}
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

// Reply implements Bus.
func (b *MemoryBus) Reply(_ context.Context, id string, data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.replies[id] = append(b.replies[id], data)
	b.notifyLocked()
	return nil
}

// Gather implements Bus. It takes the replies it returns, as BLPOP does on Redis.
func (b *MemoryBus) Gather(ctx context.Context, id string) ([][]byte, error) {
	for {
		b.mu.Lock()
		replies := b.replies[id]
		done := len(replies) >= len(b.subs)
		if done {
			delete(b.replies, id)
		}
		changed := b.changed
		b.mu.Unlock()
		if done {
			return replies, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			b.mu.Lock()
			delete(b.replies, id) // a late reply is left, a few bytes
			b.mu.Unlock()
			return replies, ctx.Err()
		}
	}
}
