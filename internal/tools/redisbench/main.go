// Command redisbench is the Redis Streams side of the latency comparison in
// docs/benchmarks.md (scripts/bench-latency.sh): it offers records at a fixed
// rate to a Redis server with XADD and reads them back with a blocking XREAD,
// measuring what `spool bench --rate R --linger 0` measures against a Kafka
// broker, and prints the result in the same JSON shape.
//
//   - Records i = 0, 1, ... are sent no earlier than start + i/rate; each
//     value starts with the send time (8 bytes, big-endian Unix ns) followed
//     by random bytes, and has key "key-<i mod keys>".
//
//   - Partitions are streams: the record goes to stream "<prefix>-<p>" with p
//     = hash(key) mod streams, so 1 or 8 streams compare with 1 or 8
//     partitions.
//
//   - Each XADD is its own command, sent as soon as it is due over a pool of
//     connections (like a Kafka producer at linger 0; Redis answers a
//     command only after the fsync of its event-loop turn with appendfsync
//     always); produce ack latency = reply - send time. The send time is
//     taken when the record is due, and a record waits for a free
//     connection in a buffer, as spool bench takes it before the Kafka
//     producer buffers the record: a stall of the server counts for every
//     record offered during it.
//
//   - One consumer connection loops on XREAD BLOCK over every stream;
//     end-to-end latency = receipt - send time.
//
//     go run ./internal/tools/redisbench --addr 127.0.0.1:6379 --rate 5000 -d 30s -s 1024 -k 1000 -p 8 --json
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/redis/go-redis/v9"
)

