package hub

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"
)

// Archive keeps the fairness records of this node's starts across its restarts; the
// embedded engine's store is one. Records are opaque to it, and go with their room.
type Archive interface {
	// SaveStart keeps the record of start seq of the room, replacing an earlier one of the
	// same start, and keeps only the room's newest keep records.
	SaveStart(ctx context.Context, room string, seq uint64, record []byte, keep int) error
	// Starts returns the room's kept records, but those of the starts in except.
	Starts(ctx context.Context, room string, except map[uint64]bool) ([][]byte, error)
	// LastStartSeq returns the highest seq saved, 0 if none: the hub numbers its starts
	// on from there.
	LastStartSeq(ctx context.Context) (uint64, error)
}

// archiveSettle is how long after a start its record is saved: by then the acks and seen
// reports (sent within a few hundred milliseconds of the reveal) are in, and the burst of
// answers that follows a start has been written before the record, which may be large (a
// few hundred bytes per player), takes the database's writer.
const archiveSettle = 3 * time.Second

// seqGap is how far past the last saved start a restarted hub numbers its starts: starts
// sent within archiveSettle of a crash were never saved, and their numbers must not come
// back.
const seqGap = 1 << 16

// archiveQueue bounds the records waiting to be saved.
const archiveQueue = 256

// toArchive is a start's record waiting to be saved, and when to save it again.
type toArchive struct {
	room string
	rec  *startRecord
	due  time.Time
}

// archive queues a start's record for saving; nothing happens without an Archive.
func (h *Hub) archive(roomName string, rec *startRecord) {
	if h.opts.Archive == nil {
		return
	}
	select {
	case h.archiving <- toArchive{room: roomName, rec: rec, due: time.Now().Add(archiveSettle)}:
	default:
		h.log.Warn("fairness records to save are piling up: one is dropped", "room", roomName, "seq", rec.Seq)
	}
}

// runArchive saves each start's record once its reports have settled, until ctx is done;
// then it saves the records still waiting and returns.
func (h *Hub) runArchive(ctx context.Context) {
	var settling []toArchive
	timer := time.NewTimer(archiveSettle)
	defer timer.Stop()
	for {
		select {
		case a := <-h.archiving:
			settling = append(settling, a)
		case <-timer.C:
		case <-ctx.Done():
			for drained := false; !drained; {
				select {
				case a := <-h.archiving:
					settling = append(settling, a)
				default:
					drained = true
				}
			}
			for _, a := range settling {
				h.saveStart(context.WithoutCancel(ctx), a)
			}
			return
		}
		for len(settling) > 0 && !time.Now().Before(settling[0].due) {
			h.saveStart(ctx, settling[0])
			settling = settling[1:]
		}
		if len(settling) > 0 {
			timer.Reset(time.Until(settling[0].due))
		}
	}
}

func (h *Hub) saveStart(ctx context.Context, a toArchive) {
	b, err := json.Marshal(a.rec.stats())
	if err == nil {
		err = h.opts.Archive.SaveStart(ctx, a.room, a.rec.Seq, b, h.opts.History)
	}
	if err != nil {
		h.log.Warn("saving a start's fairness record", "room", a.room, "seq", a.rec.Seq, "err", err)
	}
}

// withArchived adds to starts (newest first) the room's archived records of starts it
// does not have, and returns the newest History of them, newest first.
func (h *Hub) withArchived(roomName string, starts []StartStats) []StartStats {
	if h.opts.Archive == nil {
		return starts
	}
	have := make(map[uint64]bool, len(starts))
	for _, st := range starts {
		have[st.Seq] = true
	}
	recs, err := h.opts.Archive.Starts(context.Background(), roomName, have)
	if err != nil {
		h.log.Warn("reading a room's saved fairness records", "room", roomName, "err", err)
		return starts
	}
	for _, b := range recs {
		var st StartStats
		if err := json.Unmarshal(b, &st); err != nil {
			h.log.Warn("an undecodable saved fairness record", "room", roomName, "err", err)
			continue
		}
		starts = append(starts, st)
	}
	slices.SortFunc(starts, func(a, b StartStats) int { return cmp.Compare(b.Seq, a.Seq) })
	return starts[:min(len(starts), h.opts.History)]
}
