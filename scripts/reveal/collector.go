package main

import "sync"

// collector gathers the client processes' records, by group and question. It is safe for
// concurrent use.
type collector struct {
	mu       sync.Mutex
	recs     []map[int][]record // [group] → by question n
	conn     []int              // [group]: students connected
	dropped  []int              // [group]: connections ended early
	timeouts []int              // [mode]: starts given up on before every record came
	dropErrs map[string]int
}

func newCollector(groups int) *collector {
	c := &collector{recs: make([]map[int][]record, groups), conn: make([]int, groups), dropped: make([]int, groups),
		timeouts: make([]int, len(modes)), dropErrs: map[string]int{}}
	for g := range c.recs {
		c.recs[g] = map[int][]record{}
	}
	return c
}

func (c *collector) add(r record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs[r.Group][r.N] = append(c.recs[r.Group][r.N], r)
}

func (c *collector) connected(group, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn[group] = n
}

func (c *collector) drop(group int, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropped[group]++
	c.dropErrs[why]++
}

func (c *collector) timeout(mode int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timeouts[mode]++
}

// complete reports whether every student still connected has a record of question n.
func (c *collector) complete(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for g := range c.recs {
		if len(c.recs[g][n]) < c.conn[g]-c.dropped[g] {
			return false
		}
	}
	return true
}

// collected is what the collector gathered, for the report.
type collected struct {
	starts    [][][]record // [mode][k]: every group's records of that mode's k-th start (by question)
	questions [][]int      // [mode][k]: its question number
	connected []int        // [group]
	dropped   []int
	timeouts  []int // [mode]
	dropErrs  map[string]int
}

// result sorts the records by mode (modeOf of their question) and question.
func (c *collector) result(modeOf func(n int) int) collected {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := collected{starts: make([][][]record, len(modes)), questions: make([][]int, len(modes)),
		connected: c.conn, dropped: c.dropped, timeouts: c.timeouts, dropErrs: c.dropErrs}
	last := 0
	for g := range c.recs {
		for n := range c.recs[g] {
			last = max(last, n)
		}
	}
	for n := 1; n <= last; n++ {
		var recs []record
		for g := range c.recs {
			recs = append(recs, c.recs[g][n]...)
		}
		m := modeOf(n)
		out.starts[m] = append(out.starts[m], recs)
		out.questions[m] = append(out.questions[m], n)
	}
	return out
}
