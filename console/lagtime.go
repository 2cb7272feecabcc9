package console

import (
	"context"
	"fmt"
	"html/template"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Lag in time: how old a group's oldest unconsumed record is, per
// partition now minus the timestamp of the record at the committed offset
// (the log start when there is no commit or it fell out of retention), 0
// when the partition is caught up; a group's is its partitions' largest.
// Burrow, kafka-ui and Redpanda Console compute it the same way. The
// timestamps are read with small Fetch requests of our own (one record
// batch a partition, many partitions a request, a few requests at once),
// and kept for a minute: the record at an offset does not change, only
// "now" does, so a page refreshed every few seconds reads only the offsets
// that moved.

const (
	recordTimeTTL       = time.Minute     // how long a timestamp read is kept
	recordTimeCacheMax  = 100_000         // timestamps kept at most
	lagTimeInFlight     = 8               // Fetch requests at once
	lagTimePerRequest   = 100             // partitions per Fetch request
	lagTimePartBytes    = 64 << 10        // bytes asked of a partition (the broker sends its first batch whatever its size)
	lagTimeRequestBytes = 4 << 20         // bytes asked of a request
	lagTimeBudget       = 2 * time.Second // how long one page waits for timestamps
)

// lagUnknown is the lag in time of a partition whose timestamp was not
// read (the fetch failed or ran out of time, or the lag itself is
// unknown).
const lagUnknown time.Duration = -1

// tpOffset is one record's position.
type tpOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// recordTimes caches the timestamps of records by position.
type recordTimes struct {
	mu struct {
		sync.Mutex
		m map[tpOffset]recordTime
	}
}

type recordTime struct {
	ts      time.Time
	expires time.Time
}

// cached returns the fresh timestamps of want and the positions not cached.
func (rt *recordTimes) cached(now time.Time, want []tpOffset) (map[tpOffset]time.Time, []tpOffset) {
	got := make(map[tpOffset]time.Time, len(want))
	var miss []tpOffset
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, w := range want {
		if e, ok := rt.mu.m[w]; ok && now.Before(e.expires) {
			got[w] = e.ts
		} else {
			miss = append(miss, w)
		}
	}
	return got, miss
}

func (rt *recordTimes) store(now time.Time, read map[tpOffset]time.Time) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.mu.m == nil {
		rt.mu.m = map[tpOffset]recordTime{}
	}
	if len(rt.mu.m)+len(read) > recordTimeCacheMax {
		for k, e := range rt.mu.m {
			if !now.Before(e.expires) {
				delete(rt.mu.m, k)
			}
		}
		if len(rt.mu.m)+len(read) > recordTimeCacheMax {
			clear(rt.mu.m)
		}
	}
	for k, ts := range read {
		rt.mu.m[k] = recordTime{ts: ts, expires: now.Add(recordTimeTTL)}
	}
}

// oldestUnconsumed is the position of a partition's oldest unconsumed
// record; false when it is caught up or its lag is unknown.
func oldestUnconsumed(ml kadm.GroupMemberLag) (tpOffset, bool) {
	if ml.Err != nil || ml.Lag <= 0 || ml.End.Err != nil {
		return tpOffset{}, false
	}
	at := ml.Commit.At
	if ml.Start.Err == nil && at < ml.Start.Offset { // no commit, or its records were deleted
		at = ml.Start.Offset
	}
	if at < 0 || at >= ml.End.Offset {
		return tpOffset{}, false
	}
	return tpOffset{Topic: ml.Topic, Partition: ml.Partition, Offset: at}, true
}

// partitionLagTime is the lag in time of one partition given the
// timestamps read.
func partitionLagTime(now time.Time, ml kadm.GroupMemberLag, times map[tpOffset]time.Time) time.Duration {
	if ml.Err != nil || ml.Lag < 0 {
		return lagUnknown
	}
	pos, ok := oldestUnconsumed(ml)
	if !ok {
		return 0
	}
	ts, ok := times[pos]
	if !ok {
		return lagUnknown
	}
	return max(now.Sub(ts), 0) // a producer's clock ahead of ours is not a negative lag
}

