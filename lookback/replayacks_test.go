package lookback

import (
	"errors"
	"testing"
)

func ackPage(next string, topics ...string) Page {
	p := Page{Next: next}
	for _, t := range topics {
		p.Events = append(p.Events, &Event{Topic: t})
	}
	return p
}

// The checkpoint moves past a page only once every record of it and of
// every page before it is acknowledged, whatever order the
// acknowledgements come in, and never past a failed record.
func TestAckTrackerCheckpoint(t *testing.T) {
	var tr ackTracker
	st := ReplayState{ByTopic: map[string]int64{}}
	p1 := tr.open(ackPage("c1", "a", "b"))
	p2 := tr.open(ackPage("c2", "a"))
	p3 := tr.open(ackPage("c3", "b", "b"))
	check := func(cursor string, done int64) {
		t.Helper()
		if err := tr.advance(&st); err != nil {
			t.Fatal(err)
		}
		if st.Cursor != cursor || st.Done != done {
			t.Fatalf("checkpoint %q done %d, want %q done %d", st.Cursor, st.Done, cursor, done)
		}
	}
	check("", 0)
	tr.acked(p2, nil) // page 2 complete, page 1 not: nothing moves
	tr.acked(p1, nil)
	check("", 0)
	tr.acked(p1, nil)
	check("c2", 3)
	if st.ByTopic["a"] != 2 || st.ByTopic["b"] != 1 {
		t.Fatalf("by topic %v", st.ByTopic)
	}
	tr.acked(p3, nil)
	fail := errors.New("broker says no")
	tr.acked(p3, fail)
	if err := tr.advance(&st); !errors.Is(err, fail) {
		t.Fatalf("advance after a failed record: %v", err)
	}
	if st.Cursor != "c2" || st.Done != 3 {
		t.Fatalf("checkpoint moved past a failed record: %q %d", st.Cursor, st.Done)
	}
	// An empty page (a payload scan that found nothing) completes at once.
	var tr2 ackTracker
	st2 := ReplayState{ByTopic: map[string]int64{}}
	tr2.open(ackPage("e1"))
	if err := tr2.advance(&st2); err != nil || st2.Cursor != "e1" || st2.Done != 0 || tr2.end {
		t.Fatalf("empty page: %q %d %v end %v", st2.Cursor, st2.Done, err, tr2.end)
	}
	// The last page (no Next) in the checkpoint ends the replay.
	last := tr2.open(ackPage("", "a"))
	if tr2.advance(&st2); tr2.end {
		t.Fatal("ended before the last page was acknowledged")
	}
	tr2.acked(last, nil)
	if err := tr2.advance(&st2); err != nil || !tr2.end || st2.Done != 1 || st2.Cursor != "" {
		t.Fatalf("after the last page: end %v done %d cursor %q %v", tr2.end, st2.Done, st2.Cursor, err)
	}
}
