package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newConsumeCmd() *cobra.Command {
	var (
		from       string
		partitions []int32
		exitAtEnd  bool
		count      int
		group      string
		format     string
		f          *clientFlags
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print a topic's records",
		Long: `Consume prints the records of TOPIC, one --format per record.

--from picks where each partition starts:
  beginning          the log start (default)
  end                only records produced from now on
  N                  offset N (clamped to the partition's start and end)
  -N                 the last N records of each partition
  @MILLIS            the first record with a timestamp >= MILLIS (Unix milliseconds)
  RFC3339 time       the first record at or after that time, e.g. 2024-05-01T12:00:00Z

With --group, the group's committed offsets win and --from applies only to
partitions without a commit; printed records are committed after each batch.

--format is kcat-like:
  %t topic  %p partition  %o offset  %k key  %s value  %T timestamp (Unix ms)
  %h headers as k=v,k=v  %K key length  %S value length  %% a percent sign
  \n newline  \t tab  \\ backslash
A missing key prints as nothing.`,
		Example: `  spool consume orders -e
  spool consume orders --from end
  spool consume orders --from -10 -f '%p/%o %k=%s %h\n'
  spool consume orders --from 2024-05-01T12:00:00Z -n 100
  spool consume orders --group billing -e`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			pr, err := compileFormat(format)
			if err != nil {
				return err
			}
			if group != "" && len(partitions) > 0 {
				return errors.New("consume: --partition cannot be combined with --group")
			}
			if count < 0 {
				return fmt.Errorf("consume: bad --count %d", count)
			}
			c := &consumer{f: f, topic: topic, from: from, partitions: partitions, exitAtEnd: exitAtEnd,
				count: count, group: group, print: pr, out: cmd.OutOrStdout()}
			ctx, cancel := f.ctx(cmd, false)
			defer cancel()
			if err := c.run(ctx); err != nil {
				return fmt.Errorf("consume %s: %w", topic, describeErr(err, f.brokers))
			}
			return nil
		},
	}
	f = addClientFlags(cmd)
	cmd.Flags().StringVarP(&from, "from", "o", "beginning", "where to start: beginning, end, N, -N, @MILLIS or an RFC3339 time")
	cmd.Flags().Int32SliceVarP(&partitions, "partition", "p", nil, "consume only these partitions (repeatable or comma-separated)")
	cmd.Flags().BoolVarP(&exitAtEnd, "exit", "e", false, "exit once every partition is read up to its end offset at start")
	cmd.Flags().IntVarP(&count, "count", "n", 0, "exit after this many records (0: no limit)")
	cmd.Flags().StringVarP(&group, "group", "g", "", "consume as a member of this consumer group and commit what is printed")
	cmd.Flags().StringVarP(&format, "format", "f", `%s\n`, "output format (see above)")
	return cmd
}

type consumer struct {
	f          *clientFlags
	topic      string
	from       string
	partitions []int32
	exitAtEnd  bool
	count      int
	group      string
	print      func(*bufio.Writer, *kgo.Record)
	out        io.Writer
}

// start describes where consumption starts: per partition offsets, plus the
// franz-go reset offset for group mode.
type startPos struct {
	offsets map[int32]int64
	reset   kgo.Offset
}

func (c *consumer) run(ctx context.Context) error {
	adm, err := c.f.admin()
	if err != nil {
		return err
	}
	defer adm.Close()
	actx, cancel := context.WithTimeout(ctx, c.f.timeout)
	defer cancel()
	starts, ends, err := listBounds(actx, adm, c.topic)
	if err != nil {
		return err
	}
	pos, err := c.resolveFrom(actx, adm, starts, ends)
	if err != nil {
		return err
	}
	if len(c.partitions) > 0 {
		keep := make(map[int32]int64)
		for _, p := range c.partitions {
			o, ok := pos.offsets[p]
			if !ok {
				return fmt.Errorf("partition %d does not exist", p)
			}
			keep[p] = o
		}
		pos.offsets = keep
	}
	opts := []kgo.Opt{kgo.FetchMaxWait(500 * time.Millisecond)}
	if c.group != "" {
		committed, err := fetchCommitted(actx, adm, c.group)
		if err != nil {
			return fmt.Errorf("group %s: fetch offsets: %w", c.group, err)
		}
		for p := range pos.offsets {
			if o, ok := committed.Lookup(c.topic, p); ok && o.Err == nil && o.At >= 0 {
				pos.offsets[p] = o.At
			}
		}
		opts = append(opts, kgo.ConsumerGroup(c.group), kgo.ConsumeTopics(c.topic),
			kgo.ConsumeResetOffset(pos.reset), kgo.DisableAutoCommit())
	} else {
		m := make(map[int32]kgo.Offset, len(pos.offsets))
		for p, o := range pos.offsets {
			m[p] = kgo.NewOffset().At(o)
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.topic: m}))
	}
	// remaining holds the partitions not yet read up to their end offset at
	// start; -e exits when it is empty.
	remaining := make(map[int32]int64)
	for p, o := range pos.offsets {
		if e := offsetOf(ends, c.topic, p); o < e {
			remaining[p] = e
		}
	}
	if c.exitAtEnd && len(remaining) == 0 {
		return nil
	}
	cl, err := c.f.client(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	return c.loop(ctx, cl, remaining)
}

