package lookback_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

// With a TracerProvider a replay makes a "send {topic}" span per event it
// republishes: the root of a new trace, linked to the event's original
// trace, with the replay id; the replayed record carries the new span's
// traceparent, so its processing is a trace of its own.
func TestReplayTracing(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "src", 1)
		kafkatest.CreateTopic(t, addrs, "dst", 1)
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		defer tp.Shutdown(context.Background())
		svc, st := startService(t, addrs, func(c *lookback.Config) { c.Exclude = []string{"^dst$"}; c.TracerProvider = tp })
		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()

		const orig = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		r := ceRec(t, "src", "k-1", "item.added", "flow-7", map[string]int{"seq": 1})
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: "traceparent", Value: []byte(orig)})
		produce(t, addrs, r)
		waitEvents(t, st, 1)

		var rp lookback.ReplayState
		postJSON(t, srv.URL+"/api/lookback/replays", lookback.ReplaySpec{Filter: lookback.Filter{Topic: "src"}, ToTopic: "dst"}, http.StatusAccepted, &rp)
		waitReplay(t, srv.URL, rp.ID)

		var send sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.Name() == "send dst" {
				send = s
			}
		}
		if send == nil {
			t.Fatalf("no send dst span: %v", rec.Ended())
		}
		if send.Parent().IsValid() || send.SpanContext().TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("replay span parent %v trace %v, want the root of a new trace", send.Parent(), send.SpanContext().TraceID())
		}
		if l := send.Links(); len(l) != 1 || l[0].SpanContext.SpanID().String() != "00f067aa0ba902b7" {
			t.Errorf("links %v, want the original send", l)
		}
		attrs := map[string]string{}
		for _, kv := range send.Attributes() {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		for k, v := range map[string]string{"spool.replay.id": rp.ID, "messaging.destination.name": "dst", "messaging.kafka.message.key": "k-1",
			"messaging.message.conversation_id": "flow-7", "messaging.kafka.offset": "0", "messaging.system": "kafka"} {
			if attrs[k] != v {
				t.Errorf("%s = %q, want %q", k, attrs[k], v)
			}
		}
		rs := kafkatest.ReadAll(t, addrs, "dst")
		if len(rs) != 1 {
			t.Fatalf("dst has %d records", len(rs))
		}
		got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
			propagation.MapCarrier{"traceparent": header(rs[0], "traceparent")}))
		if got.SpanID() != send.SpanContext().SpanID() {
			t.Errorf("replayed traceparent %q, want the replay span's", header(rs[0], "traceparent"))
		}
	})
}
