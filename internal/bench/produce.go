package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// poolSize is the size of the random byte pool that values are cut from.
const poolSize = 1 << 20

// produce runs phase one: it produces the records and, in ModeAll, tails the
// topic from starts to measure end-to-end latency.
func (r *runner) produce(ctx context.Context, res *Result, opts []kgo.Opt, starts map[int32]int64) error {
	// Each producer is its own client, so its own connection: records go
	// round-robin over them.
	clients := make([]*kgo.Client, r.cfg.Producers)
	for i := range clients {
		cl, err := r.client(opts...)
		if err != nil {
			return err
		}
		defer cl.Close()
		clients[i] = cl
	}

	var tail *tailer
	var err error
	if r.cfg.Mode == ModeAll && !r.cfg.NoTail {
		if tail, err = r.startTail(ctx, starts); err != nil {
			return err
		}
		defer tail.stop()
	}
	stopProgress := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go r.progress("produce", stopProgress, &wg)
	defer func() { close(stopProgress); wg.Wait() }()

	rng := rand.New(rand.NewChaCha8(seed32(r.cfg.Seed)))
	pool := make([]byte, poolSize+r.cfg.RecordSize)
	for i := range pool {
		pool[i] = byte(rng.Uint32())
	}
	keys := make([][]byte, r.cfg.Keys)
	for i := range keys {
		keys[i] = []byte("key-" + strconv.Itoa(i))
	}

	var (
		mu       sync.Mutex
		ackHist  = newHist()
		bytes    int64
		errs     int64
		firstErr error
	)
	promise := func(rec *kgo.Record, err error) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs++
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		sent := int64(binary.BigEndian.Uint64(rec.Value))
		_ = ackHist.RecordValue(max(now.UnixNano()-sent, 1))
		bytes += int64(len(rec.Value))
		r.produced.Add(1)
	}

	start := time.Now()
	var deadline time.Time
	if r.cfg.Duration > 0 {
		deadline = start.Add(r.cfg.Duration)
	}
	var interval time.Duration
	if r.cfg.Rate > 0 {
		interval = time.Second / time.Duration(r.cfg.Rate)
	}
	var sentCount int64
	for i := int64(0); r.cfg.Records == 0 || i < r.cfg.Records; i++ {
		if ctx.Err() != nil {
			break
		}
		if i&255 == 0 && !deadline.IsZero() && time.Now().After(deadline) {
			break
		}
		if interval > 0 {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
		}
		off := int((uint64(i) * 4099) % poolSize)
		v := make([]byte, r.cfg.RecordSize)
		copy(v[timeBytes:], pool[off:])
		rec := &kgo.Record{Value: v}
		if len(keys) > 0 {
			rec.Key = keys[i%int64(len(keys))]
		}
		binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
		clients[i%int64(len(clients))].Produce(ctx, rec, promise)
		sentCount++
	}
	var flushErr error
	for _, cl := range clients {
		if err := cl.Flush(ctx); err != nil && flushErr == nil {
			flushErr = err
		}
	}
	elapsed := time.Since(start)

	mu.Lock()
	res.Produce = throughputOf(r.produced.Load(), bytes, errs, elapsed)
	res.ProduceLatency = latencyOf(ackHist)
	perr := firstErr
	mu.Unlock()
	if perr == nil && flushErr != nil {
		perr = flushErr
	}
	if perr == nil && r.cfg.Acks != "0" && r.produced.Load() != sentCount {
		perr = fmt.Errorf("%d records sent, %d acknowledged", sentCount, r.produced.Load())
	}
	if perr != nil {
		return fmt.Errorf("bench: produce: %w", perr)
	}
	if tail != nil {
		lat, err := tail.wait(ctx, r.produced.Load(), r.cfg.DrainTimeout)
		res.EndToEnd = lat
		if err != nil {
			return err
		}
	}
	return nil
}

// tailer is the phase-one consumer that measures end-to-end latency.
type tailer struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	hist   *hdrhistogram.Histogram // owned by run until done is closed
	seen   atomic.Int64
	// target is the acknowledged count once production has ended, -1
	// before. run stores seen before loading target and wait stores target
	// before loading seen, so one of them always sees that the tail is
	// complete and cancels the poll.
	target atomic.Int64
	err    error
}

// startTail starts consuming every partition from starts.
func (r *runner) startTail(ctx context.Context, starts map[int32]int64) (*tailer, error) {
	offs := make(map[int32]kgo.Offset, len(starts))
	for p, o := range starts {
		offs[p] = kgo.NewOffset().At(o)
	}
	cl, err := r.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.cfg.Topic: offs}),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	tctx, cancel := context.WithCancel(ctx)
	t := &tailer{cl: cl, cancel: cancel, done: make(chan struct{}), hist: newHist()}
	t.target.Store(-1)
	go t.run(tctx, r)
	return t, nil
}

func (t *tailer) run(ctx context.Context, r *runner) {
	defer close(t.done)
	for {
		fs := t.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		for _, fe := range fs.Errors() {
			t.err = fmt.Errorf("bench: tailing consumer: partition %d: %w", fe.Partition, fe.Err)
			return
		}
		now := time.Now().UnixNano()
		fs.EachRecord(func(rec *kgo.Record) {
			if len(rec.Value) >= timeBytes {
				_ = t.hist.RecordValue(max(now-int64(binary.BigEndian.Uint64(rec.Value)), 1))
			}
			r.consumed.Add(1)
		})
		seen := t.seen.Add(int64(fs.NumRecords()))
		if target := t.target.Load(); target >= 0 && seen >= target {
			return
		}
	}
}

// wait tells the tailer how many records to expect and waits for it to see
// them, for at most timeout.
func (t *tailer) wait(ctx context.Context, acked int64, timeout time.Duration) (*Latency, error) {
	t.target.Store(acked)
	if t.seen.Load() >= acked {
		t.cancel()
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	select {
	case <-t.done:
		err = t.err
	case <-timer.C:
		t.cancel()
		<-t.done
		err = fmt.Errorf("bench: tailing consumer saw %d of %d records within %s", t.seen.Load(), acked, timeout)
	case <-ctx.Done():
		t.cancel()
		<-t.done
		err = ctx.Err()
	}
	return latencyOf(t.hist), err
}

// stop ends the tailer and waits for it; it may be called more than once.
func (t *tailer) stop() {
	t.cancel()
	<-t.done
	t.cl.Close()
}

// seed32 expands a seed into a ChaCha8 key.
func seed32(s uint64) [32]byte {
	var k [32]byte
	binary.LittleEndian.PutUint64(k[:], s)
	return k
}

var errNoRecords = errors.New("bench: nothing to consume")
