package lookback_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

// fullStore fails every Append while full is set, as a store on a full
// disk does (SQLite answers SQLITE_FULL and rolls the transaction back).
type fullStore struct {
	lookback.Store
	full     atomic.Bool
	failures atomic.Int64
}

var errDiskFull = errors.New("database or disk is full (SQLITE_FULL)")

func (s *fullStore) Append(ctx context.Context, rs []lookback.Record) error {
	if s.full.Load() {
		s.failures.Add(1)
		return errDiskFull
	}
	return s.Store.Append(ctx, rs)
}

// A store that cannot write stops ingestion: nothing is committed past
// what is archived, the error is visible, and when space returns every
// event is archived once.
func TestDiskFullPausesIngestion(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "busy", 2)
		inner, err := lookback.OpenPebble(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer inner.Close()
		st := &fullStore{Store: inner}
		svc := startWith(t, addrs, st, nil)
		batch := func(from int) []*kgo.Record {
			var rs []*kgo.Record
			for i := from; i < from+50; i++ {
				rs = append(rs, &kgo.Record{Topic: "busy", Key: []byte(fmt.Sprint(i % 5)), Value: []byte(fmt.Sprint(i))})
			}
			return rs
		}
		produce(t, addrs, batch(0)...)
		waitEvents(t, inner, 50)
		kafkatest.Eventually(t, 30*time.Second, "the first commit", func() bool {
			c := kafkatest.Committed(t, addrs, "spool-lookback", "busy")
			return c[0]+c[1] == 50
		})

		st.full.Store(true)
		produce(t, addrs, batch(50)...)
		kafkatest.Eventually(t, 30*time.Second, "failed appends", func() bool { return st.failures.Load() >= 2 })
		if err := svc.LastError(); !errors.Is(err, errDiskFull) {
			t.Fatalf("LastError while full: %v", err)
		}
		c := kafkatest.Committed(t, addrs, "spool-lookback", "busy")
		if c[0]+c[1] != 50 {
			t.Fatalf("committed %v while the store could not write, want the first 50 only", c)
		}
		if s, _ := inner.Stats(context.Background()); s.Events != 50 {
			t.Fatalf("%d events archived while full", s.Events)
		}

		st.full.Store(false)
		waitEvents(t, inner, 100)
		kafkatest.Eventually(t, 30*time.Second, "commits to resume", func() bool {
			c := kafkatest.Committed(t, addrs, "spool-lookback", "busy")
			return c[0]+c[1] == 100
		})
		if err := svc.LastError(); err != nil {
			t.Fatalf("LastError after recovery: %v", err)
		}
		p, err := inner.Search(context.Background(), lookback.Query{Topic: "busy", Limit: 1000})
		if err != nil || len(p.Events) != 100 {
			t.Fatalf("after recovery: %d events, %v", len(p.Events), err)
		}
	})
}
