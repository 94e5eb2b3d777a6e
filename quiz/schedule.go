package quiz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// Timed starts and closes. Every node keeps one timer for each schedule, learnt from the
// node that scheduled it (Nodes) or from the store at start-up; when it fires the nodes
// race for a lease, and the winner's transition is a compare-and-set on the room's
// schedule, so a start or close fires exactly once however many nodes there are, and even
// if the node that scheduled it has died.

// timedStartAhead is how long before its time a timed start's timer fires: a synced start
// must be sent its lead ahead (at most the hub's longest lead); an immediate one waits.
const timedStartAhead = time.Second

// maxScheduleAhead is how far ahead a timed start or close may be.
const maxScheduleAhead = 24 * time.Hour

// Scheduled actions.
const (
	ActionStart = "start"
	ActionClose = "close"
)

// checkSchedule checks the time of a timed start or close.
func (s *Service) checkSchedule(at time.Time) error {
	now := s.now()
	if !at.After(now) {
		return Errorf(protocol.Invalid, "time %s is not in the future", at.Format(time.RFC3339Nano))
	}
	if at.Sub(now) > maxScheduleAhead {
		return Errorf(protocol.Invalid, "time is more than %s ahead", maxScheduleAhead)
	}
	return nil
}

// scheduleTopic is the topic of the notifications that announce a schedule to the other
// nodes.
const scheduleTopic = "quiz.schedule"

// scheduled is a schedule as the nodes announce it.
type scheduled struct {
	Room   string    `json:"room"`
	N      int       `json:"n"`
	Action string    `json:"action"`
	At     time.Time `json:"at"`
}

// schedule sets this node's timer for a start or close and tells the other nodes, so that
// any of them fires it should this one die. A node that misses the announcement (it was
// down, or Redis was) learns the schedule from the store when it starts (Run).
func (s *Service) schedule(ctx context.Context, room string, n int, action string, at time.Time) {
	s.setTimer(room, n, action, at)
	if s.nodes == nil {
		return
	}
	b, err := json.Marshal(scheduled{Room: room, N: n, Action: action, At: at})
	if err == nil {
		err = s.nodes.Notify(context.WithoutCancel(ctx), scheduleTopic, b)
	}
	if err != nil {
		s.log.Warn("announcing a schedule to the other nodes", "room", room, "action", action, "err", err)
	}
}

// onSchedule sets this node's timer for a schedule another node announced.
func (s *Service) onSchedule(data []byte) {
	var sc scheduled
	if err := json.Unmarshal(data, &sc); err != nil {
		s.log.Error("undecodable schedule", "err", err)
		return
	}
	s.setTimer(sc.Room, sc.N, sc.Action, sc.At)
}

// setTimer sets this node's one timer for the room's start or close (action), replacing
// the one it had. Every node keeps one, so it fires even if the node that scheduled it
// dies; the firing is exactly once among them (fire).
func (s *Service) setTimer(room string, n int, action string, at time.Time) {
	key := room + "/" + action
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.timers[key]; t != nil {
		t.Stop()
	}
	fireAt := at
	if action == ActionStart {
		fireAt = at.Add(-timedStartAhead) // a synced start is sent ahead of its instant
	}
	s.timers[key] = time.AfterFunc(time.Until(fireAt), func() {
		s.mu.Lock()
		ctx := s.ctx
		if ctx == nil || ctx.Err() != nil {
			s.mu.Unlock()
			return
		}
		delete(s.timers, key)
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()
		s.fire(ctx, room, n, action, at)
	})
}

// leaseTTL is how long a node may hold the right to fire a timed start before others may
// try: a crashed holder delays the start by at most this much.
const leaseTTL = 3 * time.Second

// fire fires a timed start or close exactly once among the nodes: the node that takes its
// lease fires it, as a compare-and-set on the room's schedule, so a late or duplicate
// firing changes nothing. The others wait out the lease and try again while it has not
// happened, which covers a holder that dies.
func (s *Service) fire(ctx context.Context, room string, n int, action string, at time.Time) {
	key := fmt.Sprintf("%s:%s:%d:%d", action, room, n, at.UnixNano())
	for {
		lease, ok, err := s.locker.Acquire(ctx, key, leaseTTL)
		if ok {
			err = s.fireHeld(ctx, lease, room, n, action, at)
			if err == nil || errors.Is(err, errStale) {
				return // the lease stays taken until it expires: nobody else need try
			}
			if rerr := lease.Release(ctx); rerr != nil {
				s.log.Warn("releasing a start lease", "room", room, "err", rerr)
			}
		}
		if err != nil {
			s.log.Warn("timed "+action+" failed; retrying", "room", room, "n", n, "err", err)
		}
		select {
		case <-time.After(leaseTTL):
		case <-ctx.Done():
			return
		}
		r, err := s.store.Room(ctx, room)
		if err == nil && (r.Current != n || !pending(r, action, at)) || ErrorCode(err) == protocol.NotFound {
			return // it happened, or was cancelled or moved, or the room expired
		}
	}
}

// pending says whether the room still has the action scheduled at that time.
func pending(r *Room, action string, at time.Time) bool {
	if action == ActionStart {
		return r.Phase == PhaseOpen && r.StartAt.Equal(at)
	}
	return (r.Phase == PhaseOpen || r.Phase == PhaseLive) && r.CloseAt.Equal(at)
}

// fireHeld fires a timed start or close under its lease, extending the lease while it works.
func (s *Service) fireHeld(ctx context.Context, lease Lease, room string, n int, action string, at time.Time) error {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(leaseTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if ok, err := lease.Extend(ctx, leaseTTL); !ok || err != nil {
					s.log.Warn("lost the lease of a start being fired", "room", room, "err", err)
				}
			case <-done:
				return
			}
		}
	})
	var err error
	if action == ActionStart {
		_, err = s.start(ctx, room, n, at)
	} else {
		_, err = s.close(ctx, room, n, at)
	}
	close(done)
	wg.Wait()
	if code := ErrorCode(err); code == protocol.Conflict || code == protocol.NotFound {
		err = errStale // it happened by other means, or the room expired
	}
	return err
}

func (s *Service) cancelTimer(room, action string) {
	key := room + "/" + action
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.timers[key]; t != nil {
		t.Stop()
		delete(s.timers, key)
	}
}
