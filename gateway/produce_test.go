package gateway_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/spoolmq/spool/internal/kafkatest"
)

func TestProduceRecords(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 4)
		g := startGateway(t, addrs)
		bin := base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff})
		resp, b := call(t, "POST", g.URL+"/api/topics/orders/records", `{"records": [
			{"key": "c-1", "value": {"total": 12.5, "items": [1, 2]}, "headers": {"h": "v"}},
			{"value_base64": "`+bin+`", "partition": 2},
			{"key": "c-1", "value": "second"}]}`)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		out := decode[struct {
			Offsets []struct {
				Partition *int32 `json:"partition"`
				Offset    *int64 `json:"offset"`
				Error     string `json:"error"`
			} `json:"offsets"`
		}](t, b)
		if len(out.Offsets) != 3 {
			t.Fatalf("offsets %s", b)
		}
		for i, o := range out.Offsets {
			if o.Error != "" || o.Partition == nil || o.Offset == nil {
				t.Fatalf("record %d: %s", i, b)
			}
		}
		if *out.Offsets[1].Partition != 2 {
			t.Fatalf("explicit partition: got %d", *out.Offsets[1].Partition)
		}
		// One key, one partition, in order.
		if *out.Offsets[0].Partition != *out.Offsets[2].Partition || *out.Offsets[2].Offset <= *out.Offsets[0].Offset {
			t.Fatalf("key order: %s", b)
		}
		recs := kafkatest.ReadAll(t, addrs, "orders")
		if len(recs) != 3 {
			t.Fatalf("%d records in the topic, want 3", len(recs))
		}
		byVal := map[string]bool{}
		for _, r := range recs {
			byVal[string(r.Value)] = true
			if string(r.Value) == `{"total":12.5,"items":[1,2]}` && (string(r.Key) != "c-1" || headerOf(r, "h") != "v") {
				t.Fatalf("record 0: key %q headers %v", r.Key, r.Headers)
			}
			if r.Partition == 2 && string(r.Value) == "\x00\x01\x02\xff" && r.Key != nil {
				t.Fatalf("record 1 has a key")
			}
		}
		for _, v := range []string{`{"total":12.5,"items":[1,2]}`, "\x00\x01\x02\xff", `"second"`} {
			if !byVal[v] {
				t.Fatalf("value %q not in the topic", v)
			}
		}
	})
}

func TestProduceIdempotencyKey(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "pay", 1)
		g := startGateway(t, addrs)
		body := `{"records": [{"value": 1}]}`
		r1, b1 := call(t, "POST", g.URL+"/api/topics/pay/records", body, "Idempotency-Key", "k-1")
		if r1.StatusCode != 200 {
			t.Fatalf("first: %d %s", r1.StatusCode, b1)
		}
		// Concurrent retries all get the first answer (or 409 while it was
		// still in flight: none here, it has finished).
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, b := call(t, "POST", g.URL+"/api/topics/pay/records", body, "Idempotency-Key", "k-1")
				if r.StatusCode != 200 || r.Header.Get("Idempotent-Replayed") != "true" || string(b) != string(b1) {
					t.Errorf("retry: %d %q %s, want the first answer %s", r.StatusCode, r.Header.Get("Idempotent-Replayed"), b, b1)
				}
			}()
		}
		wg.Wait()
		if r, _ := call(t, "POST", g.URL+"/api/topics/pay/records", body, "Idempotency-Key", "k-2"); r.StatusCode != 200 {
			t.Fatalf("another key: %d", r.StatusCode)
		}
		if n := len(kafkatest.ReadAll(t, addrs, "pay")); n != 2 {
			t.Fatalf("%d records, want 2 (one per key)", n)
		}
	})
}

