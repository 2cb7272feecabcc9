package outbox_test

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
)

// TestSeveralRelays: two and three relays, each with a database handle of
// its own (as separate processes would have), share one outbox while
// writers commit events of many keys; relays are stopped and started at
// random points of the run. Every committed event is published, the first
// copy of each in commit order per key, none of the rolled-back ones; with
// all relays up, the buckets are spread over them; no two relays ever have
// records of one bucket in flight at once (checkExclusive).
func TestSeveralRelays(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprint("relays=", n), func(t *testing.T) {
			for _, b := range backends(t) {
				t.Run(b.name, func(t *testing.T) {
					kafkatest.Run(t, func(t *testing.T, addrs []string) { testSeveralRelays(t, b, addrs, n) })
				})
			}
		})
	}
}

func testSeveralRelays(t *testing.T, b backend, addrs []string, n int) {
	db, dsn := b.open(t)
	migrate(t, db)
	kafkatest.CreateTopic(t, addrs, "multi", 4)
	open := func() *sql.DB { return openDB(t, b.name, dsn) }
	relays := make([]*outbox.Relay, n)
	spans := newSpanLog()
	start := func(i int) {
		cfg := relayConfig(t, open(), addrs)
		cfg.ID = fmt.Sprintf("relay-%d-%d", i, time.Now().UnixNano())
		cfg.LeaseTTL = 3 * time.Second // lease rounds every second
		relays[i] = startRecordedRelay(t, cfg, spans.hook(cfg.ID))
	}
	for i := range n {
		start(i)
	}
	// All up: the buckets spread over every relay.
	kafkatest.Eventually(t, 30*time.Second, "buckets spread over the relays", func() bool {
		total := 0
		for _, r := range relays {
			st := r.Stats()
			if st.Buckets == 0 || st.Buckets > (outbox.NumBuckets+n-1)/n {
				return false
			}
			total += st.Buckets
		}
		return total == outbox.NumBuckets
	})

	// Writers signal every few transactions; each signal stops or starts
	// a random relay, keeping at least one running.
	ticks := make(chan struct{}, 1000)
	var ctl sync.WaitGroup
	ctl.Add(1)
	stop := make(chan struct{})
	go func() {
		defer ctl.Done()
		rng := rand.New(rand.NewPCG(7, uint64(n)))
		for {
			select {
			case <-stop:
				return
			case <-ticks:
			}
			i := rng.IntN(n)
			running := 0
			for _, r := range relays {
				if r != nil {
					running++
				}
			}
			switch {
			case relays[i] == nil:
				start(i)
			case running > 1:
				relays[i].Close()
				relays[i] = nil
			}
		}
	}()
	committed, rolledBack := writeMany(t, db, "multi", 60, 4, 40, uint64(n), ticks, nil)
	close(stop)
	ctl.Wait()
	for i := range relays {
		if relays[i] == nil {
			start(i)
		}
	}
	waitDrained(t, db, 60*time.Second)
	dups := checkDelivery(t, committed, rolledBack, readTopic(t, addrs, "multi"))
	nspans, handovers := checkExclusive(t, spans)
	t.Logf("%d events, %d duplicates (a relay closed with records in flight, or a takeover); %d publishing spans, %d handovers of a bucket between relays, none overlapping",
		len(committed), dups, nspans, handovers)
}
