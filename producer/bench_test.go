//go:build unix

package producer_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/producer"
	"github.com/spoolmq/spool/spooltest"
)

// BenchmarkPublish measures publish throughput of 1 KiB events against an
// in-process Spool broker (fsync=always), without and with the fallback
// spool enabled (the broker is up, so the spool stays empty: this is the
// cost of having it). async: PublishAsync from one goroutine; sync:
// Publish from 64 goroutines.
func BenchmarkPublish(b *testing.B) {
	srv := spooltest.Start(b, spooltest.WithPartitions(8))
	addrs := []string{srv.Addr()}
	kafkatest.CreateTopic(b, addrs, "bench", 8)
	payload := make([]byte, 1024)
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = []byte("customer-" + strconv.Itoa(i))
	}
	for _, mode := range []string{"async", "sync"} {
		for _, spool := range []bool{false, true} {
			b.Run(fmt.Sprintf("mode=%s/spool=%v", mode, spool), func(b *testing.B) {
				opts := []producer.Option{producer.WithBrokers(addrs...), producer.WithSource("/bench")}
				if spool {
					opts = append(opts, producer.WithSpool(b.TempDir(), 1<<30))
				}
				p, err := producer.New(opts...)
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				ctx := context.Background()
				newEvent := func(i int) *event.Event {
					ev, err := event.New("bench.event", event.Raw, payload)
					if err != nil {
						b.Fatal(err)
					}
					ev.Key = keys[i%len(keys)]
					return ev
				}
				b.SetBytes(int64(len(payload)))
				b.ReportAllocs()
				cpu0 := cpuTime(b)
				b.ResetTimer()
				if mode == "async" {
					var wg sync.WaitGroup
					wg.Add(b.N)
					for i := range b.N {
						p.PublishAsync(ctx, "bench", newEvent(i), func(r producer.Result, err error) {
							if err != nil || r.Spooled {
								b.Errorf("spooled %v, %v", r.Spooled, err)
							}
							wg.Done()
						})
					}
					wg.Wait()
				} else {
					b.SetParallelism(32) // 32 goroutines per core
					var n sync.Mutex
					i := 0
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							n.Lock()
							i++
							j := i
							n.Unlock()
							if r, err := p.Publish(ctx, "bench", newEvent(j)); err != nil || r.Spooled {
								b.Errorf("spooled %v, %v", r.Spooled, err)
							}
						}
					})
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
				// CPU time of the process (producer and in-process broker)
				// per event: steadier than wall time on a shared machine.
				b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// cpuTime returns the process's user + system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
