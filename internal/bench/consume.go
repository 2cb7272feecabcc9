package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeAll reads every partition from from[p] up to to[p] with a fresh
// client and reports the throughput, measured from the client's creation to
// the last record.
func (r *runner) consumeAll(ctx context.Context, from, to map[int32]int64) (*Throughput, error) {
	offs := make(map[int32]kgo.Offset)
	remaining := make(map[int32]int64)
	var want int64
	for p, end := range to {
		start := from[p]
		if start < end {
			offs[p] = kgo.NewOffset().At(start)
			remaining[p] = end
			want += end - start
		}
	}
	if want == 0 {
		return nil, errNoRecords
	}
	r.consumed.Store(0)
	stopProgress := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go r.progress("consume", stopProgress, &wg)
	defer func() { close(stopProgress); wg.Wait() }()

	start := time.Now()
	cl, err := r.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.cfg.Topic: offs}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var records, bytes int64
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for _, fe := range fs.Errors() {
			return nil, fmt.Errorf("bench: consume: partition %d: %w", fe.Partition, fe.Err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			records++
			bytes += int64(len(rec.Value))
			if end, ok := remaining[rec.Partition]; ok && rec.Offset+1 >= end {
				delete(remaining, rec.Partition)
			}
		})
		r.consumed.Store(records)
	}
	return throughputOf(records, bytes, 0, time.Since(start)), nil
}