// groupLagTime is a group's lag in time: its partitions' largest, unknown
// when one lagging partition's is.
func groupLagTime(now time.Time, l kadm.DescribedGroupLag, times map[tpOffset]time.Time) time.Duration {
	if l.Error() != nil {
		return lagUnknown
	}
	var worst time.Duration
	for _, t := range l.Lag { // not Lag.Sorted: the order does not matter, and sorting 1,000 groups' partitions shows in a profile
		for _, ml := range t {
			d := partitionLagTime(now, ml, times)
			if d == lagUnknown {
				return lagUnknown
			}
			worst = max(worst, d)
		}
	}
	return worst
}

// lagTimes reads the timestamps of the oldest unconsumed records of the
// groups' lagging partitions, from the cache or the brokers, within
// lagTimeBudget. Positions it could not read are missing from the map.
func (c *Console) lagTimes(ctx context.Context, cl *kgo.Client, adm *kadm.Client, lags ...kadm.DescribedGroupLag) map[tpOffset]time.Time {
	seen := map[tpOffset]bool{}
	var want []tpOffset
	for _, l := range lags {
		if l.Error() != nil {
			continue
		}
		for _, t := range l.Lag {
			for _, ml := range t {
				if pos, ok := oldestUnconsumed(ml); ok && !seen[pos] {
					seen[pos] = true
					want = append(want, pos)
				}
			}
		}
	}
	now := time.Now()
	got, miss := c.times.cached(now, want)
	if len(miss) == 0 {
		return got
	}
	ctx, cancel := context.WithTimeout(ctx, lagTimeBudget)
	defer cancel()
	read, err := fetchRecordTimes(ctx, cl, adm, miss)
	if err != nil {
		c.cfg.Logger.Debug("console: lag in time", "err", err)
	}
	c.times.store(now, read)
	for k, ts := range read {
		got[k] = ts
	}
	return got
}

// decompressor decodes the batches of fetchRecordTimes.
var decompressor = kgo.DefaultDecompressor()

// fetchRecordTimes reads the timestamp of the first record at or after
// each position, from the partition's leader. A Fetch names a partition
// once, so the positions of one partition go in successive rounds; a
// partition whose batch did not fit in a shared response is asked again
// on its own (the broker always sends the first partition's first batch).
func fetchRecordTimes(ctx context.Context, cl *kgo.Client, adm *kadm.Client, want []tpOffset) (map[tpOffset]time.Time, error) {
	var topics []string
	byTP := map[tpOffset][]int64{} // Offset 0: the partition's positions
	for _, w := range want {
		k := tpOffset{Topic: w.Topic, Partition: w.Partition}
		if byTP[k] == nil && !slices.Contains(topics, w.Topic) {
			topics = append(topics, w.Topic)
		}
		byTP[k] = append(byTP[k], w.Offset)
	}
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("console: metadata: %w", err)
	}
	// rounds[leader][i]: the i-th position of each partition it leads.
	rounds := map[int32][][]tpOffset{}
	for k, offs := range byTP {
		p, ok := md.Topics[k.Topic].Partitions[k.Partition]
		if !ok || p.Err != nil || p.Leader < 0 {
			continue
		}
		slices.Sort(offs)
		for i, o := range offs {
			rs := rounds[p.Leader]
			if len(rs) <= i {
				rs = append(rs, nil)
			}
			rs[i] = append(rs[i], tpOffset{Topic: k.Topic, Partition: k.Partition, Offset: o})
			rounds[p.Leader] = rs
		}
	}
	ids := map[string][16]byte{}
	for t, td := range md.Topics {
		ids[t] = td.ID
	}
	f := &timeFetcher{cl: cl, ids: ids, got: map[tpOffset]time.Time{}, sem: make(chan struct{}, lagTimeInFlight)}
	var alone []struct {
		leader int32
		pos    tpOffset
	}
	var wg sync.WaitGroup
	for leader, rs := range rounds {
		for _, r := range rs {
			for chunk := range slices.Chunk(r, lagTimePerRequest) {
				wg.Go(func() {
					for _, pos := range f.fetch(ctx, leader, chunk) {
						f.mu.Lock()
						alone = append(alone, struct {
							leader int32
							pos    tpOffset
						}{leader, pos})
						f.mu.Unlock()
					}
				})
			}
		}
	}
	wg.Wait()
	for _, a := range alone {
		wg.Go(func() { f.fetch(ctx, a.leader, []tpOffset{a.pos}) })
	}
	wg.Wait()
	return f.got, ctx.Err()
}

