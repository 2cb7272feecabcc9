package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/kopt"
)

func newProduceCmd() *cobra.Command {
	var (
		keySep      string
		headers     []string
		partition   int32
		acks        string
		compression string
		linger      time.Duration
		maxLine     int
		f           *clientFlags
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce one record per line of standard input",
		Long: `Produce reads standard input and sends one record per line (without the line
ending). With --key-separator, the text before the first separator is the key
and the rest the value; a line without the separator has no key. Records are
acknowledged before the command exits; any failure exits non-zero.`,
		Example: `  echo hello | spool produce greetings
  printf 'user-1:signed up\nuser-2:signed up\n' | spool produce events --key-separator :
  spool produce events -H source=cli -H trace=abc --acks 1 --compression zstd < events.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			hdrs, err := parseHeaders(headers)
			if err != nil {
				return err
			}
			ackOpts, err := kopt.Acks(acks)
			if err != nil {
				return fmt.Errorf("produce: %w", err)
			}
			codec, err := kopt.Compression(compression)
			if err != nil {
				return fmt.Errorf("produce: %w", err)
			}
			opts := append(ackOpts,
				kgo.DefaultProduceTopic(topic),
				kgo.ProducerBatchCompression(codec),
				kgo.ProducerLinger(linger),
				kgo.ProduceRequestTimeout(f.timeout),
				kgo.RecordDeliveryTimeout(f.timeout),
				kgo.UnknownTopicRetries(3),
			)
			if partition >= 0 {
				opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			}
			cl, err := f.client(opts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := f.ctx(cmd, false)
			defer cancel()
			n, err := produceLines(ctx, cl, cmd, lineProducer{keySep: keySep, headers: hdrs, partition: partition, maxLine: maxLine})
			if err != nil {
				return fmt.Errorf("produce %s: %w", topic, describeErr(err, f.brokers))
			}
			noun := "records"
			if n == 1 {
				noun = "record"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "produced %d %s to %q\n", n, noun, topic)
			return nil
		},
	}
	f = addClientFlags(cmd)
	cmd.Flags().StringVarP(&keySep, "key-separator", "K", "", "split each line into key and value at the first occurrence of this string")
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, "record header key=value (repeatable)")
	cmd.Flags().Int32VarP(&partition, "partition", "p", -1, "produce to this partition (-1: hash the key, or spread keyless records)")
	cmd.Flags().StringVar(&acks, "acks", "all", "acks required: all, 1 or 0 (1 and 0 turn the idempotent producer off)")
	cmd.Flags().StringVarP(&compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4, zstd")
	cmd.Flags().DurationVar(&linger, "linger", 5*time.Millisecond, "wait this long to fill a batch")
	cmd.Flags().IntVar(&maxLine, "max-line-bytes", 16<<20, "longest accepted input line")
	return cmd
}

type lineProducer struct {
	keySep    string
	headers   []kgo.RecordHeader
	partition int32
	maxLine   int
}

// produceLines sends every line of the command's input and waits for all
// acknowledgements; it returns how many records were acknowledged and the
// first error.
func produceLines(ctx context.Context, cl *kgo.Client, cmd *cobra.Command, lp lineProducer) (int, error) {
	sc := bufio.NewScanner(cmd.InOrStdin())
	sc.Buffer(make([]byte, 64<<10), lp.maxLine)
	var (
		mu       sync.Mutex
		acked    int
		firstErr error
	)
	promise := func(_ *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		acked++
	}
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		r := &kgo.Record{Partition: lp.partition, Headers: lp.headers}
		if lp.keySep != "" {
			if k, v, ok := strings.Cut(line, lp.keySep); ok {
				r.Key, r.Value = []byte(k), []byte(v)
			} else {
				r.Value = []byte(line)
			}
		} else {
			r.Value = []byte(line)
		}
		cl.Produce(ctx, r, promise)
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
	}
	scanErr := sc.Err()
	if err := cl.Flush(ctx); err != nil && firstErr == nil {
		firstErr = err
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr == nil && scanErr != nil {
		if errors.Is(scanErr, bufio.ErrTooLong) {
			scanErr = fmt.Errorf("input line longer than --max-line-bytes=%d", lp.maxLine)
		}
		firstErr = fmt.Errorf("read input: %w", scanErr)
	}
	return acked, firstErr
}

// parseHeaders parses repeated --header key=value flags, keeping their order
// (Kafka headers are an ordered list and keys may repeat).
func parseHeaders(kvs []string) ([]kgo.RecordHeader, error) {
	var out []kgo.RecordHeader
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--header %q: want key=value", kv)
		}
		out = append(out, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return out, nil
}
