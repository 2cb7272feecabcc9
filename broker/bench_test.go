package broker_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/spooltest"
)

// BenchmarkProduce measures produce throughput through the whole broker
// (franz-go client, loopback TCP, storage at fsync=always): 1 KiB records
// over 8 partitions, acks=all, linger 5ms, as `spool bench` does.
func BenchmarkProduce(b *testing.B) {
	srv := spooltest.Start(b, spooltest.WithPartitions(8))
	adm, _ := newAdmin(b, srv)
	createTopic(b, adm, "bench", 8, nil)
	cl := newClient(b, srv, kgo.ProducerLinger(5e6), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MaxBufferedRecords(1<<16))
	value := make([]byte, 1024)
	rand.Read(value)
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	b.ResetTimer()
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
}

// BenchmarkFetch measures consume throughput of records produced before
// the timer starts.
func BenchmarkFetch(b *testing.B) {
	srv := spooltest.Start(b)
	adm, _ := newAdmin(b, srv)
	createTopic(b, adm, "bench", 8, nil)
	pcl := newClient(b, srv, kgo.ProducerLinger(5e6), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MaxBufferedRecords(1<<16))
	value := make([]byte, 1024)
	rand.Read(value)
	var wg sync.WaitGroup
	for range b.N {
		wg.Add(1)
		pcl.Produce(context.Background(), &kgo.Record{Topic: "bench", Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	b.ResetTimer()
	cl := newClient(b, srv, kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	n := 0
	for n < b.N {
		fs := cl.PollFetches(context.Background())
		fs.EachError(func(_ string, _ int32, err error) { b.Fatal(err) })
		n += fs.NumRecords()
	}
}

// BenchmarkProduceKfake is BenchmarkProduce against franz-go's kfake, for
// comparison: in memory, and on disk with SyncWrites.
func BenchmarkProduceKfake(b *testing.B) {
	for _, syncWrites := range []bool{false, true} {
		name := "memory"
		if syncWrites {
			name = "syncwrites"
		}
		b.Run(name, func(b *testing.B) {
			opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(8, "bench")}
			if syncWrites {
				opts = append(opts, kfake.DataDir(b.TempDir()), kfake.SyncWrites())
			}
			c, err := kfake.NewCluster(opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(5e6), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MaxBufferedRecords(1<<16))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			value := make([]byte, 1024)
			rand.Read(value)
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range b.N {
				wg.Add(1)
				cl.Produce(context.Background(), &kgo.Record{Topic: "bench", Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
					wg.Done()
				})
			}
			wg.Wait()
		})
	}
}

// BenchmarkFetchKfake is BenchmarkFetch against franz-go's kfake (in memory).
func BenchmarkFetchKfake(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(8, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	pcl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(5e6), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MaxBufferedRecords(1<<16))
	if err != nil {
		b.Fatal(err)
	}
	defer pcl.Close()
	value := make([]byte, 1024)
	rand.Read(value)
	var wg sync.WaitGroup
	for range b.N {
		wg.Add(1)
		pcl.Produce(context.Background(), &kgo.Record{Topic: "bench", Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	b.ResetTimer()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	n := 0
	for n < b.N {
		fs := cl.PollFetches(context.Background())
		fs.EachError(func(_ string, _ int32, err error) { b.Fatal(err) })
		n += fs.NumRecords()
	}
}

// BenchmarkProduceCompressionType is BenchmarkProduce with the producer
// compressing with snappy (kgo's default) into a topic whose
// compression.type is producer (the default: stored as sent, the baseline)
// or a codec the broker recompresses every batch into.
func BenchmarkProduceCompressionType(b *testing.B) {
	for _, ct := range []string{"producer", "zstd", "lz4", "gzip"} {
		b.Run("compression.type="+ct, func(b *testing.B) {
			srv := spooltest.Start(b, spooltest.WithPartitions(8))
			adm, _ := newAdmin(b, srv)
			createTopic(b, adm, "bench", 8, map[string]*string{"compression.type": &ct})
			cl := newClient(b, srv, kgo.ProducerLinger(5e6), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MaxBufferedRecords(1<<16),
				kgo.ProducerBatchCompression(kgo.SnappyCompression()))
			value := make([]byte, 1024)
			for i := range value { // compressible, as JSON events are: 4 distinct bytes
				value[i] = "{a:1"[i%4]
			}
			rand.Read(value[:256])
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			b.ResetTimer()
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
		})
	}
}
