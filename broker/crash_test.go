package broker_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/spoolproc"
)

// The crash test runs `spool serve` as a separate process and kills it with
// SIGKILL while an idempotent acks=all producer writes. Short by default;
// the long version:
//
//	SPOOL_CRASH_ROUNDS=50 SPOOL_CRASH_RECORDS=200000 go test ./broker -run TestCrash -timeout 30m
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestCrashIdempotentProducer: every acknowledged record is present exactly
// once and in order per partition after repeated SIGKILLs, and a consumer
// group resumes from its committed offsets.
func TestCrashIdempotentProducer(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test builds and runs spool serve; skipped with -short")
	}
	rounds, total := envInt("SPOOL_CRASH_ROUNDS", 3), envInt("SPOOL_CRASH_RECORDS", 6000)
	p := spoolproc.Start(t)

	const parts = 3
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, parts, -1, nil, "crash"); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	acked := map[string]bool{}
	var produceErr error
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := range total {
			r := &kgo.Record{Topic: "crash", Partition: int32(i % parts), Value: []byte(strconv.Itoa(i))}
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					produceErr = err
					return
				}
				acked[string(r.Value)] = true
			})
		}
		cl.Flush(ctx)
	}()
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for round := range rounds {
		target := (round + 1) * total / (rounds + 1)
		waitFor(t, fmt.Sprintf("%d acks", target), func() bool { return ackedCount() >= target })
		p.Restart()
	}
	<-produced
	if produceErr != nil {
		t.Fatalf("a produce failed (the idempotent producer retries through restarts): %v", produceErr)
	}

	// Read everything back: each value once, increasing per partition.
	rd, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()), kgo.ConsumeTopics("crash"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	seen := map[string]int{}
	last := map[int32]int{0: -1, 1: -1, 2: -1}
	for len(seen) < len(acked) {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read back %d of %d acknowledged records", len(seen), len(acked))
		}
		fs.EachRecord(func(r *kgo.Record) {
			v, _ := strconv.Atoi(string(r.Value))
			seen[string(r.Value)]++
			if seen[string(r.Value)] > 1 {
				t.Errorf("record %d stored twice", v)
			}
			if v <= last[r.Partition] {
				t.Errorf("partition %d: %d after %d", r.Partition, v, last[r.Partition])
			}
			last[r.Partition] = v
		})
	}
	for v := range acked {
		if seen[v] != 1 {
			t.Errorf("acknowledged record %s seen %d times", v, seen[v])
		}
	}

	// A group commits half of each partition; after a SIGKILL it resumes there.
	committed := kadm.Offsets{}
	for part := range int32(parts) {
		committed.Add(kadm.Offset{Topic: "crash", Partition: part, At: int64(total / parts / 2), LeaderEpoch: -1})
	}
	if resp, err := adm.CommitOffsets(ctx, "crash-group", committed); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	p.Restart()
	gc, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()), kgo.ConsumerGroup("crash-group"), kgo.ConsumeTopics("crash"))
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	first := map[int32]int64{}
	for len(first) < parts {
		fs := gc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group consumer after crash: got %d partitions", len(first))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := first[r.Partition]; !ok {
				first[r.Partition] = r.Offset
			}
		})
	}
	for part, off := range first {
		if off != int64(total/parts/2) {
			t.Errorf("partition %d: group resumed at %d, committed %d", part, off, total/parts/2)
		}
	}
}

// TestCrashLinger0: SIGKILL under load with linger 0, so that nearly every
// record is its own produce request and is acknowledged through storage's
// commit log (small batches: no segment fsync). After every restart each
// acknowledged record is present exactly once and in order, and the restarts
// did replay the commit log (the path under test).
func TestCrashLinger0(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test builds and runs spool serve; skipped with -short")
	}
	rounds, total := envInt("SPOOL_CRASH_ROUNDS", 3), envInt("SPOOL_CRASH_RECORDS", 4000)
	p := spoolproc.Start(t)

	const parts, producers = 8, 4
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var clients []*kgo.Client
	for range producers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0),
			kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		clients = append(clients, cl)
	}
	adm := kadm.NewClient(clients[0])
	if _, err := adm.CreateTopic(ctx, parts, -1, nil, "crash0"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	var produceErr error
	var wg sync.WaitGroup
	for c, cl := range clients {
		wg.Go(func() {
			// Producer c owns the partitions c and c+producers: order per partition is its own.
			for i := c; i < total; i += producers {
				r := &kgo.Record{Topic: "crash0", Partition: int32(i % parts), Value: []byte(strconv.Itoa(i))}
				cl.Produce(ctx, r, func(r *kgo.Record, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						produceErr = err
						return
					}
					acked[string(r.Value)] = true
				})
			}
			cl.Flush(ctx)
		})
	}
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for round := range rounds {
		target := (round + 1) * total / (rounds + 1)
		waitFor(t, fmt.Sprintf("%d acks", target), func() bool { return ackedCount() >= target })
		p.Restart()
	}
	wg.Wait()
	if produceErr != nil {
		t.Fatalf("a produce failed (the idempotent producer retries through restarts): %v", produceErr)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()), kgo.ConsumeTopics("crash0"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	seen := map[string]int{}
	last := map[int32]int{}
	for part := range int32(parts) {
		last[part] = -1
	}
	for len(seen) < len(acked) {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read back %d of %d acknowledged records", len(seen), len(acked))
		}
		fs.EachRecord(func(r *kgo.Record) {
			v, _ := strconv.Atoi(string(r.Value))
			if seen[string(r.Value)]++; seen[string(r.Value)] > 1 {
				t.Errorf("record %d stored twice", v)
			}
			if v <= last[r.Partition] {
				t.Errorf("partition %d: %d after %d", r.Partition, v, last[r.Partition])
			}
			last[r.Partition] = v
		})
	}
	for v := range acked {
		if seen[v] != 1 {
			t.Errorf("acknowledged record %s seen %d times", v, seen[v])
		}
	}
	if n := strings.Count(p.Output(), "replayed the commit log"); n == 0 {
		t.Errorf("no restart replayed the commit log: the acknowledgements did not go through it")
	} else {
		t.Logf("%d of %d restarts replayed the commit log", n, rounds)
	}
}
