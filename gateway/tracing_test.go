package gateway_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// With a TracerProvider the gateway makes a "send {topic}" span per
// produced record, a child of the HTTP request's traceparent, with the
// messaging attributes and the offset; the record carries the span's
// trace context, so its consumers' process spans follow the gateway's.
func TestTracing(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "traced", 1)
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		defer tp.Shutdown(context.Background())
		g := startGateway(t, addrs, func(c *gateway.Config) { c.TracerProvider = tp })

		const caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		resp, b := call(t, "POST", g.URL+"/api/topics/traced/events", `{"a":1}`,
			"ce-specversion", "1.0", "ce-id", "e-1", "ce-type", "order.created", "ce-source", "/shop",
			"ce-partitionkey", "cust-9", "ce-correlationid", "flow-1", "traceparent", caller)
		if resp.StatusCode != 200 {
			t.Fatalf("produce: %d %s", resp.StatusCode, b)
		}
		var send sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.Name() == "send traced" {
				send = s
			}
		}
		if send == nil {
			t.Fatalf("no send span: %v", rec.Ended())
		}
		if send.SpanKind() != trace.SpanKindProducer || send.Parent().TraceID().String() != "0af7651916cd43dd8448eb211c80319c" ||
			send.Parent().SpanID().String() != "b7ad6b7169203331" {
			t.Errorf("send span kind %v parent %v, want a producer span under the caller's traceparent", send.SpanKind(), send.Parent())
		}
		attrs := map[string]string{}
		for _, kv := range send.Attributes() {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		for k, v := range map[string]string{
			"messaging.system": "kafka", "messaging.operation.type": "send", "messaging.destination.name": "traced",
			"messaging.kafka.message.key": "cust-9", "messaging.message.id": "e-1", "messaging.message.conversation_id": "flow-1",
			"cloudevents.event_type": "order.created", "messaging.destination.partition.id": "0", "messaging.kafka.offset": "0",
		} {
			if attrs[k] != v {
				t.Errorf("%s = %q, want %q", k, attrs[k], v)
			}
		}
		recs := kafkatest.ReadAll(t, addrs, "traced")
		if len(recs) != 1 {
			t.Fatalf("%d records", len(recs))
		}
		got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
			propagation.MapCarrier{"traceparent": headerOf(recs[0], "traceparent")}))
		if got.SpanID() != send.SpanContext().SpanID() || got.TraceID() != send.SpanContext().TraceID() {
			t.Errorf("record traceparent %q, want the send span's %v", headerOf(recs[0], "traceparent"), send.SpanContext())
		}
	})
}
