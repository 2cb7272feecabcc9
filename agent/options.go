package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"

	"github.com/spoolmq/spool/claimcheck"
	"go.opentelemetry.io/otel/trace"
)

// Handler handles one event. Its error is the verdict (see Verdict).
type Handler func(ctx context.Context, m *Message) error

// Exhausted is the policy when an event has used all its attempts.
type Exhausted int

// The exhaustion policies.
const (
	// OnExhaustedDeadLetter publishes the event to the dead-letter topic
	// and moves on (the default).
	OnExhaustedDeadLetter Exhausted = iota
	// OnExhaustedHalt stops the agent like Kill; Run returns an error
	// wrapping ErrRetriesExhausted.
	OnExhaustedHalt
)

// Option configures an Agent.
type Option func(*config)

type config struct {
	kopts           []kgo.Opt
	handlers        map[string]Handler
	defaultHandler  Handler
	concurrency     int
	window          int
	maxAttempts     int
	backoffBase     time.Duration
	backoffMax      time.Duration
	exhausted       Exhausted
	dlqTopic        func(topic string) string
	retryMinDelay   time.Duration                    // 0: retries in memory only
	retryTopic      func(topic, group string) string // names retry topics
	now             func() time.Time                 // the clock for retry topics' not-before times
	commitInterval  time.Duration
	revokeTimeout   time.Duration
	shutdownTimeout time.Duration
	log             *slog.Logger
	hooks           Hooks
	propagator      propagation.TextMapPropagator
	claims          *claimcheck.Checker // nil: claim check references are handed over as they are
	tracerProvider  trace.TracerProvider
	receiptsTopic   string // "": no receipts
	replay          bool   // also consume the group's replay topic
	correlationKey  bool   // keyless events are ordered by correlation_id (WithCorrelationOrder)
}

func defaults() config {
	return config{
		kopts:           []kgo.Opt{kgo.SeedBrokers("127.0.0.1:9092")},
		handlers:        map[string]Handler{},
		concurrency:     16,
		window:          1024,
		maxAttempts:     5,
		backoffBase:     200 * time.Millisecond,
		backoffMax:      30 * time.Second,
		dlqTopic:        func(t string) string { return t + ".dlq" },
		retryTopic:      func(t, g string) string { return t + "." + g + ".retry" },
		now:             time.Now,
		commitInterval:  time.Second,
		revokeTimeout:   10 * time.Second,
		shutdownTimeout: 30 * time.Second,
		log:             slog.New(slog.DiscardHandler),
		hooks:           NopHooks{},
		propagator:      propagation.TraceContext{},
	}
}

// validate rejects option values that would make the agent panic or spin
// later, with an error naming the option.
func (c *config) validate() error {
	switch {
	case c.commitInterval <= 0:
		return fmt.Errorf("agent: WithCommitInterval(%v): the interval must be positive", c.commitInterval)
	case c.revokeTimeout <= 0:
		return fmt.Errorf("agent: WithRevokeTimeout(%v): the timeout must be positive", c.revokeTimeout)
	case c.shutdownTimeout <= 0:
		return fmt.Errorf("agent: WithShutdownTimeout(%v): the timeout must be positive", c.shutdownTimeout)
	case c.exhausted != OnExhaustedDeadLetter && c.exhausted != OnExhaustedHalt:
		return fmt.Errorf("agent: WithOnExhausted(%d): not a policy (OnExhaustedDeadLetter or OnExhaustedHalt)", c.exhausted)
	case c.dlqTopic == nil:
		return errors.New("agent: WithDeadLetterTopic(nil): a naming function is required")
	case c.retryTopic == nil:
		return errors.New("agent: WithRetryTopicName(nil): a naming function is required")
	case c.log == nil:
		return errors.New("agent: WithLogger(nil): pass a logger (slog.New(slog.DiscardHandler) discards)")
	case c.hooks == nil:
		return errors.New("agent: WithHooks(nil): pass NopHooks{} for none")
	case c.propagator == nil:
		return errors.New("agent: WithPropagator(nil): pass a propagator (propagation.TraceContext{} is the default)")
	}
	for typ, h := range c.handlers {
		if h == nil {
			return fmt.Errorf("agent: WithHandler(%q, nil): the handler is nil", typ)
		}
	}
	return nil
}

// WithBrokers sets the seed brokers, overriding the default 127.0.0.1:9092.
func WithBrokers(addrs ...string) Option {
	return func(c *config) { c.kopts = append(c.kopts, kgo.SeedBrokers(addrs...)) }
}

// WithClientOptions adds franz-go client options (TLS, SASL, session
// timeout, ...), overriding the default of none. Options the agent relies on
// (group, topics, manual commits, rebalance blocking, partition callbacks)
// are set after these and cannot be overridden.
func WithClientOptions(opts ...kgo.Opt) Option {
	return func(c *config) { c.kopts = append(c.kopts, opts...) }
}

// WithHandler handles events whose ce_type is typ with h, overriding the
// default of skipping them. The type is read from the record's headers; the
// payload is not decoded.
func WithHandler(typ string, h Handler) Option {
	return func(c *config) { c.handlers[typ] = h }
}

// WithDefaultHandler handles events of types without a handler (including
// records with no ce_type), overriding the default of skipping and counting
// them.
func WithDefaultHandler(h Handler) Option {
	return func(c *config) { c.defaultHandler = h }
}

