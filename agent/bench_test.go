package agent_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// benchTopic fills a 4-partition kfake topic with n events over 1,000 keys.
func benchTopic(b *testing.B, n int) []string {
	addrs := kafkatest.StartKfake(b)
	kafkatest.CreateTopic(b, addrs, "bench", 4)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	for i := range n {
		ev, _ := event.New("t", event.Raw, []byte("payload-0123456789"))
		ev.Source = "/bench"
		r, _ := ev.Record("bench")
		r.Key = fmt.Appendf(nil, "key-%d", i%1000)
		cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	return addrs
}

// plainConsume is the baseline: a franz-go group consumer's poll loop that
// handles records one at a time (perPartition: one goroutine per partition
// in each poll, the usual way to parallelise a plain consumer).
func plainConsume(b *testing.B, addrs []string, group string, n int, perPartition bool, h func(*kgo.Record)) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics("bench"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	seen := 0
	for seen < n {
		fs := cl.PollFetches(context.Background())
		if perPartition {
			var wg sync.WaitGroup
			fs.EachPartition(func(p kgo.FetchTopicPartition) {
				wg.Go(func() { p.EachRecord(h) })
				seen += len(p.Records)
			})
			wg.Wait()
		} else {
			fs.EachRecord(func(r *kgo.Record) { h(r); seen++ })
		}
	}
}

func agentConsume(b *testing.B, addrs []string, group string, n, concurrency int, h func()) {
	var count atomic.Int64
	done := make(chan struct{})
	a, err := agent.New(group, []string{"bench"}, agent.WithBrokers(addrs...), agent.WithConcurrency(concurrency),
		agent.WithClientOptions(kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())),
		agent.WithHandler("t", func(context.Context, *agent.Message) error {
			h()
			if count.Add(1) == int64(n) {
				close(done)
			}
			return nil
		}))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	<-done
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkOverhead: consuming 20,000 events with a no-op handler, plain
// franz-go poll loop vs the agent. One op = one pass over all events by a
// fresh group (join included).
func BenchmarkOverhead(b *testing.B) {
	const n = 20000
	addrs := benchTopic(b, n)
	b.Run("plain", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			plainConsume(b, addrs, fmt.Sprintf("plain-%d", i), n, false, func(*kgo.Record) {})
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	for _, c := range []int{1, 16} {
		b.Run(fmt.Sprintf("agent-c%d", c), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				agentConsume(b, addrs, fmt.Sprintf("agent-%d-%d", c, i), n, c, func() {})
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkSlowHandler: 2,000 events on 4 partitions and 1,000 keys with a
// 1 ms handler: one at a time (plain loop), one at a time per partition,
// and the agent 64-way key-parallel.
func BenchmarkSlowHandler(b *testing.B) {
	const n = 2000
	addrs := benchTopic(b, n)
	work := func() { time.Sleep(time.Millisecond) }
	b.Run("plain-serial", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			plainConsume(b, addrs, fmt.Sprintf("ps-%d", i), n, false, func(*kgo.Record) { work() })
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("plain-per-partition", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			plainConsume(b, addrs, fmt.Sprintf("pp-%d", i), n, true, func(*kgo.Record) { work() })
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("agent-c64", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			agentConsume(b, addrs, fmt.Sprintf("a64-%d", i), n, 64, work)
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