func (c *consumer) loop(ctx context.Context, cl *kgo.Client, remaining map[int32]int64) error {
	w := bufio.NewWriter(c.out)
	defer w.Flush()
	printed := 0
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil // interrupted: a normal way to stop tailing
		}
		if err := firstFetchErr(fetches); err != nil {
			return err
		}
		var done []*kgo.Record
		limit := false
		fetches.EachRecord(func(r *kgo.Record) {
			if limit {
				return
			}
			c.print(w, r)
			done = append(done, r)
			printed++
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			limit = c.count > 0 && printed >= c.count
		})
		if err := w.Flush(); err != nil {
			return err
		}
		if c.group != "" && len(done) > 0 {
			if err := cl.CommitRecords(ctx, done...); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
		}
		if limit || (c.exitAtEnd && len(remaining) == 0) {
			return nil
		}
	}
}

// firstFetchErr returns the first fetch error that is not a shutdown signal.
func firstFetchErr(fs kgo.Fetches) error {
	for _, fe := range fs.Errors() {
		if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, kgo.ErrClientClosed) {
			continue
		}
		if fe.Partition >= 0 && fe.Topic != "" {
			return fmt.Errorf("partition %d: %w", fe.Partition, fe.Err)
		}
		return fe.Err
	}
	return nil
}

// listBounds lists the start and end offsets of every partition of topic,
// failing with the broker's error (UNKNOWN_TOPIC_OR_PARTITION, ...).
func listBounds(ctx context.Context, adm *kadm.Client, topic string) (kadm.ListedOffsets, kadm.ListedOffsets, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, nil, err
	}
	if len(ends[topic]) == 0 {
		return nil, nil, fmt.Errorf("topic %q has no partitions", topic)
	}
	return starts, ends, nil
}

// resolveFrom turns --from into an offset per partition.
func (c *consumer) resolveFrom(ctx context.Context, adm *kadm.Client, starts, ends kadm.ListedOffsets) (startPos, error) {
	pos := startPos{offsets: make(map[int32]int64)}
	each := func(fn func(p int32, start, end int64) int64) {
		for p, e := range ends[c.topic] {
			s := offsetOf(starts, c.topic, p)
			pos.offsets[p] = fn(p, s, e.Offset)
		}
	}
	from := strings.TrimSpace(c.from)
	switch {
	case from == "beginning" || from == "start" || from == "earliest":
		pos.reset = kgo.NewOffset().AtStart()
		each(func(_ int32, s, _ int64) int64 { return s })
		return pos, nil
	case from == "end" || from == "latest":
		pos.reset = kgo.NewOffset().AtEnd()
		each(func(_ int32, _, e int64) int64 { return e })
		return pos, nil
	}
	if n, err := strconv.ParseInt(from, 10, 64); err == nil {
		if n < 0 {
			pos.reset = kgo.NewOffset().AtEnd().Relative(n)
			each(func(_ int32, s, e int64) int64 { return max(s, e+n) })
		} else {
			pos.reset = kgo.NewOffset().At(n)
			each(func(_ int32, s, e int64) int64 { return min(max(s, n), e) })
		}
		return pos, nil
	}
	ms, err := parseTimestamp(from)
	if err != nil {
		return pos, fmt.Errorf("bad --from %q: want beginning, end, N, -N, @MILLIS or an RFC3339 time", c.from)
	}
	pos.reset = kgo.NewOffset().AfterMilli(ms)
	byTime, err := adm.ListOffsetsAfterMilli(ctx, ms, c.topic)
	if err == nil {
		err = byTime.Error()
	}
	if err != nil {
		return pos, fmt.Errorf("list offsets by time: %w", err)
	}
	each(func(p int32, _, e int64) int64 {
		if o := offsetOf(byTime, c.topic, p); o >= 0 {
			return o
		}
		return e
	})
	return pos, nil
}

