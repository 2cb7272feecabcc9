package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Durable retries (WithRetryTopic) park an event whose retry delay is long
// in a retry topic instead of a timer, so its partition keeps moving and its
// commit passes the event. Key order still holds:
//
//   - The retry topic of a topic is co-partitioned with it: an event of
//     partition p is parked in partition p of the retry topic, and the group
//     balancer gives partition p of both to the same member (pairedBalancer).
//   - While a key has events in partition p of the retry topic that are not
//     finished ("owed"), later events of that key in partition p of the topic
//     are not handled there: they are moved to the retry topic behind them
//     (OutcomeDeferred), so the key's events are handled in order from it.
//   - A member that is assigned a pair reads the keys of the retry
//     partition's events from its committed offset to its end before it
//     fetches anything (inheritAssigned): that tells it which keys were owed
//     when the previous owner stopped.
//   - In the retry topic an event waits until its retry_not_before time, then
//     is handled like any other. A further long retry parks it again at the
//     end of the retry partition if nothing of its key waits behind it there;
//     otherwise it is held in memory (the new record would land behind its
//     key's later events).

// Headers of a record parked in a retry topic, besides the original ones.
const (
	HeaderRetryNotBefore      = "retry_not_before"      // RFC 3339 UTC with milliseconds; empty: at once
	HeaderRetryAttempts       = "retry_attempts"        // handler calls made so far (decimal)
	HeaderRetryOriginalOffset = "retry_original_offset" // offset in the original topic (same partition)
)

// retryTopics maps topics to their retry topics and back.
type retryTopics struct {
	adm      *kadm.Client // set by startRetryTopics before the group client starts
	minDelay time.Duration
	retryOf  map[string]string // topic -> retry topic
	sourceOf map[string]string // retry topic -> topic
}

func newRetryTopics(minDelay time.Duration, name func(topic, group string) string, group string, topics []string) (*retryTopics, error) {
	rt := &retryTopics{minDelay: minDelay, retryOf: map[string]string{}, sourceOf: map[string]string{}}
	for _, t := range topics {
		r := name(t, group)
		if r == t || r == "" {
			return nil, fmt.Errorf("agent: retry topic name %q for topic %q", r, t)
		}
		if _, dup := rt.sourceOf[r]; dup {
			return nil, fmt.Errorf("agent: two topics share the retry topic %q", r)
		}
		rt.retryOf[t], rt.sourceOf[r] = r, t
	}
	for r := range rt.sourceOf {
		if _, ok := rt.retryOf[r]; ok {
			return nil, fmt.Errorf("agent: %q is both a topic and a retry topic", r)
		}
	}
	return rt, nil
}

func (rt *retryTopics) all() []string {
	var ts []string
	for t, r := range rt.retryOf {
		ts = append(ts, t, r)
	}
	slices.Sort(ts)
	return ts
}

// ensure creates the retry topics that are missing, with as many partitions
// as their topics, and adds partitions to those that have fewer. The topics
// themselves must exist: their partition counts decide.
func (rt *retryTopics) ensure(ctx context.Context, adm *kadm.Client) error {
	tds, err := adm.ListTopics(ctx, rt.all()...)
	if err != nil {
		return fmt.Errorf("agent: retry topics: %w", err)
	}
	for t, r := range rt.retryOf {
		td, ok := tds[t]
		if !ok || td.Err != nil {
			err := td.Err
			if err == nil {
				err = kerr.UnknownTopicOrPartition
			}
			return fmt.Errorf("agent: retry topics: topic %q must exist first: %w", t, err)
		}
		n := int32(len(td.Partitions))
		rd, ok := tds[r]
		switch {
		case !ok || errors.Is(rd.Err, kerr.UnknownTopicOrPartition):
			resp, err := adm.CreateTopic(ctx, n, -1, nil, r)
			if err == nil {
				err = resp.Err
			}
			if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("agent: create retry topic %q: %w", r, err)
			}
		case rd.Err != nil:
			return fmt.Errorf("agent: retry topic %q: %w", r, rd.Err)
		case int32(len(rd.Partitions)) < n:
			resps, err := adm.UpdatePartitions(ctx, int(n), r)
			if err == nil {
				err = resps.Error()
			}
			if err != nil {
				return fmt.Errorf("agent: grow retry topic %q to %d partitions: %w", r, n, err)
			}
		case int32(len(rd.Partitions)) > n:
			return fmt.Errorf("agent: retry topic %q has %d partitions, more than the %d of %q", r, len(rd.Partitions), n, t)
		}
	}
	return nil
}

