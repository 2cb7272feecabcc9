package agent_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// TestWindowBackPressure: a partition whose first event is stuck in its
// handler fetches no more than its window, while the other partition is
// consumed to the end (the stuck partition is paused, not the whole
// consumer); once the stuck event finishes, the paused partition resumes and
// everything is handled and committed.
func TestWindowBackPressure(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		const topic, group, window, perPart = "win", "win-g", 8, 40
		kafkatest.CreateTopic(t, addrs, topic, 2)
		// One record per batch and per fetch, so the window is what bounds
		// how far the stuck partition gets.
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		want := map[int32]int64{}
		for i := range perPart {
			for part := range int32(2) {
				ev, err := event.New("t", event.Raw, fmt.Sprintf("p%d-%d", part, i))
				if err != nil {
					t.Fatal(err)
				}
				ev.Source, ev.Key = "/test", ev.Data
				r, err := ev.Record(topic)
				if err != nil {
					t.Fatal(err)
				}
				r.Partition = part
				if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
					t.Fatal(err)
				}
				want[part] = r.Offset + 1
			}
		}

		release := make(chan struct{})
		var releaseOnce sync.Once
		defer releaseOnce.Do(func() { close(release) })
		var handled [2]atomic.Int64
		var mu sync.Mutex
		seen := map[string]bool{}
		r := start(t, group, []string{topic}, append(fastOpts(addrs),
			agent.WithClientOptions(kgo.FetchMaxPartitionBytes(1)),
			agent.WithWindow(window), agent.WithConcurrency(4),
			agent.WithHandler("t", func(ctx context.Context, m *agent.Message) error {
				id := string(m.Data)
				if id == "p0-0" {
					select {
					case <-release:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				mu.Lock()
				seen[id] = true
				mu.Unlock()
				if strings.HasPrefix(id, "p1-") {
					handled[1].Add(1)
				} else {
					handled[0].Add(1)
				}
				return nil
			}))...)

		kafkatest.Eventually(t, 30*time.Second, "the free partition is consumed to the end", func() bool {
			return handled[1].Load() == perPart
		})
		kafkatest.Eventually(t, 30*time.Second, "the stuck partition fills its window", func() bool {
			return handled[0].Load() >= window-1
		})
		// The stuck event holds the window's start: at most window records
		// of its partition were fetched, one of them the stuck one. Allow
		// one more for a fetch that was already under way.
		if n := handled[0].Load(); n > window {
			t.Fatalf("stuck partition handled %d events beyond its head, window %d", n, window)
		}
		releaseOnce.Do(func() { close(release) })
		waitCommitted(t, addrs, group, topic, want)
		r.shutdown(t)
		mu.Lock()
		defer mu.Unlock()
		for i := range perPart {
			for part := range 2 {
				if id := fmt.Sprintf("p%d-%d", part, i); !seen[id] {
					t.Errorf("%s not handled", id)
				}
			}
		}
	})
}
