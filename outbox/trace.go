package outbox

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/msgtrace"
)

// startSend starts the relay's "send {topic}" span for rec as a child of
// the trace context Add stored (the application's span at Add), and
// rewrites the record's traceparent/tracestate to the new span, so the
// consumer's process span follows the relay's send.
func startSend(tr trace.Tracer, rec *kgo.Record) trace.Span {
	c := propagation.MapCarrier{}
	var m msgtrace.Message
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
	prop := propagation.TraceContext{}
	ctx, span := msgtrace.StartSend(prop.Extract(context.Background(), c), tr, rec.Topic, rec.Key, m)
	out := propagation.MapCarrier{}
	prop.Inject(ctx, out)
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
	return span
}
