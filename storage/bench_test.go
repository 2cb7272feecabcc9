package storage

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
)

// BenchmarkAppendAlways: 8 concurrent appenders over 8 partitions, fsync
// always (group commit), 1 KiB records, on the OS file system in b.TempDir().
//
//	go test -run XXX -bench AppendAlways -benchtime 5s ./storage/
func BenchmarkAppendAlways(b *testing.B) {
	for _, size := range []int{16 << 10, 64 << 10, 256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("batch=%dKiB", size>>10), func(b *testing.B) {
			benchAppend(b, FsyncAlways, size, 8, 8)
		})
	}
}

// BenchmarkAppendAlwaysShared: 8 appenders over 2 partitions, so appends to
// one partition share fsyncs (see the appends/fsync metric).
func BenchmarkAppendAlwaysShared(b *testing.B) {
	benchAppend(b, FsyncAlways, 64<<10, 2, 8)
}

// BenchmarkAppendNever is the same without fsync: the cost of everything but the disk.
func BenchmarkAppendNever(b *testing.B) {
	benchAppend(b, FsyncNever, 256<<10, 8, 8)
}

func benchAppend(b *testing.B, mode FsyncMode, batchSize, partitions, appenders int) {
	s, err := Open(Options{Dir: b.TempDir(), Fsync: mode, RetentionCheckInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	logs := make([]*Log, partitions)
	for p := range logs {
		if logs[p], err = s.CreateLog(TopicPartition{Topic: "bench", Partition: int32(p)}, LogConfig{}); err != nil {
			b.Fatal(err)
		}
	}
	records := batchSize / 1024
	proto := makeBatch(b, batchSpec{n: records, valueSize: 1024 - 12})
	var next atomic.Int64
	b.SetBytes(int64(len(proto)))
	b.ReportAllocs()
	b.SetParallelism(max(appenders/runtime.GOMAXPROCS(0), 1)) // 8 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		l := logs[int(next.Add(1)-1)%partitions]
		batch := bytes.Clone(proto)
		ctx := context.Background()
		for pb.Next() {
			if _, err := l.Append(ctx, batch, AppendOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if st := s.Stats(); st.Fsyncs > 0 {
		b.ReportMetric(float64(st.SyncedAppends)/float64(st.Fsyncs), "appends/fsync")
	}
}

// BenchmarkReadSequential reads a 128 MiB log front to back in 1 MiB fetches
// (page cache; CRC of every batch verified): with Read (a new buffer per
// fetch, as the broker's Fetch uses it) and with ReadInto (one reused buffer).
func BenchmarkReadSequential(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir(), Fsync: FsyncNever, RetentionCheckInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l, _ := s.CreateLog(tp0, LogConfig{})
	proto := makeBatch(b, batchSpec{n: 16, valueSize: 1024 - 12})
	for l.Size() < 128<<20 {
		if _, err := l.Append(context.Background(), bytes.Clone(proto), AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for _, reuse := range []bool{false, true} {
		b.Run(fmt.Sprintf("reuse=%v", reuse), func(b *testing.B) {
			var buf []byte
			if reuse {
				buf = make([]byte, 1<<20)
			}
			b.ReportAllocs()
			var total int64
			off := int64(0)
			for i := 0; i < b.N; i++ {
				if off >= l.HighWatermark() {
					off = 0
				}
				res, err := l.ReadInto(buf, off, 1<<20)
				if err != nil || len(res.Records) == 0 {
					b.Fatal(err)
				}
				total += int64(len(res.Records))
				h, _ := ParseBatchHeader(res.Records[len(res.Records)-len(proto):])
				off = h.LastOffset() + 1
			}
			b.SetBytes(total / int64(b.N))
		})
	}
}
