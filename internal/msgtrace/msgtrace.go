// Package msgtrace makes the OpenTelemetry spans of Spool's Kafka clients
// (producer, agent, outbox relay, gateway) with the messaging semantic
// conventions for Kafka: span names "send {topic}" and "process {topic}",
// messaging.system=kafka, the destination, partition, offset, key, consumer
// group, message id (ce_id) and conversation id (the correlation id).
package msgtrace

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/event"
)

// ScopeName is the instrumentation scope of Spool's spans.
const ScopeName = "github.com/spoolmq/spool"

// Message is what a span says of the event it sends or processes.
type Message struct {
	ID, CorrelationID, Type string
}

func common(op string, topic string, key []byte, m Message) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs,
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationName(op),
		semconv.MessagingDestinationName(topic),
	)
	if len(key) > 0 {
		attrs = append(attrs, semconv.MessagingKafkaMessageKey(string(key)))
	}
	if m.ID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(m.ID))
	}
	if m.CorrelationID != "" {
		attrs = append(attrs, semconv.MessagingMessageConversationID(m.CorrelationID))
	}
	if m.Type != "" {
		attrs = append(attrs, attribute.String("cloudevents.event_type", m.Type))
	}
	return attrs
}

// StartSend starts the producer span of sending m to topic, a child of the
// span in ctx. Inject the returned context into the record's headers so
// the consumer's span can continue the trace.
func StartSend(ctx context.Context, tr trace.Tracer, topic string, key []byte, m Message) (context.Context, trace.Span) {
	return startSend(ctx, tr, topic, key, m)
}

func startSend(ctx context.Context, tr trace.Tracer, topic string, key []byte, m Message, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	attrs := append(common("send", topic, key, m), semconv.MessagingOperationTypeSend)
	opts = append(opts, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	return tr.Start(ctx, "send "+topic, opts...)
}

// StartRecordSend starts the "send {topic}" span of a record built by
// someone else (an outbox row, an HTTP request through the gateway): a
// child of the trace context in the record's traceparent/tracestate
// headers, named by its ce_id, ce_type and correlation_id headers. It
// rewrites the record's traceparent/tracestate to the new span, so the
// consumer's process span follows this send.
func StartRecordSend(tr trace.Tracer, rec *kgo.Record) trace.Span {
	c, m := recordContext(rec)
	prop := propagation.TraceContext{}
	ctx, span := StartSend(prop.Extract(context.Background(), c), tr, rec.Topic, rec.Key, m)
	setTraceHeaders(rec, ctx)
	return span
}

// StartReplaySend starts the "send {topic}" span of a record that replays
// an archived event (lookback): the root of a new trace, since a replay is
// a new run, linked to the trace in the record's traceparent (the
// original send), with spool.replay.id. It rewrites the record's
// traceparent/tracestate to the new span, so the replay's processing is
// one trace of its own that leads back to the original.
func StartReplaySend(tr trace.Tracer, rec *kgo.Record, replayID string) trace.Span {
	c, m := recordContext(rec)
	prop := propagation.TraceContext{}
	opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithAttributes(attribute.String("spool.replay.id", replayID))}
	if sc := trace.SpanContextFromContext(prop.Extract(context.Background(), c)); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	ctx, span := startSend(context.Background(), tr, rec.Topic, rec.Key, m, opts...)
	setTraceHeaders(rec, ctx)
	return span
}

// recordContext is the trace context and the message of a record's headers.
func recordContext(rec *kgo.Record) (propagation.MapCarrier, Message) {
	c := propagation.MapCarrier{}
	var m Message
	for _, h := range rec.Headers {
		switch h.Key {
		case event.HeaderTraceParent, event.HeaderTraceState:
			c[h.Key] = string(h.Value)
		case event.HeaderID:
			m.ID = string(h.Value)
		case event.HeaderType:
			m.Type = string(h.Value)
		case event.HeaderCorrelationID:
			m.CorrelationID = string(h.Value)
		}
	}
	return c, m
}

// setTraceHeaders replaces the record's traceparent/tracestate with the
// span context in ctx.
func setTraceHeaders(rec *kgo.Record, ctx context.Context) {
	out := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, out)
	hs := rec.Headers[:0:0]
	for _, h := range rec.Headers {
		if h.Key != event.HeaderTraceParent && h.Key != event.HeaderTraceState {
			hs = append(hs, h)
		}
	}
	for _, k := range []string{event.HeaderTraceParent, event.HeaderTraceState} {
		if v := out[k]; v != "" {
			hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	rec.Headers = hs
}

// EndSend ends a send span with the partition and offset the broker gave r,
// or with err.
func EndSend(span trace.Span, r *kgo.Record, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else if r != nil {
		span.SetAttributes(
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(r.Partition))),
			semconv.MessagingKafkaOffset(int(r.Offset)),
		)
	}
	span.End()
}

// StartProcess starts the consumer span of processing r as a member of
// group. ctx carries the trace context extracted from r's headers (the
// producer's span): the process span is its child and links to it, as the
// conventions ask for a single message processed.
func StartProcess(ctx context.Context, tr trace.Tracer, r *kgo.Record, group string, m Message, attempt int) (context.Context, trace.Span) {
	attrs := append(common("process", r.Topic, r.Key, m),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingDestinationPartitionID(strconv.Itoa(int(r.Partition))),
		semconv.MessagingKafkaOffset(int(r.Offset)),
		semconv.MessagingConsumerGroupName(group),
		attribute.Int("spool.attempt", attempt),
	)
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	return tr.Start(ctx, "process "+r.Topic, opts...)
}

// EndProcess ends a process span with the verdict the handler returned and
// its error, if it failed.
func EndProcess(span trace.Span, verdict string, failed bool, err error) {
	span.SetAttributes(attribute.String("spool.verdict", verdict))
	if failed && err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
