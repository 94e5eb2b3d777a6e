package main

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/bulbquiz/bulb/internal/stats"
)

// player is one client of a room, as the tally sees it.
type player struct {
	Group   int
	Cheater bool
}

// answer is one player's answer to one question, as the server ranked it.
type answer struct {
	Player int  // index into the room's players
	Rank   int  // the server's rank among correct answers, 1 = the winner; 0 = unranked
	Timed  bool // ReactionMs and LagMs are known
	// ReactionMs is the client's own reaction time: from its receipt of the start frame
	// to the moment it sent the answer.
	ReactionMs float64
	// LagMs is the server's time for the answer (reactionUs under compensated timing,
	// elapsedUs under arrival) minus ReactionMs: what the network and the compensation
	// added to the client's reaction. Under fair compensation its distribution is the same
	// in every group.
	LagMs float64
	// FalseStart: the server refused the answer as faster than anyone reacts (synced
	// reveal); it is wrong and unranked.
	FalseStart bool
	// Revealed: the client lit a synced start, and the following are known. LightMs is
	// when it lit, less the reveal instant (the lab's clients read the server's clock);
	// OffsetMs the offset of its clock estimate at the start's receipt (the true offset
	// is 0: its error), BoundMs that estimate's error bound; Clocked is false for a client
	// without a clock estimate; Late: the start came after its instant.
	Revealed                   bool
	LightMs, OffsetMs, BoundMs float64
	Clocked, Late              bool
}

// groupTally is what one latency group's honest players did in one mode.
type groupTally struct {
	Players int // honest players
	// Wins counts the questions whose best-ranked honest answer is this group's: the
	// winner had the cheaters not played (they do not change the order of the others).
	Wins int
	// Rank1 counts the questions that an honest player of this group won outright,
	// cheaters included.
	Rank1  int
	PctSum float64 // sum of the rank percentiles of its ranked answers
	PctN   int
	Lags   []float64 // LagMs of its timed answers
	// LagReactions are the same answers' ReactionMs, in the order of Lags.
	LagReactions []float64
	Answers      int // ranked answers
	// The synced reveal: its answers that were false starts, and of its revealed
	// answers the lighting times and clock offsets and error bounds (see answer), how
	// many lit late, and how many had no clock estimate.
	FalseStarts          int
	Light, Offset, Bound []float64
	Late, Unclocked      int
}

// cheaterTally is what one cheater did in one mode.
type cheaterTally struct {
	Player      int
	Group       int
	Rank1       int // questions it won outright
	PctSum      float64
	PctN        int
	Lags        []float64
	FalseStarts int
}

// modeTally is the tally of one mode's questions.
type modeTally struct {
	Questions int // questions with at least one ranked honest answer
	Groups    []groupTally
	Cheaters  []cheaterTally
	Reactions []float64 // the honest players' own reaction times, ms
}

