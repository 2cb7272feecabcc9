package broker

import (
	"context"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kmsg"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/spoolmq/spool/storage"
)

// tracedBatch is a record batch of n 1 KiB records whose traceparents name
// distinct span contexts (record i the (i mod distinct)th), uncompressed
// or zstd.
func tracedBatch(tb testing.TB, n, distinct int, compress bool) []byte {
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: make([]byte, 1024), Headers: []kmsg.Header{
			{Key: "traceparent", Value: fmt.Appendf(nil, "00-%032x-%016x-01", i%distinct+1, i%distinct+1)}}}
		inner := r.AppendTo(nil)[1:] // without the length varint (0, one byte)
		r.Length = int32(len(inner))
		recs = r.AppendTo(recs)
	}
	attrs := int16(0)
	if compress {
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			tb.Fatal(err)
		}
		recs = enc.EncodeAll(recs, nil)
		attrs = 4
	}
	rb := kmsg.RecordBatch{Magic: 2, Attributes: attrs, LastOffsetDelta: int32(n - 1), FirstTimestamp: 1, MaxTimestamp: 1,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: recs}
	raw := rb.AppendTo(nil)
	rb.Length = int32(len(raw) - 12)
	raw = rb.AppendTo(nil)
	rb.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	raw = rb.AppendTo(nil)
	if _, err := storage.ValidateBatch(raw); err != nil {
		tb.Fatal(err)
	}
	return raw
}

func TestBatchTraces(t *testing.T) {
	for _, compress := range []bool{false, true} {
		got := batchTraces(tracedBatch(t, 50, 5, compress), 0)
		if len(got) != 5 {
			t.Fatalf("compress %v: %d traces, want the 5 distinct ones", compress, len(got))
		}
		for i, sc := range got {
			if want := fmt.Sprintf("%032x", i+1); sc.TraceID().String() != want || !sc.IsRemote() {
				t.Errorf("trace %d: %v, want %s in record order", i, sc.TraceID(), want)
			}
		}
	}
	if got := batchTraces(tracedBatch(t, 300, 300, false), 0); len(got) != maxSpanLinks {
		t.Errorf("%d traces of 300, want at most %d", len(got), maxSpanLinks)
	}
	// Garbage traceparents count against the bound too, so a batch of
	// them costs at most maxSpanLinks comparisons a record.
	garbage := tracedBatch(t, 300, 300, false)
	for i := 0; i+55 <= len(garbage); i++ {
		if string(garbage[i:i+3]) == "00-" {
			garbage[i+3] = 'z' // not hex: an invalid traceparent
		}
	}
	if got := batchTraces(garbage, 0); len(got) != 0 {
		t.Errorf("invalid traceparents gave %d span contexts", len(got))
	}
}

// BenchmarkBatchSpan is the broker's work per appended batch with tracing
// on: read the records' traceparents and make one span (sampled, to a
// discarding exporter). A batch of 100 1 KiB records with 10 traces.
func BenchmarkBatchSpan(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer tp.Shutdown(context.Background())
	br := &Broker{tracer: tp.Tracer(tracerScope)}
	r := &request{conn: &conn{ip: "127.0.0.1"}, clientID: "bench", start: time.Now()}
	for _, compress := range []bool{false, true} {
		batch := tracedBatch(b, 100, 10, compress)
		b.Run(fmt.Sprintf("zstd=%v", compress), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				endBatchSpan(br.startBatchSpan(r, "bench", 0, batch), 42, 0)
			}
		})
	}
}
