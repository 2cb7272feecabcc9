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
//
// # Fallback spool
//
// With WithSpool, an event the broker does not take within the spool
// deadline (unreachable, or failing with retriable errors) is appended to a
// local durable queue instead, fsynced before Publish returns, and Publish
// reports Result.Spooled. A drainer publishes spooled events in spool order
// once the broker answers again. While the broker is considered down every
// event goes straight to the spool; while events of a key wait in the
// spool, later events of that key are spooled behind them, so key order
// holds. Spooled events keep their ce_id, so a consumer deduplicating by
// event id (package dedupe) drops the duplicate a crash in the middle of a
// drain can cause. See docs/producer.md.
package producer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/claimcheck"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/msgtrace"
	"github.com/spoolmq/spool/storage"
)

// Producer publishes events. It is safe for concurrent use.
type Producer struct {
	cl         *kgo.Client
	own        bool
	source     string
	propagator propagation.TextMapPropagator
	tracer     trace.Tracer        // nil: no spans
	claims     *claimcheck.Checker // nil: payloads go inline whatever their size
	log        *slog.Logger

	spoolOn       bool
	spoolDir      string
	spoolMax      int64
	spoolDeadline time.Duration
	spoolHooks    SpoolHooks
	spoolFS       storage.FS      // nil: the OS file system
	drainGate     <-chan struct{} // tests: the drainer takes one value before each delivery

	sp          *spool      // nil: no fallback spool
	dcl         *kgo.Client // the drainer's client (see drain)
	drainCancel context.CancelFunc
	drainDone   chan struct{}
	closeOnce   sync.Once
}

// Result is what became of a published event.
type Result struct {
	// Record is the record as published: on success its Partition and
	// Offset say where it was written. For a spooled event they are -1.
	*kgo.Record
	// Spooled reports that the broker did not take the event in time and
	// it is in the fallback spool (durable on local disk), to be published
	// by the drainer. Only with WithSpool.
	Spooled bool
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

// WithClaimCheck offloads payloads larger than c's threshold to its blob
// store before publishing (package claimcheck), overriding the default of
// publishing every payload inline: the event is updated, its Data emptied
// and the spool_claim_* reference headers set. Consumers resolve them with
// agent.WithClaimCheck on the same store. The upload happens in Publish
// and PublishAsync, before the record is produced or spooled.
func WithClaimCheck(c *claimcheck.Checker) Option {
	return func(p *Producer, _ *[]kgo.Opt) { p.claims = c }
}

// WithLogger sets the logger (spool and drain events), overriding the
// default that discards.
func WithLogger(l *slog.Logger) Option {
	return func(p *Producer, _ *[]kgo.Opt) { p.log = l }
}

// WithSpool turns on the fallback spool in dir (created if needed; one
// producer at a time per directory) holding at most maxBytes on disk,
// overriding the default of no spool: an event the broker does not take
// within the spool deadline (WithSpoolDeadline) is spooled instead, and
// Publish then fails only if the spool is full (ErrSpoolFull) or its disk
// fails. Events already in dir from an earlier run are drained when the
// producer starts. Only New applies it.
func WithSpool(dir string, maxBytes int64) Option {
	return func(p *Producer, _ *[]kgo.Opt) { p.spoolOn, p.spoolDir, p.spoolMax = true, dir, maxBytes }
}

// WithSpoolHooks sets the hooks that receive the spool's events,
// overriding the default no-op hooks (see producer/producerprom).
func WithSpoolHooks(h SpoolHooks) Option {
	return func(p *Producer, _ *[]kgo.Opt) { p.spoolHooks = h }
}

// WithSpoolDeadline sets how long an event may wait for the broker before
// it is spooled, overriding the default 5s. It is the client's record
// delivery timeout (kgo.RecordDeliveryTimeout), so it is at least 1s; a
// caller's context that ends sooner fails the publish instead of spooling
// it.
func WithSpoolDeadline(d time.Duration) Option {
	return func(p *Producer, _ *[]kgo.Opt) { p.spoolDeadline = d }
}

// New returns a Producer with its own client; Close closes it.
func New(opts ...Option) (*Producer, error) {
	p := &Producer{propagator: propagation.TraceContext{}, own: true, spoolDeadline: 5 * time.Second}
	var user []kgo.Opt
	for _, o := range opts {
		o(p, &user)
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.spoolHooks == nil {
		p.spoolHooks = NopSpoolHooks{}
	}
	kopts := []kgo.Opt{
		kgo.SeedBrokers("127.0.0.1:9092"),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	}
	if p.spoolOn && p.spoolDeadline < time.Second {
		return nil, fmt.Errorf("producer: spool deadline %v is below 1s, the client's shortest record delivery timeout", p.spoolDeadline)
	}
	if !p.spoolOn {
		cl, err := kgo.NewClient(append(kopts, user...)...)
		if err != nil {
			return nil, fmt.Errorf("producer: new client: %w", err)
		}
		p.cl = cl
		return p, nil
	}
	// The publish client gives up on a record after the spool deadline. The
	// drainer has a client of its own without that timeout: kgo measures
	// it from the record's timestamp, and a spooled event keeps the time
	// it was published at, so it would time out before it was sent.
	cl, err := kgo.NewClient(append(append(kopts, kgo.RecordDeliveryTimeout(p.spoolDeadline)), user...)...)
	if err != nil {
		return nil, fmt.Errorf("producer: new client: %w", err)
	}
	dcl, err := kgo.NewClient(append(append(kopts, user...), kgo.RecordDeliveryTimeout(0))...)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("producer: new drain client: %w", err)
	}
	fsys := p.spoolFS
	if fsys == nil {
		fsys = storage.OSFS{}
	}
	sp, err := openSpool(p.spoolDir, p.spoolMax, fsys, p.log)
	if err != nil {
		cl.Close()
		dcl.Close()
		return nil, err
	}
	p.cl, p.dcl, p.sp = cl, dcl, sp
	ctx, cancel := context.WithCancel(context.Background())
	p.drainCancel, p.drainDone = cancel, make(chan struct{})
	go p.drain(ctx)
	return p, nil
}

// NewFromClient returns a Producer publishing through cl, which the caller
// keeps owning (Close does not close it). Only WithSource, WithPropagator,
// WithTracerProvider and WithLogger apply.
func NewFromClient(cl *kgo.Client, opts ...Option) *Producer {
	p := &Producer{cl: cl, propagator: propagation.TraceContext{}}
	var ignored []kgo.Opt
	for _, o := range opts {
		o(p, &ignored)
	}
	p.spoolOn = false // WithSpool needs New: opening the spool can fail
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p
}

// Client returns the underlying franz-go client.
func (p *Producer) Client() *kgo.Client { return p.cl }

// Close stops the drainer (what it has not delivered stays in the spool for
// the next start), closes the client if the producer owns it, then the
// spool. It flushes nothing and is idempotent.
func (p *Producer) Close() {
	p.closeOnce.Do(func() {
		if p.sp != nil {
			p.drainCancel()
			<-p.drainDone
		}
		if p.own {
			p.cl.Close()
		}
		if p.sp != nil {
			p.dcl.Close()
			if err := p.sp.close(); err != nil {
				p.log.Error("producer: close spool", "err", err)
			}
		}
	})
}

// Flush waits until every record published so far is acknowledged, failed
// or spooled; it does not wait for the spool to drain (see WaitSpoolEmpty).
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

// Publish publishes ev to topic and waits for the broker's acknowledgement
// (or, with WithSpool, for the event to be durable in the spool: see
// Result.Spooled). ev is updated as described at Prepare.
func (p *Producer) Publish(ctx context.Context, topic string, ev *event.Event) (res Result, err error) {
	ctx, span := p.begin(ctx, topic, ev)
	if span != nil {
		defer func() { endSend(span, res, err) }()
	}
	if err := p.offload(ctx, topic, ev); err != nil {
		return Result{}, err
	}
	r, err := ev.Record(topic)
	if err != nil {
		return Result{}, fmt.Errorf("producer: publish to %s: %w", topic, err)
	}
	if p.sp != nil {
		return p.publishSync(ctx, r, ev.Type, ev.ID)
	}
	if err := p.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		return Result{}, fmt.Errorf("producer: publish %s %s to %s: %w", ev.Type, ev.ID, topic, err)
	}
	return Result{Record: r}, nil
}

