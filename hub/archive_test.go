package hub_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/hub"
)

// memArchive is an Archive in memory, standing in for the embedded engine's store (whose
// own test restarts a real server).
type memArchive struct {
	mu      sync.Mutex
	records map[string]map[uint64][]byte
	last    uint64
}

func (a *memArchive) SaveStart(_ context.Context, room string, seq uint64, record []byte, keep int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.records[room] == nil {
		a.records[room] = map[uint64][]byte{}
	}
	a.records[room][seq] = record
	a.last = max(a.last, seq)
	for len(a.records[room]) > keep {
		delete(a.records[room], slices.Min(slices.Collect(maps.Keys(a.records[room]))))
	}
	return nil
}

func (a *memArchive) Starts(_ context.Context, room string, except map[uint64]bool) ([][]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out [][]byte
	for seq, r := range a.records[room] {
		if !except[seq] {
			out = append(out, r)
		}
	}
	return out, nil
}

func (a *memArchive) LastStartSeq(context.Context) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last, nil
}

// TestArchive checks that a hub with an Archive saves each start's record with its acks
// (here as it stops, before the record settled), that a new hub on the same archive (a
// restarted node) reports those starts, and that it numbers its starts on past them.
func TestArchive(t *testing.T) {
	arch := &memArchive{records: map[string]map[uint64][]byte{}}
	ts := MustServer(t, hub.Options{Archive: arch})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- ts.h.Run(ctx) }()
	rs := MustDialMany(t, ts, "a", "p", 4, hub.Player)
	seq, _, err := ts.h.Start(context.Background(), "a", 1, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		MustFrame(t, r, startFrame(1, seq))
		if i < 3 {
			r.write(t, fmt.Sprintf(`{"type":"ack","seq":%d}`, seq))
		}
	}
	MustLatest(t, ts, "a", func(st hub.StartStats) string {
		if st.Acked != 3 {
			return fmt.Sprintf("acked %d, want 3", st.Acked)
		}
		return ""
	})
	cancel() // a node that stops saves the records still settling
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}

	restarted := hub.New(hub.Options{Archive: arch})
	rep := restarted.Fairness("a", 0)
	if len(rep.Starts) != 1 || rep.Starts[0].Seq != seq || rep.Starts[0].Acked != 3 || rep.Starts[0].Recipients != 4 {
		t.Fatalf("the restarted hub's report: %+v, want start %d with 4 recipients and 3 acks", rep.Starts, seq)
	}
	next, _, err := restarted.Start(context.Background(), "a", 2, time.Time{})
	if err != nil || next <= seq {
		t.Fatalf("the restarted hub's first start: seq %d, %v; want after %d", next, err, seq)
	}
}
