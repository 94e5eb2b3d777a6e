package quiz

import (
	"context"
	"sync"
	"time"
)

// MemoryLocker is the in-memory engine's Locker: leases among the goroutines of one process.
type MemoryLocker struct {
	mu     sync.Mutex
	leases map[string]memLease // by key
	now    func() time.Time
}

var _ Locker = (*MemoryLocker)(nil)

type memLease struct {
	token   string
	expires time.Time
}

// NewMemoryLocker returns a MemoryLocker with no leases.
func NewMemoryLocker() *MemoryLocker {
	return &MemoryLocker{leases: map[string]memLease{}, now: time.Now}
}

// Acquire implements Locker.
func (l *MemoryLocker) Acquire(_ context.Context, key string, ttl time.Duration) (Lease, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if cur, held := l.leases[key]; held && now.Before(cur.expires) {
		return nil, false, nil
	}
	token := Token()
	l.leases[key] = memLease{token: token, expires: now.Add(ttl)}
	return &memoryLease{l: l, key: key, token: token}, true, nil
}

type memoryLease struct {
	l          *MemoryLocker
	key, token string
}

// Extend implements Lease.
func (m *memoryLease) Extend(_ context.Context, ttl time.Duration) (bool, error) {
	m.l.mu.Lock()
	defer m.l.mu.Unlock()
	now := m.l.now()
	cur, held := m.l.leases[m.key]
	if !held || cur.token != m.token || !now.Before(cur.expires) {
		return false, nil
	}
	m.l.leases[m.key] = memLease{token: m.token, expires: now.Add(ttl)}
	return true, nil
}

// Release implements Lease.
func (m *memoryLease) Release(context.Context) error {
	m.l.mu.Lock()
	defer m.l.mu.Unlock()
	if cur := m.l.leases[m.key]; cur.token == m.token {
		delete(m.l.leases, m.key)
	}
	return nil
}
