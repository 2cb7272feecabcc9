package agent_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/producer"
)

// TestRebalanceNoLoss: events are published while a second agent joins the
// group and later leaves; every event is handled at least once, and the
// group's commits reach the end of every partition. The publisher holds its
// second half back until the second agent has partitions: unpaced, it could
// finish (and the first agent handle everything) before the join completes,
// leaving the second agent nothing to handle.
func TestRebalanceNoLoss(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		const topic, group, total = "reb", "reb-g", 3000
		kafkatest.CreateTopic(t, addrs, topic, 6)
		var mu sync.Mutex
		seen := map[string]int{}
		var handled atomic.Int64
		h := agent.WithHandler("t", func(_ context.Context, m *agent.Message) error {
			mu.Lock()
			seen[string(m.Data)]++
			mu.Unlock()
			handled.Add(1)
			return nil
		})
		opts := append(fastOpts(addrs), h, agent.WithConcurrency(8), agent.WithWindow(32))

		// Publish in the background, in a steady stream.
		p, err := producer.New(producer.WithBrokers(addrs...), producer.WithSource("/test"))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		var pubMu sync.Mutex
		endsByPart := map[int32]int64{}
		var published atomic.Int64
		pubDone := make(chan error, 1)
		bAssigned := make(chan struct{})
		releasePub := sync.OnceFunc(func() { close(bAssigned) })
		defer releasePub() // a failed test lets the publisher finish
		go func() {
			for i := range total {
				if i == total/2 {
					<-bAssigned
				}
				ev, _ := event.New("t", event.Raw, fmt.Sprintf("e%d", i))
				ev.Key = fmt.Appendf(nil, "k%d", i%100)
				r, err := p.Publish(context.Background(), topic, ev)
				if err != nil {
					pubDone <- err
					return
				}
				pubMu.Lock()
				endsByPart[r.Partition] = max(endsByPart[r.Partition], r.Offset+1)
				pubMu.Unlock()
				published.Add(1)
			}
			pubDone <- nil
		}()

		a := start(t, group, []string{topic}, opts...)
		kafkatest.Eventually(t, 30*time.Second, "first agent handles 500", func() bool { return handled.Load() >= 500 })
		b := start(t, group, []string{topic}, opts...)
		kafkatest.Eventually(t, 60*time.Second, "both agents assigned partitions", func() bool {
			return membersWithPartitions(t, addrs, group, topic) == 2
		})
		releasePub()
		kafkatest.Eventually(t, 60*time.Second, "second agent handles 200", func() bool { return b.a.Stats().Succeeded >= 200 })
		b.shutdown(t)
		if err := <-pubDone; err != nil {
			t.Fatal(err)
		}
		pubMu.Lock()
		want := endsByPart
		pubMu.Unlock()
		waitCommitted(t, addrs, group, topic, want)
		a.shutdown(t)

		mu.Lock()
		defer mu.Unlock()
		dups := 0
		for i := range total {
			n := seen[fmt.Sprintf("e%d", i)]
			if n == 0 {
				t.Fatalf("event e%d lost", i)
			}
			dups += n - 1
		}
		t.Logf("agent a handled %d, b %d, redeliveries %d", a.a.Stats().Succeeded, b.a.Stats().Succeeded, dups)
	})
}
