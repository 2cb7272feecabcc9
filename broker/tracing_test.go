package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
)

// With a TracerProvider, the broker makes one "receive {topic}" span per
// appended batch: a child of the first record's traceparent, linked to
// every distinct trace of its records (here in a zstd batch, so the
// headers are read from decompressed records), with the messaging
// attributes and the base offset once durable.
func TestBrokerProduceSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.TracerProvider = tp }))
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "traced", 2, nil)
	ctx := testCtx(t)

	const (
		traceA = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanA  = "00f067aa0ba902b7"
		traceB = "0af7651916cd43dd8448eb211c80319c"
		spanB  = "b7ad6b7169203331"
	)
	tp1 := "00-" + traceA + "-" + spanA + "-01"
	tp2 := "00-" + traceB + "-" + spanB + "-01"
	// Linger long enough that the three records leave in one batch, at Flush.
	cl := newClient(t, srv, kgo.ProducerLinger(time.Minute), kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.ClientID("traced-producer"))
	errs := make(chan error, 4)
	for _, tph := range []string{tp1, tp1, tp2} {
		cl.Produce(ctx, &kgo.Record{Topic: "traced", Partition: 1, Value: []byte("v"), Headers: []kgo.RecordHeader{
			{Key: "traceparent", Value: []byte(tph)}, {Key: "tracestate", Value: []byte("spool=t")}}}, func(_ *kgo.Record, err error) { errs <- err })
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// A record without trace context: a root span without links.
	produceSync(t, newClient(t, srv, kgo.RecordPartitioner(kgo.ManualPartitioner())), &kgo.Record{Topic: "traced", Partition: 0, Value: []byte("plain")})

	var spans []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == "receive traced" {
			spans = append(spans, s)
		}
	}
	if len(spans) != 2 {
		t.Fatalf("%d receive spans, want 2 (one per batch): %+v", len(spans), exp.GetSpans())
	}
	traced, plain := spans[0], spans[1]
	if traced.SpanKind != trace.SpanKindServer {
		t.Errorf("kind %v, want server", traced.SpanKind)
	}
	if got := traced.Parent.TraceID().String(); got != traceA || traced.Parent.SpanID().String() != spanA || !traced.Parent.IsRemote() {
		t.Errorf("parent %v, want the first record's traceparent %s/%s", traced.Parent, traceA, spanA)
	}
	if traced.SpanContext.TraceID().String() != traceA {
		t.Errorf("span in trace %s, want %s", traced.SpanContext.TraceID(), traceA)
	}
	if len(traced.Links) != 2 || traced.Links[0].SpanContext.SpanID().String() != spanA || traced.Links[1].SpanContext.TraceID().String() != traceB ||
		traced.Links[1].SpanContext.TraceState().Get("spool") != "t" {
		t.Errorf("links %+v, want one per distinct trace (A, then B with its tracestate)", traced.Links)
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range traced.Attributes {
		attrs[kv.Key] = kv.Value
	}
	for k, want := range map[attribute.Key]string{
		"messaging.system":                   "kafka",
		"messaging.operation.name":           "receive",
		"messaging.operation.type":           "receive",
		"messaging.destination.name":         "traced",
		"messaging.destination.partition.id": "1",
		"messaging.client.id":                "traced-producer",
		"network.peer.address":               "127.0.0.1",
	} {
		if got := attrs[k].AsString(); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := attrs["messaging.batch.message_count"].AsInt64(); got != 3 {
		t.Errorf("messaging.batch.message_count = %d, want 3", got)
	}
	if v, ok := attrs["messaging.kafka.offset"]; !ok || v.AsInt64() != 0 {
		t.Errorf("messaging.kafka.offset = %v (set %v), want the base offset 0", v.AsInt64(), ok)
	}
	if traced.Status.Code == codes.Error || !traced.EndTime.After(traced.StartTime) {
		t.Errorf("status %v, start %v end %v", traced.Status, traced.StartTime, traced.EndTime)
	}
	if plain.Parent.IsValid() || len(plain.Links) != 0 {
		t.Errorf("a batch without traceparent: parent %v links %v, want a root span", plain.Parent, plain.Links)
	}
}

// BenchmarkProduceTraced is BenchmarkProduce with tracing on: every record
// carries a traceparent, every batch gets a span (sampled, exported to a
// discarding exporter through the batch processor). Compare with
// BenchmarkProduce, where Config.TracerProvider is nil.
func BenchmarkProduceTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	srv := spooltest.Start(b, spooltest.WithPartitions(8), spooltest.WithConfig(func(c *broker.Config) { c.TracerProvider = tp }))
	adm, _ := newAdmin(b, srv)
	createTopic(b, adm, "bench", 8, nil)
	cl := newClient(b, srv, kgo.ProducerLinger(5e6), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MaxBufferedRecords(1<<16))
	value := make([]byte, 1024)
	headers := []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	var errOnce sync.Once
	for range b.N {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Topic: "bench", Value: value, Headers: headers}, func(_ *kgo.Record, err error) {
			if err != nil {
				errOnce.Do(func() { b.Error(err) })
			}
			wg.Done()
		})
	}
	wg.Wait()
}