// PublishAsync publishes ev to topic without waiting; done (which may be nil)
// is called once with the result or the error. Events published
// asynchronously with one key keep their order (with WithSpool too: see
// docs/producer.md for the one exception).
func (p *Producer) PublishAsync(ctx context.Context, topic string, ev *event.Event, done func(Result, error)) {
	if done == nil {
		done = func(Result, error) {}
	}
	ctx, span := p.begin(ctx, topic, ev)
	if span != nil {
		userDone := done
		done = func(res Result, err error) {
			endSend(span, res, err)
			userDone(res, err)
		}
	}
	if err := p.offload(ctx, topic, ev); err != nil {
		done(Result{}, err)
		return
	}
	r, err := ev.Record(topic)
	if err != nil {
		done(Result{}, fmt.Errorf("producer: publish to %s: %w", topic, err))
		return
	}
	if p.sp != nil {
		p.publishSpooling(ctx, r, ev.Type, ev.ID, done)
		return
	}
	typ, id := ev.Type, ev.ID
	p.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
		if err != nil {
			done(Result{}, fmt.Errorf("producer: publish %s %s to %s: %w", typ, id, topic, err))
			return
		}
		done(Result{Record: r}, nil)
	})
}

// endSend ends a send span; a spooled event has no partition or offset yet,
// the span says it was spooled instead.
func endSend(span trace.Span, res Result, err error) {
	if res.Spooled {
		span.AddEvent("spooled")
		msgtrace.EndSend(span, nil, err)
		return
	}
	msgtrace.EndSend(span, res.Record, err)
}

// offload applies the claim check, if any, to ev.
func (p *Producer) offload(ctx context.Context, topic string, ev *event.Event) error {
	if p.claims == nil {
		return nil
	}
	if err := ev.Validate(); err != nil { // nothing uploaded for an event that cannot be published
		return fmt.Errorf("producer: publish to %s: %w", topic, err)
	}
	if _, err := p.claims.Offload(ctx, ev); err != nil {
		return fmt.Errorf("producer: publish %s %s to %s: %w", ev.Type, ev.ID, topic, err)
	}
	return nil
}
