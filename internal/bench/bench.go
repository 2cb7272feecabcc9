// Package bench is the engine of `spool bench`: it measures produce and
// consume throughput and end-to-end latency against any Kafka-compatible
// broker with the franz-go client.
//
// A run in ModeAll has two phases. Phase one produces the records while a
// consumer tails the topic; that consumer measures end-to-end latency, the
// time it receives a record minus the send time the producer wrote into the
// record. Phase two reads every produced record again with a fresh client
// from the first offset, which measures consume throughput on its own.
//
// Record values are laid out as
//
//	+----------------------+----------------------------------+
//	| send time (8 bytes,  | random bytes (RecordSize - 8)     |
//	| big-endian Unix ns)  |                                  |
//	+----------------------+----------------------------------+
//
// The send time is taken just before the record is handed to the client, so
// end-to-end latency includes lingering, batching, the broker's write (and
// fsync) and the fetch. Kafka's own record timestamp has millisecond
// resolution, too coarse for sub-millisecond latencies, so it is not used.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/kopt"
)

// Mode selects what a run measures.
type Mode string

// The modes of a run.
const (
	// ModeAll produces with a live tailing consumer (throughput and
	// end-to-end latency), then re-reads everything (consume throughput).
	ModeAll Mode = "all"
	// ModeProduce only produces.
	ModeProduce Mode = "produce"
	// ModeConsume only reads an existing topic from its start to its end
	// offsets at the time the run starts.
	ModeConsume Mode = "consume"
)

// timeBytes is the size of the send time at the start of each value.
const timeBytes = 8

// Config describes a run. The zero value of each field means its default.
type Config struct {
	Brokers []string // seed brokers; required
	// Topic to use; default a new topic "spool-bench-<unix ns>", deleted
	// after the run unless KeepTopic. A named topic is created when missing
	// and never deleted.
	Topic      string
	KeepTopic  bool  // keep the generated topic
	Partitions int32 // partitions of a created topic; default 8
	Mode       Mode  // default ModeAll
	// NoTail turns off ModeAll's tailing consumer: produce throughput is
	// then measured without a concurrent reader, and there is no
	// end-to-end latency.
	NoTail bool
	// Records to produce; default 1,000,000, or unlimited when Duration is
	// set. A run stops at whichever of Records and Duration comes first.
	Records     int64
	Duration    time.Duration
	RecordSize  int           // value bytes, at least 8; default 1024
	Keys        int           // distinct keys, spread round-robin; 0: no keys
	Acks        string        // all, 1 or 0; default all
	Linger      time.Duration // producer linger; default 0 (send at once)
	Compression string        // none, gzip, snappy, lz4, zstd; default none
	Rate        int           // records per second to offer; 0: as fast as possible
	// Producers is the number of producer clients (each with its own
	// connection) that the records are spread over round-robin; default 1.
	Producers int
	// Progress receives a line every ProgressInterval (default 1s); nil
	// prints nothing.
	Progress         io.Writer
	ProgressInterval time.Duration
	Seed             uint64    // seed of the random values; default 1
	ClientOpts       []kgo.Opt // extra client options, for every client of the run
	// DrainTimeout bounds how long the tailing consumer may lag behind the
	// end of production; default 60s.
	DrainTimeout time.Duration
	// BrokerMetrics, if set, is the URL of a Spool broker's Prometheus
	// endpoint (http://host:port/metrics): it is read before and after the
	// produce phase, and Result.Broker reports the broker's fsyncs per
	// second, per produce request and per record over it.
	BrokerMetrics string
}

func (c Config) withDefaults() Config {
	if c.Topic == "" {
		c.Topic = "spool-bench-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.Mode == "" {
		c.Mode = ModeAll
	}
	if c.Records == 0 && c.Duration == 0 {
		c.Records = 1_000_000
	}
	if c.RecordSize == 0 {
		c.RecordSize = 1024
	}
	if c.Acks == "" {
		c.Acks = "all"
	}
	if c.Producers == 0 {
		c.Producers = 1
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 60 * time.Second
	}
	return c
}

func (c Config) validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("bench: no brokers")
	case c.Mode != ModeAll && c.Mode != ModeProduce && c.Mode != ModeConsume:
		return fmt.Errorf("bench: unknown mode %q (want all, produce or consume)", c.Mode)
	case c.RecordSize < timeBytes:
		return fmt.Errorf("bench: record size %d is below the minimum %d", c.RecordSize, timeBytes)
	case c.Records < 0 || c.Duration < 0 || c.Keys < 0 || c.Rate < 0 || c.Partitions < 0 || c.Producers < 0:
		return errors.New("bench: records, duration, keys, rate, partitions and producers must not be negative")
	case c.Mode == ModeAll && c.Acks == "0":
		return errors.New("bench: acks=0 cannot be combined with mode all (acknowledged counts are unknown); use mode produce")
	}
	return nil
}

// Throughput is what one side of a run moved.
type Throughput struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"` // value bytes (keys and headers excluded)
	Errors        int64   `json:"errors"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"` // 10^6 bytes per second
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Result is the outcome of a run; sections that the mode does not measure
// are nil.
type Result struct {
	Topic      string        `json:"topic"`
	Mode       Mode          `json:"mode"`
	Partitions int32         `json:"partitions"`
	RecordSize int           `json:"record_size"`
	Keys       int           `json:"keys"`
	Acks       string        `json:"acks"`
	Linger     time.Duration `json:"linger_ns"`
	Rate       int           `json:"rate"`
	Producers  int           `json:"producers"`
	// Compression is the producer's batch codec.
	Compression string      `json:"compression"`
	Produce     *Throughput `json:"produce,omitempty"`
	// ProduceLatency is send to acknowledgement, per record.
	ProduceLatency *Latency `json:"produce_latency,omitempty"`
	// EndToEnd is send to receipt by the tailing consumer, per record.
	EndToEnd *Latency    `json:"end_to_end_latency,omitempty"`
	Consume  *Throughput `json:"consume,omitempty"`
	// Broker is the broker's fsync counters over the produce phase
	// (Config.BrokerMetrics).
	Broker *BrokerStats `json:"broker,omitempty"`
}

