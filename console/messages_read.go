package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/httpapi"
)

// Reading a topic from the broker: each page, scan or export reads the
// offset ranges it needs with a short-lived consumer of its own (no group,
// no commits), so browsing never moves anyone's offsets, and each poll is
// bounded by Config.RequestTimeout.

// msgPartRange is one partition's readable offsets, [Start, End).
type msgPartRange struct {
	P          int32
	Start, End int64
}

// msgPartitionRanges returns the readable offsets of topic's partitions, sorted
// by partition: 404 for an unknown topic, 400 when p (unless -1) is a
// partition it does not have.
func msgPartitionRanges(ctx context.Context, adm *kadm.Client, topic string, p int32) ([]msgPartRange, error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	td, ok := md.Topics[topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return nil, httpapi.Errorf(http.StatusNotFound, "console: topic %q does not exist", topic)
	}
	if td.Err != nil {
		return nil, msgBrokerError(td.Err)
	}
	if p >= 0 && int(p) >= len(td.Partitions) {
		return nil, msgBad("topic %q has %d partitions (0 to %d); there is no partition %d", topic, len(td.Partitions), len(td.Partitions)-1, p)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	var out []msgPartRange
	for _, pd := range td.Partitions {
		s, ok1 := starts.Lookup(topic, pd.Partition)
		e, ok2 := ends.Lookup(topic, pd.Partition)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("console: no offsets for %s/%d", topic, pd.Partition)
		}
		if s.Err != nil {
			return nil, msgBrokerError(s.Err)
		}
		if e.Err != nil {
			return nil, msgBrokerError(e.Err)
		}
		out = append(out, msgPartRange{P: pd.Partition, Start: s.Offset, End: e.Offset})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].P < out[j].P })
	return out, nil
}

// msgBrokerError keeps the meaning of a broker's error code as an HTTP status.
func msgBrokerError(err error) error {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return err
	}
	status := http.StatusBadGateway
	switch ke {
	case kerr.UnknownTopicOrPartition:
		status = http.StatusNotFound
	case kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed, kerr.GroupAuthorizationFailed:
		status = http.StatusForbidden
	case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.CorruptMessage,
		kerr.InvalidTimestamp, kerr.InvalidRequiredAcks, kerr.InvalidTopicException, kerr.PolicyViolation:
		status = http.StatusBadRequest
	}
	return httpapi.Errorf(status, "console: the broker refused: %s: %s", ke.Message, ke.Description)
}

// msgReadRange is one partition's part of a read: [From, To), Pos the next
// offset not yet read.
type msgReadRange struct {
	P        int32
	From, To int64
	Pos      int64
	Stopped  bool // the reader had what it needed before To
}

func (r *msgReadRange) done() bool { return r.Pos >= r.To }

// msgReadRanges reads the ranges of topic with a consumer of its own,
// calling fn with each record in offset order per partition (partitions
// interleave) and progress after each poll; fn returning false stops its
// partition's range (Stopped). It returns when every range is read or
// stopped, when ctx is done, or when a poll brings
// nothing for idle (a range whose last offsets hold no readable record, a
// broker that stopped answering); ranges not done are left with their
// Pos.
func (c *Console) msgReadRanges(ctx context.Context, topic string, rs []*msgReadRange, idle time.Duration,
	fn func(*kgo.Record) bool, progress func()) error {
	offsets := map[int32]kgo.Offset{}
	pending := 0
	for _, r := range rs {
		r.Pos, r.Stopped = r.From, false
		if !r.done() {
			offsets[r.P] = kgo.NewOffset().At(r.From)
			pending++
		}
	}
	if pending == 0 {
		return nil
	}
	byP := map[int32]*msgReadRange{}
	for _, r := range rs {
		byP[r.P] = r
	}
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.cfg.Brokers...)}, c.cfg.ClientOptions...)
	opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.FetchMaxPartitionBytes(4<<20),
		// Transaction markers hold offsets too: a range ending in one
		// (every committed transaction does) is only known to be read
		// when its marker is seen.
		kgo.KeepControlRecords())
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("console: kafka client: %w", err)
	}
	defer cl.Close()
	for pending > 0 {
		pctx, cancel := context.WithTimeout(ctx, idle)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if fs.IsClientClosed() {
			return errors.New("console: consumer closed")
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = err
			}
		})
		if ferr != nil {
			return msgBrokerError(ferr)
		}
		if fs.NumRecords() == 0 {
			return nil // idle: nothing more to read in time
		}
		fs.EachRecord(func(rec *kgo.Record) {
			r := byP[rec.Partition]
			if r == nil || r.done() || r.Stopped || rec.Offset < r.Pos {
				return
			}
			switch {
			case rec.Offset >= r.To:
				r.Pos = r.To
			case rec.Attrs.IsControl():
				r.Pos = rec.Offset + 1
			default:
				r.Pos = rec.Offset + 1
				r.Stopped = !fn(rec) && !r.done()
			}
			if r.done() || r.Stopped {
				pending--
				cl.PauseFetchPartitions(map[string][]int32{topic: {r.P}})
			}
		})
		if progress != nil {
			progress()
		}
	}
	return nil
}

// msgMergeByTime takes up to n records of the per-partition lists (each in
// offset order), newest first from the lists' tails or oldest first from
// their heads, so each partition gives a contiguous run and a cursor
// continues it without a gap.
func msgMergeByTime(lists map[int32][]*msgRecord, n int, newest bool) []*msgRecord {
	idx := map[int32]int{}
	for p, l := range lists {
		if newest {
			idx[p] = len(l) - 1
		} else {
			idx[p] = 0
		}
	}
	var out []*msgRecord
	for len(out) < n {
		var best *msgRecord
		var bestP int32
		for p, l := range lists {
			i := idx[p]
			if i < 0 || i >= len(l) {
				continue
			}
			r := l[i]
			if best == nil || (newest && msgLater(r, best)) || (!newest && msgLater(best, r)) {
				best, bestP = r, p
			}
		}
		if best == nil {
			break
		}
		out = append(out, best)
		if newest {
			idx[bestP]--
		} else {
			idx[bestP]++
		}
	}
	return out
}

// msgLater orders records by timestamp, then partition and offset, so the
// merge is deterministic.
func msgLater(a, b *msgRecord) bool {
	if !a.Timestamp.Equal(b.Timestamp) {
		return a.Timestamp.After(b.Timestamp)
	}
	if a.Partition != b.Partition {
		return a.Partition > b.Partition
	}
	return a.Offset > b.Offset
}

// msgBudgetShares splits budget records over the partitions' sizes: a
// partition smaller than its share gives the rest to the others.
func msgBudgetShares(sizes map[int32]int64, budget int64) map[int32]int64 {
	out := map[int32]int64{}
	left := map[int32]int64{}
	for p, s := range sizes {
		left[p] = s
	}
	for budget > 0 && len(left) > 0 {
		share := budget / int64(len(left))
		if share == 0 {
			share = 1
		}
		for p, s := range left {
			if budget == 0 {
				break
			}
			take := min(s, share, budget)
			out[p] += take
			budget -= take
			if left[p] = s - take; left[p] == 0 {
				delete(left, p)
			}
		}
	}
	return out
}
