// Package outboxprom exports an outbox relay's hooks as Prometheus metrics.
//
//	m := outboxprom.New()
//	prometheus.MustRegister(m)
//	relay, _ := outbox.New(outbox.Config{..., Hooks: m})
//
// Metrics (label topic unless said otherwise):
//
//	spool_outbox_published_total                rows acknowledged by the broker
//	spool_outbox_publish_latency_seconds        histogram: Add to broker acknowledgement
//	spool_outbox_errors_total{topic,kind}       row failures: kind="retry" (retried) or "rejected" (its key stopped)
//	spool_outbox_pending                        rows not yet published (rejected included)
//	spool_outbox_rejected                       rows rejected for good, waiting for requeue or discard
//	spool_outbox_oldest_pending_age_seconds     age of the oldest unpublished row
//	spool_outbox_leased_buckets                 buckets this relay holds (no labels)
//
// The backlog gauges describe the whole outbox table: with several relays,
// each reports the same values, so aggregate them with max, not sum.
package outboxprom

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoolmq/spool/outbox"
)

// Metrics implements outbox.Hooks and prometheus.Collector.
type Metrics struct {
	published *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	errors    *prometheus.CounterVec
	pending   *prometheus.GaugeVec
	rejected  *prometheus.GaugeVec
	oldest    *prometheus.GaugeVec
	leased    prometheus.Gauge
}

var _ outbox.Hooks = (*Metrics)(nil)

// New returns the relay metrics; register them with a prometheus.Registerer
// and pass them as outbox.Config.Hooks.
func New() *Metrics {
	return &Metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_outbox_published_total", Help: "Outbox rows acknowledged by the broker.",
		}, []string{"topic"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "spool_outbox_publish_latency_seconds", Help: "Time from outbox.Add to the broker's acknowledgement.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"topic"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_outbox_errors_total", Help: "Outbox row publish failures, by kind: retry or rejected.",
		}, []string{"topic", "kind"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spool_outbox_pending", Help: "Outbox rows not yet published (rejected ones included).",
		}, []string{"topic"}),
		rejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spool_outbox_rejected", Help: "Outbox rows rejected for good; each stops its key.",
		}, []string{"topic"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spool_outbox_oldest_pending_age_seconds", Help: "Age of the oldest unpublished outbox row.",
		}, []string{"topic"}),
		leased: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spool_outbox_leased_buckets", Help: "Outbox buckets this relay holds.",
		}),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.published, m.latency, m.errors, m.pending, m.rejected, m.oldest, m.leased}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// Published implements outbox.Hooks.
func (m *Metrics) Published(topic string, d time.Duration) {
	m.published.WithLabelValues(topic).Inc()
	m.latency.WithLabelValues(topic).Observe(d.Seconds())
}

// Failed implements outbox.Hooks.
func (m *Metrics) Failed(topic string, _ error, rejected bool) {
	kind := "retry"
	if rejected {
		kind = "rejected"
	}
	m.errors.WithLabelValues(topic, kind).Inc()
}

// Backlog implements outbox.Hooks.
func (m *Metrics) Backlog(topic string, pending, rejected int64, oldest time.Duration) {
	m.pending.WithLabelValues(topic).Set(float64(pending))
	m.rejected.WithLabelValues(topic).Set(float64(rejected))
	m.oldest.WithLabelValues(topic).Set(oldest.Seconds())
}

// Leased implements outbox.Hooks.
func (m *Metrics) Leased(n int) { m.leased.Set(float64(n)) }

// PublishedCounter returns the published counter of topic (for tests and
// dashboards built in code).
func (m *Metrics) PublishedCounter(topic string) prometheus.Counter {
	return m.published.WithLabelValues(topic)
}

// ErrorsCounter returns the error counter of topic and kind ("retry" or
// "rejected").
func (m *Metrics) ErrorsCounter(topic, kind string) prometheus.Counter {
	return m.errors.WithLabelValues(topic, kind)
}

// PendingGauge returns the pending gauge of topic.
func (m *Metrics) PendingGauge(topic string) prometheus.Gauge {
	return m.pending.WithLabelValues(topic)
}

// LeasedGauge returns the leased-buckets gauge.
func (m *Metrics) LeasedGauge() prometheus.Gauge { return m.leased }
