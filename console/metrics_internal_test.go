package console

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
)

func TestQuantileBetween(t *testing.T) {
	// Buckets 1 ms, 10 ms, 100 ms. Between the scrapes: 50 fsyncs under
	// 1 ms, 40 in (1, 10], 10 in (10, 100].
	a := &histSample{Bounds: []float64{0.001, 0.01, 0.1}, Counts: []float64{100, 100, 100}, Count: 100}
	b := &histSample{Bounds: []float64{0.001, 0.01, 0.1}, Counts: []float64{150, 190, 200}, Count: 200}
	for _, tc := range []struct {
		q, want float64
	}{
		{0.25, 0.0005},                   // rank 25 of the 50 in [0, 1 ms]
		{0.5, 0.001},                     // rank 50: the top of the first bucket
		{0.7, 0.001 + 0.009*20/40},       // rank 70: 20 of the 40 in (1, 10]
		{0.99, 0.01 + 0.09*(99-90)/10.0}, // rank 99: 9 of the 10 in (10, 100]
	} {
		got, ok := quantileBetween(a, b, tc.q)
		if !ok || math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("q%.2f = %g %v, want %g", tc.q, got, ok, tc.want)
		}
	}
	// Observations above the last bound: the last bound is all we know.
	c := &histSample{Bounds: b.Bounds, Counts: b.Counts, Count: 300}
	if got, ok := quantileBetween(b, c, 0.99); !ok || got != 0.1 {
		t.Errorf("in +Inf: %g %v", got, ok)
	}
	if _, ok := quantileBetween(b, b, 0.99); ok {
		t.Error("a quantile of no observations")
	}
	if _, ok := quantileBetween(a, &histSample{Bounds: []float64{1}, Counts: []float64{1}, Count: 1}, 0.5); ok {
		t.Error("a quantile across different buckets (a restart)")
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# TYPE spool_storage_fsync_seconds histogram
spool_storage_fsync_seconds_bucket{le="0.001"} 3
spool_storage_fsync_seconds_bucket{le="0.01"} 5
spool_storage_fsync_seconds_bucket{le="+Inf"} 6
spool_storage_fsync_seconds_sum 0.05
spool_storage_fsync_seconds_count 6
# TYPE spool_broker_requests_total counter
spool_broker_requests_total{api_key="0"} 12
spool_broker_requests_total{api_key="1"} 40
# TYPE other gauge
other 1
`
	ms, err := parseMetrics(strings.NewReader(text), expfmt.NewFormat(expfmt.TypeTextPlain))
	if err != nil {
		t.Fatal(err)
	}
	if ms.Fsync == nil || ms.Fsync.Count != 6 || len(ms.Fsync.Bounds) != 2 || ms.Fsync.Counts[1] != 5 {
		t.Fatalf("fsync histogram %+v", ms.Fsync)
	}
	if ms.Requests["0"] != 12 || ms.Requests["1"] != 40 {
		t.Fatalf("requests %v", ms.Requests)
	}
	if _, err := parseMetrics(strings.NewReader("not { metrics"), expfmt.NewFormat(expfmt.TypeTextPlain)); err == nil {
		t.Fatal("garbage parsed")
	}
}
