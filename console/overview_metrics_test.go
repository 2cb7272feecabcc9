package console_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/spooltest"
)

// TestOverviewBrokerMetrics: with the broker's /metrics, the overview
// charts the fsync latency of the produces and the request rates.
func TestOverviewBrokerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.Registerer = reg }))
	addrs := []string{srv.Addr()}
	kafkatest.CreateTopic(t, addrs, "fsynced", 1)
	_, base := startConsole(t, addrs, console.Config{Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})})

	// Produce between samples until the chart has a p99 point: every
	// acknowledged batch was fsynced (the default durability).
	p99 := regexp.MustCompile(`Fsync latency \(ms\); p50 now [0-9.,]+; p99 now ([0-9.,]+)`)
	var body string
	kafkatest.Eventually(t, 30*time.Second, "an fsync p99 point", func() bool {
		produceN(t, addrs, "fsynced", 3)
		_, body = get(t, base+"/ui/")
		return p99.MatchString(body) && strings.Contains(body, "Requests/s; Produce now")
	})
	if strings.Contains(body, "--metrics-url") {
		t.Error("the overview asks for --metrics-url although it has the metrics")
	}
	// Disk use per broker: Spool reports its volume.
	row := rowOf(t, body, `data-broker="0"`)
	if !strings.Contains(row, `class="n used"`) || strings.Contains(row, "not reported") {
		t.Errorf("Spool's disk row lacks the volume: %s", row)
	}
	if size := cell(row, "data"); size == "0 B" || size == "" {
		t.Errorf("Spool's partitions' data: %q", size)
	}
}

// TestOverviewWithoutBrokerMetrics: without Config.Metrics the overview
// says where the numbers come from; a failing scrape and metrics without
// Spool's fsync histogram (another broker) are said as such.
func TestOverviewWithoutBrokerMetrics(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "t", 1)
		_, base := startConsole(t, addrs, console.Config{})
		_, body := get(t, base+"/ui/")
		if !strings.Contains(body, "--metrics-url") || strings.Contains(body, "Fsync latency (ms)") {
			t.Errorf("overview without metrics: %s", body)
		}
		if !strings.Contains(body, `data-broker="`) {
			t.Error("the overview lacks the disk use per broker")
		}

		failing := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "exporter down", http.StatusInternalServerError)
		})
		_, base = startConsole(t, addrs, console.Config{Metrics: failing})
		kafkatest.Eventually(t, 30*time.Second, "the scrape's failure on the page", func() bool {
			_, body = get(t, base+"/ui/")
			return strings.Contains(body, "The last scrape of the broker's metrics failed: console: metrics: 500")
		})
		if strings.Contains(body, "spool_storage_fsync_seconds") {
			t.Error("a failed scrape is taken for metrics without the fsync histogram")
		}

		other := prometheus.NewRegistry()
		other.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "kafka_server_requests_total"}))
		_, base = startConsole(t, addrs, console.Config{Metrics: promhttp.HandlerFor(other, promhttp.HandlerOpts{})})
		kafkatest.Eventually(t, 30*time.Second, "a scrape", func() bool {
			_, body = get(t, base+"/ui/")
			return strings.Contains(body, "no <code>spool_storage_fsync_seconds</code> histogram")
		})
	})
}
