package producer_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/producer"
)

func TestPublish(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		kafkatest.CreateTopic(t, addrs, "orders", 4)
		p, err := producer.New(producer.WithBrokers(addrs...), producer.WithSource("/orders"))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()

		// While handling a parent event with a trace span in ctx.
		parent := &event.Event{ID: "parent-1", CorrelationID: "flow-7"}
		tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
		sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
		hctx := trace.ContextWithSpanContext(event.NewContext(ctx, parent), sc)

		ev, _ := event.New("order.shipped", event.JSON, map[string]int{"n": 1})
		ev.Key = []byte("cust-1")
		r, err := p.Publish(hctx, "orders", ev)
		if err != nil {
			t.Fatal(err)
		}
		// Kafka's default partitioner: toPositive(murmur2("cust-1")) % 4.
		// murmur2("cust-1") = 344533579, computed by an implementation of
		// its own that reproduces the published vectors below.
		if want := int32((344533579 & 0x7fffffff) % 4); r.Partition != want {
			t.Errorf("partition %d, want %d", r.Partition, want)
		}
		done := make(chan *kgo.Record, 1)
		ev2, _ := event.New("order.shipped", event.JSON, nil)
		ev2.Key = []byte("cust-1")
		p.PublishAsync(hctx, "orders", ev2, func(r producer.Result, err error) {
			if err != nil {
				t.Error(err)
			}
			done <- r.Record
		})
		if r2 := <-done; r2.Partition != r.Partition || r2.Offset != r.Offset+1 {
			t.Errorf("same key went to %d@%d after %d@%d", r2.Partition, r2.Offset, r.Partition, r.Offset)
		}

		got := kafkatest.ReadAll(t, addrs, "orders")
		if len(got) != 2 {
			t.Fatalf("read %d records", len(got))
		}
		back, err := event.FromRecord(got[0])
		if err != nil {
			t.Fatal(err)
		}
		if back.CausationID != "parent-1" || back.CorrelationID != "flow-7" || back.Source != "/orders" {
			t.Errorf("envelope %+v", back)
		}
		if back.TraceParent != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
			t.Errorf("traceparent %q", back.TraceParent)
		}

		// Bad input: an event without a type is refused, nothing is sent.
		if _, err := p.Publish(ctx, "orders", &event.Event{ID: "x"}); err == nil {
			t.Error("published an event without a type")
		}
	})
}

// murmur2Vectors are Kafka's published murmur2 test vectors
// (org.apache.kafka.common.utils.UtilsTest.testMurmur2): the Java client's
// hash of each key, as a signed 32-bit integer.
var murmur2Vectors = []struct {
	key  string
	hash int32
}{
	{"21", -973932308},
	{"foobar", -790332482},
	{"a-little-bit-long-string", -985981536},
	{"a-little-bit-longer-string", -1486304829},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
	{"abc", 479470107},
}

// TestPublishPartitionsLikeTheJavaClient: a keyed event goes to partition
// toPositive(murmur2(key)) % partitions, with the hash from Kafka's own
// test vectors rather than from the partitioner under test, so events
// published by Spool and by a Java service with the same key meet on the
// same partition.
func TestPublishPartitionsLikeTheJavaClient(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		const parts = 7 // prime, so each vector's residue differs from a lucky default
		kafkatest.CreateTopic(t, addrs, "java-keys", parts)
		p, err := producer.New(producer.WithBrokers(addrs...), producer.WithSource("/test"))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for _, v := range murmur2Vectors {
			ev, _ := event.New("k.tested", event.JSON, nil)
			ev.Key = []byte(v.key)
			r, err := p.Publish(context.Background(), "java-keys", ev)
			if err != nil {
				t.Fatal(err)
			}
			if want := (v.hash & 0x7fffffff) % parts; r.Partition != want {
				t.Errorf("key %q: partition %d, want %d (murmur2 %d)", v.key, r.Partition, want, v.hash)
			}
		}
	})
}
