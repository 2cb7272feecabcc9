package lookback

import (
	"sync"
)

// ackTracker moves a replay's checkpoint from the broker's
// acknowledgements instead of flushing the producer: flushing every
// checkpoint drained the producer's pipeline each time (a replay ran at
// a fifth of the broker's produce rate). The checkpoint is the end of the
// longest run of pages, in send order, whose every record is
// acknowledged; records of one page can be acknowledged in any order
// (they go to different partitions), and a page with a failed record
// never completes, so the checkpoint never passes an event that is not
// on the broker.
type ackTracker struct {
	mu struct {
		sync.Mutex
		pages []*pageAcks // sent and not yet in the checkpoint, in send order
		err   error       // the first produce error
	}
	// end is set by advance once the last page (no Next) is in the
	// checkpoint: every event of the replay is on the broker.
	end bool
}

// pageAcks is one page of a replay in flight.
type pageAcks struct {
	next    string // the cursor after the page
	pending int    // records not acknowledged yet (guarded by the tracker's mu)
	failed  bool   // a record of the page failed (guarded by the tracker's mu)
	events  int64
	byTopic map[string]int64
}

// open registers a page before any of its records is produced, so its
// count of pending records is complete before the first acknowledgement.
func (t *ackTracker) open(p Page) *pageAcks {
	pa := &pageAcks{next: p.Next, pending: len(p.Events), events: int64(len(p.Events)), byTopic: map[string]int64{}}
	for _, e := range p.Events {
		pa.byTopic[e.Topic]++
	}
	t.mu.Lock()
	t.mu.pages = append(t.mu.pages, pa)
	t.mu.Unlock()
	return pa
}

// acked records the broker's answer for one record of pa (the produce
// promise; it runs on the client's goroutines).
func (t *ackTracker) acked(pa *pageAcks, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pa.pending--
	if err != nil {
		pa.failed = true
		if t.mu.err == nil {
			t.mu.err = err
		}
	}
}

// advance moves st's checkpoint (cursor, done, counts per topic) past
// every fully acknowledged page at the front, and returns the first
// produce error, if any. Only the replay's goroutine calls it: st is its.
func (t *ackTracker) advance(st *ReplayState) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, pa := range t.mu.pages {
		if pa.pending > 0 || pa.failed {
			break
		}
		st.Cursor, st.Done = pa.next, st.Done+pa.events
		t.end = pa.next == ""
		for topic, c := range pa.byTopic {
			st.ByTopic[topic] += c
		}
		n++
	}
	t.mu.pages = append(t.mu.pages[:0], t.mu.pages[n:]...)
	return t.mu.err
}
