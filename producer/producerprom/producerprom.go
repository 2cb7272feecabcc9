// Package producerprom exports a producer's fallback spool as Prometheus
// metrics. It is a package of its own so that the producer does not pull
// client_golang into every build that uses it:
//
//	spool_producer_spooled_total{topic}                   counter  events written to the spool
//	spool_producer_spool_delivered_total                  counter  spooled events the broker acknowledged
//	spool_producer_spool_refused_total{topic,reason}      counter  events that could not be spooled (reason full or error)
//	spool_producer_spool_mode                             gauge    1 while every event goes to the spool (broker down)
//	spool_producer_spool_events                           gauge    events in the spool now (Observe)
//	spool_producer_spool_bytes                            gauge    bytes of the spool on disk (Observe)
//
//	h, err := producerprom.New(prometheus.DefaultRegisterer)
//	p, err := producer.New(producer.WithSpool(dir, max), producer.WithSpoolHooks(h))
//	err = producerprom.Observe(prometheus.DefaultRegisterer, p)
package producerprom

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoolmq/spool/producer"
)

// Hooks are producer.SpoolHooks that maintain the collectors. Pass them
// with producer.WithSpoolHooks.
type Hooks struct {
	spooled   *prometheus.CounterVec
	delivered prometheus.Counter
	refused   *prometheus.CounterVec
	mode      prometheus.Gauge
}

var _ producer.SpoolHooks = (*Hooks)(nil)

// New creates the collectors and registers them with reg.
func New(reg prometheus.Registerer) (*Hooks, error) {
	h := &Hooks{
		spooled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_producer_spooled_total",
			Help: "Events written to the fallback spool because the broker did not take them in time (or their key had events spooled).",
		}, []string{"topic"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spool_producer_spool_delivered_total",
			Help: "Spooled events the broker acknowledged.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_producer_spool_refused_total",
			Help: "Events that should have been spooled and were not: reason full (maximum size reached) or error (disk); their publish failed.",
		}, []string{"topic", "reason"}),
		mode: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spool_producer_spool_mode",
			Help: "1 while the broker is considered down and every event goes to the spool.",
		}),
	}
	for _, c := range []prometheus.Collector{h.spooled, h.delivered, h.refused, h.mode} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Spooled implements producer.SpoolHooks.
func (h *Hooks) Spooled(topic string) { h.spooled.WithLabelValues(topic).Inc() }

// Delivered implements producer.SpoolHooks.
func (h *Hooks) Delivered(n int) { h.delivered.Add(float64(n)) }

// Refused implements producer.SpoolHooks.
func (h *Hooks) Refused(topic string, err error) {
	reason := "error"
	if errors.Is(err, producer.ErrSpoolFull) {
		reason = "full"
	}
	h.refused.WithLabelValues(topic, reason).Inc()
}

// ModeChanged implements producer.SpoolHooks.
func (h *Hooks) ModeChanged(spooling bool) {
	if spooling {
		h.mode.Set(1)
	} else {
		h.mode.Set(0)
	}
}

// Observe registers gauges of p's spool size, read from p.SpoolStats at
// each scrape.
func Observe(reg prometheus.Registerer, p *producer.Producer) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "spool_producer_spool_events",
			Help: "Events in the fallback spool, not yet acknowledged by the broker.",
		}, func() float64 { return float64(p.SpoolStats().Records) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "spool_producer_spool_bytes",
			Help: "Bytes of the fallback spool on disk.",
		}, func() float64 { return float64(p.SpoolStats().Bytes) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
