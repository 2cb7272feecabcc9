package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// The broker's own numbers that the Kafka protocol does not carry (how
// long its fsyncs take, how many requests it serves) come from its
// Prometheus metrics, Config.Metrics, scraped with every sample.

// The metrics the overview reads (docs/metrics.md).
const (
	metricFsync    = "spool_storage_fsync_seconds"
	metricRequests = "spool_broker_requests_total"
)

// metricsSample is what one scrape of Config.Metrics gave.
type metricsSample struct {
	Err      string      // why the scrape failed ("" when it did not)
	Fsync    *histSample // nil when the metrics have no fsync histogram
	Requests map[string]float64
}

// histSample is a cumulative histogram: Bounds[i] is a bucket's upper
// bound, Counts[i] the observations at or below it; Count is every
// observation (the +Inf bucket).
type histSample struct {
	Bounds []float64
	Counts []float64
	Count  float64
}

// scrapeMetrics serves one GET /metrics from h and parses it.
func scrapeMetrics(ctx context.Context, h http.Handler) *metricsSample {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return &metricsSample{Err: err.Error()}
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return &metricsSample{Err: fmt.Sprintf("console: metrics: %d %s", rec.Code, http.StatusText(rec.Code))}
	}
	ms, err := parseMetrics(rec.Body, expfmt.ResponseFormat(rec.Header()))
	if err != nil {
		return &metricsSample{Err: err.Error()}
	}
	return ms
}

// parseMetrics reads the fsync histogram and the request counters (by
// api_key) of a Prometheus exposition.
func parseMetrics(r io.Reader, format expfmt.Format) (*metricsSample, error) {
	ms := &metricsSample{Requests: map[string]float64{}}
	dec := expfmt.NewDecoder(r, format)
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			if errors.Is(err, io.EOF) {
				return ms, nil
			}
			return nil, fmt.Errorf("console: metrics: %w", err)
		}
		switch mf.GetName() {
		case metricFsync:
			for _, m := range mf.GetMetric() {
				if h := m.GetHistogram(); h != nil {
					ms.Fsync = histFrom(h)
					break
				}
			}
		case metricRequests:
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "api_key" {
						ms.Requests[l.GetValue()] += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
}

func histFrom(h *dto.Histogram) *histSample {
	hs := &histSample{Count: float64(h.GetSampleCount())}
	for _, b := range h.GetBucket() {
		if math.IsInf(b.GetUpperBound(), +1) {
			continue
		}
		hs.Bounds = append(hs.Bounds, b.GetUpperBound())
		hs.Counts = append(hs.Counts, float64(b.GetCumulativeCount()))
	}
	return hs
}

// quantileBetween is the q-quantile of the observations made between two
// scrapes of a histogram, interpolated within its bucket as Prometheus's
// histogram_quantile does; ok is false without observations (or when the
// buckets changed, e.g. the broker restarted).
func quantileBetween(a, b *histSample, q float64) (float64, bool) {
	if a == nil || b == nil || len(a.Bounds) != len(b.Bounds) {
		return 0, false
	}
	total := b.Count - a.Count
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	i := sort.Search(len(b.Bounds), func(i int) bool { return b.Counts[i]-a.Counts[i] >= rank })
	if i == len(b.Bounds) {
		// In the +Inf bucket: the highest finite bound is all we know.
		if len(b.Bounds) == 0 {
			return 0, false
		}
		return b.Bounds[len(b.Bounds)-1], true
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = b.Bounds[i-1], b.Counts[i-1]-a.Counts[i-1]
	}
	in := b.Counts[i] - a.Counts[i] - below
	if in <= 0 {
		return b.Bounds[i], true
	}
	return lo + (b.Bounds[i]-lo)*(rank-below)/in, true
}

// fsyncSeries is the q-quantile of the fsync latency in milliseconds,
// sample to sample.
func fsyncSeries(name string, smps []sample, q float64) Series {
	s := Series{Name: name}
	for i := 1; i < len(smps); i++ {
		a, b := smps[i-1].Metrics, smps[i].Metrics
		if a == nil || b == nil {
			continue
		}
		if v, ok := quantileBetween(a.Fsync, b.Fsync, q); ok {
			s.Points = append(s.Points, Point{T: smps[i].At, V: v * 1000})
		}
	}
	return s
}

// requestRateSeries is the per-second rate of the requests of one Kafka
// API key, sample to sample.
func requestRateSeries(name, apiKey string, smps []sample) Series {
	s := Series{Name: name}
	for i := 1; i < len(smps); i++ {
		a, b := smps[i-1].Metrics, smps[i].Metrics
		if a == nil || b == nil || a.Requests == nil || b.Requests == nil {
			continue
		}
		va, okA := a.Requests[apiKey]
		vb, okB := b.Requests[apiKey]
		dt := smps[i].At.Sub(smps[i-1].At).Seconds()
		if !okA || !okB || dt <= 0 {
			continue
		}
		s.Points = append(s.Points, Point{T: smps[i].At, V: max(vb-va, 0) / dt})
	}
	return s
}

// lastMetrics is the newest scrape held, or nil.
func lastMetrics(smps []sample) *metricsSample {
	for i := len(smps) - 1; i >= 0; i-- {
		if smps[i].Metrics != nil {
			return smps[i].Metrics
		}
	}
	return nil
}