func TestProduceCloudEvents(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "ev", 1)
		g := startGateway(t, addrs)
		// Binary mode.
		resp, b := call(t, "POST", g.URL+"/api/topics/ev/events", `{"a":1}`,
			"ce-specversion", "1.0", "ce-id", "e-1", "ce-type", "order.created", "ce-source", "/shop",
			"ce-subject", "o-1", "ce-partitionkey", "cust-9", "ce-correlationid", "flow-1", "ce-tenant", "acme",
			"ce-time", "2026-12-01T10:00:00Z", "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		if resp.StatusCode != 200 {
			t.Fatalf("binary: %d %s", resp.StatusCode, b)
		}
		// Structured mode, data as JSON and as base64.
		resp, b = call(t, "POST", g.URL+"/api/topics/ev/events",
			`{"specversion":"1.0","id":"e-2","type":"order.paid","source":"/shop","data":{"amount":3},"priority":5}`,
			"Content-Type", "application/cloudevents+json")
		if resp.StatusCode != 200 {
			t.Fatalf("structured: %d %s", resp.StatusCode, b)
		}
		resp, b = call(t, "POST", g.URL+"/api/topics/ev/events",
			`[{"specversion":"1.0","id":"e-3","type":"blob","source":"/s","datacontenttype":"application/octet-stream","data_base64":"AAEC"},
			  {"specversion":"1.0","id":"e-4","type":"note","source":"/s","datacontenttype":"text/plain","data":"hello"}]`,
			"Content-Type", "application/cloudevents-batch+json")
		if resp.StatusCode != 200 {
			t.Fatalf("batch: %d %s", resp.StatusCode, b)
		}
		recs := kafkatest.ReadAll(t, addrs, "ev")
		if len(recs) != 4 {
			t.Fatalf("%d records, want 4", len(recs))
		}
		r := recs[0]
		want := map[string]string{"ce_specversion": "1.0", "ce_id": "e-1", "ce_type": "order.created", "ce_source": "/shop",
			"ce_subject": "o-1", "correlation_id": "flow-1", "ce_tenant": "acme", "content-type": "application/json",
			"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
		for k, v := range want {
			if got := headerOf(r, k); got != v {
				t.Errorf("binary mode header %s = %q, want %q", k, got, v)
			}
		}
		if string(r.Key) != "cust-9" || string(r.Value) != `{"a":1}` || !strings.HasPrefix(headerOf(r, "ce_time"), "2026-12-01T10:00:00") {
			t.Errorf("binary mode record: key %q value %q time %q", r.Key, r.Value, headerOf(r, "ce_time"))
		}
		if headerOf(recs[1], "ce_type") != "order.paid" || string(recs[1].Value) != `{"amount":3}` ||
			headerOf(recs[1], "ce_priority") != "5" || headerOf(recs[1], "content-type") != "application/json" {
			t.Errorf("structured record: %q %v", recs[1].Value, recs[1].Headers)
		}
		if string(recs[2].Value) != "\x00\x01\x02" || string(recs[3].Value) != "hello" || headerOf(recs[3], "content-type") != "text/plain" {
			t.Errorf("batch records: %q %q", recs[2].Value, recs[3].Value)
		}
	})
}

func TestProduceBadInput(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "in", 2)
		g := startGateway(t, addrs, func(c *gatewayConfig) { c.MaxBodyBytes = 1024 })
		u := g.URL + "/api/topics/in/records"
		cases := []struct {
			name, url, body string
			hdr             []string
			status          int
			detail          string
		}{
			{"malformed JSON", u, `{"records": [`, nil, 400, "not valid JSON"},
			{"unknown field", u, `{"records": [{"valu": 1}]}`, nil, 400, "unknown field"},
			{"no records", u, `{"records": []}`, nil, 400, "no records"},
			{"both values", u, `{"records": [{"value": 1, "value_base64": "AA=="}]}`, nil, 400, "not both"},
			{"bad base64", u, `{"records": [{"value_base64": "%%%"}]}`, nil, 400, "base64"},
			{"wrong content type", u, `{"records": [{"value": 1}]}`, []string{"Content-Type", "text/plain"}, 415, "application/json"},
			{"oversized", u, `{"records": [{"value": "` + strings.Repeat("x", 2000) + `"}]}`, nil, 413, "limit of 1024 bytes"},
			{"partition out of range", u, `{"records": [{"value": 1, "partition": 7}]}`, nil, 400, "partition 7"},
			{"negative partition", u, `{"records": [{"value": 1, "partition": -1}]}`, nil, 400, "negative"},
			{"unknown topic", g.URL + "/api/topics/nope-" + t.Name()[len(t.Name())-4:] + "/records", `{"records": [{"value": 1}]}`, nil, 404, "does not exist"},
			{"bad topic name", g.URL + "/api/topics/a%20b/records", `{"records": [{"value": 1}]}`, nil, 400, "legal Kafka topic name"},
			{"not a CloudEvent", g.URL + "/api/topics/in/events", `{"a":1}`, nil, 415, "not a CloudEvent"},
			{"CloudEvent missing attrs", g.URL + "/api/topics/in/events", `{"specversion":"1.0","type":"x"}`,
				[]string{"Content-Type", "application/cloudevents+json"}, 400, "id, source"},
			{"unknown endpoint", g.URL + "/api/topics/in/nothing", `{}`, nil, 404, "no gateway endpoint"},
		}
		for _, c := range cases {
			resp, b := call(t, "POST", c.url, c.body, c.hdr...)
			t.Run(c.name, func(t *testing.T) { wantProblem(t, resp, b, c.status, c.detail) })
		}
		if recs := kafkatest.ReadAll(t, addrs, "in"); len(recs) != 0 {
			t.Fatalf("%d records produced by refused requests", len(recs))
		}
		_ = http.StatusOK
	})
}
