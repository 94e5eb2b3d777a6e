package hub

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// watchdog cuts off writes that hang. Every write marks its connection with the instant it
// began (Conn.writeSince); a sweeper goroutine looks at the connections the writers hold,
// every quarter of the write timeout, and closes the socket of any whose write has taken
// longer than the timeout: the connection is dropped (close code 1008, reason
// write_failed) and the close ends the write with an error. A write is thus cut off between
// one and one and a quarter write timeouts after it began.
//
// Marking costs a write two atomic stores, where a timer per connection, reset before each
// write and stopped after it, costs two operations on the runtime's timer heap, under its
// lock, in the middle of every start's fan-out; and an idle connection has no timer.
//
// The sweeper runs while there are writers: the first writer of an empty pool starts it and
// the last to end stops it. It counts in Hub.writers, so Shutdown waits for it too.
type watchdog struct {
	timeout time.Duration
	epoch   time.Time // now counts from here, on the monotonic clock

	mu    sync.Mutex
	slots map[*writerSlot]struct{} // one per writer goroutine
	stop  chan struct{}            // closed to stop the sweeper; nil when none runs
}

// writerSlot is what the watchdog sees of one writer goroutine: the connection it holds.
type writerSlot struct {
	conn atomic.Pointer[Conn]
}

func newWatchdog(timeout time.Duration) *watchdog {
	return &watchdog{timeout: timeout, epoch: time.Now(), slots: map[*writerSlot]struct{}{}}
}

// now is the time since the watchdog's epoch in nanoseconds, never 0: 0 marks no write.
func (d *watchdog) now() int64 { return int64(time.Since(d.epoch)) + 1 }

// watch registers a new writer goroutine, starting the sweeper if none runs.
func (h *Hub) watch() *writerSlot {
	d := h.dog
	s := &writerSlot{}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.slots[s] = struct{}{}
	if d.stop == nil {
		d.stop = make(chan struct{})
		h.writers.Add(1)
		go h.sweep(d.stop)
	}
	return s
}

// unwatch removes an ending writer goroutine's slot and stops the sweeper after the last.
func (h *Hub) unwatch(s *writerSlot) {
	d := h.dog
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.slots, s)
	if len(d.slots) == 0 && d.stop != nil {
		close(d.stop)
		d.stop = nil
	}
}

// sweep closes, every quarter of the write timeout, the sockets whose writes have hung,
// until stop is closed.
func (h *Hub) sweep(stop <-chan struct{}) {
	defer h.writers.Done()
	t := time.NewTicker(max(h.dog.timeout/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			for _, c := range h.dog.hung() {
				// Dropped first, for the reason to count: the close also ends the
				// connection's read, whose end would otherwise drop it as a hang-up.
				c.drop(protocol.CloseTooSlow, "too slow: write timed out", "write_failed")
				c.ws.CloseNow()
			}
		}
	}
}

// hung returns the connections held by writers whose current write began more than the
// timeout ago.
func (d *watchdog) hung() []*Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*Conn
	now := d.now()
	for s := range d.slots {
		c := s.conn.Load()
		if c == nil {
			continue
		}
		if since := c.writeSince.Load(); since != 0 && time.Duration(now-since) > d.timeout {
			out = append(out, c)
		}
	}
	return out
}
