package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The broker's own counters over the produce phase, read from its
// Prometheus endpoint (Config.BrokerMetrics) before and after. Only a Spool
// broker exports these names; against another broker the section is
// missing names and says so.
const (
	metricFsync    = "spool_storage_fsync_seconds" // histogram: every fsync storage makes
	metricRequests = "spool_broker_requests_total" // counter by api_key
	produceAPIKey  = "0"
	metricPhase    = "spool_broker_produce_phase_seconds"            // histogram by phase
	metricSlow     = "spool_broker_produce_slow_requests_total"      // produce requests over 5 ms
	metricSlowTime = "spool_broker_produce_slow_phase_seconds_total" // their seconds by phase
)

// BrokerStats are the broker's fsync counters over the produce phase.
type BrokerStats struct {
	Fsyncs           int64   `json:"fsyncs"`
	FsyncsPerSec     float64 `json:"fsyncs_per_sec"`
	ProduceRequests  int64   `json:"produce_requests"`
	FsyncsPerRequest float64 `json:"fsyncs_per_request"` // per acknowledged produce request
	FsyncsPerRecord  float64 `json:"fsyncs_per_record"`
	// FsyncMs is the fsync duration distribution from the histogram's
	// buckets: each quantile is the upper bound of the bucket it falls in
	// (-1: above the largest bucket).
	FsyncMs struct {
		P50  float64 `json:"p50_ms"`
		P99  float64 `json:"p99_ms"`
		P999 float64 `json:"p999_ms"`
	} `json:"fsync"`
	// PhaseMeanMs is the mean time of a produce request in each phase
	// (write, in_order, durable; see docs/metrics.md).
	PhaseMeanMs map[string]float64 `json:"phase_mean_ms,omitempty"`
	// SlowRequests took longer than 5 ms inside the broker; SlowPhaseShare
	// is the fraction of their time spent in each phase.
	SlowRequests   int64              `json:"slow_requests"`
	SlowPhaseShare map[string]float64 `json:"slow_phase_share,omitempty"`
}

type brokerSample struct {
	fsyncs     uint64
	buckets    map[float64]uint64 // upper bound (s) -> cumulative count
	requests   float64
	phaseSum   map[string]float64 // by phase
	phaseCount map[string]uint64
	slow       float64
	slowTime   map[string]float64
}

func scrapeBroker(ctx context.Context, url string) (*brokerSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: broker metrics: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: broker metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: broker metrics %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("bench: broker metrics %s: %w", url, err)
	}
	s := &brokerSample{buckets: map[float64]uint64{}, phaseSum: map[string]float64{}, phaseCount: map[string]uint64{},
		slowTime: map[string]float64{}}
	for _, m := range fams[metricPhase].GetMetric() {
		s.phaseSum[labelValue(m, "phase")] = m.GetHistogram().GetSampleSum()
		s.phaseCount[labelValue(m, "phase")] = m.GetHistogram().GetSampleCount()
	}
	for _, m := range fams[metricSlow].GetMetric() {
		s.slow = m.GetCounter().GetValue()
	}
	for _, m := range fams[metricSlowTime].GetMetric() {
		s.slowTime[labelValue(m, "phase")] = m.GetCounter().GetValue()
	}
	f, ok := fams[metricFsync]
	if !ok || len(f.GetMetric()) == 0 || f.GetMetric()[0].GetHistogram() == nil {
		return nil, fmt.Errorf("bench: broker metrics %s: no histogram %s (not a Spool broker?)", url, metricFsync)
	}
	h := f.GetMetric()[0].GetHistogram()
	s.fsyncs = h.GetSampleCount()
	for _, b := range h.GetBucket() {
		s.buckets[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	if f, ok := fams[metricRequests]; ok {
		for _, m := range f.GetMetric() {
			if labelValue(m, "api_key") == produceAPIKey {
				s.requests = m.GetCounter().GetValue()
			}
		}
	}
	return s, nil
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// brokerStats is what happened between two samples, over d, for records acknowledged records.
func brokerStats(before, after *brokerSample, d time.Duration, records int64) *BrokerStats {
	st := &BrokerStats{
		Fsyncs:          int64(after.fsyncs - before.fsyncs),
		ProduceRequests: int64(after.requests - before.requests),
	}
	if d > 0 {
		st.FsyncsPerSec = float64(st.Fsyncs) / d.Seconds()
	}
	if st.ProduceRequests > 0 {
		st.FsyncsPerRequest = float64(st.Fsyncs) / float64(st.ProduceRequests)
	}
	if records > 0 {
		st.FsyncsPerRecord = float64(st.Fsyncs) / float64(records)
	}
	var bounds []float64
	for ub := range after.buckets {
		if !math.IsInf(ub, 1) { // a quantile there is "above the largest bucket": -1, not +Inf (JSON has none)
			bounds = append(bounds, ub)
		}
	}
	sort.Float64s(bounds)
	quantile := func(q float64) float64 {
		want := uint64(math.Ceil(q * float64(st.Fsyncs)))
		for _, ub := range bounds {
			if after.buckets[ub]-before.buckets[ub] >= want {
				return ub * 1e3
			}
		}
		return -1 // above the largest finite bucket
	}
	for phase, sum := range after.phaseSum {
		if n := after.phaseCount[phase] - before.phaseCount[phase]; n > 0 {
			if st.PhaseMeanMs == nil {
				st.PhaseMeanMs = map[string]float64{}
			}
			st.PhaseMeanMs[phase] = (sum - before.phaseSum[phase]) * 1e3 / float64(n)
		}
	}
	st.SlowRequests = int64(after.slow - before.slow)
	var slowTotal float64
	for phase, v := range after.slowTime {
		slowTotal += v - before.slowTime[phase]
	}
	if slowTotal > 0 {
		st.SlowPhaseShare = map[string]float64{}
		for phase, v := range after.slowTime {
			st.SlowPhaseShare[phase] = (v - before.slowTime[phase]) / slowTotal
		}
	}
	if st.Fsyncs > 0 {
		st.FsyncMs.P50, st.FsyncMs.P99, st.FsyncMs.P999 = quantile(0.5), quantile(0.99), quantile(0.999)
	}
	return st
}
