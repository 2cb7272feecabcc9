package outbox_test

import (
	"testing"
	"time"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
	"github.com/spoolmq/spool/spooltest"
)

type retryHooks struct {
	outbox.NopHooks
	retries chan error
}

func (h *retryHooks) Failed(_ string, err error, rejected bool) {
	if !rejected {
		select {
		case h.retries <- err:
		default:
		}
	}
}

// TestBrokerDown: with the broker stopped, the relay keeps the rows,
// reports the failures (hook, attempts and last_error, ReadStatus shows
// the rows retrying), rejects nothing, and once the broker is back
// publishes everything in commit order per key.
func TestBrokerDown(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			db, _ := b.open(t)
			migrate(t, db)
			srv := spooltest.Start(t, spooltest.WithPartitions(2))
			addrs := []string{srv.Addr()}
			kafkatest.CreateTopic(t, addrs, "down", 2)
			hooks := &retryHooks{retries: make(chan error, 1)}
			cfg := relayConfig(t, db, addrs)
			cfg.Hooks = hooks
			r := startRelay(t, cfg)
			committed := addTx(t, db, "down", []string{"a", "b"}, true)
			kafkatest.Eventually(t, 30*time.Second, "first events published", func() bool { return pendingRows(t, db) == 0 })

			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				committed = append(committed, addTx(t, db, "down", []string{"a", "b", "a"}, true)...)
			}
			select {
			case err := <-hooks.retries:
				t.Logf("reported: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("no retryable failure reported while the broker is down")
			}
			var st *outbox.Status
			kafkatest.Eventually(t, 30*time.Second, "ReadStatus to show rows retrying", func() bool {
				var err error
				if st, err = outbox.ReadStatus(t.Context(), db); err != nil {
					t.Fatal(err)
				}
				return len(st.Stuck) > 0
			})
			if s := st.Stuck[0]; s.Rejected || s.Attempts < 1 || s.LastError == "" {
				t.Fatalf("status while the broker is down: %+v; want retrying rows with attempts and an error", st.Stuck)
			}
			if r.Stats().Rejected != 0 {
				t.Fatalf("%d rows rejected because the broker was down", r.Stats().Rejected)
			}

			srv.Restart(t)
			if srv.Addr() != addrs[0] {
				t.Fatalf("the broker came back on %s, not its reserved address (spooltest.Restart)", srv.Addr())
			}
			waitDrained(t, db, 60*time.Second)
			checkDelivery(t, committed, nil, readTopic(t, addrs, "down"))
		})
	}
}
