package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
	"github.com/spoolmq/spool/spooltest"
)

// writeMany commits (and rolls back) transactions from writers goroutines,
// each owning the keys k with k % writers == w, so the commit order per key
// is the order its writer committed in. Every 5 transactions a writer sends
// on ticks (if not nil); writers stop early when stop closes.
func writeMany(t *testing.T, db *sql.DB, topic string, keys, writers, txs int, seed uint64,
	ticks chan<- struct{}, stop <-chan struct{}) (committed, rolledBack []sent) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	perWriter := make([][]sent, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := range txs {
				select {
				case <-stop:
					return
				default:
				}
				var ks []string
				for range 1 + rng.IntN(4) {
					ks = append(ks, fmt.Sprintf("key-%03d", w+writers*rng.IntN(keys/writers)))
				}
				commit := rng.IntN(5) != 0
				s, err := addTxE(db, topic, ks, commit)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				if commit {
					perWriter[w] = append(perWriter[w], s...)
				} else {
					mu.Lock()
					rolledBack = append(rolledBack, s...)
					mu.Unlock()
				}
				if ticks != nil && i%5 == 4 {
					ticks <- struct{}{}
				}
			}
		}()
	}
	wg.Wait()
	for _, s := range perWriter {
		committed = append(committed, s...)
	}
	return committed, rolledBack
}

// TestRelayPublishesCommitted: events committed by concurrent writers
// (some transactions rolled back) while a relay runs are all published,
// none of the rolled-back ones, once each, in commit order per key.
func TestRelayPublishesCommitted(t *testing.T) {
	each(t, func(t *testing.T, db *sql.DB, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 4)
		r := startRelay(t, relayConfig(t, db, addrs))
		committed, rolledBack := writeMany(t, db, "orders", 40, 4, 40, 1, nil, nil)
		waitDrained(t, db, 30*time.Second)
		dups := checkDelivery(t, committed, rolledBack, readTopic(t, addrs, "orders"))
		if dups != 0 {
			t.Fatalf("%d duplicates with one relay and no failures", dups)
		}
		if st := r.Stats(); st.Published != int64(len(committed)) || st.Buckets != outbox.NumBuckets {
			t.Fatalf("stats %+v, want %d published and all %d buckets", st, len(committed), outbox.NumBuckets)
		}
	})
}

// TestAddRefusesInvalidEvents: an event without type or source, or an Add
// without a topic, is refused with a clear error and the transaction is
// untouched: it still commits the caller's own rows.
func TestAddRefusesInvalidEvents(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			db, _ := b.open(t)
			migrate(t, db)
			ctx := context.Background()
			if _, err := db.Exec("CREATE TABLE orders (id TEXT PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec("INSERT INTO orders (id) VALUES ('o1')"); err != nil {
				t.Fatal(err)
			}
			noType := newEvent(t, "k", "x")
			noType.Type = ""
			noSource := newEvent(t, "k", "x")
			noSource.Source = ""
			for _, c := range []struct {
				name string
				ev   event.Event
				opts []outbox.Option
				want error
				msg  string
			}{
				{"no type", noType, []outbox.Option{outbox.Topic("orders")}, event.ErrMissingAttribute, "ce_type"},
				{"no source", noSource, []outbox.Option{outbox.Topic("orders")}, event.ErrMissingAttribute, "ce_source"},
				{"no topic", newEvent(t, "k", "x"), nil, outbox.ErrNoTopic, "outbox.Topic"},
			} {
				err := outbox.Add(ctx, tx, c.ev, c.opts...)
				if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("%s: Add = %v, want %v mentioning %s", c.name, err, c.want, c.msg)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatalf("the transaction did not survive the refused Adds: %v", err)
			}
			var n int
			if err := db.QueryRow("SELECT COUNT(*) FROM orders").Scan(&n); err != nil || n != 1 {
				t.Fatalf("orders rows = %d, %v; want 1", n, err)
			}
			if p := pendingRows(t, db); p != 0 {
				t.Fatalf("%d outbox rows from refused events", p)
			}
		})
	}
}