// WithCorrelationOrder orders events without a key by their correlation_id
// header, overriding the default of one order for all the keyless events
// of a partition: keyless events with the same correlation id are handled
// one at a time in offset order, those with different ids concurrently (up
// to WithConcurrency). Keyless events without a correlation id keep the
// default. The HTTP gateway gives each command its request id as
// correlation id, so a service with this option handles keyless commands
// concurrently instead of one at a time per partition.
func WithCorrelationOrder() Option { return func(c *config) { c.correlationKey = true } }

// WithConcurrency sets how many handlers may run at once across keys,
// overriding the default 16. Events of one key are always handled one at a
// time in offset order, whatever n is.
func WithConcurrency(n int) Option { return func(c *config) { c.concurrency = n } }

// WithWindow sets how many fetched but unfinished records a partition may
// hold before its fetching pauses, overriding the default 1024.
func WithWindow(n int) Option { return func(c *config) { c.window = n } }

// WithMaxAttempts sets how many times a failing event is handled before the
// exhaustion policy applies, overriding the default 5 (the first call plus
// four retries).
func WithMaxAttempts(n int) Option { return func(c *config) { c.maxAttempts = n } }

// WithBackoff sets the retry backoff, overriding the default 200ms doubling
// per attempt up to 30s. The delay before retry n is base*2^(n-1), capped at
// max, with jitter: a uniformly random value in [d/2, d].
func WithBackoff(base, max time.Duration) Option {
	return func(c *config) { c.backoffBase, c.backoffMax = base, max }
}

// WithOnExhausted sets the exhaustion policy, overriding the default
// OnExhaustedDeadLetter.
func WithOnExhausted(p Exhausted) Option { return func(c *config) { c.exhausted = p } }

// WithDeadLetterTopic sets how the dead-letter topic is named from the
// event's topic, overriding the default "<topic>.dlq".
func WithDeadLetterTopic(name func(topic string) string) Option {
	return func(c *config) { c.dlqTopic = name }
}

// WithRetryTopic makes retries durable, overriding the default of holding
// every retry in memory: an event whose retry delay (the backoff, or the
// RetryAfter duration) is at least minDelay is parked in its topic's retry
// topic ("<topic>.<group>.retry", created with as many partitions as the
// topic) and handled from there when the delay has passed, so its partition
// keeps moving and its commit passes it. Later events of the same key follow
// it through the retry topic, so key order holds. The agent then uses an
// eager balancer that gives partition p of a topic and of its retry topic to
// the same member ("spool-paired-range"): every member of the group must
// use WithRetryTopic. The topics must exist when Run starts. See
// docs/consumer.md for the guarantees and limits.
func WithRetryTopic(minDelay time.Duration) Option {
	return func(c *config) { c.retryMinDelay = max(minDelay, time.Nanosecond) }
}

// WithRetryTopicName sets how retry topics are named from the topic and the
// consumer group, overriding the default "<topic>.<group>.retry". Each group
// needs its own: a retry topic's records belong to one group.
func WithRetryTopicName(name func(topic, group string) string) Option {
	return func(c *config) { c.retryTopic = name }
}

// WithCommitInterval sets how often finished offsets are committed,
// overriding the default 1s. Commits also happen on revocation and shutdown.
func WithCommitInterval(d time.Duration) Option { return func(c *config) { c.commitInterval = d } }

// WithRevokeTimeout bounds how long a revocation waits for in-flight
// handlers of the revoked partitions, overriding the default 10s. It must be
// below the group's rebalance timeout.
func WithRevokeTimeout(d time.Duration) Option { return func(c *config) { c.revokeTimeout = d } }

// WithShutdownTimeout bounds how long shutdown (context cancelled, Kill,
// halt) waits for in-flight handlers before cancelling their context,
// overriding the default 30s.
func WithShutdownTimeout(d time.Duration) Option {
	return func(c *config) { c.shutdownTimeout = d }
}

// WithLogger sets the logger, overriding the default that discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithHooks sets the metrics hooks, overriding the default no-op hooks.
func WithHooks(h Hooks) Option { return func(c *config) { c.hooks = h } }

// WithTracerProvider makes the agent start an OpenTelemetry span for each
// handler call, overriding the default of no spans: "process {topic}" of
// kind consumer, a child of (and linked to) the producer's span carried in
// the event's traceparent, with the messaging semantic-convention
// attributes (messaging.system=kafka, destination, partition, offset, key,
// consumer group, message id, conversation id = correlation id), the
// attempt number and the verdict (spool.verdict). The handler's ctx carries
// the span, so what it publishes continues the trace. Pass
// otel.GetTracerProvider() to use the global provider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tracerProvider = tp }
}

// WithPropagator sets the trace context propagator used to extract the
// traceparent of each event into the handler's context, overriding the
// default W3C trace context.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.propagator = p }
}

// WithClaimCheck resolves claim check references (package claimcheck)
// before handlers run, overriding the default of handing events over as
// fetched: an event whose payload was offloaded to c's blob store reaches
// its handler with the payload in Data and without the spool_claim_*
// headers (Message.Record stays the record as fetched). A record whose blob
// is missing or does not match its size and SHA-256 is dead-lettered with
// reason ReasonClaimMissing, without calling the handler; a store that does
// not answer is retried with backoff, holding back only that key.
func WithClaimCheck(c *claimcheck.Checker) Option { return func(cfg *config) { cfg.claims = c } }
