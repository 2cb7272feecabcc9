package producerprom_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/producer"
	"github.com/spoolmq/spool/producer/producerprom"
)

// TestMetrics: with the broker down the spool fills (spooled, mode 1, size
// gauges) until it refuses (refused{reason=full}); when the broker comes up
// everything is delivered and mode goes back to 0.
func TestMetrics(t *testing.T) {
	for _, c := range kafkatest.Clusters() {
		t.Run(c.Name, func(t *testing.T) {
			addr := kafkatest.FreeAddr(t)
			reg := prometheus.NewRegistry()
			h, err := producerprom.New(reg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := producer.New(producer.WithBrokers(addr), producer.WithSource("/m"),
				producer.WithSpool(t.TempDir(), 4<<10), producer.WithSpoolDeadline(time.Second), producer.WithSpoolHooks(h),
				producer.WithClientOptions(kgo.MetadataMinAge(100*time.Millisecond)))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if err := producerprom.Observe(reg, p); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			spooled := 0
			for {
				ev, _ := event.New("m.t", event.JSON, map[string]int{"n": spooled})
				ev.Key = []byte("k")
				_, err := p.Publish(ctx, "metrics", ev)
				if errors.Is(err, producer.ErrSpoolFull) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				spooled++
			}
			gauge := func(name string) float64 {
				mfs, err := reg.Gather()
				if err != nil {
					t.Fatal(err)
				}
				for _, mf := range mfs {
					if mf.GetName() == name {
						return mf.GetMetric()[0].GetGauge().GetValue()
					}
				}
				t.Fatalf("no metric %s", name)
				return 0
			}
			if n := testutil.ToFloat64(h.SpooledVec().WithLabelValues("metrics")); int(n) != spooled {
				t.Errorf("spooled_total %v, publishes spooled %d", n, spooled)
			}
			if n := testutil.ToFloat64(h.RefusedVec().WithLabelValues("metrics", "full")); n != 1 {
				t.Errorf("refused_total{reason=full} %v", n)
			}
			if gauge("spool_producer_spool_mode") != 1 || int(gauge("spool_producer_spool_events")) != spooled || gauge("spool_producer_spool_bytes") <= 0 {
				t.Errorf("gauges with the broker down: mode %v, events %v, bytes %v", gauge("spool_producer_spool_mode"),
					gauge("spool_producer_spool_events"), gauge("spool_producer_spool_bytes"))
			}

			addrs := c.StartAt(t, addr)
			kafkatest.CreateTopic(t, addrs, "metrics", 2)
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := p.WaitSpoolEmpty(wctx); err != nil {
				t.Fatal(err)
			}
			kafkatest.Eventually(t, 30*time.Second, "mode 0", func() bool { return gauge("spool_producer_spool_mode") == 0 })
			if n := testutil.ToFloat64(h.DeliveredCounter()); int(n) != spooled {
				t.Errorf("delivered_total %v, spooled %d", n, spooled)
			}
			if gauge("spool_producer_spool_events") != 0 {
				t.Errorf("events gauge after the drain: %v", gauge("spool_producer_spool_events"))
			}
		})
	}
}
