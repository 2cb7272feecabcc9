package agent

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome is what became of one handler attempt or one event.
type Outcome int

// The outcomes reported to Hooks.Outcome.
const (
	OutcomeSucceeded    Outcome = iota // handler returned nil
	OutcomeWarned                      // handler returned Warn; the event is done
	OutcomeRetried                     // a retry was scheduled
	OutcomeDeadLettered                // published to the dead-letter topic; the event is done
	OutcomeSkipped                     // no handler for the type; the event is done
	OutcomeKilled                      // handler returned Kill
	OutcomeHalted                      // attempts exhausted under OnExhaustedHalt
	OutcomeDeferred                    // moved to the retry topic behind an earlier event of its key (WithRetryTopic)
)

var outcomeNames = [...]string{"succeeded", "warned", "retried", "dead_lettered", "skipped", "killed", "halted", "deferred"}

func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Hooks receives the agent's events for metrics. Methods are called from
// handler goroutines concurrently and must be fast. Embed NopHooks to
// implement only some.
type Hooks interface {
	// HandlerStarted is called before each handler call.
	HandlerStarted(m *Message)
	// HandlerDone is called after each handler call with its duration and
	// its (possibly flagged) error.
	HandlerDone(m *Message, d time.Duration, err error)
	// Outcome is called once per outcome: once per scheduled retry, once
	// when an event is done (succeeded, warned, dead-lettered, skipped), and
	// on kill or halt.
	Outcome(m *Message, o Outcome, err error)
}

// NopHooks implements Hooks with no-ops.
type NopHooks struct{}

func (NopHooks) HandlerStarted(*Message)                    {}
func (NopHooks) HandlerDone(*Message, time.Duration, error) {}
func (NopHooks) Outcome(*Message, Outcome, error)           {}

// Stats are the agent's counters since New.
type Stats struct {
	Succeeded    int64
	Warned       int64
	Retried      int64
	DeadLettered int64
	Skipped      int64
	Killed       int64
	Halted       int64
	Deferred     int64 // moved to the retry topic behind their key (WithRetryTopic)
	InFlight     int64 // handlers running now
}

type counters struct {
	outcomes [len(outcomeNames)]atomic.Int64
	inFlight atomic.Int64
}

func (c *counters) stats() Stats {
	return Stats{
		Succeeded:    c.outcomes[OutcomeSucceeded].Load(),
		Warned:       c.outcomes[OutcomeWarned].Load(),
		Retried:      c.outcomes[OutcomeRetried].Load(),
		DeadLettered: c.outcomes[OutcomeDeadLettered].Load(),
		Skipped:      c.outcomes[OutcomeSkipped].Load(),
		Killed:       c.outcomes[OutcomeKilled].Load(),
		Halted:       c.outcomes[OutcomeHalted].Load(),
		Deferred:     c.outcomes[OutcomeDeferred].Load(),
		InFlight:     c.inFlight.Load(),
	}
}

// PrometheusHooks are Hooks that maintain Prometheus collectors:
//
//	spool_agent_events_total{group,topic,outcome}      counter
//	spool_agent_handler_seconds{group,topic,type}      histogram
//	spool_agent_in_flight{group}                       gauge
type PrometheusHooks struct {
	outcomes *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
}

// NewPrometheusHooks creates the collectors and registers them with reg.
func NewPrometheusHooks(reg prometheus.Registerer) (*PrometheusHooks, error) {
	h := &PrometheusHooks{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_agent_events_total",
			Help: "Events by outcome: succeeded, warned, retried (per retry), dead_lettered, skipped, killed, halted, deferred (moved behind its key to the retry topic).",
		}, []string{"group", "topic", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "spool_agent_handler_seconds",
			Help:    "Handler call duration.",
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

// HandlerStarted implements Hooks.
func (h *PrometheusHooks) HandlerStarted(m *Message) { h.inFlight.WithLabelValues(m.Group).Inc() }

// HandlerDone implements Hooks.
func (h *PrometheusHooks) HandlerDone(m *Message, d time.Duration, _ error) {
	h.inFlight.WithLabelValues(m.Group).Dec()
	h.latency.WithLabelValues(m.Group, m.Record.Topic, m.Type).Observe(d.Seconds())
}

// Outcome implements Hooks.
func (h *PrometheusHooks) Outcome(m *Message, o Outcome, _ error) {
	h.outcomes.WithLabelValues(m.Group, m.Record.Topic, o.String()).Inc()
}
