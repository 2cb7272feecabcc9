package broker

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the broker's Prometheus collectors, all named spool_broker_*.
type metrics struct {
	authFailed   *prometheus.CounterVec // by mechanism (and "tls")
	authzRefused *prometheus.CounterVec // by api_key
	connections  prometheus.Gauge
	refused      prometheus.Counter
	queuedBytes  prometheus.Gauge
	inFlight     prometheus.Gauge
	bytesIn      prometheus.Counter
	bytesOut     prometheus.Counter
	panics       prometheus.Counter
	requests     *prometheus.CounterVec   // by api_key
	failures     *prometheus.CounterVec   // by api_key: handler errors that closed the connection
	latency      *prometheus.HistogramVec // by api_key
	produced     prometheus.Counter       // records appended
	fsync        prometheus.Histogram     // storage's fsyncs of active segments
	fsyncErrors  prometheus.Counter

	// Where a produce request's time goes (acks != 0), by phase.
	producePhase *prometheus.HistogramVec
	slowProduce  prometheus.Counter
	slowPhase    *prometheus.CounterVec // seconds spent in each phase by the slow requests
	phaseObs     [numPhases]prometheus.Observer
	slowObs      [numPhases]prometheus.Counter
}

// The phases of a produce request (spool_broker_produce_phase_seconds):
// write (handler: checks and every batch written), in_order (written, waiting
// for the connection's earlier responses to go out: its fsync runs
// meanwhile), durable (its turn came, waiting for the rest of its fsync).
const (
	phaseWrite = iota
	phaseInOrder
	phaseDurable
	numPhases
)

var phaseNames = [numPhases]string{"write", "in_order", "durable"}

// slowProduceThreshold: produce requests that took longer in total are
// counted, with their time per phase, in spool_broker_produce_slow_*.
const slowProduceThreshold = 5 * time.Millisecond

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		authFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spool_broker_authentication_failures_total",
			Help: "Failed authentications, by mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, tls for failed TLS handshakes)."}, []string{"mechanism"}),
		authzRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spool_broker_authorization_failures_total",
			Help: "Operations refused by the ACLs, by API key."}, []string{"api_key"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spool_broker_connections", Help: "Open client connections."}),
		refused:     prometheus.NewCounter(prometheus.CounterOpts{Name: "spool_broker_connections_refused_total", Help: "Connections closed on accept: over the total or per-IP connection limit."}),
		queuedBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spool_broker_queued_request_bytes", Help: "Bytes of request frames read (or being read) but not yet answered, bounded by --queued-max-request-bytes."}),
		inFlight:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "spool_broker_requests_in_flight", Help: "Requests being handled (including long polls)."}),
		bytesIn:     prometheus.NewCounter(prometheus.CounterOpts{Name: "spool_broker_request_bytes_total", Help: "Bytes of request frames read."}),
		bytesOut:    prometheus.NewCounter(prometheus.CounterOpts{Name: "spool_broker_response_bytes_total", Help: "Bytes of response frames written."}),
		panics:      prometheus.NewCounter(prometheus.CounterOpts{Name: "spool_broker_request_panics_total", Help: "Requests whose handler panicked (the connection was closed)."}),
		requests:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spool_broker_requests_total", Help: "Requests handled, by API key."}, []string{"api_key"}),
		failures:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spool_broker_request_failures_total", Help: "Requests that closed their connection, by API key."}, []string{"api_key"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "spool_broker_request_seconds",
			Help:    "Time to handle a request (including fsync and long-poll waits), by API key.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"api_key"}),
		produced: prometheus.NewCounter(prometheus.CounterOpts{Name: "spool_broker_produced_records_total", Help: "Records appended by Produce."}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "spool_storage_fsync_seconds",
			Help:    "Duration of each fsync storage makes for durability (with --fsync always: a commit log round, a partition group commit, or a checkpoint fsync).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
		}),
		fsyncErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "spool_storage_fsync_errors_total", Help: "Failed fsyncs (the partition stops accepting appends until restart)."}),
		producePhase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "spool_broker_produce_phase_seconds",
			Help:    "Time of a produce request in each phase: write (every batch written), in_order (waiting for the connection's earlier responses), durable (then waiting for its fsync).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
		}, []string{"phase"}),
		slowProduce: prometheus.NewCounter(prometheus.CounterOpts{Name: "spool_broker_produce_slow_requests_total", Help: "Produce requests that took longer than 5 ms from being read to being answered."}),
		slowPhase:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spool_broker_produce_slow_phase_seconds_total", Help: "Seconds the produce requests slower than 5 ms spent in each phase (write, in_order, durable)."}, []string{"phase"}),
	}
	for i, name := range phaseNames {
		m.phaseObs[i] = m.producePhase.WithLabelValues(name)
		m.slowObs[i] = m.slowPhase.WithLabelValues(name)
	}
	if reg != nil {
		reg.MustRegister(m.authFailed, m.authzRefused, m.connections, m.refused, m.queuedBytes, m.inFlight, m.bytesIn, m.bytesOut, m.panics, m.requests, m.failures, m.latency, m.produced,
			m.fsync, m.fsyncErrors, m.producePhase, m.slowProduce, m.slowPhase)
	}
	return m
}

var apiKeyLabels = func() [128]string {
	var l [128]string
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

// observeFsync is storage's OnFsync hook.
func (m *metrics) observeFsync(d time.Duration, err error) {
	m.fsync.Observe(d.Seconds())
	if err != nil {
		m.fsyncErrors.Inc()
	}
}

// apiLabel is the api_key label value of key.
func apiLabel(key int16) string {
	if key >= 0 && int(key) < len(apiKeyLabels) {
		return apiKeyLabels[key]
	}
	return "other"
}

func (m *metrics) observe(key int16, d time.Duration, err error) {
	label := apiLabel(key)
	m.requests.WithLabelValues(label).Inc()
	m.latency.WithLabelValues(label).Observe(d.Seconds())
	if err != nil {
		m.failures.WithLabelValues(label).Inc()
	}
}

// observeProduce records one answered produce request's phases.
func (m *metrics) observeProduce(phases [numPhases]time.Duration) {
	var total time.Duration
	for i, d := range phases {
		m.phaseObs[i].Observe(d.Seconds())
		total += d
	}
	if total > slowProduceThreshold {
		m.slowProduce.Inc()
		for i, d := range phases {
			m.slowObs[i].Add(d.Seconds())
		}
	}
}
