package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
)

// TestStateMetrics: after known traffic, the scrape shows each partition's
// end offset, and each committed offset's lag in records (produced minus
// committed) and in seconds (the age of the oldest unconsumed record, on
// the broker's clock).
func TestStateMetrics(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000)
	reg := prometheus.NewRegistry()
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) {
		c.Registerer = reg
		c.Now = func() time.Time { return base.Add(90 * time.Second) }
	}))
	adm, cl := newAdmin(t, srv)
	createTopic(t, adm, "orders", 2, nil)
	for i := range 10 {
		// One record per request, so each is its own batch; record i was
		// produced at base + i seconds.
		produceSync(t, cl, &kgo.Record{Topic: "orders", Partition: 0, Value: []byte("x"), Timestamp: base.Add(time.Duration(i) * time.Second)})
	}
	produceSync(t, cl, &kgo.Record{Topic: "orders", Partition: 1, Value: []byte("y"), Timestamp: base})

	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 4, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 1, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(testCtx(t), "billing", offs); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}

	want := `
# HELP spool_group_lag_records Records between a group's committed offset and the partition's end.
# TYPE spool_group_lag_records gauge
spool_group_lag_records{group="billing",partition="0",topic="orders"} 6
spool_group_lag_records{group="billing",partition="1",topic="orders"} 0
# HELP spool_group_lag_seconds Age of the oldest record a group has not consumed (0 when caught up), to within one producer batch.
# TYPE spool_group_lag_seconds gauge
spool_group_lag_seconds{group="billing",partition="0",topic="orders"} 86
spool_group_lag_seconds{group="billing",partition="1",topic="orders"} 0
# HELP spool_partition_end_offset The partition's high watermark: the offset the next record gets, once durable.
# TYPE spool_partition_end_offset gauge
spool_partition_end_offset{partition="0",topic="__consumer_offsets"} 0
spool_partition_end_offset{partition="0",topic="orders"} 10
spool_partition_end_offset{partition="1",topic="orders"} 1
# HELP spool_group_members Members of a consumer group, with its state as a label.
# TYPE spool_group_members gauge
spool_group_members{group="billing",state="Empty"} 0
# HELP spool_group_coordinator_loaded 1 once the group coordinator has loaded its offsets, 0 before.
# TYPE spool_group_coordinator_loaded gauge
spool_group_coordinator_loaded 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"spool_group_lag_records", "spool_group_lag_seconds", "spool_partition_end_offset", "spool_group_members", "spool_group_coordinator_loaded"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "spool_storage_disk_free_bytes", "spool_storage_disk_total_bytes"); n != 2 {
		t.Fatalf("%d disk series, want 2", n)
	}
	if n := testutil.CollectAndCount(reg, "spool_partition_log_bytes"); n != 3 {
		t.Fatalf("%d spool_partition_log_bytes series, want 3 (orders 0 and 1, __consumer_offsets 0)", n)
	}
}