// retryRecord is the record that parks r, which is at origOffset in its
// topic, in partition r.Partition of topic, to be handled at notBefore
// (zero: at once) after attempts calls.
func retryRecord(topic string, r *kgo.Record, origOffset int64, attempts int, notBefore time.Time) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(r.Headers)+3)
	for _, h := range r.Headers {
		if !isRetryHeader(h.Key) {
			hs = append(hs, h)
		}
	}
	nb := ""
	if !notBefore.IsZero() {
		nb = notBefore.UTC().Format(dlqTimeFormat)
	}
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderRetryNotBefore, Value: []byte(nb)},
		kgo.RecordHeader{Key: HeaderRetryAttempts, Value: strconv.AppendInt(nil, int64(attempts), 10)},
		kgo.RecordHeader{Key: HeaderRetryOriginalOffset, Value: strconv.AppendInt(nil, origOffset, 10)},
	)
	return &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: hs, Timestamp: r.Timestamp}
}

// parseRetryHeaders reads the retry headers of a record from a retry topic.
// A record without them (written by hand) is handled at once as a first
// attempt.
func parseRetryHeaders(r *kgo.Record) (attempts int, notBefore time.Time, origOffset int64) {
	origOffset = r.Offset
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderRetryNotBefore:
			if t, err := time.Parse(time.RFC3339Nano, string(h.Value)); err == nil {
				notBefore = t
			}
		case HeaderRetryAttempts:
			if n, err := strconv.Atoi(string(h.Value)); err == nil && n >= 0 {
				attempts = n
			}
		case HeaderRetryOriginalOffset:
			if n, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				origOffset = n
			}
		}
	}
	return attempts, notBefore, origOffset
}

// originalRecord is r from a retry topic as it was in its topic: topic and
// offset restored, retry headers dropped. Dead letters of parked events
// name where the event came from, not the retry topic.
func originalRecord(r *kgo.Record, topic string, offset int64) *kgo.Record {
	o := *r
	o.Topic, o.Offset = topic, offset
	o.Headers = slices.DeleteFunc(slices.Clone(r.Headers), func(h kgo.RecordHeader) bool { return isRetryHeader(h.Key) })
	return &o
}

// isRetryHeader reports whether key is one of the headers retryRecord adds
// (a header of the application's that merely starts with "retry_" is kept).
func isRetryHeader(key string) bool {
	return key == HeaderRetryNotBefore || key == HeaderRetryAttempts || key == HeaderRetryOriginalOffset
}

// retryPartitioner sends records for retry topics to the partition set on
// the record (the original's), and every other record (dead letters) by key
// like Kafka's default partitioner.
type retryPartitioner struct {
	rt   *retryTopics
	keys kgo.Partitioner
}