// Run executes a benchmark run.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	generated := cfg.Topic == ""
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ackOpts, err := kopt.Acks(cfg.Acks)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	codec, err := kopt.Compression(cfg.Compression)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	r := &runner{cfg: cfg}
	admCl, err := r.client()
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)

	res := &Result{Topic: cfg.Topic, Mode: cfg.Mode, Partitions: cfg.Partitions, RecordSize: cfg.RecordSize,
		Keys: cfg.Keys, Acks: cfg.Acks, Linger: cfg.Linger, Rate: cfg.Rate, Producers: cfg.Producers,
		Compression: cfg.Compression}
	if cfg.Mode != ModeConsume {
		created, err := r.ensureTopic(ctx, adm)
		if err != nil {
			return nil, err
		}
		if created && generated && !cfg.KeepTopic {
			defer func() {
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				_, _ = adm.DeleteTopic(dctx, cfg.Topic)
			}()
		}
	}
	starts, err := r.endOffsets(ctx, adm)
	if err != nil {
		return nil, err
	}
	res.Partitions = int32(len(starts))
	if cfg.Mode == ModeConsume {
		first, err := adm.ListStartOffsets(ctx, cfg.Topic)
		if err != nil {
			return nil, fmt.Errorf("bench: list start offsets: %w", err)
		}
		from := make(map[int32]int64)
		first.Each(func(o kadm.ListedOffset) { from[o.Partition] = o.Offset })
		res.Consume, err = r.consumeAll(ctx, from, starts)
		return res, err
	}

	prodOpts := append(ackOpts, kgo.DefaultProduceTopic(cfg.Topic), kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(cfg.Linger))
	var before *brokerSample
	if cfg.BrokerMetrics != "" {
		if before, err = scrapeBroker(ctx, cfg.BrokerMetrics); err != nil {
			return res, err
		}
	}
	if err := r.produce(ctx, res, prodOpts, starts); err != nil {
		return res, err
	}
	if before != nil {
		after, err := scrapeBroker(ctx, cfg.BrokerMetrics)
		if err != nil {
			return res, err
		}
		res.Broker = brokerStats(before, after, time.Duration(res.Produce.Seconds*float64(time.Second)), res.Produce.Records)
	}
	if cfg.Mode == ModeAll {
		ends, err := r.endOffsets(ctx, adm)
		if err != nil {
			return res, err
		}
		res.Consume, err = r.consumeAll(ctx, starts, ends)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

type runner struct {
	cfg Config

	produced atomic.Int64 // records acknowledged
	consumed atomic.Int64 // records seen by the tailing or reading consumer
}

func (r *runner) client(opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{kgo.SeedBrokers(r.cfg.Brokers...), kgo.ClientID("spool-bench")}
	base = append(base, opts...)
	cl, err := kgo.NewClient(append(base, r.cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("bench: client: %w", err)
	}
	return cl, nil
}

// ensureTopic creates the topic; an existing topic is used as it is.
func (r *runner) ensureTopic(ctx context.Context, adm *kadm.Client) (bool, error) {
	resp, err := adm.CreateTopic(ctx, r.cfg.Partitions, -1, nil, r.cfg.Topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("bench: create topic %s: %w", r.cfg.Topic, err)
	}
	return true, nil
}

// endOffsets lists the end offset of every partition of the topic.
func (r *runner) endOffsets(ctx context.Context, adm *kadm.Client) (map[int32]int64, error) {
	l, err := adm.ListEndOffsets(ctx, r.cfg.Topic)
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("bench: list offsets of %s: %w", r.cfg.Topic, err)
	}
	out := make(map[int32]int64)
	l.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: topic %s has no partitions", r.cfg.Topic)
	}
	return out, nil
}

// newHist returns a histogram of nanoseconds from 1µs to 10 minutes with 3
// significant digits.
func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1_000, int64(10*time.Minute), 3)
}

func latencyOf(h *hdrhistogram.Histogram) *Latency {
	ms := func(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }
	return &Latency{
		Count: h.TotalCount(),
		Mean:  math.Round(h.Mean()/1e3) / 1e3,
		P50:   ms(h.ValueAtQuantile(50)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
	}
}

func throughputOf(records, bytes, errs int64, d time.Duration) *Throughput {
	t := &Throughput{Records: records, Bytes: bytes, Errors: errs, Seconds: d.Seconds()}
	if s := d.Seconds(); s > 0 {
		t.RecordsPerSec = math.Round(float64(records) / s)
		t.MBPerSec = math.Round(float64(bytes)/s/1e6*100) / 100
	}
	return t
}

// progress prints a line every interval until stop is closed.
func (r *runner) progress(phase string, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	if r.cfg.Progress == nil {
		return
	}
	t := time.NewTicker(r.cfg.ProgressInterval)
	defer t.Stop()
	start := time.Now()
	var lastP, lastC int64
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			p, c := r.produced.Load(), r.consumed.Load()
			secs := r.cfg.ProgressInterval.Seconds()
			fmt.Fprintf(r.cfg.Progress, "%s %5.0fs  produced %d (%.0f/s)  consumed %d (%.0f/s)\n", phase,
				now.Sub(start).Seconds(), p, float64(p-lastP)/secs, c, float64(c-lastC)/secs)
			lastP, lastC = p, c
		}
	}
}