// TestMissingSchema: without Migrate, Add, the relay and ReadStatus fail
// with ErrNoSchema naming Migrate.
func TestMissingSchema(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			db, _ := b.open(t)
			ctx := context.Background()
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = outbox.Add(ctx, tx, newEvent(t, "k", "x"), outbox.Topic("t"))
			if !errors.Is(err, outbox.ErrNoSchema) || !strings.Contains(err.Error(), "Migrate") {
				t.Fatalf("Add = %v, want ErrNoSchema naming Migrate", err)
			}
			tx.Rollback()
			r, err := outbox.New(outbox.Config{DB: db})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if err := r.Start(ctx); !errors.Is(err, outbox.ErrNoSchema) || !strings.Contains(err.Error(), "Migrate") {
				t.Fatalf("Start = %v, want ErrNoSchema naming Migrate", err)
			}
			if _, err := outbox.ReadStatus(ctx, db); !errors.Is(err, outbox.ErrNoSchema) {
				t.Fatalf("ReadStatus = %v, want ErrNoSchema", err)
			}
		})
	}
}

// TestMigrateIdempotent: Migrate twice changes nothing; the printed schema
// applied by hand gives a database the relay accepts.
func TestMigrateIdempotent(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db, _ := b.open(t)
			migrate(t, db)
			addTx(t, db, "t", []string{"a"}, true)
			migrate(t, db)
			var versions, rows int
			if err := db.QueryRow("SELECT COUNT(*) FROM spool_outbox_schema").Scan(&versions); err != nil || versions != outbox.SchemaVersion {
				t.Fatalf("schema versions recorded = %d, %v; want %d", versions, err, outbox.SchemaVersion)
			}
			if err := db.QueryRow("SELECT COUNT(*) FROM spool_outbox").Scan(&rows); err != nil || rows != 1 {
				t.Fatalf("rows after the second Migrate = %d, %v; want 1", rows, err)
			}

			manual, _ := b.open(t)
			script, err := outbox.Schema(b.dialect, outbox.Table("events_out"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := manual.Exec(script); err != nil {
				t.Fatalf("applying the printed schema: %v\n%s", err, script)
			}
			if err := outbox.Migrate(ctx, manual, outbox.Table("events_out")); err != nil {
				t.Fatalf("Migrate after the printed schema: %v", err)
			}
			st, err := outbox.ReadStatus(ctx, manual, outbox.Table("events_out"))
			if err != nil || st.Version != outbox.SchemaVersion {
				t.Fatalf("ReadStatus on the printed schema = %+v, %v", st, err)
			}
		})
	}
}

// TestRetentionDeletesPublished: published rows past Retention are deleted
// in bounded batches; unpublished ones stay, the oldest row (rejected, so
// pending for good) included.
func TestRetentionDeletesPublished(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db, _ := b.open(t)
			migrate(t, db)
			addrs := kafkatest.StartKfake(t)
			tx, _ := db.BeginTx(ctx, nil)
			big := newEvent(t, "big", strings.Repeat("x", 4000))
			if err := outbox.Add(ctx, tx, big, outbox.Topic("t")); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			for i := range 30 {
				addTx(t, db, "t", []string{fmt.Sprint("k", i)}, true)
			}
			cfg := relayConfig(t, db, addrs)
			cfg.Retention, cfg.CleanupBatch, cfg.MaxRecordBytes = -1, 7, 2000
			startRelay(t, cfg)
			kafkatest.Eventually(t, 30*time.Second, "published rows deleted", func() bool {
				var n int
				if err := db.QueryRow("SELECT COUNT(*) FROM spool_outbox").Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n == 1
			})
			var left string
			if err := db.QueryRow("SELECT event_id FROM spool_outbox").Scan(&left); err != nil || left != big.ID || pendingRows(t, db) != 1 {
				t.Fatalf("row left %q (%v), %d pending: want the rejected row %s, pending", left, err, pendingRows(t, db), big.ID)
			}
			if got := len(readTopic(t, addrs, "t")); got != 30 {
				t.Fatalf("%d records, want 30", got)
			}
		})
	}
}

// TestRejectedRowStopsItsKey: a row the broker refuses for good (unknown
// topic with auto-creation off; a record over MaxRecordBytes) is marked
// rejected and shown by ReadStatus; later rows of its key wait, other keys
// go on. Requeue publishes it and its key in order once the topic exists;
// Discard lets its key move on without it.
func TestRejectedRowStopsItsKey(t *testing.T) {
	clusters := []struct {
		name  string
		start func(t *testing.T) []string
	}{
		{"kfake", func(t *testing.T) []string {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(2))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			return c.ListenAddrs()
		}},
		{"spool", func(t *testing.T) []string {
			return []string{spooltest.Start(t, spooltest.WithoutAutoCreate()).Addr()}
		}},
	}
	for _, b := range backends(t) {
		for _, c := range clusters {
			t.Run(b.name+"/"+c.name, func(t *testing.T) {
				testRejected(t, b, c.start(t))
			})
		}
	}
}

