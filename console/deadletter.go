package console

import (
	"context"
	"encoding/binary"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The dead-letter headers the console reads. Spool's agent writes the
// dlq_* set (agent/deadletter.go, docs/consumer.md; the names are a wire
// contract, repeated here because the console is a plain Kafka client);
// Spring Kafka's DeadLetterPublishingRecoverer writes kafka_dlt-*, and its
// retry topics kafka_original-* (partition and offset as 4- and 8-byte
// big-endian integers).
const (
	headerDLQReason            = "dlq_reason"
	headerDLQError             = "dlq_error"
	headerDLQOriginalTopic     = "dlq_original_topic"
	headerDLQOriginalPartition = "dlq_original_partition"
	headerDLQOriginalOffset    = "dlq_original_offset"
	headerDLQGroup             = "dlq_group"
	headerDLQAttempts          = "dlq_attempts"
	headerDLQTime              = "dlq_time"

	headerSpringMessage   = "kafka_dlt-exception-message"
	headerSpringFQCN      = "kafka_dlt-exception-fqcn"
	headerSpringCauseFQCN = "kafka_dlt-exception-cause-fqcn"
	headerSpringTopic     = "kafka_dlt-original-topic"
	headerSpringPartition = "kafka_dlt-original-partition"
	headerSpringOffset    = "kafka_dlt-original-offset"
	headerSpringGroup     = "kafka_dlt-original-consumer-group"
	headerOrigTopic       = "kafka_original-topic"
	headerOrigPartition   = "kafka_original-partition"
	headerOrigOffset      = "kafka_original-offset"
	headerOrigGroup       = "kafka_original-consumer-group"
)

// DefaultDeadLetterTopics are the name patterns (path.Match globs) of
// dead-letter topics: Spool's agent default (<topic>.dlq), the usual
// -dlq/_dlq spellings, and Spring Kafka's (<topic>-dlt for retry topics,
// <topic>.DLT for the DeadLetterPublishingRecoverer).
var DefaultDeadLetterTopics = []string{"*.dlq", "*-dlq", "*_dlq", "*.DLQ", "*-dlt", "*.DLT", "*-DLT", "*.deadletter"}

// DeadLetter is one record of a dead-letter topic with what its headers
// say about its failure, whichever convention wrote them.
type DeadLetter struct {
	Record *kgo.Record
	// Reason is dlq_reason, or for a Spring dead letter the exception's
	// class (the cause's when it is wrapped).
	Reason string
	// Error is dlq_error or kafka_dlt-exception-message.
	Error string
	// OriginalTopic, OriginalPartition and OriginalOffset name where the
	// event was consumed from ("", -1, -1 when no header says).
	OriginalTopic     string
	OriginalPartition int32
	OriginalOffset    int64
	// Group is the consumer group that gave up on it.
	Group string
	// Attempts is dlq_attempts (-1 when absent).
	Attempts int
	// Convention is "spool", "spring" or "" (no dead-letter headers).
	Convention string
	// RedriveID is the spool_redrive_id the record carried when it was
	// dead-lettered: it failed again after that redrive.
	RedriveID string
}

// DecodeDeadLetter reads r's dead-letter headers.
func DecodeDeadLetter(r *kgo.Record) DeadLetter {
	d := DeadLetter{Record: r, OriginalPartition: -1, OriginalOffset: -1, Attempts: -1}
	var springFQCN, springCause string
	for _, h := range r.Headers {
		if !strings.HasPrefix(h.Key, "dlq_") && h.Key != HeaderRedriveID {
			continue // most headers are the application's: no string made of them
		}
		v := string(h.Value)
		switch h.Key {
		case headerDLQReason:
			d.Reason, d.Convention = v, "spool"
		case headerDLQError:
			d.Error, d.Convention = v, "spool"
		case headerDLQOriginalTopic:
			d.OriginalTopic, d.Convention = v, "spool"
		case headerDLQOriginalPartition:
			if n, err := strconv.ParseInt(v, 10, 32); err == nil {
				d.OriginalPartition = int32(n)
			}
		case headerDLQOriginalOffset:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				d.OriginalOffset = n
			}
		case headerDLQGroup:
			d.Group = v
		case headerDLQAttempts:
			if n, err := strconv.Atoi(v); err == nil {
				d.Attempts = n
			}
		case HeaderRedriveID:
			d.RedriveID = v
		}
	}
	if d.Convention != "" {
		return d
	}
	for _, h := range r.Headers {
		if !strings.HasPrefix(h.Key, "kafka_") {
			continue
		}
		v := string(h.Value)
		switch h.Key {
		case headerSpringMessage:
			d.Error, d.Convention = v, "spring"
		case headerSpringFQCN:
			springFQCN, d.Convention = v, "spring"
		case headerSpringCauseFQCN:
			springCause = v
		case headerSpringTopic, headerOrigTopic:
			if d.OriginalTopic == "" || h.Key == headerSpringTopic {
				d.OriginalTopic, d.Convention = v, "spring"
			}
		case headerSpringPartition, headerOrigPartition:
			if n, ok := springInt(h.Value); ok {
				d.OriginalPartition = int32(n)
			}
		case headerSpringOffset, headerOrigOffset:
			if n, ok := springInt(h.Value); ok {
				d.OriginalOffset = n
			}
		case headerSpringGroup, headerOrigGroup:
			d.Group = v
		}
	}
	d.Reason = springFQCN
	if springCause != "" {
		d.Reason = springCause
	}
	return d
}