// timeFetcher runs the Fetch requests of fetchRecordTimes.
type timeFetcher struct {
	cl  *kgo.Client
	ids map[string][16]byte
	sem chan struct{}

	mu  sync.Mutex
	got map[tpOffset]time.Time
}

// fetch asks leader for the records at ps (one position a partition) and
// returns the positions that came back without a record although the
// partition has one there (its batch did not fit).
func (f *timeFetcher) fetch(ctx context.Context, leader int32, ps []tpOffset) (short []tpOffset) {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return nil
	}
	defer func() { <-f.sem }()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = lagTimeRequestBytes
	req.SessionEpoch = -1 // a full fetch, no session
	want := map[tpOffset]int64{}
	for _, p := range ps {
		want[tpOffset{Topic: p.Topic, Partition: p.Partition}] = p.Offset
		i := slices.IndexFunc(req.Topics, func(t kmsg.FetchRequestTopic) bool { return t.Topic == p.Topic })
		if i < 0 {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = p.Topic, f.ids[p.Topic] // v13+ names the topic by id
			req.Topics = append(req.Topics, rt)
			i = len(req.Topics) - 1
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.Partition, p.Offset, lagTimePartBytes
		rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	resp, err := req.RequestWith(ctx, f.cl.Broker(int(leader)))
	if err != nil {
		return nil
	}
	byID := map[[16]byte]string{}
	for t, id := range f.ids {
		byID[id] = t
	}
	for _, rt := range resp.Topics {
		topic := rt.Topic
		if topic == "" {
			topic = byID[rt.TopicID]
		}
		for i := range rt.Partitions {
			rp := &rt.Partitions[i]
			at, ok := want[tpOffset{Topic: topic, Partition: rp.Partition}]
			if !ok {
				continue
			}
			fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: topic, Partition: rp.Partition,
				Offset: at, KeepControlRecords: true}, rp, decompressor, nil)
			if fp.Err != nil {
				continue
			}
			pos := tpOffset{Topic: topic, Partition: rp.Partition, Offset: at}
			if i := slices.IndexFunc(fp.Records, func(r *kgo.Record) bool { return r.Offset >= at }); i >= 0 {
				f.mu.Lock()
				f.got[pos] = fp.Records[i].Timestamp
				f.mu.Unlock()
			} else if len(ps) > 1 && fp.HighWatermark > at {
				short = append(short, pos)
			}
		}
	}
	return short
}

// humanLag writes a lag in time for a table: "0s" caught up, "4m 12s",
// "3h 20m", "2d 5h"; "–" unknown.
func humanLag(d time.Duration) string {
	switch {
	case d < 0:
		return "–"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd %dh", int(d.Hours()/24), int(d.Hours())%24)
	}
}

// lagTimeCell is a lag in time in a page: the text, with the milliseconds
// in data-ms for scripts and tests; unknown says why.
func lagTimeCell(d time.Duration) template.HTML {
	if d < 0 {
		return `<span class="muted" data-ms="-1" title="the timestamp of the oldest unconsumed record could not be read in time">–</span>`
	}
	return template.HTML(fmt.Sprintf(`<span data-ms="%d">%s</span>`, d.Milliseconds(), humanLag(d)))
}
