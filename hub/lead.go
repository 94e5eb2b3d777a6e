package hub

import (
	"slices"
	"time"
)

// Choosing a synced start's lead. The start frame must reach (nearly) every player before
// its reveal instant, or those players light late; every millisecond of lead beyond that
// is a millisecond the quiz waits, and gives a modified client that long to prepare. So
// the lead is what this node has measured of the room: how long its fan-outs take, and how
// long the way out to its players is.

// leadHistory is how many recent starts of a room Lead looks at.
const leadHistory = 5

// perRecipient is what Lead assumes a fan-out costs per player before it has measured one:
// about the hub's cost on a loaded two-core machine (see BENCHMARKS.md).
const perRecipient = 20 * time.Microsecond

// Lead returns how far ahead of its reveal instant a synced start of the room is best
// sent: the longest fan-out of the room's recent starts on this node (until the last write
// to a player returned), or an estimate from its number of players before the first; plus
// the 99th percentile of its players' one-way delay (half their median ping round trip);
// plus Options.LeadMargin; kept within Options.MinLead and Options.MaxLead. With a bus, the
// other nodes' fan-outs are taken to be like this one's, after the bus's delay.
func (h *Hub) Lead(roomName string) time.Duration {
	players := h.conns(roomName, true, false)
	oneWay := make([]time.Duration, 0, len(players))
	for _, c := range players {
		oneWay = append(oneWay, c.medianRTT()/2)
	}
	slices.Sort(oneWay)
	var p99 time.Duration
	if len(oneWay) > 0 {
		p99 = oneWay[(len(oneWay)*99+99)/100-1]
	}
	fanout := time.Duration(len(players)) * perRecipient
	if recent := h.recentFanouts(roomName); len(recent) > 0 {
		fanout = slices.Max(recent)
	}
	lead := fanout + p99 + h.opts.LeadMargin
	if h.bus != nil {
		lead += h.opts.LeadMargin // the bus's way to the other nodes
	}
	return min(max(lead, h.opts.MinLead), h.opts.MaxLead)
}

// recentFanouts returns how long the room's recent starts on this node took, each until
// its last write returned.
func (h *Hub) recentFanouts(roomName string) []time.Duration {
	r := h.room(roomName, false)
	if r == nil {
		return nil
	}
	r.mu.RLock()
	starts := slices.Clone(r.starts[max(0, len(r.starts)-leadHistory):])
	r.mu.RUnlock()
	var out []time.Duration
	for _, rec := range starts {
		var last int64
		for i := range rec.deliveries {
			last = max(last, rec.deliveries[i].written.Load())
		}
		if last > 0 {
			out = append(out, time.Duration(last))
		}
	}
	return out
}
