package lookback_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

// TestFlowGapsAndMissingCause: GET /api/lookback/flows/{id} over archived
// events gives each step's gap_ms (the time since the previous one, from
// the record timestamps) and marks with missing_cause the event whose
// causation_id names an event that is not in the archive.
func TestFlowGapsAndMissingCause(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "steps", 1)
		svc, st := startService(t, addrs, nil)
		t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		placed := ceRec(t, "steps", "o-1", "order.placed", "flow-g", nil)
		paid := ceRec(t, "steps", "o-1", "payment.completed", "flow-g", nil)
		shipped := ceRec(t, "steps", "o-1", "order.shipped", "flow-g", nil)
		placed.Timestamp, paid.Timestamp, shipped.Timestamp = t0, t0.Add(250*time.Millisecond), t0.Add(1750*time.Millisecond)
		paid.Headers = append(paid.Headers, kgo.RecordHeader{Key: "causation_id", Value: []byte(header(placed, "ce_id"))})
		shipped.Headers = append(shipped.Headers, kgo.RecordHeader{Key: "causation_id", Value: []byte("never-archived")})
		produce(t, addrs, placed, paid, shipped)
		waitEvents(t, st, 3)

		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/api/lookback/flows/flow-g")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("flow: %d %s", resp.StatusCode, body)
		}
		var f lookback.Flow
		if err := json.Unmarshal(body, &f); err != nil {
			t.Fatal(err)
		}
		if len(f.Events) != 3 {
			t.Fatalf("%d events in the flow, want 3: %s", len(f.Events), body)
		}
		for i, want := range []struct {
			typ     string
			gap     float64
			depth   int
			missing bool
		}{{"order.placed", 0, 0, false}, {"payment.completed", 250, 1, false}, {"order.shipped", 1500, 0, true}} {
			e := f.Events[i]
			if e.Event.Type != want.typ || e.GapMS != want.gap || e.Depth != want.depth || e.MissingCause != want.missing {
				t.Fatalf("step %d: type %s gap_ms %v depth %d missing_cause %v, want %+v", i, e.Event.Type, e.GapMS, e.Depth, e.MissingCause, want)
			}
		}
		if f.Duration != 1750 {
			t.Fatalf("duration_ms %v, want 1750", f.Duration)
		}
		// The wire names, as docs/lookback.md gives them.
		for _, s := range []string{`"gap_ms":250`, `"gap_ms":1500`, `"missing_cause":true`} {
			if !strings.Contains(string(body), s) {
				t.Fatalf("flow JSON lacks %s: %s", s, body)
			}
		}
		if strings.Count(string(body), `"missing_cause"`) != 1 {
			t.Fatalf("missing_cause on more than the one event whose cause is not archived: %s", body)
		}
		// The event with the missing cause is a root of its own.
		if len(f.Roots) != 2 || f.Roots[1].Type != "order.shipped" || len(f.Roots[0].Children) != 1 {
			t.Fatalf("roots %s", body)
		}
	})
}