func (p retryPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if _, ok := p.rt.sourceOf[topic]; ok {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.keys.ForTopic(topic)
}

// pairedBalancer is an eager group balancer that splits each topic's
// partitions over the members subscribed to it in contiguous ranges (like
// Kafka's range assignor) and gives partition p of a retry topic to the
// member that has partition p of its topic.
type pairedBalancer struct{ rt *retryTopics }

func (pairedBalancer) ProtocolName() string { return "spool-paired-range" }
func (pairedBalancer) IsCooperative() bool  { return false }

func (pairedBalancer) JoinGroupMetadata(interests []string, _ map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = interests
	meta.Generation = generation
	return meta.AppendTo(nil)
}

func (pairedBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b pairedBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	return cb, cb.MemberTopics(), err
}

// Balance implements kgo.ConsumerBalancerBalance.
func (b pairedBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	plan := cb.NewPlan()
	for _, t := range slices.Sorted(maps.Keys(topics)) {
		if _, isRetry := b.rt.sourceOf[t]; isRetry {
			if _, paired := topics[b.rt.sourceOf[t]]; paired {
				continue // assigned with its topic
			}
		}
		var subs []*kmsg.JoinGroupResponseMember
		cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
			if slices.Contains(meta.Topics, t) {
				subs = append(subs, m)
			}
		})
		if len(subs) == 0 {
			continue
		}
		n := topics[t]
		r, hasRetry := b.rt.retryOf[t]
		rn := topics[r]
		per, extra := int(n)/len(subs), int(n)%len(subs)
		p := int32(0)
		for i, m := range subs {
			k := per
			if i < extra {
				k++
			}
			for range k {
				plan.AddPartition(m, t, p)
				if hasRetry && p < rn {
					plan.AddPartition(m, r, p)
				}
				p++
			}
		}
	}
	return plan
}

// retryItem is what an item carries for retry topics. Most items have none:
// it is allocated for items read from a retry topic and for items being
// parked, which keeps the item of the common path small.
type retryItem struct {
	notBefore  time.Time   // read from a retry topic: not to be handled before
	origOffset int64       // read from a retry topic: its offset in its topic
	pending    *kgo.Record // a park decided whose publish failed: published again
}

func (a *Agent) isRetryTopic(topic string) bool { return a.sourceOf(topic) != "" }

// sourceOf returns the topic whose retry topic this is, or "".
func (a *Agent) sourceOf(topic string) string {
	if a.rt == nil {
		return ""
	}
	return a.rt.sourceOf[topic]
}

