// Package gatewayprom exports the gateway's events as Prometheus metrics, in
// a package of its own so that the gateway does not import client_golang:
//
//	spool_gateway_http_requests_total{route,code}           counter
//	spool_gateway_http_request_duration_seconds{route}      histogram
//	spool_gateway_produced_records_total{kind}              counter (record, event, command)
//	spool_gateway_requests_finished_total{state}            counter (succeeded, failed, cancelled, expired)
//	spool_gateway_callback_attempts_total{result}           counter (pending: will retry, delivered, gone, dead)
//
// Routes are the gateway's route patterns ("/api/requests/{id}"), so the
// label is bounded.
package gatewayprom

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoolmq/spool/gateway"
)

// Hooks are gateway.Hooks that maintain the collectors; set them as
// gateway.Config.Hooks.
type Hooks struct {
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	produced  *prometheus.CounterVec
	finished  *prometheus.CounterVec
	callbacks *prometheus.CounterVec
}

var _ gateway.Hooks = (*Hooks)(nil)

// New creates the collectors and registers them with reg.
func New(reg prometheus.Registerer) (*Hooks, error) {
	h := &Hooks{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_gateway_http_requests_total",
			Help: "Gateway API requests by route pattern and status code.",
		}, []string{"route", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "spool_gateway_http_request_duration_seconds",
			Help:    "Gateway API request duration by route pattern (streams: their whole life).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"route"}),
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_gateway_produced_records_total",
			Help: "Records the broker acknowledged, by kind: record, event, command.",
		}, []string{"kind"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_gateway_requests_finished_total",
			Help: "Async requests this instance moved to a final state, by state.",
		}, []string{"state"}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_gateway_callback_attempts_total",
			Help: "Callback attempts by the callback's state after them: pending (will retry), delivered, gone (410), dead (dead-lettered).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{h.requests, h.durations, h.produced, h.finished, h.callbacks} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// HTTPDone implements gateway.Hooks.
func (h *Hooks) HTTPDone(route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	h.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	h.durations.WithLabelValues(route).Observe(d.Seconds())
}

// Produced implements gateway.Hooks.
func (h *Hooks) Produced(kind string, n int) { h.produced.WithLabelValues(kind).Add(float64(n)) }

// RequestFinished implements gateway.Hooks.
func (h *Hooks) RequestFinished(s gateway.State) { h.finished.WithLabelValues(string(s)).Inc() }

// CallbackAttempt implements gateway.Hooks.
func (h *Hooks) CallbackAttempt(state string) { h.callbacks.WithLabelValues(state).Inc() }