// parseTimestamp accepts @MILLIS (Unix milliseconds) or an RFC3339 time.
func parseTimestamp(s string) (int64, error) {
	if ms, ok := strings.CutPrefix(s, "@"); ok {
		return strconv.ParseInt(ms, 10, 64)
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("bad time %q", s)
}

// compileFormat compiles a kcat-like format string into a record printer.
func compileFormat(format string) (func(*bufio.Writer, *kgo.Record), error) {
	var parts []func(*bufio.Writer, *kgo.Record)
	lit := func(s string) {
		parts = append(parts, func(w *bufio.Writer, _ *kgo.Record) { w.WriteString(s) })
	}
	for i := 0; i < len(format); i++ {
		ch := format[i]
		if (ch != '%' && ch != '\\') || i == len(format)-1 {
			if ch == '%' || ch == '\\' {
				return nil, fmt.Errorf("consume: --format %q ends with a lone %q", format, ch)
			}
			lit(string(ch))
			continue
		}
		i++
		next := format[i]
		if ch == '\\' {
			switch next {
			case 'n':
				lit("\n")
			case 't':
				lit("\t")
			case 'r':
				lit("\r")
			case '\\':
				lit("\\")
			default:
				return nil, fmt.Errorf("consume: --format %q: unknown escape \\%c", format, next)
			}
			continue
		}
		p, ok := formatVerbs[next]
		if !ok {
			return nil, fmt.Errorf("consume: --format %q: unknown directive %%%c (want %%t %%p %%o %%k %%s %%T %%h %%K %%S %%%%)", format, next)
		}
		parts = append(parts, p)
	}
	return func(w *bufio.Writer, r *kgo.Record) {
		for _, p := range parts {
			p(w, r)
		}
	}, nil
}

var formatVerbs = map[byte]func(*bufio.Writer, *kgo.Record){
	't': func(w *bufio.Writer, r *kgo.Record) { w.WriteString(r.Topic) },
	'p': func(w *bufio.Writer, r *kgo.Record) { w.WriteString(strconv.Itoa(int(r.Partition))) },
	'o': func(w *bufio.Writer, r *kgo.Record) { w.WriteString(strconv.FormatInt(r.Offset, 10)) },
	'k': func(w *bufio.Writer, r *kgo.Record) { w.Write(r.Key) },
	's': func(w *bufio.Writer, r *kgo.Record) { w.Write(r.Value) },
	'T': func(w *bufio.Writer, r *kgo.Record) { w.WriteString(strconv.FormatInt(r.Timestamp.UnixMilli(), 10)) },
	'K': func(w *bufio.Writer, r *kgo.Record) { w.WriteString(strconv.Itoa(len(r.Key))) },
	'S': func(w *bufio.Writer, r *kgo.Record) { w.WriteString(strconv.Itoa(len(r.Value))) },
	'%': func(w *bufio.Writer, _ *kgo.Record) { w.WriteByte('%') },
	'h': func(w *bufio.Writer, r *kgo.Record) {
		hs := make([]string, len(r.Headers))
		for i, h := range r.Headers {
			hs[i] = h.Key + "=" + string(h.Value)
		}
		w.WriteString(strings.Join(hs, ","))
	},
}

// sortedPartitions returns the keys of m in order.
func sortedPartitions[V any](m map[int32]V) []int32 {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// fetchCommitted fetches a group's committed offsets. A group that does not
// exist has none: Kafka answers that without an error, some brokers with
// GROUP_ID_NOT_FOUND.
func fetchCommitted(ctx context.Context, adm *kadm.Client, group string) (kadm.OffsetResponses, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return kadm.OffsetResponses{}, nil
	}
	return committed, err
}