// startRetryTopics opens the admin client the agent uses for retry topics
// (its own, so it is ready before the group client's first assignment calls
// inheritAssigned) and creates or grows the retry topics. The caller closes
// the client.
func (a *Agent) startRetryTopics(ctx context.Context) (*kgo.Client, error) {
	cl, err := kgo.NewClient(a.cfg.kopts...)
	if err != nil {
		return nil, fmt.Errorf("agent: new client: %w", err)
	}
	a.rt.adm = kadm.NewClient(cl)
	if err := a.rt.ensure(ctx, a.rt.adm); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// inheritAssigned runs after the group fetched the offsets of newly
// assigned partitions and before fetching starts (kgo.AdjustFetchOffsetsFn).
// The events of an assigned retry partition from where the group resumes it
// to its end now were parked by an earlier owner (or by this member before
// the rebalance) and are not known to be finished: it reads their keys and
// counts them as owed, so that the topic partition's later events of those
// keys follow them. It reads them with a client of its own, not through the
// agent's window, so a backlog larger than the window cannot stall it. A
// retry partition without a commit starts at its log start whatever the
// client's reset policy: its events belong to this group.
func (a *Agent) inheritAssigned(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var topics []string
	for t := range offsets {
		if a.isRetryTopic(t) {
			topics = append(topics, t)
		}
	}
	if len(topics) == 0 {
		return offsets, nil
	}
	adm := a.rt.adm
	var starts, ends kadm.ListedOffsets
	var err error
	for attempt := 1; ; attempt++ {
		if starts, err = adm.ListStartOffsets(ctx, topics...); err == nil {
			if ends, err = adm.ListEndOffsets(ctx, topics...); err == nil {
				err = errors.Join(starts.Error(), ends.Error())
			}
		}
		if err == nil {
			break
		}
		if attempt == 5 || ctx.Err() != nil {
			return nil, fmt.Errorf("agent: retry topic offsets: %w", err)
		}
		a.cfg.log.Warn("agent: retry topic offsets, trying again", "group", a.group, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(a.backoff(attempt)):
		}
	}
	waiting := map[tp][2]int64{} // retry partition -> [from, end)
	for _, t := range topics {
		for n, o := range offsets[t] {
			start, _ := starts.Lookup(t, n)
			end, _ := ends.Lookup(t, n)
			from := start.Offset
			if at := o.EpochOffset().Offset; at >= 0 {
				from = max(from, at)
			}
			offsets[t][n] = kgo.NewOffset().At(from).WithEpoch(-1)
			if end.Offset > from {
				waiting[tp{t, n}] = [2]int64{from, end.Offset}
			}
		}
	}
	keys, err := a.scanKeys(ctx, waiting)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for rtp, counts := range keys {
		owed := a.owedLocked(tp{a.rt.sourceOf[rtp.topic], rtp.partition})
		for k, n := range counts {
			owed[k] += n
		}
	}
	return offsets, nil
}

// scanTimeout bounds the scan of retry partitions at an assignment.
const scanTimeout = 30 * time.Second

// scanKeys reads the records of each retry partition in ranges, [from, end),
// and counts their keys.
func (a *Agent) scanKeys(ctx context.Context, ranges map[tp][2]int64) (map[tp]map[string]int, error) {
	if len(ranges) == 0 {
		return nil, nil
	}
	at := map[string]map[int32]kgo.Offset{}
	for k, r := range ranges {
		if at[k.topic] == nil {
			at[k.topic] = map[int32]kgo.Offset{}
		}
		at[k.topic][k.partition] = kgo.NewOffset().At(r[0])
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, a.cfg.kopts...), kgo.ConsumePartitions(at))...)
	if err != nil {
		return nil, fmt.Errorf("agent: retry topic scan: %w", err)
	}
	defer cl.Close()
	// Bounded: records deleted by retention meanwhile never arrive. The
	// group session fails and is joined again.
	ctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	left := maps.Clone(ranges)
	out := map[tp]map[string]int{}
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("agent: retry topic scan: %d partitions not read to their end: %w", len(left), err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("agent: retry topic scan %s[%d]: %w", t, p, err) })
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := tp{r.Topic, r.Partition}
			rg, ok := left[k]
			if !ok || r.Offset >= rg[1] {
				return
			}
			if out[k] == nil {
				out[k] = map[string]int{}
			}
			out[k][a.orderKey(r)]++
			if r.Offset+1 >= rg[1] {
				delete(left, k)
			}
		})
	}
	return out, nil
}

// dropRetryStateLocked forgets the retry state of partitions taken away.
func (a *Agent) dropRetryStateLocked(m map[string][]int32) {
	if a.rt == nil {
		return
	}
	for t, ps := range m {
		for _, n := range ps {
			delete(a.mu.owed, tp{t, n})
		}
	}
}

// retryFinishedLocked settles what events of retry partition p that just
// finished owed for their keys.
func (a *Agent) retryFinishedLocked(p *partition, done []*item) {
	owed := a.mu.owed[tp{p.sourceTopic, p.tp.partition}]
	if owed == nil {
		return
	}
	for _, it := range done {
		if k := a.orderKey(it.rec); owed[k] > 1 {
			owed[k]--
		} else {
			delete(owed, k)
		}
	}
}

func (a *Agent) owedLocked(k tp) map[string]int {
	owed := a.mu.owed[k]
	if owed == nil {
		owed = map[string]int{}
		a.mu.owed[k] = owed
	}
	return owed
}

// owes reports whether it's key has unfinished events in the retry
// partition of p.
func (a *Agent) owes(p *partition, it *item) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.owed[p.tp][a.orderKey(it.rec)] > 0
}

