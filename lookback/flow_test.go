package lookback

import (
	"context"
	"testing"
	"time"
)

// An event archived twice with the same ce_id (a replay into an archived
// topic, a producer retry without idempotence) is in the flow twice, but
// in the causation tree once: no subtree is drawn twice.
func TestFlowTreeWithRepeatedIDs(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := func(topic string, off int64, id, typ, cause string, at time.Duration) Record {
		r := ceRecord(topic, 0, off, "k", typ, "flow-r", t0.Add(at), `{}`)
		for i, h := range r.Headers {
			if h.Key == "ce_id" {
				r.Headers[i].Value = []byte(id)
			}
		}
		if cause != "" {
			r.Headers = append(r.Headers, Header{"causation_id", []byte(cause)})
		}
		return r
	}
	if err := s.Append(ctx, []Record{
		ev("orders", 0, "a", "order.placed", "", 0),
		ev("payments", 0, "b", "payment.requested", "a", time.Millisecond),
		// The same two again, replayed to orders.debug.
		ev("orders.debug", 0, "a", "order.placed", "", 2*time.Millisecond),
		ev("orders.debug", 1, "b", "payment.requested", "a", 3*time.Millisecond),
	}); err != nil {
		t.Fatal(err)
	}
	f, err := BuildFlow(ctx, s, "flow-r")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Events) != 4 {
		t.Fatalf("%d events in the flow, want all 4", len(f.Events))
	}
	if len(f.Roots) != 1 || f.Roots[0].ID != "a" || len(f.Roots[0].Children) != 1 || f.Roots[0].Children[0].ID != "b" {
		t.Fatalf("tree: %d roots %+v, want a with the one child b", len(f.Roots), f.Roots)
	}
}
