package outbox_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
)

// TestRelayTracing: with a TracerProvider the relay's "send {topic}" span
// is a child of the span Add ran in, and the published record's
// traceparent names the relay's span.
func TestRelayTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	db, _ := backends(t)[0].open(t)
	migrate(t, db)
	addrs := kafkatest.StartKfake(t)
	kafkatest.CreateTopic(t, addrs, "traced", 1)

	ctx, app := tp.Tracer("app").Start(context.Background(), "place order")
	tx, _ := db.BeginTx(ctx, nil)
	ev := newEvent(t, "k", "x")
	if err := outbox.Add(ctx, tx, ev, outbox.Topic("traced")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	app.End()

	cfg := relayConfig(t, db, addrs)
	cfg.TracerProvider = tp
	r := startRelay(t, cfg)
	kafkatest.Eventually(t, 30*time.Second, "published", func() bool { return r.Stats().Published == 1 })
	var send sdktrace.ReadOnlySpan
	kafkatest.Eventually(t, 30*time.Second, "the send span ended", func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == "send traced" {
				send = s
			}
		}
		return send != nil
	})
	if send.SpanKind() != trace.SpanKindProducer || send.Parent().SpanID() != app.SpanContext().SpanID() ||
		send.SpanContext().TraceID() != app.SpanContext().TraceID() {
		t.Fatalf("send span kind %v parent %v trace %v; want a producer span, child of %v", send.SpanKind(),
			send.Parent().SpanID(), send.SpanContext().TraceID(), app.SpanContext().SpanID())
	}
	if !hasAttr(send.Attributes(), "messaging.message.id", ev.ID) {
		t.Fatalf("send span attributes %v lack messaging.message.id %s", send.Attributes(), ev.ID)
	}
	recs := kafkatest.ReadAll(t, addrs, "traced")
	got, err := event.FromRecord(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := "00-" + send.SpanContext().TraceID().String() + "-" + send.SpanContext().SpanID().String() + "-01"
	if got.TraceParent != want {
		t.Fatalf("record traceparent %q, want the relay's span %q", got.TraceParent, want)
	}
}

func hasAttr(kvs []attribute.KeyValue, k, v string) bool {
	for _, kv := range kvs {
		if string(kv.Key) == k && kv.Value.Emit() == v {
			return true
		}
	}
	return false
}
