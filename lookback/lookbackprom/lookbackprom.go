// Package lookbackprom exports the lookback service's events as Prometheus
// metrics, in a package of its own so that lookback does not import
// client_golang:
//
//	spool_lookback_archived_events_total             counter
//	spool_lookback_archived_bytes_total              counter (keys and values)
//	spool_lookback_append_seconds                    histogram (durable appends)
//	spool_lookback_store_errors_total                counter (failed appends, retried)
//	spool_lookback_rule_checked_total{rule}          counter (expectations settled)
//	spool_lookback_rule_violations_total{rule}       counter (expectations missed)
//	spool_lookback_rule_violations{rule}             gauge (open holes: missed, not completed since)
//
// Rule names come from the rules file, so the rule label is bounded by it.
package lookbackprom

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoolmq/spool/lookback"
)

// Hooks are lookback.Hooks that maintain the collectors. Pass them in
// lookback.Config.Hooks.
type Hooks struct {
	events, bytes, storeErrors prometheus.Counter
	appendSeconds              prometheus.Histogram
	checked, violationsTotal   *prometheus.CounterVec
	holes                      *prometheus.GaugeVec
}

var _ lookback.Hooks = (*Hooks)(nil)

// New creates the collectors and registers them with reg. Rules listed in
// rules start at zero, so alerts see the series before the first
// violation.
func New(reg prometheus.Registerer, rules []lookback.Rule) (*Hooks, error) {
	h := &Hooks{
		events:      prometheus.NewCounter(prometheus.CounterOpts{Name: "spool_lookback_archived_events_total", Help: "Events archived (durable in the store)."}),
		bytes:       prometheus.NewCounter(prometheus.CounterOpts{Name: "spool_lookback_archived_bytes_total", Help: "Key and value bytes of the events archived."}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "spool_lookback_store_errors_total", Help: "Failed store writes; ingestion waits and retries them."}),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "spool_lookback_append_seconds",
			Help: "Duration of a durable append of one polled batch.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		checked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spool_lookback_rule_checked_total",
			Help: "Rule expectations settled: met in time or missed."}, []string{"rule"}),
		violationsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spool_lookback_rule_violations_total",
			Help: "Rule expectations missed (not met within the rule's window)."}, []string{"rule"}),
		holes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spool_lookback_rule_violations",
			Help: "Open holes per rule: expectations missed and not completed since."}, []string{"rule"}),
	}
	for _, c := range []prometheus.Collector{h.events, h.bytes, h.storeErrors, h.appendSeconds, h.checked, h.violationsTotal, h.holes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range rules {
		h.checked.WithLabelValues(r.Name)
		h.violationsTotal.WithLabelValues(r.Name)
		h.holes.WithLabelValues(r.Name).Set(0)
	}
	return h, nil
}

// Archived implements lookback.Hooks.
func (h *Hooks) Archived(events, bytes int, d time.Duration) {
	h.events.Add(float64(events))
	h.bytes.Add(float64(bytes))
	h.appendSeconds.Observe(d.Seconds())
}

// StoreFailed implements lookback.Hooks.
func (h *Hooks) StoreFailed(error) { h.storeErrors.Inc() }

// RuleChecked implements lookback.Hooks.
func (h *Hooks) RuleChecked(rule string, violated bool) {
	h.checked.WithLabelValues(rule).Inc()
	if violated {
		h.violationsTotal.WithLabelValues(rule).Inc()
	}
}

// RuleHoles implements lookback.Hooks.
func (h *Hooks) RuleHoles(rule string, open int) { h.holes.WithLabelValues(rule).Set(float64(open)) }
