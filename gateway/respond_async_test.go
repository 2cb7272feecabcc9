package gateway_test

import (
	"net/http"
	"testing"

	"github.com/spoolmq/spool/internal/kafkatest"
)

// TestRespondAsyncProduce: a plain produce (records and CloudEvents) with
// Prefer: respond-async is submitted as a command: 202 with Location and
// Retry-After and a pending status, one record on the topic carrying the
// reply contract, and a reply finishes it. More than one record is 400 and
// produces nothing.
func TestRespondAsyncProduce(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "async", 2)
		g := startGateway(t, addrs)

		resp, b := call(t, "POST", g.URL+"/api/topics/async/records?type=order.place",
			`{"records": [{"key": "cust-7", "value": {"order": 7}, "headers": {"h": "v"}}]}`,
			"Prefer", "respond-async")
		rec := wantAsync(t, resp, b)
		resp, b = call(t, "POST", g.URL+"/api/topics/async/events",
			`{"specversion":"1.0","id":"ev-1","type":"order.cancel","source":"/shop","data":{"order":8}}`,
			"Content-Type", "application/cloudevents+json", "Prefer", "wait=5, respond-async")
		ev := wantAsync(t, resp, b)

		recs := kafkatest.ReadAll(t, addrs, "async")
		if len(recs) != 2 {
			t.Fatalf("%d records on the topic, want 2 (one per async produce)", len(recs))
		}
		byID := map[string]int{}
		for i, r := range recs {
			byID[headerOf(r, "correlation_id")] = i
			if headerOf(r, "spool_reply_to") != "spool.gateway.replies" || headerOf(r, "spool_expires_at") == "" {
				t.Fatalf("record %d lacks the reply contract: %v", i, r.Headers)
			}
		}
		r, ok := byID[rec.ID]
		if !ok {
			t.Fatalf("no record carries correlation_id %s", rec.ID)
		}
		if got := recs[r]; string(got.Key) != "cust-7" || string(got.Value) != `{"order":7}` || headerOf(got, "h") != "v" ||
			got.Partition != *rec.Partition || got.Offset != *rec.Offset {
			t.Fatalf("record of the async produce: key %q value %q headers %v at %d/%d, status says %d/%d",
				got.Key, got.Value, got.Headers, got.Partition, got.Offset, *rec.Partition, *rec.Offset)
		}
		e, ok := byID[ev.ID]
		if !ok {
			t.Fatalf("no record carries correlation_id %s", ev.ID)
		}
		// A CloudEvent keeps its own id and type.
		if got := recs[e]; headerOf(got, "ce_id") != "ev-1" || headerOf(got, "ce_type") != "order.cancel" || string(got.Value) != `{"order":8}` {
			t.Fatalf("record of the async event: value %q headers %v", got.Value, got.Headers)
		}

		rawReply(t, addrs, "spool.gateway.replies", rec.ID, "", []byte(`{"placed":true}`))
		code, st := poll(t, g, rec.ID, 10)
		if code != 200 || st.State != "succeeded" || compact(string(st.Result)) != `{"placed":true}` {
			t.Fatalf("after the reply: %d %+v", code, st)
		}

		resp, b = call(t, "POST", g.URL+"/api/topics/async/records", `{"records": [{"value": 1}, {"value": 2}]}`, "Prefer", "respond-async")
		wantProblem(t, resp, b, http.StatusBadRequest, "exactly one record")
		resp, b = call(t, "POST", g.URL+"/api/topics/async/events",
			`[{"specversion":"1.0","id":"a","type":"t","source":"/s"},{"specversion":"1.0","id":"b","type":"t","source":"/s"}]`,
			"Content-Type", "application/cloudevents-batch+json", "Prefer", "respond-async")
		wantProblem(t, resp, b, http.StatusBadRequest, "exactly one event")
		if n := len(kafkatest.ReadAll(t, addrs, "async")); n != 2 {
			t.Fatalf("%d records after the refused async batches, want still 2", n)
		}
	})
}

// wantAsync checks a 202 answer to an async produce and returns its status.
func wantAsync(t *testing.T, resp *http.Response, b []byte) status {
	t.Helper()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202; body %s", resp.StatusCode, b)
	}
	st := decode[status](t, b)
	if st.ID == "" || st.State != "pending" || st.Partition == nil || st.Offset == nil {
		t.Fatalf("async produce status %s: want a pending request with the command's partition and offset", b)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/requests/"+st.ID {
		t.Fatalf("Location %q, want /api/requests/%s", loc, st.ID)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("202 without Retry-After")
	}
	return st
}
