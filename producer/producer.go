// Package producer publishes events (package event) to Kafka or Spool.
//
// A Producer wraps a franz-go client configured the way event publishing
// needs: the idempotent producer on (a retried batch is never written twice),
// acks from all in-sync replicas, and Kafka's default partitioner for keys
// (murmur2 of the key, as the Java client), so events with one key land on
// one partition whichever client produced them.
//
// When Publish is called while handling an event (ctx carries it, see
// event.NewContext; the consumer agent does this), the new event gets
// causation = the handled event's ID and inherits its correlation ID. The
// OpenTelemetry trace context in ctx is written to traceparent/tracestate.
package producer

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/msgtrace"
)

// Producer publishes events. It is safe for concurrent use.
type Producer struct {
	cl         *kgo.Client
	own        bool
	source     string
	propagator propagation.TextMapPropagator
	tracer     trace.Tracer // nil: no spans
}

// Option configures a Producer.
type Option func(*Producer, *[]kgo.Opt)

// WithBrokers sets the seed brokers, overriding the default 127.0.0.1:9092.
func WithBrokers(addrs ...string) Option {
	return func(_ *Producer, o *[]kgo.Opt) { *o = append(*o, kgo.SeedBrokers(addrs...)) }
}

// WithClientOptions adds franz-go client options (TLS, SASL, linger, ...),
// applied after the producer's defaults so they can override them.
func WithClientOptions(opts ...kgo.Opt) Option {
	return func(_ *Producer, o *[]kgo.Opt) { *o = append(*o, opts...) }
}

// WithSource sets ce_source for events published without one, overriding
// the default (none: an event without a source is rejected).
func WithSource(source string) Option {
	return func(p *Producer, _ *[]kgo.Opt) { p.source = source }
}

// WithPropagator sets the trace context propagator, overriding the default
// W3C trace context (propagation.TraceContext).
func WithPropagator(tp propagation.TextMapPropagator) Option {
	return func(p *Producer, _ *[]kgo.Opt) { p.propagator = tp }
}

// WithTracerProvider makes Publish and PublishAsync start an OpenTelemetry
// span per event, overriding the default of no spans: "send {topic}" of
// kind producer, a child of the span in ctx, with the messaging
// semantic-convention attributes (messaging.system=kafka, destination,
// key, message id, conversation id = correlation id, and once acknowledged
// the partition and offset). The event's traceparent then carries this
// span, so the consumer's process span is its child.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(p *Producer, _ *[]kgo.Opt) { p.tracer = tp.Tracer(msgtrace.ScopeName) }
}

// New returns a Producer with its own client; Close closes it.
func New(opts ...Option) (*Producer, error) {
	p := &Producer{propagator: propagation.TraceContext{}, own: true}
	kopts := []kgo.Opt{
		kgo.SeedBrokers("127.0.0.1:9092"),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	}
	for _, o := range opts {
		o(p, &kopts)
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("producer: new client: %w", err)
	}
	p.cl = cl
	return p, nil
}

// NewFromClient returns a Producer publishing through cl, which the caller
// keeps owning (Close does not close it). Only WithSource, WithPropagator
// and WithTracerProvider apply.
func NewFromClient(cl *kgo.Client, opts ...Option) *Producer {
	p := &Producer{cl: cl, propagator: propagation.TraceContext{}}
	var ignored []kgo.Opt
	for _, o := range opts {
		o(p, &ignored)
	}
	return p
}

// Client returns the underlying franz-go client.
func (p *Producer) Client() *kgo.Client { return p.cl }

// Close flushes nothing and closes the client if the producer owns it.
func (p *Producer) Close() {
	if p.own {
		p.cl.Close()
	}
}

// Flush waits until every record published so far is acknowledged or failed.
func (p *Producer) Flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("producer: flush: %w", err)
	}
	return nil
}

// Prepare fills in what Publish derives from ctx and the producer's
// configuration: source, causation and correlation from the event being
// handled, and the trace context. It is exported for callers that build
// records themselves (an outbox, say).
func (p *Producer) Prepare(ctx context.Context, ev *event.Event) {
	if ev.Source == "" {
		ev.Source = p.source
	}
	if parent, ok := event.FromContext(ctx); ok {
		ev.Follow(parent)
	}
	if ev.TraceParent == "" {
		c := propagation.MapCarrier{}
		p.propagator.Inject(ctx, c)
		ev.TraceParent = c[event.HeaderTraceParent]
		if ev.TraceState == "" {
			ev.TraceState = c[event.HeaderTraceState]
		}
	}
}

// begin prepares ev (see Prepare) and, when tracing, starts its send span
// first, so that the traceparent Prepare writes is the span's.
func (p *Producer) begin(ctx context.Context, topic string, ev *event.Event) (context.Context, trace.Span) {
	if p.tracer == nil {
		p.Prepare(ctx, ev)
		return ctx, nil
	}
	if parent, ok := event.FromContext(ctx); ok {
		ev.Follow(parent) // before the span, which names the correlation id
	}
	ctx, span := msgtrace.StartSend(ctx, p.tracer, topic, ev.Key, msgtrace.Message{ID: ev.ID, CorrelationID: ev.CorrelationID, Type: ev.Type})
	p.Prepare(ctx, ev)
	return ctx, span
}

// Publish publishes ev to topic and waits for the broker's acknowledgement.
// ev is updated as described at Prepare. On success the returned record
// carries the partition and offset written.
func (p *Producer) Publish(ctx context.Context, topic string, ev *event.Event) (r *kgo.Record, err error) {
	ctx, span := p.begin(ctx, topic, ev)
	if span != nil {
		defer func() { msgtrace.EndSend(span, r, err) }()
	}
	r, err = ev.Record(topic)
	if err != nil {
		return nil, fmt.Errorf("producer: publish to %s: %w", topic, err)
	}
	if err := p.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		return nil, fmt.Errorf("producer: publish %s %s to %s: %w", ev.Type, ev.ID, topic, err)
	}
	return r, nil
}

// PublishAsync publishes ev to topic without waiting; done (which may be nil)
// is called once with the written record or the error. Events published
// asynchronously with one key keep their order.
func (p *Producer) PublishAsync(ctx context.Context, topic string, ev *event.Event, done func(*kgo.Record, error)) {
	if done == nil {
		done = func(*kgo.Record, error) {}
	}
	ctx, span := p.begin(ctx, topic, ev)
	r, err := ev.Record(topic)
	if err != nil {
		err = fmt.Errorf("producer: publish to %s: %w", topic, err)
		if span != nil {
			msgtrace.EndSend(span, nil, err)
		}
		done(nil, err)
		return
	}
	typ, id := ev.Type, ev.ID
	p.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
		if err != nil {
			err = fmt.Errorf("producer: publish %s %s to %s: %w", typ, id, topic, err)
		}
		if span != nil {
			msgtrace.EndSend(span, r, err)
		}
		done(r, err)
	})
}
