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

// benchClientOpts are the client options both sides of every comparison
// use: the same seeds, fetch settings (franz-go's defaults) and start
// offset. onAssigned is called when the (single) member gets its partitions.
func benchClientOpts(addrs []string, onAssigned func()) []kgo.Opt {
	var once sync.Once
	return []kgo.Opt{
		kgo.SeedBrokers(addrs...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { once.Do(onAssigned) }),
	}
}

// benchTimeout bounds one op: a consumer that stops making progress fails
// the benchmark with what it saw instead of hanging it.
const benchTimeout = 60 * time.Second

// timedOp runs one op of a consumer benchmark: start (timer stopped: client
// creation, group join and sync are not measured), then the timer runs from
// the moment the partitions are assigned until the n-th event is handled
// (done is closed), then stop (not measured: commit, leave, close). Both
// sides of a comparison pay the same fetch-offset round trips after the
// assignment. progress reports how far a stuck op got.
func timedOp(b *testing.B, start func(onAssigned func()) (done <-chan struct{}, stop func()), progress func() int64) {
	b.StopTimer()
	assigned := make(chan struct{})
	done, stop := start(func() { close(assigned) })
	deadline := time.NewTimer(benchTimeout)
	defer deadline.Stop()
	select {
	case <-assigned:
	case <-deadline.C:
		b.Fatalf("no partitions assigned within %v", benchTimeout)
	}
	b.StartTimer()
	select {
	case <-done:
	case <-deadline.C:
		b.Fatalf("op stuck: %d events handled after %v", progress(), benchTimeout)
	}
	b.StopTimer()
	stop()
	b.StartTimer()
}

// plainConsume is the baseline: a franz-go group consumer's poll loop that
// handles records one at a time (perPartition: one goroutine per partition
// in each poll, the usual way to parallelise a plain consumer).
func plainConsume(b *testing.B, addrs []string, group string, n int, perPartition bool, h func(*kgo.Record)) {
	var seen atomic.Int64
	timedOp(b, func(onAssigned func()) (<-chan struct{}, func()) {
		cl, err := kgo.NewClient(append(benchClientOpts(addrs, onAssigned),
			kgo.ConsumerGroup(group), kgo.ConsumeTopics("bench"))...)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			for seen.Load() < int64(n) {
				fs := cl.PollFetches(ctx)
				if ctx.Err() != nil {
					return
				}
				if perPartition {
					var wg sync.WaitGroup
					fs.EachPartition(func(p kgo.FetchTopicPartition) {
						wg.Go(func() { p.EachRecord(h) })
						seen.Add(int64(len(p.Records)))
					})
					wg.Wait()
				} else {
					k := 0
					fs.EachRecord(func(r *kgo.Record) { h(r); k++ })
					seen.Add(int64(k))
				}
			}
			close(done)
		}()
		return done, func() { cancel(); <-exited; cl.Close() }
	}, seen.Load)
}

// agentConsume runs an agent with the same client options as plainConsume
// until its handler has been called n times.
func agentConsume(b *testing.B, addrs []string, group string, n, concurrency int, h func()) {
	var count atomic.Int64
	timedOp(b, func(onAssigned func()) (<-chan struct{}, func()) {
		done := make(chan struct{})
		a, err := agent.New(group, []string{"bench"}, agent.WithConcurrency(concurrency),
			agent.WithClientOptions(benchClientOpts(addrs, onAssigned)...),
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
		return done, func() {
			cancel()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		}
	}, count.Load)
}

// groupSeq makes every op's group name unique within the process: with
// -count, sub-benchmarks run again on the same cluster, and a reused group
// would resume from its committed offsets and never see n events.
var groupSeq atomic.Int64

func newGroup(prefix string) string { return fmt.Sprintf("%s-%d", prefix, groupSeq.Add(1)) }

func reportEvents(b *testing.B, n int) {
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkOverhead: consuming 100,000 events (4 partitions, 1,000 keys)
// with a no-op handler, plain franz-go poll loop (not touching the records,
// and decoding the envelope) vs the agent with 1 and 16 handlers in flight. Each op is a fresh group reading the topic from the
// start; only the consuming is timed (from partition assignment to the last
// event handled), not the group join or the shutdown.
func BenchmarkOverhead(b *testing.B) {
	const n = 100000
	addrs := benchTopic(b, n)
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			plainConsume(b, addrs, newGroup("plain"), n, false, func(*kgo.Record) {})
		}
		reportEvents(b, n)
	})
	// plain-decode also does what any event consumer does before it can call
	// a handler, and what the agent does for each record: decode the
	// envelope (event.FromRecord) and look up the handler by ce_type.
	b.Run("plain-decode", func(b *testing.B) {
		handlers := map[string]func(*event.Event){"t": func(*event.Event) {}}
		for b.Loop() {
			plainConsume(b, addrs, newGroup("plain-decode"), n, false, func(r *kgo.Record) {
				ev, err := event.FromRecord(r)
				if err != nil {
					b.Error(err)
					return
				}
				if h := handlers[ev.Type]; h != nil {
					h(ev)
				}
			})
		}
		reportEvents(b, n)
	})
	for _, c := range []int{1, 16} {
		b.Run(fmt.Sprintf("agent-c%d", c), func(b *testing.B) {
			for b.Loop() {
				agentConsume(b, addrs, newGroup(fmt.Sprintf("agent-c%d", c)), n, c, func() {})
			}
			reportEvents(b, n)
		})
	}
}

// BenchmarkSlowHandler: 2,000 events on 4 partitions and 1,000 keys with a
// 1 ms handler: one at a time (plain loop), one at a time per partition,
// and the agent 64-way key-parallel. Timed as in BenchmarkOverhead.
func BenchmarkSlowHandler(b *testing.B) {
	const n = 2000
	addrs := benchTopic(b, n)
	work := func() { time.Sleep(time.Millisecond) }
	b.Run("plain-serial", func(b *testing.B) {
		for b.Loop() {
			plainConsume(b, addrs, newGroup("ps"), n, false, func(*kgo.Record) { work() })
		}
		reportEvents(b, n)
	})
	b.Run("plain-per-partition", func(b *testing.B) {
		for b.Loop() {
			plainConsume(b, addrs, newGroup("pp"), n, true, func(*kgo.Record) { work() })
		}
		reportEvents(b, n)
	})
	b.Run("agent-c64", func(b *testing.B) {
		for b.Loop() {
			agentConsume(b, addrs, newGroup("a64"), n, 64, work)
		}
		reportEvents(b, n)
	})
}