// springInt decodes Spring's binary partition (4 bytes) and offset (8
// bytes), or a decimal string from a tool that wrote text.
func springInt(b []byte) (int64, bool) {
	switch len(b) {
	case 4:
		return int64(int32(binary.BigEndian.Uint32(b))), true
	case 8:
		return int64(binary.BigEndian.Uint64(b)), true
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

// isDeadLetterHeader reports whether key is a header that describes the
// dead-lettering, which a redriven record does not carry.
func isDeadLetterHeader(key string) bool {
	return strings.HasPrefix(key, "dlq_") || strings.HasPrefix(key, "kafka_dlt-") || strings.HasPrefix(key, "kafka_original-")
}

// matchesDeadLetterName reports whether topic matches one of the patterns.
func matchesDeadLetterName(patterns []string, topic string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, topic); ok {
			return true
		}
	}
	return false
}

// partitionRange is the offsets [Start, End) of one partition.
type partitionRange struct{ Start, End int64 }

// topicRanges returns the start and end offsets of topic's partitions.
func topicRanges(ctx context.Context, adm *kadm.Client, topic string) (map[int32]partitionRange, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListCommittedOffsets(ctx, topic) // the last stable offsets
	if err != nil {
		return nil, err
	}
	if err := ends.Error(); err != nil {
		return nil, err
	}
	out := map[int32]partitionRange{}
	ends.Each(func(o kadm.ListedOffset) {
		pr := partitionRange{End: o.Offset}
		if s, ok := starts.Lookup(topic, o.Partition); ok && s.Err == nil {
			pr.Start = s.Offset
		}
		out[o.Partition] = pr
	})
	return out, nil
}

// scanTopic reads topic's partitions over the given ranges, calling f for
// each record in offset order per partition (partitions interleave), until
// every range is read or f returns false. A new client is made from opts
// for each scan so that concurrent scans do not share consume state.
func scanTopic(ctx context.Context, opts []kgo.Opt, topic string, ranges map[int32]partitionRange, f func(*kgo.Record) bool) error {
	want := map[int32]int64{}
	starts := map[int32]kgo.Offset{}
	for p, r := range ranges {
		if r.End > r.Start {
			want[p] = r.End
			starts[p] = kgo.NewOffset().At(r.Start)
		}
	}
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}),
		kgo.FetchMaxWait(200*time.Millisecond),
		// Committed records only (an aborted transaction's dead letters are
		// not dead letters), with the transaction markers kept: the last
		// offset of a transactional topic is a marker, and seeing it is how
		// the scan knows it reached the end.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return fmt.Errorf("console: scan %s: %w", topic, err)
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("console: scan %s: %w", topic, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if ferr == nil {
				ferr = err
			}
		})
		if ferr != nil {
			return fmt.Errorf("console: scan %s: %w", topic, ferr)
		}
		stop := false
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			end, ok := want[p.Partition]
			if !ok {
				return
			}
			for _, r := range p.Records {
				if r.Offset >= end {
					break
				}
				if r.Offset+1 >= end {
					delete(want, p.Partition)
				}
				if r.Attrs.IsControl() {
					continue // a transaction marker: it only moves the position
				}
				if !f(r) {
					stop = true
					return
				}
			}
		})
		if stop {
			return nil
		}
	}
	return nil
}

