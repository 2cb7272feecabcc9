package outboxprom_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/freeport"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
	"github.com/spoolmq/spool/outbox/outboxprom"
)

// TestMetricsBrokerDown: with no broker listening, the relay's failures
// are counted as spool_outbox_errors_total{kind="retry"} (none rejected)
// and spool_outbox_oldest_pending_age_seconds reports the age of the
// waiting row: above zero, at most the time since it was added.
func TestMetricsBrokerDown(t *testing.T) {
	ctx := context.Background()
	db := openOutbox(t)
	added := time.Now()
	tx, _ := db.BeginTx(ctx, nil)
	ev, _ := event.New("t.x", event.Raw, "x")
	ev.Source, ev.Key = "/test", []byte("k")
	if err := outbox.Add(ctx, tx, *ev, outbox.Topic("down")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	m := outboxprom.New()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	r, err := outbox.New(outbox.Config{DB: db, Brokers: []string{freeport.Addr(t)}, Hooks: m,
		PollInterval: 10 * time.Millisecond, StatsInterval: 20 * time.Millisecond,
		PublishTimeout: time.Second, RetryBackoff: 10 * time.Millisecond, RetryBackoffMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	kafkatest.Eventually(t, 30*time.Second, "a retry counted and the oldest row's age reported", func() bool {
		return testutil.ToFloat64(m.ErrorsCounter("down", "retry")) >= 1 && oldestAge(t, reg, "down") > 0.1
	})
	if age, most := oldestAge(t, reg, "down"), time.Since(added).Seconds()+1; age > most {
		t.Fatalf("oldest pending age %vs, more than the %vs since the row was added", age, most)
	}
	if v := testutil.ToFloat64(m.ErrorsCounter("down", "rejected")); v != 0 {
		t.Fatalf("%v rows counted rejected while the broker is down", v)
	}
	if v := testutil.ToFloat64(m.PendingGauge("down")); v != 1 {
		t.Fatalf("pending = %v, want 1", v)
	}
}

// oldestAge reads spool_outbox_oldest_pending_age_seconds{topic} from reg.
func oldestAge(t *testing.T, reg *prometheus.Registry, topic string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "spool_outbox_oldest_pending_age_seconds" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == topic {
					return mt.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
