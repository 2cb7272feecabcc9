package outbox_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
)

func postgres(t *testing.T) backend {
	for _, b := range backends(t) {
		if b.dialect == outbox.Postgres {
			return b
		}
	}
	panic("no postgres backend")
}

// TestPostgresKeyLock: on PostgreSQL a transaction adding an event of a
// key waits until an earlier open transaction that added the same key
// ends, so the ids (and the publish order) follow commit order; another
// key does not wait.
func TestPostgresKeyLock(t *testing.T) {
	db, _ := postgres(t).open(t)
	migrate(t, db)
	checkKeyLock(t, db, db)
}

// checkKeyLock: a transaction on db adds an event of key K and stays
// open; another key goes through at once; a second transaction adding K
// waits on the key's advisory lock (seen through direct, a connection to
// the server itself) until the first commits, and the ids follow commit
// order.
func checkKeyLock(t *testing.T, db, direct *sql.DB) {
	t.Helper()
	ctx := context.Background()
	t1, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := newEvent(t, "K", 1)
	if err := outbox.Add(ctx, t1, first, outbox.Topic("t")); err != nil {
		t.Fatal(err)
	}
	// Another key goes through at once.
	addTx(t, db, "t", []string{"other"}, true)

	second := newEvent(t, "K", 2)
	done := make(chan error, 1)
	go func() {
		t2, err := db.BeginTx(ctx, nil)
		if err == nil {
			if err = outbox.Add(ctx, t2, second, outbox.Topic("t")); err == nil {
				err = t2.Commit()
			}
		}
		done <- err
	}()
	kafkatest.Eventually(t, 30*time.Second, "the second transaction to wait on the key's lock", func() bool {
		var waiting int
		direct.QueryRow("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(&waiting)
		return waiting == 1
	})
	select {
	case err := <-done:
		t.Fatalf("second transaction finished while the first was open: %v", err)
	default:
	}
	if err := t1.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var ids []string
	rs, err := direct.Query("SELECT event_id FROM spool_outbox WHERE record_key = 'K' ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		var id string
		rs.Scan(&id)
		ids = append(ids, id)
	}
	if len(ids) != 2 || ids[0] != first.ID || ids[1] != second.ID {
		t.Fatalf("ids in id order %v, want [%s %s] (commit order)", ids, first.ID, second.ID)
	}
}

// TestListen: on PostgreSQL the relay wakes on the NOTIFY of the adding
// transaction's commit (its polling and lease rounds are far apart in this
// test); with NoListen it polls.
func TestListen(t *testing.T) {
	b := postgres(t)
	for _, noListen := range []bool{false, true} {
		name := "listen"
		if noListen {
			name = "poll-only"
		}
		t.Run(name, func(t *testing.T) {
			db, _ := b.open(t)
			migrate(t, db)
			addrs := kafkatest.StartKfake(t)
			kafkatest.CreateTopic(t, addrs, "t", 1)
			cfg := relayConfig(t, db, addrs)
			cfg.NoListen = noListen
			cfg.LeaseTTL, cfg.PublishTimeout = 10*time.Minute, time.Second
			cfg.PollInterval = time.Minute
			if noListen {
				cfg.PollInterval = 20 * time.Millisecond
			}
			r := startRelay(t, cfg)
			kafkatest.Eventually(t, 30*time.Second, "leases taken", func() bool { return r.Stats().Buckets == outbox.NumBuckets })
			if !noListen {
				kafkatest.Eventually(t, 30*time.Second, "LISTEN active", func() bool { return r.Stats().Listening })
			}
			for i := range 3 {
				addTx(t, db, "t", []string{"k"}, true)
				kafkatest.Eventually(t, 30*time.Second, "the event published", func() bool { return r.Stats().Published == int64(i+1) })
			}
			if r.Stats().Listening == noListen {
				t.Fatalf("listening = %v with NoListen %v", r.Stats().Listening, noListen)
			}
		})
	}
}