// countBy is one row of a grouping: a value and how many records have it.
type countBy struct {
	Value string
	Count int64
}

// sortedCounts returns m's entries, most frequent first.
func sortedCounts(m map[string]int64) []countBy {
	out := make([]countBy, 0, len(m))
	for v, n := range m {
		out = append(out, countBy{v, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Value < out[j].Value
	})
	return out
}

// probeLatest reads the last record of every non-empty partition of the
// topics and returns, per topic, the convention of the dead-letter headers
// one of them carries ("spool", "spring"; absent: none). complete is false
// when the 2 s it allows ran out before every partition answered.
func probeLatest(ctx context.Context, opts []kgo.Opt, ends kadm.ListedOffsets, topics []string) (found map[string]string, complete bool) {
	want := map[string]map[int32]bool{}
	parts := map[string]map[int32]kgo.Offset{}
	n := 0
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil || o.Offset <= 0 || !slices.Contains(topics, o.Topic) {
			return
		}
		if parts[o.Topic] == nil {
			parts[o.Topic], want[o.Topic] = map[int32]kgo.Offset{}, map[int32]bool{}
		}
		parts[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset - 1)
		want[o.Topic][o.Partition] = true
		n++
	})
	found = map[string]string{}
	if n == 0 {
		return found, true
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...), kgo.ConsumePartitions(parts),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.KeepControlRecords())...)
	if err != nil {
		return found, false
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for n > 0 && pctx.Err() == nil {
		cl.PollFetches(pctx).EachRecord(func(rec *kgo.Record) {
			if want[rec.Topic][rec.Partition] {
				delete(want[rec.Topic], rec.Partition)
				n--
			}
			if rec.Attrs.IsControl() { // a transaction marker ends the partition: nothing to decode
				return
			}
			if d := DecodeDeadLetter(rec); d.Convention != "" && found[rec.Topic] == "" {
				found[rec.Topic] = d.Convention
			}
		})
	}
	return found, n == 0
}

// DeadLetterTopic is a dead-letter topic FindDeadLetterTopics found.
type DeadLetterTopic struct {
	Name string
	// By is "name" (it matches a pattern) or "headers" (its latest records
	// carry dead-letter headers; Convention says whose).
	By         string
	Convention string
	Partitions int
	// Depth is the records between its partitions' start and end offsets.
	Depth int64
}

// FindDeadLetterTopics lists the dead-letter topics of the cluster: those
// whose name matches one of patterns (path.Match globs; nil:
// DefaultDeadLetterTopics) and those whose latest records carry
// dead-letter headers, sorted by name. Internal topics (__*) and Spool's
// own (spool.*) are not probed.
func FindDeadLetterTopics(ctx context.Context, opts []kgo.Opt, patterns []string) ([]DeadLetterTopic, error) {
	if len(patterns) == 0 {
		patterns = DefaultDeadLetterTopics
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("console: dead-letter topics: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("console: dead-letter topics: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx)
	if err != nil {
		return nil, fmt.Errorf("console: dead-letter topics: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx)
	if err != nil {
		return nil, fmt.Errorf("console: dead-letter topics: %w", err)
	}
	var out []DeadLetterTopic
	var candidates []string
	for name, td := range tds {
		switch {
		case td.Err != nil || td.IsInternal || strings.HasPrefix(name, "__"):
		case matchesDeadLetterName(patterns, name):
			out = append(out, DeadLetterTopic{Name: name, By: "name"})
		case !strings.HasPrefix(name, "spool."):
			candidates = append(candidates, name)
		}
	}
	found, _ := probeLatest(ctx, opts, ends, candidates)
	for name, conv := range found {
		out = append(out, DeadLetterTopic{Name: name, By: "headers", Convention: conv})
	}
	for i := range out {
		d := &out[i]
		d.Partitions = len(tds[d.Name].Partitions)
		d.Depth = depthOf(starts, ends, d.Name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// depthOf is the records between topic's start and end offsets.
func depthOf(starts, ends kadm.ListedOffsets, topic string) int64 {
	var n int64
	for p, e := range ends[topic] {
		if e.Err != nil {
			continue
		}
		s := int64(0)
		if so, ok := starts.Lookup(topic, p); ok && so.Err == nil {
			s = so.Offset
		}
		n += max(e.Offset-s, 0)
	}
	return n
}
