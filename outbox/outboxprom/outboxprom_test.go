package outboxprom_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	_ "modernc.org/sqlite"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
	"github.com/spoolmq/spool/outbox/outboxprom"
)

// TestMetrics: a relay with the Prometheus hooks counts published rows,
// their latency, a rejected row, and reports the backlog.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	db := openOutbox(t)
	tx, _ := db.BeginTx(ctx, nil)
	for i, size := range []int{10, 10, 10, 5000} {
		ev, _ := event.New("t.x", event.Raw, strings.Repeat("x", size))
		ev.Source, ev.Key = "/test", []byte{byte('a' + i)}
		if err := outbox.Add(ctx, tx, *ev, outbox.Topic("metrics")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	m := outboxprom.New()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	r, err := outbox.New(outbox.Config{DB: db, Brokers: kafkatest.StartKfake(t), Hooks: m,
		MaxRecordBytes: 1000, PollInterval: 10 * time.Millisecond, StatsInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	kafkatest.Eventually(t, 30*time.Second, "3 published, 1 rejected, backlog reported", func() bool {
		return testutil.ToFloat64(m.PublishedCounter("metrics")) == 3 &&
			testutil.ToFloat64(m.ErrorsCounter("metrics", "rejected")) == 1 &&
			testutil.ToFloat64(m.PendingGauge("metrics")) == 1
	})
	if n := testutil.CollectAndCount(m, "spool_outbox_publish_latency_seconds"); n != 1 {
		t.Fatalf("latency series = %d, want 1", n)
	}
	if v := testutil.ToFloat64(m.LeasedGauge()); v != outbox.NumBuckets {
		t.Fatalf("leased buckets = %v", v)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// openOutbox opens a migrated SQLite outbox in t.TempDir(), closed when
// the test ends.
func openOutbox(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if err := outbox.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}
