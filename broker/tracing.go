package broker

import (
	"context"
	"encoding/binary"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/storage"
)

// Tracing (Config.TracerProvider): the broker's span of each appended batch,
// continuing the producer's trace.
//
//	receive {topic}   kind server, from the request's arrival until the
//	                  batch is durable (acknowledgeable)
//
// A batch is one produce call's records for one partition, and its records
// may belong to different traces (a producer batches whatever it has).
// The span is the child of the trace in the first record's traceparent
// header and links to every distinct trace context of its records (at most
// maxSpanLinks; records sent by one producer span share one), the
// messaging conventions' shape for a batch. Attributes: messaging.system
// kafka, messaging.operation.name and .type receive, the destination
// topic and partition, messaging.batch.message_count, messaging.client.id,
// network.peer.address; once durable the base offset
// (messaging.kafka.offset); on failure error.type (the Kafka error) and
// status Error.
//
// The headers are read after storage accepted the batch (so only valid,
// bounded batches are parsed again), on the handler goroutine that wrote
// it. With no TracerProvider, b.tracer is nil and the produce path makes
// one nil check per batch: nothing is parsed or allocated.

// tracerScope is the instrumentation scope of the broker's spans.
const tracerScope = "github.com/spoolmq/spool/broker"

// maxSpanLinks bounds the links of a batch's span: one per distinct trace
// context of its records.
const maxSpanLinks = 128

// traceHeaders is the W3C trace context of one record, as the toolkit and
// the OTel Kafka instrumentations put it in record headers.
type traceHeaders struct{ parent, state string }

func (h *traceHeaders) Get(key string) string {
	switch key {
	case "traceparent":
		return h.parent
	case "tracestate":
		return h.state
	}
	return ""
}
func (h *traceHeaders) Set(string, string) {}
func (h *traceHeaders) Keys() []string     { return []string{"traceparent", "tracestate"} }

// batchTraces returns the distinct span contexts of the records'
// traceparent headers, in record order, from the first maxSpanLinks
// distinct traceparents. Parsing
// stops at the first malformed record (storage validated the batch, so
// there is none).
func batchTraces(batch []byte, maxDecompressed int) []trace.SpanContext {
	var (
		out []trace.SpanContext
		// seen are the raw traceparents met, valid or not: repeats are
		// skipped before any parsing, and its bound bounds the work a batch
		// of distinct (or garbage) traceparents can cause.
		seen []string
		prop propagation.TraceContext
	)
	_ = storage.WithRecords(batch, maxDecompressed, func(n int32, data []byte) {
	records:
		for ; n > 0 && len(data) > 0 && len(seen) < maxSpanLinks; n-- {
			length, k := binary.Varint(data)
			if k <= 0 || length < 0 || length > int64(len(data)-k) {
				return
			}
			var rec kmsg.Record
			if rec.UnsafeReadFrom(data[:k+int(length)]) != nil {
				return
			}
			data = data[k+int(length):]
			var parent, state []byte
			for _, hd := range rec.Headers {
				switch hd.Key {
				case "traceparent":
					parent = hd.Value
				case "tracestate":
					state = hd.Value
				}
			}
			if len(parent) == 0 {
				continue
			}
			for _, s := range seen {
				if s == string(parent) { // no allocation: the conversion is only compared
					continue records
				}
			}
			h := traceHeaders{parent: string(parent), state: string(state)}
			seen = append(seen, h.parent)
			if sc := trace.SpanContextFromContext(prop.Extract(context.Background(), &h)); sc.IsValid() {
				out = append(out, sc)
			}
		}
	})
	return out
}

// startBatchSpan starts the span of a batch of numRecords records that
// storage accepted for topic/partition, backdated to the request's
// arrival.
func (b *Broker) startBatchSpan(r *request, topic string, partition int32, batch []byte) trace.Span {
	traces := batchTraces(batch, b.cfg.MaxDecompressedBytes)
	ctx := context.Background()
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(r.start)}
	if len(traces) > 0 {
		ctx = trace.ContextWithRemoteSpanContext(ctx, traces[0])
		links := make([]trace.Link, len(traces))
		for i, sc := range traces {
			links[i] = trace.Link{SpanContext: sc}
		}
		opts = append(opts, trace.WithLinks(links...))
	}
	var n int32
	if h, err := storage.ParseBatchHeader(batch); err == nil {
		n = h.NumRecords
	}
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationName("receive"),
		semconv.MessagingOperationTypeReceive,
		semconv.MessagingDestinationName(topic),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(int(partition))),
		semconv.MessagingBatchMessageCount(int(n)),
		semconv.NetworkPeerAddress(r.conn.ip),
	}
	if r.clientID != "" {
		attrs = append(attrs, semconv.MessagingClientID(r.clientID))
	}
	opts = append(opts, trace.WithAttributes(attrs...))
	_, span := b.tracer.Start(ctx, "receive "+topic, opts...)
	return span
}

// endBatchSpan ends a batch's span once it is durable at baseOffset, or
// with the error that failed it.
func endBatchSpan(span trace.Span, baseOffset int64, code int16) {
	if code != 0 {
		err := kerr.ErrorForCode(code)
		span.SetAttributes(semconv.ErrorTypeKey.String(errName(err)))
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(semconv.MessagingKafkaOffset(int(baseOffset)))
	}
	span.End(trace.WithTimestamp(time.Now()))
}

// errName is the Kafka name of a protocol error (NOT_ENOUGH_REPLICAS).
func errName(err error) string {
	if ke, ok := err.(*kerr.Error); ok {
		return ke.Message
	}
	return err.Error()
}
