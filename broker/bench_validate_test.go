//go:build unix

package broker_test

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
	"github.com/spoolmq/spool/storage"
)

// BenchmarkProduceValidated is BenchmarkProduce with fsync=never, so that
// the broker's CPU (where record validation runs) rather than the disk is
// the limit, for each codec a client may use. The values are 1 KiB of
// JSON-like text (compressible, as events are). Besides wall-clock
// throughput it reports cpu-ns/op, the process's CPU time (user + system,
// client and broker together) per record: on a loaded machine that is the
// steadier measure of what validation costs. Compare with the same
// benchmark at the commit before record validation (docs/benchmarks.md).
func BenchmarkProduceValidated(b *testing.B) {
	value := make([]byte, 0, 1024)
	for i := 0; len(value) < 1024; i++ {
		value = fmt.Appendf(value, `{"id":%d,"type":"order.created","customer":"c-%d","amount":%d},`, i*7919, i*31%1000, i*13%10000)
	}
	value = value[:1024]
	for _, codec := range []struct {
		name string
		c    kgo.CompressionCodec
	}{{"none", kgo.NoCompression()}, {"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()}, {"snappy", kgo.SnappyCompression()}, {"gzip", kgo.GzipCompression()}} {
		b.Run("codec="+codec.name, func(b *testing.B) {
			srv := spooltest.Start(b, spooltest.WithPartitions(8), spooltest.WithConfig(func(c *broker.Config) { c.Fsync = storage.FsyncNever }))
			adm, _ := newAdmin(b, srv)
			createTopic(b, adm, "bench", 8, nil)
			cl := newClient(b, srv, kgo.ProducerLinger(5e6), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
				kgo.MaxBufferedRecords(1<<16), kgo.ProducerBatchCompression(codec.c))
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			var wg sync.WaitGroup
			var errOnce sync.Once
			for range b.N {
				wg.Add(1)
				cl.Produce(context.Background(), &kgo.Record{Topic: "bench", Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						errOnce.Do(func() { b.Error(err) })
					}
					wg.Done()
				})
			}
			wg.Wait()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime returns the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
