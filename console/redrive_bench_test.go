package console_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/spooltest"
)

// BenchmarkRedrive redrives 100,000 dead letters (100-byte values, the
// agent's headers) from a 4-partition dead-letter topic on the in-process
// Spool broker, unlimited rate, fsync on every batch (the broker's
// default). The baselines are the same copy done by a bare franz-go
// consume-and-produce loop, once with kgo's default sticky partitioner
// (every record of a batch to one partition: the fastest copy, but it
// breaks per-key order) and once keeping each record's partition as the
// engine does: what the engine's selection, header rewrite, journal and
// per-record accounting cost on top.
//
//	go test ./console -run '^$' -bench BenchmarkRedrive -benchtime 3x
func BenchmarkRedrive(b *testing.B) {
	const n = 100_000
	srv := spooltest.Start(b, spooltest.WithPartitions(4))
	addrs := []string{srv.Addr()}
	kafkatest.CreateTopic(b, addrs, "bench", 4)
	kafkatest.CreateTopic(b, addrs, "bench.dlq", 4)
	kafkatest.CreateTopic(b, addrs, "bench-copy", 4)
	produceDeadLetters(b, addrs, "bench.dlq", "bench", n)
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...)}

	b.Run("engine", func(b *testing.B) {
		for b.Loop() {
			rep, err := console.Redrive(context.Background(), opts, console.RedriveSpec{DLQ: "bench.dlq", Again: true}, nil)
			if err != nil || rep.Redriven != n {
				b.Fatalf("redrive: %v %+v", err, rep)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("baseline=kgo-copy-sticky", func(b *testing.B) {
		for b.Loop() {
			copyTopic(b, addrs, "bench.dlq", "bench-copy", n, false)
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("baseline=kgo-copy-same-partition", func(b *testing.B) {
		for b.Loop() {
			copyTopic(b, addrs, "bench.dlq", "bench-copy", n, true)
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

func produceDeadLetters(b *testing.B, addrs []string, dlq, orig string, n int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	now := time.Now()
	value := make([]byte, 100)
	errs := make(chan error, 1)
	for i := range n {
		src := &kgo.Record{Topic: orig, Partition: int32(i % 4), Offset: int64(i), Timestamp: now,
			Key: []byte("k" + strconv.Itoa(i%1000)), Value: value}
		cl.Produce(ctx, agent.DeadLetterRecord(dlq, src, "bench", agent.ReasonRetriesExhausted, 5, errBench, now), func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

var errBench = benchError("handler failed")

type benchError string

func (e benchError) Error() string { return string(e) }

// copyTopic consumes n records of from and produces them to to, waiting
// for every ack; samePartition keeps each record's partition.
func copyTopic(b *testing.B, addrs []string, from, to string, n int, samePartition bool) {
	cons, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(from), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer cons.Close()
	popts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ProducerLinger(5 * time.Millisecond)}
	if samePartition {
		popts = append(popts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	prod, err := kgo.NewClient(popts...)
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for got := 0; got < n; {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			b.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			prod.Produce(ctx, &kgo.Record{Topic: to, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers}, nil)
		})
	}
	if err := prod.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}