// tally counts, over questions (each a list of answers), the wins of each of groups
// groups of honest players and of each cheater, and collects their rank percentiles,
// lags and reaction times. A rank percentile is (rank−1)/(m−1) among the question's m
// ranked answers: 0 for the winner, 1 for the last; a question with one ranked answer
// gives it 0.5.
func tally(players []player, groups int, questions [][]answer) modeTally {
	t := modeTally{Groups: make([]groupTally, groups)}
	cheater := map[int]int{} // player → index in t.Cheaters
	for i, p := range players {
		if p.Cheater {
			cheater[i] = len(t.Cheaters)
			t.Cheaters = append(t.Cheaters, cheaterTally{Player: i, Group: p.Group})
		} else {
			t.Groups[p.Group].Players++
		}
	}
	for _, q := range questions {
		ranked := 0
		for _, a := range q {
			if a.Rank > 0 {
				ranked++
			}
		}
		best := -1 // index in q of the best-ranked honest answer
		for i, a := range q {
			p := players[a.Player]
			if a.Rank > 0 {
				pct := 0.5
				if ranked > 1 {
					pct = float64(a.Rank-1) / float64(ranked-1)
				}
				if p.Cheater {
					c := &t.Cheaters[cheater[a.Player]]
					c.PctSum += pct
					c.PctN++
					if a.Rank == 1 {
						c.Rank1++
					}
				} else {
					g := &t.Groups[p.Group]
					g.PctSum += pct
					g.PctN++
					g.Answers++
					if a.Rank == 1 {
						g.Rank1++
					}
					if best < 0 || a.Rank < q[best].Rank {
						best = i
					}
				}
			}
			if p.Cheater && a.FalseStart {
				t.Cheaters[cheater[a.Player]].FalseStarts++
			}
			if !p.Cheater {
				g := &t.Groups[p.Group]
				if a.FalseStart {
					g.FalseStarts++
				}
				if a.Revealed {
					g.Light, g.Offset, g.Bound = append(g.Light, a.LightMs), append(g.Offset, a.OffsetMs), append(g.Bound, a.BoundMs)
					if a.Late {
						g.Late++
					}
					if !a.Clocked {
						g.Unclocked++
					}
				}
			}
			if !a.Timed {
				continue
			}
			if p.Cheater {
				c := &t.Cheaters[cheater[a.Player]]
				c.Lags = append(c.Lags, a.LagMs)
			} else {
				g := &t.Groups[p.Group]
				g.Lags, g.LagReactions = append(g.Lags, a.LagMs), append(g.LagReactions, a.ReactionMs)
				t.Reactions = append(t.Reactions, a.ReactionMs)
			}
		}
		if best >= 0 {
			t.Questions++
			t.Groups[players[q[best].Player].Group].Wins++
		}
	}
	return t
}

// contenderPct is the percentile of the honest players' reaction times at or below which an
// answer counts as a contender for the win: a question's winner comes from the fastest
// reactions, and its lag is what decides between them.
const contenderPct = 5

// contenderLags returns, per group, the lags of its honest answers whose own reaction time
// was at most the pct-th percentile of every honest reaction in the mode. They would
// differ from the group's other lags if a lag depended on when the answer arrives, such
// as a far group's fast answer reaching the server while a near group's bulk does.
func contenderLags(t modeTally, pct float64) [][]float64 {
	out := make([][]float64, len(t.Groups))
	if len(t.Reactions) == 0 {
		return out
	}
	limit := percentile(t.Reactions, pct)
	for g, gt := range t.Groups {
		for i, r := range gt.LagReactions {
			if r <= limit {
				out[g] = append(out[g], gt.Lags[i])
			}
		}
	}
	return out
}

// answerTimes returns, per group, each of its honest timed answers' reaction + lag: the
// time the server ranks it by, measured from the client's receipt of the start. Drawn
// whole by modelShares (with a single zero reaction), they keep a group's own reactions
// instead of pooling them over the groups.
func answerTimes(t modeTally) [][]float64 {
	out := make([][]float64, len(t.Groups))
	for g, gt := range t.Groups {
		for i, l := range gt.Lags {
			out[g] = append(out[g], gt.LagReactions[i]+l)
		}
	}
	return out
}

// z95 is the standard normal quantile of a two-sided 95% interval.
const z95 = 1.959963984540054

// wilson is the Wilson score interval of a binomial proportion, k successes in n trials,
// at the normal quantile z (z95 for 95%). It returns 0, 1 for n = 0.
func wilson(k, n int, z float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	nf, p := float64(n), float64(k)/float64(n)
	z2 := z * z
	centre := (p + z2/(2*nf)) / (1 + z2/nf)
	half := z / (1 + z2/nf) * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return max(0, centre-half), min(1, centre+half)
}

// equalShares is Pearson's chi-square test of the groups' win counts against equal
// shares (stats.ChiSquareEqual).
func equalShares(t modeTally) (chi2 float64, df int, p float64) {
	counts := make([]float64, len(t.Groups))
	for i, g := range t.Groups {
		counts[i] = float64(g.Wins)
	}
	return stats.ChiSquareEqual(counts)
}

