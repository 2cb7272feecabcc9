package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
)

// TestBrokerMetrics: with BrokerMetrics, a run against Spool reports the
// broker's fsyncs over the produce phase, per second, per request and per
// record, consistent with each other.
func TestBrokerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.Registerer = reg }))
	web := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(web.Close)
	res, err := Run(ctx(t), Config{Brokers: []string{srv.Addr()}, Records: 300, RecordSize: 64, Partitions: 4,
		Mode: ModeProduce, Rate: 3000, BrokerMetrics: web.URL})
	if err != nil {
		t.Fatal(err)
	}
	b := res.Broker
	if b == nil {
		t.Fatal("no broker section")
	}
	// acks=all at fsync=always: every request waited for at least one fsync,
	// and fsyncs are shared, so there are at most as many as records.
	if b.ProduceRequests < 1 || b.Fsyncs < 1 || b.Fsyncs > 300+b.ProduceRequests {
		t.Fatalf("broker stats %+v for 300 records", b)
	}
	if got := float64(b.Fsyncs) / float64(b.ProduceRequests); got != b.FsyncsPerRequest {
		t.Fatalf("fsyncs per request %v, want %v", b.FsyncsPerRequest, got)
	}
	if got := float64(b.Fsyncs) / 300; got != b.FsyncsPerRecord {
		t.Fatalf("fsyncs per record %v, want %v", b.FsyncsPerRecord, got)
	}
	if b.FsyncsPerSec <= 0 || b.FsyncMs.P50 <= 0 || b.FsyncMs.P50 > b.FsyncMs.P99 && b.FsyncMs.P99 >= 0 {
		t.Fatalf("broker stats %+v", b)
	}
	// Every acknowledged request waited for durability somewhere: in_order
	// or durable; the phases are reported for all three.
	if len(b.PhaseMeanMs) != 3 || b.PhaseMeanMs["write"] <= 0 || b.PhaseMeanMs["in_order"]+b.PhaseMeanMs["durable"] <= 0 {
		t.Fatalf("produce phases %v", b.PhaseMeanMs)
	}
	if b.SlowRequests > 0 {
		var sum float64
		for _, v := range b.SlowPhaseShare {
			sum += v
		}
		if sum < 0.999 || sum > 1.001 {
			t.Fatalf("slow phase shares %v do not add up to 1", b.SlowPhaseShare)
		}
	}
}

// TestBrokerMetricsNotSpool: a metrics URL without Spool's fsync histogram
// (or none at all) fails the run with a message saying so.
func TestBrokerMetricsNotSpool(t *testing.T) {
	srv := spooltest.Start(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "# TYPE other_total counter\nother_total 1")
	}))
	t.Cleanup(web.Close)
	_, err := Run(ctx(t), Config{Brokers: []string{srv.Addr()}, Records: 10, Mode: ModeProduce, BrokerMetrics: web.URL})
	if err == nil || !strings.Contains(err.Error(), "not a Spool broker") {
		t.Fatalf("run with a non-Spool metrics URL: %v", err)
	}
	_, err = Run(ctx(t), Config{Brokers: []string{srv.Addr()}, Records: 10, Mode: ModeProduce, BrokerMetrics: web.URL + "/missing\x7f"})
	if err == nil {
		t.Fatal("run with a bad metrics URL succeeded")
	}
}

// TestBrokerStatsAboveLargestBucket: fsyncs slower than the histogram's
// largest finite bucket give quantile -1 (and valid JSON), not +Inf.
func TestBrokerStatsAboveLargestBucket(t *testing.T) {
	before := &brokerSample{buckets: map[float64]uint64{0.001: 0, 0.1: 0, math.Inf(1): 0}}
	after := &brokerSample{fsyncs: 1000, requests: 1000,
		buckets: map[float64]uint64{0.001: 980, 0.1: 998, math.Inf(1): 1000}}
	st := brokerStats(before, after, time.Second, 1000)
	if st.FsyncMs.P50 != 1 || st.FsyncMs.P99 != 100 || st.FsyncMs.P999 != -1 {
		t.Fatalf("fsync quantiles %+v, want 1, 100 and -1 ms", st.FsyncMs)
	}
	if _, err := json.Marshal(st); err != nil {
		t.Fatal(err)
	}
}
