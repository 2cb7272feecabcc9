package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/spoolmq/spool/internal/kafkatest"
)

// batchOut is the answer to a produce.
type batchOut struct {
	Offsets []struct {
		Partition *int32 `json:"partition"`
		Offset    *int64 `json:"offset"`
		Error     string `json:"error"`
	} `json:"offsets"`
}

// TestProduceMixedResults: a batch where some records are written and some
// refused (one over the topic's max.message.bytes, one to a partition the
// topic lacks) answers 200 with, in request order, an offset for each
// written record and an error for each refused one; only the written ones
// are in the topic.
func TestProduceMixedResults(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		createSmallTopic(t, addrs, "mixed", 2, 1000)
		g := startGateway(t, addrs)
		resp, b := call(t, "POST", g.URL+"/api/topics/mixed/records", `{"records": [
			{"value": "a", "partition": 0},
			{"value": `+incompressible(3000)+`, "partition": 1},
			{"value": "c", "partition": 0},
			{"value": "d", "partition": 9}]}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200 with per-record results; body %s", resp.StatusCode, b)
		}
		out := decode[batchOut](t, b)
		if len(out.Offsets) != 4 {
			t.Fatalf("%d results, want 4: %s", len(out.Offsets), b)
		}
		for _, i := range []int{0, 2} {
			if o := out.Offsets[i]; o.Error != "" || o.Partition == nil || *o.Partition != 0 || o.Offset == nil {
				t.Fatalf("record %d: want an offset on partition 0: %s", i, b)
			}
		}
		if *out.Offsets[2].Offset <= *out.Offsets[0].Offset {
			t.Fatalf("records 0 and 2 out of order: %s", b)
		}
		for i, want := range map[int]string{1: "larger than the broker accepts", 3: "partition 9"} {
			if o := out.Offsets[i]; o.Partition != nil || o.Offset != nil || !strings.Contains(o.Error, want) {
				t.Fatalf("record %d: want only an error containing %q: %s", i, want, b)
			}
		}
		var vals []string
		for _, r := range kafkatest.ReadAll(t, addrs, "mixed") {
			vals = append(vals, string(r.Value))
		}
		if strings.Join(vals, ",") != `"a","c"` {
			t.Fatalf("topic holds %v, want only the written records \"a\",\"c\"", vals)
		}
	})
}

// TestProduceRecordLimit: 500 records (MaxRecords' default) in one request
// are produced; 501 records or CloudEvents are refused with 413
// problem+json naming the limit, and nothing of them is produced.
func TestProduceRecordLimit(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "many", 2)
		g := startGateway(t, addrs)
		records := func(n int) string {
			return `{"records": [` + strings.TrimSuffix(strings.Repeat(`{"value": 1},`, n), ",") + `]}`
		}
		resp, b := call(t, "POST", g.URL+"/api/topics/many/records", records(500))
		if resp.StatusCode != http.StatusOK || len(decode[batchOut](t, b).Offsets) != 500 {
			t.Fatalf("500 records: %d %.200s", resp.StatusCode, b)
		}
		resp, b = call(t, "POST", g.URL+"/api/topics/many/records", records(501))
		wantProblem(t, resp, b, http.StatusRequestEntityTooLarge, "501 records in one request; the limit is 500")
		ev := `{"specversion":"1.0","id":"e","type":"t","source":"/s"},`
		resp, b = call(t, "POST", g.URL+"/api/topics/many/events", "["+strings.TrimSuffix(strings.Repeat(ev, 501), ",")+"]",
			"Content-Type", "application/cloudevents-batch+json")
		wantProblem(t, resp, b, http.StatusRequestEntityTooLarge, "501 events in one request; the limit is 500")
		if n := len(kafkatest.ReadAll(t, addrs, "many")); n != 500 {
			t.Fatalf("%d records in the topic, want the 500 of the accepted request only", n)
		}
	})
}