type throughput struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Errors        int64   `json:"errors"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
}

type latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

type result struct {
	System         string      `json:"system"`
	Partitions     int         `json:"partitions"`
	RecordSize     int         `json:"record_size"`
	Keys           int         `json:"keys"`
	Rate           int         `json:"rate"`
	Produce        *throughput `json:"produce"`
	ProduceLatency *latency    `json:"produce_latency"`
	EndToEnd       *latency    `json:"end_to_end_latency"`
}

func main() {
	var (
		addr     = flag.String("addr", "127.0.0.1:6379", "Redis server host:port")
		rate     = flag.Int("rate", 5000, "records per second")
		duration = flag.Duration("d", 30*time.Second, "how long to produce")
		size     = flag.Int("s", 1024, "value bytes (at least 8)")
		keys     = flag.Int("k", 1000, "distinct keys")
		streams  = flag.Int("p", 8, "streams (the partitions of the comparison)")
		conns    = flag.Int("conns", 64, "producer connections (commands in flight at most)")
		asJSON   = flag.Bool("json", false, "print JSON")
	)
	flag.Parse()
	if *size < 8 || *rate < 1 || *streams < 1 || *keys < 1 || *conns < 1 {
		fmt.Fprintln(os.Stderr, "redisbench: -s must be at least 8; --rate, -p, -k and --conns at least 1")
		os.Exit(2)
	}
	res, err := run(context.Background(), *addr, *rate, *duration, *size, *keys, *streams, *conns)
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisbench:", err)
		os.Exit(1)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
		return
	}
	fmt.Printf("produce %d records %.0f records/s (%d errors)\n", res.Produce.Records, res.Produce.RecordsPerSec, res.Produce.Errors)
	for _, l := range []struct {
		name string
		l    *latency
	}{{"produce ack latency", res.ProduceLatency}, {"end-to-end latency", res.EndToEnd}} {
		fmt.Printf("%-20s p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms  (n=%d)\n", l.name, l.l.P50, l.l.P99, l.l.P999, l.l.Max, l.l.Count)
	}
}

// maxBuffered bounds the records offered but not yet sent, as franz-go's
// default MaxBufferedRecords bounds spool bench's producer.
const maxBuffered = 10000

func run(ctx context.Context, addr string, rate int, d time.Duration, size, keys, streams, conns int) (*result, error) {
	prod := redis.NewClient(&redis.Options{Addr: addr, PoolSize: conns, MinIdleConns: conns})
	defer prod.Close()
	cons := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, ReadTimeout: -1})
	defer cons.Close()
	if err := prod.Ping(ctx).Err(); err != nil {
		return nil, err
	}
	prefix := "redisbench-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	names := make([]string, streams)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	defer prod.Del(context.WithoutCancel(ctx), names...)

	total := int64(float64(rate) * d.Seconds())
	var (
		mu          sync.Mutex
		ackHist     = hdrhistogram.New(1, 600e6, 3) // µs
		e2eHist     = hdrhistogram.New(1, 600e6, 3)
		errs, acked int64
		lastAck     time.Time
	)
	// Consumer: from the start of every (new, empty) stream.
	received := make(chan struct{})
	consCtx, stopCons := context.WithCancel(ctx)
	defer stopCons()
	var consErr error
	go func() {
		defer close(received)
		ids := make([]string, 2*streams)
		copy(ids, names)
		for i := range streams {
			ids[streams+i] = "0-0"
		}
		var seen int64
		for seen < total {
			got, err := cons.XRead(consCtx, &redis.XReadArgs{Streams: ids, Count: 1000, Block: time.Second}).Result()
			now := time.Now()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				consErr = err
				return
			}
			for _, s := range got {
				for _, m := range s.Messages {
					v, _ := m.Values["v"].(string)
					if len(v) >= 8 {
						sent := time.Unix(0, int64(binary.BigEndian.Uint64([]byte(v[:8]))))
						mu.Lock()
						_ = e2eHist.RecordValue(max(now.Sub(sent).Microseconds(), 1))
						mu.Unlock()
					}
					seen++
					for i := range streams {
						if ids[i] == s.Stream {
							ids[streams+i] = m.ID
						}
					}
				}
			}
		}
	}()

	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	// The send loop stamps each record when it is due and hands it to a
	// buffer that conns connections drain, one XADD each at a time; it
	// blocks only when maxBuffered records wait, as a Kafka producer's
	// Produce does (franz-go's default MaxBufferedRecords). So, as in spool
	// bench, a server stall counts for every record offered during it, not
	// only for the conns commands already sent (coordinated omission).
	type offered struct {
		stream string
		key    string
		v      []byte
		sent   time.Time
	}
	queue := make(chan offered, maxBuffered)
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for o := range queue {
				err := prod.XAdd(ctx, &redis.XAddArgs{Stream: o.stream, Values: []any{"k", o.key, "v", o.v}}).Err()
				now := time.Now()
				mu.Lock()
				if err != nil {
					errs++
				} else {
					acked++
					lastAck = now
					_ = ackHist.RecordValue(max(now.Sub(o.sent).Microseconds(), 1))
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	for i := int64(0); i < total; i++ {
		due := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		key := "key-" + strconv.FormatInt(i%int64(keys), 10)
		h := fnv.New32a()
		h.Write([]byte(key))
		v := make([]byte, size)
		copy(v, payload)
		sent := time.Now()
		binary.BigEndian.PutUint64(v, uint64(sent.UnixNano()))
		queue <- offered{stream: names[int(h.Sum32()%uint32(streams))], key: key, v: v, sent: sent}
	}
	close(queue)
	wg.Wait()
	select {
	case <-received:
	case <-time.After(60 * time.Second):
		stopCons()
		<-received
		return nil, fmt.Errorf("the consumer did not see every record within 60 s of the end")
	}
	if consErr != nil {
		return nil, fmt.Errorf("consumer: %w", consErr)
	}
	secs := lastAck.Sub(start).Seconds()
	return &result{
		System: "redis", Partitions: streams, RecordSize: size, Keys: keys, Rate: rate,
		Produce: &throughput{Records: acked, Bytes: acked * int64(size), Errors: errs, Seconds: secs,
			RecordsPerSec: float64(acked) / secs, MBPerSec: float64(acked*int64(size)) / secs / 1e6},
		ProduceLatency: latencyOf(ackHist),
		EndToEnd:       latencyOf(e2eHist),
	}, nil
}

func latencyOf(h *hdrhistogram.Histogram) *latency {
	ms := func(v int64) float64 { return float64(v) / 1e3 }
	return &latency{Count: h.TotalCount(), Mean: h.Mean() / 1e3, P50: ms(h.ValueAtQuantile(50)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max())}
}
