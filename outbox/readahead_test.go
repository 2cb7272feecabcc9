package outbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
)

// TestReadAhead: on PostgreSQL the relay reads the next round while the
// current one is in flight, and uses those reads while it drains a
// backlog. A row that took its id before the backlog and commits while
// rows above it are being sent is not skipped, and its key keeps commit
// order with a row added after it.
func TestReadAhead(t *testing.T) {
	be := backends(t)[1]
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		db, _ := be.open(t)
		migrate(t, db)
		kafkatest.CreateTopic(t, addrs, "ra", 4)
		late, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer late.Rollback()
		lateEv := newEvent(t, "late", 0)
		if err := outbox.Add(ctx, late, lateEv, outbox.Topic("ra")); err != nil {
			t.Fatal(err)
		}
		var committed []sent
		for i := range 100 {
			keys := make([]string, 20)
			for j := range keys {
				keys[j] = fmt.Sprint("k", (i+j)%20)
			}
			committed = append(committed, addTx(t, db, "ra", keys, true)...)
		}
		cfg := relayConfig(t, db, addrs)
		cfg.BatchSize = 20
		r := startRelay(t, cfg)
		kafkatest.Eventually(t, 60*time.Second, "a quarter of the backlog published", func() bool { return r.Stats().Published >= 500 })
		if err := late.Commit(); err != nil {
			t.Fatal(err)
		}
		committed = append(committed, sent{"ra", "late", lateEv.ID})
		committed = append(committed, addTx(t, db, "ra", []string{"late"}, true)...)
		waitDrained(t, db, 60*time.Second)
		checkDelivery(t, committed, nil, readTopic(t, addrs, "ra"))
		if used, _ := r.ReadAheads(); used == 0 {
			t.Fatal("no read ahead used while draining a backlog of 2,000 rows in rounds of 20")
		}
	})
}
