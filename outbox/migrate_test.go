package outbox_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
)

// TestMigrateFromVersion1: an outbox written at schema version 1 (rows
// published, pending, rejected with a row behind it, discarded) migrated to
// the current version keeps what was pending pending and nothing else: the
// relay publishes exactly the pending rows, in commit order per key, the
// rejected row still stops its key until requeued, and rows added after the
// migration are published too.
func TestMigrateFromVersion1(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db, _ := b.open(t)
			if err := outbox.MigrateToVersion(ctx, db, 1); err != nil {
				t.Fatal(err)
			}
			var old []sent // published before the migration
			for i := range 6 {
				old = append(old, addTx(t, db, "m", []string{"k" + string(rune('0'+i%3))}, true)...)
			}
			mustExec(t, db, "UPDATE spool_outbox SET published_at = 1")
			pending := addTx(t, db, "m", []string{"k0", "k1", "k2", "k0"}, true)
			stuck := addTx(t, db, "m", []string{"r"}, true)
			behind := addTx(t, db, "m", []string{"r"}, true)
			discarded := addTx(t, db, "m", []string{"d"}, true)
			afterDiscard := addTx(t, db, "m", []string{"d"}, true)
			mustExec(t, db, "UPDATE spool_outbox SET rejected_at = 1, attempts = 1, last_error = 'refused' WHERE event_id = $1", stuck[0].id)
			mustExec(t, db, "UPDATE spool_outbox SET rejected_at = 1, published_at = 2, last_error = 'discarded: refused' WHERE event_id = $1", discarded[0].id)

			if err := outbox.Migrate(ctx, db); err != nil {
				t.Fatalf("Migrate from version 1: %v", err)
			}
			st, err := outbox.ReadStatus(ctx, db)
			if err != nil || st.Version != outbox.SchemaVersion {
				t.Fatalf("ReadStatus after the migration = %+v, %v", st, err)
			}
			// pending (4) + stuck + behind + afterDiscard
			if len(st.Topics) != 1 || st.Topics[0].Pending != 7 || st.Topics[0].Rejected != 1 {
				t.Fatalf("backlog after the migration %+v: want 7 pending rows of topic m, 1 rejected", st.Topics)
			}
			if len(st.Stuck) != 1 || st.Stuck[0].EventID != stuck[0].id || !st.Stuck[0].Rejected || st.Stuck[0].Behind != 1 {
				t.Fatalf("stuck rows after the migration %+v: want the rejected row of key r with one behind it", st.Stuck)
			}

			addrs := kafkatest.StartKfake(t)
			kafkatest.CreateTopic(t, addrs, "m", 2)
			startRelay(t, relayConfig(t, db, addrs))
			later := addTx(t, db, "m", []string{"k1", "r"}, true)
			kafkatest.Eventually(t, 30*time.Second, "all but key r published", func() bool { return pendingRows(t, db) == 3 })
			if n, err := outbox.Requeue(ctx, db, nil); err != nil || n != 1 {
				t.Fatalf("Requeue = %d, %v; want 1", n, err)
			}
			waitDrained(t, db, 30*time.Second)
			committed := append(append(append(append([]sent{}, pending...), stuck...), behind...), afterDiscard...)
			committed = append(committed, later...)
			// Rows published or discarded before the migration must not be
			// sent again: checkDelivery refuses events it was not given.
			checkDelivery(t, committed, append(old, discarded...), readTopic(t, addrs, "m"))
		})
	}
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