// modelShares estimates each group's expected win share from the measured parts of the
// race, free of the few-hundred-questions sampling noise of the observed shares: in
// each of rounds simulated questions, every honest player of group g (sizes[g] of them)
// takes a reaction time drawn from reactions (all groups pooled: the distribution is the
// same by design) plus a lag drawn from lags[g], and the smallest sum wins. It assumes
// that a player's lag does not depend on its reaction time or on the other players'
// lags, which holds for per-connection network jitter; it returns nil without data.
func modelShares(reactions []float64, lags [][]float64, sizes []int, rounds int, rng *rand.Rand) []float64 {
	if len(reactions) == 0 || rounds <= 0 {
		return nil
	}
	for g := range lags {
		if sizes[g] > 0 && len(lags[g]) == 0 {
			return nil
		}
	}
	wins := make([]int, len(lags))
	for range rounds {
		best, bestG := math.Inf(1), -1
		for g, pool := range lags {
			for range sizes[g] {
				v := reactions[rng.IntN(len(reactions))] + pool[rng.IntN(len(pool))]
				if v < best {
					best, bestG = v, g
				}
			}
		}
		if bestG >= 0 {
			wins[bestG]++
		}
	}
	out := make([]float64, len(wins))
	for g, w := range wins {
		out[g] = float64(w) / float64(rounds)
	}
	return out
}

// median is the nearest-rank median of sample (stats.Percentile), NaN when empty.
func median(sample []float64) float64 { return percentile(sample, 50) }

// percentile is the nearest-rank p-th percentile of sample, which it does not change.
func percentile(sample []float64, p float64) float64 {
	s := slices.Clone(sample)
	slices.Sort(s)
	return stats.Percentile(s, p)
}

// oneWayDelays are the one-way delays, in ms, that a toxiproxy latency toxic of g draws
// from, each as likely: the whole milliseconds DelayMs − JitterMs to DelayMs + JitterMs − 1
// (toxics.LatencyToxic: latency + rand.Int63n(2·jitter) − jitter), or DelayMs alone
// without jitter.
func oneWayDelays(g group) []float64 {
	if g.JitterMs <= 0 {
		return []float64{float64(g.DelayMs)}
	}
	out := make([]float64, 0, 2*g.JitterMs)
	for d := g.DelayMs - g.JitterMs; d < g.DelayMs+g.JitterMs; d++ {
		out = append(out, float64(d))
	}
	return out
}

// returnModelShares is the win share each group can expect when only the way back of
// its answers sets it apart, as under the synced reveal with arrival timing (every bulb
// lights at one instant; an answer counts when it arrives): modelShares with each
// player's lag drawn from its group's one-way delays.
func returnModelShares(reactions []float64, groups []group, sizes []int, rounds int, rng *rand.Rand) []float64 {
	lags := make([][]float64, len(groups))
	for g, grp := range groups {
		lags[g] = oneWayDelays(grp)
	}
	return modelShares(reactions, lags, sizes, rounds, rng)
}

// credited is what the server takes off a client's answer time for the way its signals
// travel, in ms, in a mode, from the medians of the client's ping round trips and (an
// immediate start's) ack round trips, as quiz.reactionTime does: nothing under arrival
// timing; under compensated timing with the immediate reveal the lesser round trip,
// capped at compCap; with the synced reveal the return delay, half the ping round trip,
// capped at returnCap. A client holding back its pongs gains at most the cap less its
// true share.
func credited(mode string, pingMs, ackMs, compCap, returnCap float64) float64 {
	switch {
	case modeTiming(mode) != "compensated":
		return 0
	case modeSynced(mode):
		return math.Min(pingMs/2, returnCap)
	default:
		return math.Min(math.Min(pingMs, ackMs), compCap)
	}
}
