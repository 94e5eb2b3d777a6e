package hub

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// ping measures one round trip, on the pinger timer's goroutine, and sets the timer for
// the next one. A ping that times out drops the client: it is not reading.
func (c *Conn) ping() {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.tasks.Add(1)
	c.mu.Unlock()
	defer c.tasks.Done()
	ctx, cancel := context.WithTimeout(context.Background(), c.hub.opts.PingTimeout)
	defer cancel()
	t := time.Now()
	if err := c.ws.Ping(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			c.drop(protocol.CloseTooSlow, "not answering pings", "ping_timeout")
		}
		return
	}
	c.addRTT(time.Since(t))
	c.mu.Lock()
	if !c.closing {
		c.pinger.Reset(c.hub.opts.PingInterval)
	}
	c.mu.Unlock()
}

func (c *Conn) addRTT(d time.Duration) {
	c.rttMu.Lock()
	defer c.rttMu.Unlock()
	c.rtts[c.nrtt%rttSamples] = d
	c.nrtt++
}

// medianRTT is the median of the recent round trips (the lower middle one of an even
// number), or 0 if none was measured.
func (c *Conn) medianRTT() time.Duration {
	c.rttMu.Lock()
	n := min(c.nrtt, rttSamples)
	recent := slices.Clone(c.rtts[:n])
	c.rttMu.Unlock()
	if n == 0 {
		return 0
	}
	slices.Sort(recent)
	return recent[(n-1)/2]
}

// lastRTT is the latest round trip, or 0 if none was measured.
func (c *Conn) lastRTT() time.Duration {
	c.rttMu.Lock()
	defer c.rttMu.Unlock()
	if c.nrtt == 0 {
		return 0
	}
	return c.rtts[(c.nrtt-1)%rttSamples]
}
