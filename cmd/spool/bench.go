package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoolmq/spool/internal/bench"
)

func newBenchCmd() *cobra.Command {
	var (
		cfg      bench.Config
		mode     string
		asJSON   bool
		quiet    bool
		f        *clientFlags
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure produce/consume throughput and end-to-end latency against any Kafka-compatible broker",
		Long: `bench produces records of --size bytes (an 8-byte send time followed by random
bytes) to a topic while a consumer tails it, then reads everything back with a
fresh consumer. It reports records/s and MB/s (10^6 bytes of values per second)
for produce and consume, produce acknowledgement latency, and end-to-end
latency (receipt by the tailing consumer minus the send time in the record),
as p50/p99/p99.9/max in milliseconds.

Unless --topic names one, a new topic spool-bench-<ns> with --partitions
partitions is created and deleted at the end (--keep-topic keeps it). A
--topic that does not exist is created with --partitions and kept.
Progress goes to standard error; the report to standard output.`,
		Example: `  spool bench -n 1000000 --size 1024 --keys 1000 --partitions 8 --acks all --linger 5ms
  spool bench --rate 5000 --duration 30s --linger 0 --json
  spool bench --mode consume --topic orders`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			seeds, err := f.seeds()
			if err != nil {
				return err
			}
			cfg.Brokers = seeds
			secOpts, err := f.sec.Opts()
			if err != nil {
				return usageErrorf("%v", err)
			}
			cfg.ClientOpts = append(cfg.ClientOpts, secOpts...)
			cfg.Mode = bench.Mode(mode)
			cfg.ProgressInterval = interval
			if !quiet {
				cfg.Progress = cmd.ErrOrStderr()
			}
			if cmd.Flags().Changed("duration") && !cmd.Flags().Changed("records") {
				cfg.Records = 0 // run for the duration
			}
			ctx, cancel := f.ctx(cmd, false)
			defer cancel()
			res, err := bench.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			printBench(cmd.OutOrStdout(), res)
			return nil
		},
	}
	f = addClientFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&mode, "mode", "all", "all (produce with a tailing consumer, then consume), produce, or consume (an existing --topic)")
	fl.BoolVar(&cfg.NoTail, "no-tail", false, "mode all: no tailing consumer while producing (clean produce throughput, no end-to-end latency)")
	fl.StringVarP(&cfg.Topic, "topic", "t", "", "topic to use (default: a new spool-bench-<ns> topic)")
	fl.BoolVar(&cfg.KeepTopic, "keep-topic", false, "do not delete the generated spool-bench-<ns> topic")
	fl.Int32VarP(&cfg.Partitions, "partitions", "p", 8, "partitions of the created topic")
	fl.Int64VarP(&cfg.Records, "records", "n", 1_000_000, "records to produce")
	fl.DurationVarP(&cfg.Duration, "duration", "d", 0, "produce for this long (alone: no record limit)")
	fl.IntVarP(&cfg.RecordSize, "size", "s", 1024, "value size in bytes (at least 8)")
	fl.IntVarP(&cfg.Keys, "keys", "k", 0, "distinct keys, used round-robin (0: no keys)")
	fl.StringVar(&cfg.Acks, "acks", "all", "acks: all, 1 or 0")
	fl.DurationVar(&cfg.Linger, "linger", 0, "producer linger")
	fl.StringVarP(&cfg.Compression, "compression", "z", "none", "none, gzip, snappy, lz4, zstd")
	fl.IntVarP(&cfg.Rate, "rate", "r", 0, "offered records per second (0: as fast as possible)")
	fl.IntVar(&cfg.Producers, "producers", 1, "producer clients (connections) the records are spread over")
	fl.Uint64Var(&cfg.Seed, "seed", 1, "seed of the random values")
	fl.StringVar(&cfg.BrokerMetrics, "broker-metrics", "", "a Spool broker's metrics URL (http://host:port/metrics): report its fsyncs per second, per produce request and per record over the produce phase")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fl.BoolVarP(&quiet, "quiet", "q", false, "no live progress")
	fl.DurationVar(&interval, "progress-interval", time.Second, "how often to print progress")
	return cmd
}

func printBench(w io.Writer, r *bench.Result) {
	fmt.Fprintf(w, "topic %s: %d partitions, %d-byte values, %d keys, acks=%s, linger=%s, compression=%s, rate=%s, producers=%d\n",
		r.Topic, r.Partitions, r.RecordSize, r.Keys, r.Acks, r.Linger, r.Compression, rateString(r.Rate), r.Producers)
	tp := func(name string, t *bench.Throughput) {
		if t != nil {
			fmt.Fprintf(w, "%-8s %10d records  %9.0f records/s  %8.2f MB/s  (%.2fs, %d errors)\n",
				name, t.Records, t.RecordsPerSec, t.MBPerSec, t.Seconds, t.Errors)
		}
	}
	lat := func(name string, l *bench.Latency) {
		if l != nil {
			fmt.Fprintf(w, "%-22s p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms  (n=%d)\n",
				name, l.P50, l.P99, l.P999, l.Max, l.Count)
		}
	}
	tp("produce", r.Produce)
	tp("consume", r.Consume)
	lat("produce ack latency", r.ProduceLatency)
	lat("end-to-end latency", r.EndToEnd)
	if b := r.Broker; b != nil {
		fmt.Fprintf(w, "broker fsyncs %9d  %9.0f fsyncs/s  %.3f per produce request (%d requests)  %.3f per record  fsync p50 %s ms  p99 %s ms  p99.9 %s ms\n",
			b.Fsyncs, b.FsyncsPerSec, b.FsyncsPerRequest, b.ProduceRequests, b.FsyncsPerRecord,
			bucketMs(b.FsyncMs.P50), bucketMs(b.FsyncMs.P99), bucketMs(b.FsyncMs.P999))
		if b.PhaseMeanMs != nil {
			fmt.Fprintf(w, "broker produce phases (mean ms): write %.3f  in_order %.3f  durable %.3f; %d requests over 5 ms spent %.0f%% in write, %.0f%% in_order, %.0f%% durable\n",
				b.PhaseMeanMs["write"], b.PhaseMeanMs["in_order"], b.PhaseMeanMs["durable"], b.SlowRequests,
				100*b.SlowPhaseShare["write"], 100*b.SlowPhaseShare["in_order"], 100*b.SlowPhaseShare["durable"])
		}
	}
}

// bucketMs prints a quantile taken from histogram buckets: "<= bound", or
// "> largest bucket" for -1.
func bucketMs(v float64) string {
	if v < 0 {
		return ">max-bucket"
	}
	return fmt.Sprintf("<=%g", v)
}

func rateString(r int) string {
	if r == 0 {
		return "max"
	}
	return fmt.Sprintf("%d/s", r)
}
