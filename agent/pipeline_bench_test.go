package agent

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/event"
)

// BenchmarkPipeline measures the agent's own per-event work without a
// broker: 100,000 records (4 partitions, 1,000 keys) entered as polls of
// 500 records per partition (add: decode, windows, keys), handled by a
// no-op handler on 1 and 16 workers (take, handle, finish, advance). It is
// the part of BenchmarkOverhead that the agent controls, and much less
// noisy on a shared machine.
func BenchmarkPipeline(b *testing.B) {
	const n, parts, perPoll = 100000, 4, 500
	recs := make([][]*kgo.Record, parts)
	for i := range n {
		ev, err := event.New("t", event.Raw, []byte("payload-0123456789"))
		if err != nil {
			b.Fatal(err)
		}
		ev.Source = "/bench"
		r, err := ev.Record("bench")
		if err != nil {
			b.Fatal(err)
		}
		r.Key = fmt.Appendf(nil, "key-%d", i%1000)
		r.Partition = int32(i % parts)
		r.Offset = int64(len(recs[r.Partition]))
		recs[r.Partition] = append(recs[r.Partition], r)
	}
	for _, c := range []int{1, 16} {
		b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var count atomic.Int64
				done := make(chan struct{})
				a, err := New("g", []string{"bench"}, WithConcurrency(c),
					WithHandler("t", func(context.Context, *Message) error {
						if count.Add(1) == n {
							close(done)
						}
						return nil
					}))
				if err != nil {
					b.Fatal(err)
				}
				a.handlerCtx = context.Background()
				var workers sync.WaitGroup
				for range c {
					workers.Go(a.worker)
				}
				for lo := 0; lo < n/parts; lo += perPoll {
					var ft kgo.FetchTopic
					ft.Topic = "bench"
					for p := range parts {
						ft.Partitions = append(ft.Partitions, kgo.FetchPartition{
							Partition: int32(p), Records: recs[p][lo:min(lo+perPoll, len(recs[p]))]})
					}
					a.add(kgo.Fetches{{Topics: []kgo.FetchTopic{ft}}})
				}
				<-done
				a.mu.Lock()
				a.mu.stopping = true
				a.halting.Store(true)
				a.mu.work.Broadcast()
				a.mu.Unlock()
				workers.Wait()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
