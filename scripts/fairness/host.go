package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/bulbquiz/bulb/internal/clocksync"
)

// The lab as the host: it plays each question of a room and reads what the server
// recorded (ranks, round trips, reveals) over the HTTP API.

// question plays question n in room r: open, start, wait for every connected client's
// reply, close, and read the ranks.
func (l *lab) question(ctx context.Context, r *room, n int) error {
	path := fmt.Sprintf("/api/rooms/%s/questions/%d/", r.code, n)
	if err := l.api.Call(ctx, "POST", path+"open", r.hostToken, nil, nil); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(l.cfg.pause):
	}
	if err := l.api.Call(ctx, "POST", path+"start", r.hostToken, nil, nil); err != nil {
		return err
	}
	maxDelay := 0
	for _, g := range l.cfg.groups {
		maxDelay = max(maxDelay, g.DelayMs+g.JitterMs)
	}
	deadline := time.Now().Add(l.cfg.reactionMean + 6*l.cfg.reactionSD + l.cfg.cheatDelay +
		time.Duration(4*maxDelay)*time.Millisecond + 3*time.Second)
	if r.synced {
		deadline = deadline.Add(maxLead + seenMax)
	}
	for r.replies[n].Load() < r.open.Load() {
		if time.Now().After(deadline) {
			r.timeouts++
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := l.api.Call(ctx, "POST", path+"close", r.hostToken, nil, nil); err != nil {
		return err
	}
	var got struct {
		Answers []struct {
			PlayerID   string `json:"playerId"`
			Correct    bool   `json:"correct"`
			Rank       int    `json:"rank"`
			ElapsedUs  int64  `json:"elapsedUs"`
			ReactionUs *int64 `json:"reactionUs"`
			FalseStart bool   `json:"falseStart"`
		} `json:"answers"`
	}
	if err := l.api.Call(ctx, "GET", path+"answers", r.hostToken, nil, &got); err != nil {
		return err
	}
	answered := map[int]bool{}
	var q []answer
	for _, a := range got.Answers {
		i, ok := r.byID[a.PlayerID]
		if !ok {
			continue
		}
		answered[i] = true
		c := r.clients[i]
		rank := a.Rank
		if !a.Correct {
			rank = 0
		}
		// Under arrival timing elapsedUs counts from the start's reveal instant under the
		// synced reveal, and from when it went live under the immediate one.
		server := float64(a.ElapsedUs) / 1000
		if r.timing == "compensated" {
			if a.ReactionUs != nil {
				server = float64(*a.ReactionUs) / 1000
			} else {
				r.noTiming++
			}
		}
		ans := answer{Player: i, Rank: rank, FalseStart: a.FalseStart}
		c.mu.Lock()
		if rec := c.recs[n]; rec != nil && !rec.sent.IsZero() && !rec.origin().IsZero() {
			ans.Timed = true
			ans.ReactionMs = msSince(rec.origin(), rec.sent)
			ans.LagMs = server - ans.ReactionMs
		}
		if rec := c.recs[n]; rec != nil && rec.at > 0 && !rec.lit.IsZero() {
			ans.Revealed = true
			// The lab's clients and the server read one system clock: the server's
			// time is the client's, and the estimate's offset is its error.
			ans.LightMs = clocksync.Millis(rec.lit) - rec.at
			ans.OffsetMs, ans.BoundMs, ans.Clocked, ans.Late = rec.est.Offset, rec.est.Error, rec.clocked, rec.late
		}
		c.mu.Unlock()
		q = append(q, ans)
	}
	for i, c := range r.clients {
		c.mu.Lock()
		gone := c.dropped != ""
		c.mu.Unlock()
		if !answered[i] && !gone {
			r.missing++
		}
	}
	r.questions = append(r.questions, q)
	return nil
}

// readFairness reads the round trips the server recorded at each start of r.
func (l *lab) readFairness(ctx context.Context, r *room) error {
	var rep struct {
		Starts []struct {
			N          int `json:"n"`
			Recipients int `json:"recipients"`
			Players    []struct {
				PlayerID  string `json:"playerId"`
				RTTUs     int64  `json:"rttUs"`
				WrittenUs *int64 `json:"writtenUs"`
				AckUs     *int64 `json:"ackUs"`
			} `json:"players"`
			Reveal *revealInfo `json:"reveal"`
		} `json:"starts"`
	}
	if err := l.api.Call(ctx, "GET", fmt.Sprintf("/api/rooms/%s/fairness?limit=%d", r.code, l.cfg.questions), r.hostToken, nil, &rep); err != nil {
		return fmt.Errorf("%s room's fairness report: %w", r.mode, err)
	}
	r.rtt.byPlayer = make([][]float64, len(r.clients))
	r.rtt.ackByPlayer = make([][]float64, len(r.clients))
	first := math.MaxInt
	for _, st := range rep.Starts {
		first = min(first, st.N)
	}
	for _, st := range rep.Starts {
		for _, p := range st.Players {
			i, ok := r.byID[p.PlayerID]
			if !ok {
				continue
			}
			if p.RTTUs > 0 {
				r.rtt.byPlayer[i] = append(r.rtt.byPlayer[i], float64(p.RTTUs)/1000)
			}
			if p.WrittenUs != nil && p.AckUs != nil {
				r.rtt.ackByPlayer[i] = append(r.rtt.ackByPlayer[i], float64(*p.AckUs-*p.WrittenUs)/1000)
			}
			if st.N == first && p.RTTUs > 0 {
				r.rtt.firstMeasured++
			}
		}
		if st.N == first {
			r.rtt.firstRecipients = st.Recipients
		}
		if st.Reveal != nil {
			r.reveals = append(r.reveals, *st.Reveal)
		}
	}
	return nil
}