// park moves it, an event of topic partition p, to p's retry partition, to
// be handled from there at notBefore (zero: at once, behind its key's
// earlier events there). From the decision on, its key owes the retry
// partition one event, so the key's later events follow it there. If the
// publish fails the event stays unfinished and pending: it is published
// again after a backoff without calling the handler again (its key's later
// events wait behind it in p meanwhile, so the order holds).
func (a *Agent) park(m *Message, p *partition, it *item, notBefore time.Time) result {
	rec := retryRecord(p.retryTopic, it.rec, it.rec.Offset, int(it.attempts), notBefore)
	done, ok := a.decidePark(p, p.tp, a.orderKey(it.rec), rec, 0)
	if !ok {
		return result{} // revoked: its new owner handles it
	}
	if it.rt == nil {
		it.rt = new(retryItem)
	}
	it.rt.pending = rec
	return a.parked(m, it, <-done)
}

// publishPending publishes again a park whose publish failed.
func (a *Agent) publishPending(m *Message, it *item) result {
	a.parkMu.Lock()
	done := a.produceLocked(it.rt.pending)
	a.parkMu.Unlock()
	return a.parked(m, it, <-done)
}

// parked settles a park of an event of a topic partition: done once the
// retry topic acknowledged it, else pending and tried again after a backoff.
func (a *Agent) parked(m *Message, it *item, err error) result {
	rec := it.rt.pending
	if err != nil {
		a.cfg.log.Error("agent: retry topic publish failed, will retry", append(a.attrs(m, err), "retry_topic", rec.Topic)...)
		if a.handlerCtx.Err() != nil {
			return result{}
		}
		return result{retry: a.backoff(1)}
	}
	it.rt.pending = nil
	if _, due, _ := parseRetryHeaders(rec); due.IsZero() {
		a.outcome(m, OutcomeDeferred, nil) // moved behind its key, not retried
	}
	return result{done: true}
}

// repark parks again it, an event of retry partition p that failed again,
// at the end of p, to be handled at notBefore: its attempts and due time
// stay durable and p's commit passes it. That is only in order if nothing of
// its key waits behind it in p (its key owes p just this event); otherwise,
// or if the publish fails (publishing later could land behind the key's
// later events), it is held in memory for delay instead.
func (a *Agent) repark(m *Message, p *partition, it *item, notBefore time.Time, delay time.Duration) result {
	owner, key := tp{p.sourceTopic, p.tp.partition}, a.orderKey(it.rec)
	rec := retryRecord(p.tp.topic, it.rec, it.rt.origOffset, int(it.attempts), notBefore)
	done, ok := a.decidePark(p, owner, key, rec, 1)
	if !ok {
		return result{retry: delay}
	}
	if err := <-done; err != nil {
		a.cfg.log.Error("agent: retry topic publish failed, retrying in memory", append(a.attrs(m, err), "retry_topic", rec.Topic)...)
		a.mu.Lock()
		if owed := a.mu.owed[owner]; owed[key] > 1 {
			owed[key]--
		}
		a.mu.Unlock()
		return result{retry: delay}
	}
	return result{done: true}
}

// decidePark counts key as owing owner's retry partition one more event and
// starts publishing rec, unless p was revoked or, with only > 0, key does
// not owe exactly only events already. Decisions and publishes happen under
// parkMu, so a retry partition receives a key's events in the order they
// were decided, whichever worker (of the topic partition or of the retry
// partition) decides.
func (a *Agent) decidePark(p *partition, owner tp, key string, rec *kgo.Record, only int) (<-chan error, bool) {
	a.parkMu.Lock()
	defer a.parkMu.Unlock()
	a.mu.Lock()
	if p.revoked || (only > 0 && a.mu.owed[owner][key] != only) {
		a.mu.Unlock()
		return nil, false
	}
	a.owedLocked(owner)[key]++
	a.mu.Unlock()
	return a.produceLocked(rec), true
}

// produceLocked starts publishing rec; the caller holds parkMu, which orders
// publishes to retry partitions. The result arrives on the channel.
func (a *Agent) produceLocked(rec *kgo.Record) <-chan error {
	done := make(chan error, 1)
	a.cl.Produce(a.handlerCtx, rec, func(_ *kgo.Record, err error) { done <- err })
	return done
}
