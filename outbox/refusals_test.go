package outbox_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
)

// refuse answers every partition of a produce request with code.
func refuse(req kmsg.Request, code int16) kmsg.Response {
	pr := req.(*kmsg.ProduceRequest)
	resp := pr.ResponseKind().(*kmsg.ProduceResponse)
	resp.Version = pr.Version
	for _, rt := range pr.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// TestRetriableRefusals: a kfake broker answers produce requests with
// NOT_ENOUGH_REPLICAS and REQUEST_TIMED_OUT until the relay has reported a
// retry of its own (the client's internal retries ran past
// PublishTimeout), then is slow (each produce held back past
// PublishTimeout) for a while, then healthy. The relay rejects nothing, and every committed event is
// published, in commit order per key. kfake only: Spool's broker has no
// fault injection; TestBrokerDown stops it outright.
func TestRetriableRefusals(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "refused"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			addrs := c.ListenAddrs()
			db, _ := b.open(t)
			migrate(t, db)
			hooks := &retryHooks{retries: make(chan error, 1)}
			cfg := relayConfig(t, db, addrs)
			cfg.Hooks = hooks

			var refusing, slow atomic.Bool
			var refused, delayed atomic.Int64
			refusing.Store(true)
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				switch {
				case refusing.Load():
					code := kerr.NotEnoughReplicas.Code
					if refused.Add(1)%2 == 0 {
						code = kerr.RequestTimedOut.Code
					}
					return refuse(req, code), nil, true
				case slow.Load():
					delayed.Add(1)
					wake := time.After(1500 * time.Millisecond) // slower than PublishTimeout: a slow broker, not a synchronisation
					c.SleepControl(func() { <-wake })
				}
				return nil, nil, false
			})

			var committed []sent
			for range 5 {
				committed = append(committed, addTx(t, db, "refused", []string{"a", "b", "c", "a", "b", "a"}, true)...)
			}
			r := startRelay(t, cfg)
			select {
			case err := <-hooks.retries:
				t.Logf("reported: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("no retryable failure reported while the broker refuses")
			}
			if pendingRows(t, db) == 0 {
				t.Fatal("rows published while every produce was refused")
			}
			slow.Store(true)
			refusing.Store(false)
			for range 5 {
				committed = append(committed, addTx(t, db, "refused", []string{"a", "c", "b", "c"}, true)...)
			}
			kafkatest.Eventually(t, 30*time.Second, "a produce request held back", func() bool { return delayed.Load() >= 1 })
			slow.Store(false)
			waitDrained(t, db, 60*time.Second)
			if st := r.Stats(); st.Rejected != 0 || st.Retried == 0 {
				t.Fatalf("relay stats %+v: want no rejected rows and some retried", st)
			}
			dups := checkDelivery(t, committed, nil, readTopic(t, addrs, "refused"))
			t.Logf("%d refused, %d delayed produce requests; %d events, %d duplicates", refused.Load(), delayed.Load(), len(committed), dups)
		})
	}
}

// TestBrokerMessageTooLarge: the topic's max.message.bytes is below one
// row's size, while the relay's own size check (MaxRecordBytes) lets it
// through, so the broker itself answers MESSAGE_TOO_LARGE. That row is
// rejected for good, shown by ReadStatus (what `spool outbox status`
// prints) with the rows behind it; its key stops, the other keys are all
// published in commit order, small rows batched together included.
func TestBrokerMessageTooLarge(t *testing.T) {
	each(t, func(t *testing.T, db *sql.DB, addrs []string) {
		kafkatest.CreateTopicWithConfigs(t, addrs, "small", 2, map[string]*string{"max.message.bytes": ptr("4096")})
		cfg := relayConfig(t, db, addrs)
		r := startRelay(t, cfg)

		ctx := context.Background()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Random bytes: the relay compresses, and the limit is on the
		// compressed batch.
		ev, err := event.New("test.happened", event.Raw, randomText(20000))
		if err != nil {
			t.Fatal(err)
		}
		ev.Source, ev.Key = "/outbox-test", []byte("big")
		if err := outbox.Add(ctx, tx, *ev, outbox.Topic("small")); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		bigID := ev.ID
		behind := addTx(t, db, "small", []string{"big", "big"}, true)
		var committed []sent
		for range 20 {
			committed = append(committed, addTx(t, db, "small", []string{"a", "b", "c", "d", "e"}, true)...)
		}

		deadline := time.Now().Add(30 * time.Second)
		for !(pendingRows(t, db) == 3 && r.Stats().Rejected == 1) {
			if time.Now().After(deadline) {
				st, _ := outbox.ReadStatus(ctx, db)
				t.Fatalf("pending %d, stats %+v, status %+v", pendingRows(t, db), r.Stats(), st)
			}
			time.Sleep(10 * time.Millisecond)
		}
		st, err := outbox.ReadStatus(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Stuck) != 1 {
			t.Fatalf("stuck rows %+v, want the big row only", st.Stuck)
		}
		s := st.Stuck[0]
		if !s.Rejected || s.EventID != bigID || s.Behind != int64(len(behind)) || !strings.Contains(s.LastError, "MESSAGE_TOO_LARGE") {
			t.Fatalf("stuck row %+v: want event %s rejected with MESSAGE_TOO_LARGE, %d rows behind", s, bigID, len(behind))
		}
		records := readTopic(t, addrs, "small")
		for _, g := range records {
			if g.key == "big" {
				t.Fatalf("event %s of the stopped key was published", g.id)
			}
		}
		checkDelivery(t, committed, nil, records)
	})
}

// randomText returns n incompressible characters.
func randomText(n int) string {
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(rand.Text())
	}
	return b.String()
}

func ptr[T any](v T) *T { return &v }