type failHooks struct {
	outbox.NopHooks
	mu       sync.Mutex
	rejected []error
}

func (h *failHooks) Failed(_ string, err error, rejected bool) {
	if rejected {
		h.mu.Lock()
		h.rejected = append(h.rejected, err)
		h.mu.Unlock()
	}
}

func testRejected(t *testing.T, b backend, addrs []string) {
	ctx := context.Background()
	db, _ := b.open(t)
	migrate(t, db)
	kafkatest.CreateTopic(t, addrs, "good", 2)
	// Order is per topic and key (as in Kafka): A2 stops A3 in topic
	// missing, not A4 in topic good.
	a1 := addTx(t, db, "good", []string{"A"}, true)
	a2 := addTx(t, db, "missing", []string{"A"}, true)
	a3 := addTx(t, db, "missing", []string{"A"}, true)
	a4 := addTx(t, db, "good", []string{"A"}, true)
	b1 := addTx(t, db, "good", []string{"B"}, true)
	// A record too large for the relay's MaxRecordBytes, then one more of C.
	tx, _ := db.BeginTx(ctx, nil)
	big := newEvent(t, "C", strings.Repeat("x", 4000))
	if err := outbox.Add(ctx, tx, big, outbox.Topic("good")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	c2 := addTx(t, db, "good", []string{"C"}, true)

	hooks := &failHooks{}
	cfg := relayConfig(t, db, addrs)
	cfg.MaxRecordBytes, cfg.Hooks = 2000, hooks
	r := startRelay(t, cfg)
	kafkatest.Eventually(t, 30*time.Second, "two rows rejected", func() bool { return r.Stats().Rejected == 2 })
	kafkatest.Eventually(t, 30*time.Second, "A1, A4 and B1 published", func() bool { return pendingRows(t, db) == 4 })

	st, err := outbox.ReadStatus(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	// Rows that waited on the broker in a round are listed as retrying
	// too; the rejected ones are A2 and C1.
	var rej []outbox.StuckRow
	for _, s := range st.Stuck {
		if s.Rejected {
			rej = append(rej, s)
		}
	}
	st.Stuck = rej
	if len(st.Stuck) != 2 {
		t.Fatalf("rejected rows %+v, want A2 and C1", st.Stuck)
	}
	s := st.Stuck[0]
	if s.EventID != a2[0].id || !s.Rejected || s.Behind != 1 || !strings.Contains(s.LastError, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("stuck row %+v: want A2 rejected for an unknown topic with A3 behind it", s)
	}
	if s := st.Stuck[1]; s.EventID != big.ID || !s.Rejected || s.Behind != 1 || !strings.Contains(s.LastError, "MaxRecordBytes") {
		t.Fatalf("stuck row %+v: want C1 rejected as too large with C2 behind it", s)
	}
	var missing *outbox.TopicBacklog
	for i := range st.Topics {
		if st.Topics[i].Topic == "missing" {
			missing = &st.Topics[i]
		}
	}
	if missing == nil || missing.Pending != 2 || missing.Rejected != 1 {
		t.Fatalf("backlog %+v: want topic missing with A2 rejected and A3 waiting", st.Topics)
	}
	hooks.mu.Lock()
	if len(hooks.rejected) != 2 {
		t.Fatalf("Failed(rejected) hook calls: %v", hooks.rejected)
	}
	hooks.mu.Unlock()

	// The cause fixed, the row requeued: A2 goes, then A3.
	kafkatest.CreateTopic(t, addrs, "missing", 1)
	if n, err := outbox.Requeue(ctx, db, []int64{st.Stuck[0].ID}, outbox.WithDialect(b.dialect)); err != nil || n != 1 {
		t.Fatalf("Requeue = %d, %v; want 1", n, err)
	}
	// C1 given up: C2 goes.
	if n, err := outbox.Discard(ctx, db, []int64{st.Stuck[1].ID}); err != nil || n != 1 {
		t.Fatalf("Discard = %d, %v; want 1", n, err)
	}
	waitDrained(t, db, 30*time.Second)
	committed := append(append(append(append([]sent{}, a1...), a4...), b1...), c2...)
	checkDelivery(t, committed, nil, readTopic(t, addrs, "good"))
	checkDelivery(t, append(a2, a3...), nil, readTopic(t, addrs, "missing"))
}
