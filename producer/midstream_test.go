package producer_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/dedupe"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/spooltest"
)

// TestSpoolBrokerDownMidStream: a producer with a spool publishes to a
// broker that is up; the broker is stopped mid-stream, so records not yet
// sent pass the deadline and are spooled, and later ones go to the spool
// behind them (records in a request without an answer wait for the broker
// instead: in some runs every publisher is blocked so and nothing is
// spooled; the run logs how many were); the broker comes back on its data. Everything acknowledged
// (sent or spooled) is in the topic, the first copy of each event in
// acknowledgement order per key, and a consumer with a dedupe store sees
// each ce_id once. Spool only: kfake loses its records when stopped.
func TestSpoolBrokerDownMidStream(t *testing.T) {
	ctx := context.Background()
	srv := spooltest.Start(t, spooltest.WithPartitions(4))
	addr := srv.Addr()
	kafkatest.CreateTopic(t, []string{addr}, "orders", 4)
	p := newSpooling(t, addr, t.TempDir(), 64<<20)

	const keys = 4
	var acked, spooled atomic.Int64
	var mu sync.Mutex
	want := map[string][]string{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("cust-%d", k)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ev := keyed(t, key, i)
				res, err := p.Publish(ctx, "orders", ev)
				if err != nil {
					t.Errorf("publish %s/%d: %v", key, i, err)
					return
				}
				mu.Lock()
				want[key] = append(want[key], ev.ID)
				mu.Unlock()
				acked.Add(1)
				if res.Spooled {
					spooled.Add(1)
				}
			}
		}()
	}
	waitAcked := func(what string, n int64) {
		t.Helper()
		kafkatest.Eventually(t, 60*time.Second, what, func() bool { return acked.Load() >= n || t.Failed() })
	}
	waitAcked("events sent with the broker up", 200)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	down := acked.Load()
	// A publisher whose record went out in a request the broker never
	// answered cannot spool it: the idempotent client keeps such a record
	// until the broker is back (docs/producer.md), so every publisher may
	// be blocked that way. Wait for spooling while the broker is down, but
	// only so long.
	for deadline := time.Now().Add(15 * time.Second); spooled.Load() < 100 && time.Now().Before(deadline) && !t.Failed(); {
		time.Sleep(5 * time.Millisecond) // a bounded poll: its end is not a failure
	}
	srv.Restart(t)
	if srv.Addr() != addr {
		close(stop)
		wg.Wait()
		t.Fatalf("the broker came back on %s, not its reserved address (spooltest.Restart)", srv.Addr())
	}
	waitAcked("events published after the broker is back", acked.Load()+100)
	close(stop)
	wg.Wait()
	waitEmpty(t, p)
	t.Logf("%d events acknowledged (%d before the stop), %d of them spooled", acked.Load(), down, spooled.Load())

	records := kafkatest.ReadAll(t, []string{addr}, "orders")
	firsts := map[string][]string{}
	seen := map[string]bool{}
	dups := 0
	for _, r := range records {
		id := event.IDOf(r)
		if seen[id] {
			dups++
			continue
		}
		seen[id] = true
		firsts[string(r.Key)] = append(firsts[string(r.Key)], id)
	}
	total := 0
	for k, ids := range want {
		total += len(ids)
		if !slices.Equal(firsts[k], ids) {
			t.Fatalf("key %s: %d distinct events in the topic, %d acknowledged, or out of order", k, len(firsts[k]), len(ids))
		}
	}
	t.Logf("%d records, %d duplicates", len(records), dups)
	consumeEachOnce(t, []string{addr}, "orders", total)
}

// consumeEachOnce runs an agent with a dedupe store over topic and
// asserts it handles every event exactly once.
func consumeEachOnce(t *testing.T, addrs []string, topic string, events int) {
	t.Helper()
	var mu sync.Mutex
	handled := map[string]int{}
	h := dedupe.Wrap(dedupe.NewMemory(100000, 0), func(_ context.Context, m *agent.Message) error {
		mu.Lock()
		handled[m.ID]++
		mu.Unlock()
		return nil
	})
	a, err := agent.New("midstream-check", []string{topic}, agent.WithBrokers(addrs...),
		agent.WithClientOptions(kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())),
		agent.WithConcurrency(1), agent.WithHandler("order.placed", h))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	kafkatest.Eventually(t, 60*time.Second, "every event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == events
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for id, n := range handled {
		if n != 1 {
			t.Fatalf("event %s handled %d times through dedupe", id, n)
		}
	}
}
