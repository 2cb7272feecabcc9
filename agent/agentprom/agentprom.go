// Package agentprom exports an agent's events as Prometheus metrics. It is
// a package of its own so that the agent does not pull client_golang into
// every build that uses it:
//
//	spool_agent_events_total{group,topic,outcome}      counter
//	spool_agent_handler_seconds{group,topic,type}      histogram
//	spool_agent_in_flight{group}                       gauge
//
// Event types come from producers, so the type label is bounded: past
// MaxTypes distinct values per agent, further types are counted as "other"
// (one misbehaving producer must not create unbounded series).
package agentprom

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoolmq/spool/agent"
)

// MaxTypes is how many distinct event types get a label value of their own.
const MaxTypes = 200

// OtherType is the label value of event types past MaxTypes.
const OtherType = "other"

// Hooks are agent.Hooks that maintain the collectors. Pass them with
// agent.WithHooks.
type Hooks struct {
	outcomes *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec

	types sync.Map // event type -> struct{}: the ones with a label of their own
	mu    struct {
		sync.Mutex
		n int
	}
}

var _ agent.Hooks = (*Hooks)(nil)

// New creates the collectors and registers them with reg.
func New(reg prometheus.Registerer) (*Hooks, error) {
	h := &Hooks{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_agent_events_total",
			Help: "Events by outcome: succeeded, warned, retried (per retry), dead_lettered, skipped, killed, halted, deferred (moved behind its key to the retry topic).",
		}, []string{"group", "topic", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "spool_agent_handler_seconds",
			Help:    "Handler call duration, by event type (at most 200 types, then \"other\").",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"group", "topic", "type"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spool_agent_in_flight",
			Help: "Handlers running now.",
		}, []string{"group"}),
	}
	for _, c := range []prometheus.Collector{h.outcomes, h.latency, h.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// HandlerStarted implements agent.Hooks.
func (h *Hooks) HandlerStarted(m *agent.Message) { h.inFlight.WithLabelValues(m.Group).Inc() }

// HandlerDone implements agent.Hooks.
func (h *Hooks) HandlerDone(m *agent.Message, d time.Duration, _ error) {
	h.inFlight.WithLabelValues(m.Group).Dec()
	h.latency.WithLabelValues(m.Group, m.Record.Topic, h.typeLabel(m.Type)).Observe(d.Seconds())
}

// Outcome implements agent.Hooks.
func (h *Hooks) Outcome(m *agent.Message, o agent.Outcome, _ error) {
	h.outcomes.WithLabelValues(m.Group, m.Record.Topic, o.String()).Inc()
}

// typeLabel returns t while fewer than MaxTypes types have been seen (or t
// is one of them), OtherType after.
func (h *Hooks) typeLabel(t string) string {
	if _, ok := h.types.Load(t); ok {
		return t
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.types.Load(t); ok {
		return t
	}
	if h.mu.n >= MaxTypes {
		return OtherType
	}
	h.mu.n++
	h.types.Store(t, struct{}{})
	return t
}
