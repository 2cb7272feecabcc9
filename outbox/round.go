package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/internal/msgtrace"
)

// pending is one outbox row on its way to the broker.
type pending struct {
	id      int64
	topic   string
	key     []byte
	headers []byte
	value   []byte
	created int64
	err     error
	ackAt   time.Time
	done    atomic.Bool // set by the promise after err and ackAt
}

// errPastDeadline is round's error when it read its rows too close to the
// lease deadline to send them.
var errPastDeadline = errors.New("outbox: relay: round read past the lease deadline")

// errWaiting is reported for rows the broker has not answered within
// PublishTimeout.
var errWaiting = errors.New("outbox: no answer from the broker within PublishTimeout; still trying")

// reportWaiting reports the rows of a round still unanswered after
// PublishTimeout: hook, log, attempts and last_error (ReadStatus shows them
// retrying). Their outcome is recorded when it comes.
func (r *Relay) reportWaiting(ctx context.Context, send []*pending) {
	var waiting []*pending
	var ids []int64
	for _, p := range send {
		if !p.done.Load() {
			waiting = append(waiting, p)
			ids = append(ids, p.id)
		}
	}
	if len(ids) == 0 {
		return
	}
	r.log.Warn("outbox relay: the broker has not answered; waiting and retrying in order", "rows", len(ids), "timeout", r.cfg.PublishTimeout)
	if _, err := r.cfg.DB.ExecContext(ctx, r.q.markRetry, errWaiting.Error(), r.q.ids(ids)); err != nil {
		r.log.Warn("outbox relay: record failed attempts", "err", err)
	}
	r.retried.Add(int64(len(ids)))
	for _, p := range waiting {
		r.hooks.Failed(p.topic, errWaiting, false)
	}
}

// round publishes one batch of pending rows of the leased buckets: read
// them in id order, send them, then record the outcome. It returns how
// many rows it read and whether any failed.
func (r *Relay) round(ctx context.Context) (int, bool, error) {
	rows := r.takeReadAhead()
	var err error
	if rows == nil {
		rows, err = r.fetchNew(ctx)
	}
	if err != nil || len(rows) == 0 {
		return 0, false, err
	}
	r.stage(stageFetched, rows)
	// The deadline was checked before the read; it is checked again now
	// that the rows are here, right before anything is produced: the read,
	// or a pause of this process (GC, a stopped VM), may have taken the
	// relay past it, and then another relay may already hold these
	// buckets. The round is dropped unsent, with no failure recorded (its
	// rows stay pending for whoever holds their buckets), and the run loop
	// renews the leases first. From here to the end of the flush is at most
	// PublishTimeout, so the last produce request is sent before the
	// deadline (see maintainLeases).
	if late := time.Since(r.deadline.Add(-r.cfg.PublishTimeout)); late > 0 {
		r.stage(stageDropped, rows)
		r.log.Warn("outbox relay: a round was read too close to the lease deadline (a slow read or a paused process); dropped unsent, renewing leases",
			"rows", len(rows), "late", late)
		return 0, false, errPastDeadline
	}
	// A key whose row cannot be sent sends nothing after it this round.
	// Order is per topic and key, as in Kafka.
	held := map[string]bool{}
	ordKey := func(p *pending) string { return p.topic + "\x00" + string(p.key) }
	var send, rejected []*pending
	var recs []*kgo.Record
	for _, p := range rows {
		if p.key != nil && held[ordKey(p)] {
			continue
		}
		if r.alone[p.id] {
			if len(send) > 0 {
				break // it goes first, and alone, next round
			}
			delete(r.alone, p.id)
			rec, err := p.record(r.cfg.MaxRecordBytes)
			if err != nil {
				p.err = err
				rejected = append(rejected, p)
			} else {
				send, recs = append(send, p), append(recs, rec)
			}
			break
		}
		rec, err := p.record(r.cfg.MaxRecordBytes)
		if err != nil {
			p.err = err
			rejected = append(rejected, p)
			if p.key != nil {
				held[ordKey(p)] = true
			}
			continue
		}
		send = append(send, p)
		recs = append(recs, rec)
	}
	var wg sync.WaitGroup
	wg.Add(len(send))
	if len(send) > 0 {
		r.stage(stageSend, send)
	}
	for i, rec := range recs {
		p := send[i]
		var span trace.Span
		if r.tracer != nil {
			span = msgtrace.StartRecordSend(r.tracer, rec)
		}
		r.cl.Produce(ctx, rec, func(rec *kgo.Record, err error) {
			p.err, p.ackAt = err, time.Now()
			p.done.Store(true)
			if span != nil {
				msgtrace.EndSend(span, rec, err)
			}
			r.stage(stageAck, []*pending{p})
			wg.Done()
		})
	}
	r.startReadAhead(ctx, send)
	// Errors surface per record below. franz-go's delivery timeout does not
	// fire while no request can be sent at all (broker down, no producer
	// id), so the round has its own: past PublishTimeout whatever is still
	// buffered is aborted (franz-go waits for requests in flight to be
	// answered, so sequence numbers stay valid) and retried next round.
	// A request franz-go cannot know the outcome of (the broker went away
	// with it in flight) keeps the abort waiting until the broker answers;
	// the rows still waiting are reported as retrying meanwhile.
	fctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	if err := r.cl.Flush(fctx); err != nil && ctx.Err() == nil {
		r.reportWaiting(ctx, send)
		_ = r.cl.AbortBufferedRecords(ctx)
	}
	cancel()
	wg.Wait()
	if len(send) > 0 {
		r.stage(stageAcked, send)
	}

	var published, retry []*pending
	failedKeys := map[string]bool{}
	for _, p := range send {
		switch {
		case p.err == nil:
			published = append(published, p)
			if p.key != nil && failedKeys[ordKey(p)] {
				// Should not happen (see ManualFlushing in start); say so
				// loudly rather than hide it.
				r.log.Error("outbox relay: a row was acknowledged after an earlier row of its key failed: key order broken",
					"id", p.id, "topic", p.topic, "key", string(p.key))
			}
		case p.key != nil && failedKeys[ordKey(p)]:
			// Failed with (or because of) an earlier row of its key:
			// that row carries the error; this one just waits.
		case batchRefusal(p.err) && len(send) > 1:
			// The broker refused the whole batch the row was in; which
			// row was too large (or bad) is not known. Each is retried
			// alone.
			if r.alone == nil {
				r.alone = map[int64]bool{}
			}
			r.alone[p.id] = true
			retry = append(retry, p)
		case permanent(p.err):
			rejected = append(rejected, p)
		default:
			retry = append(retry, p)
		}
		if p.err != nil && p.key != nil {
			failedKeys[ordKey(p)] = true
		}
	}
	if len(rejected)+len(retry) > 0 {
		r.dropReadAhead() // a failed key must send nothing more this round
	}
	// Acknowledged rows are marked by the marker goroutine while the next
	// round is read and sent; the next read skips them meanwhile.
	r.handOff(published)
	// Failures are written before the next round: it must see a rejected
	// row as rejected. Outcomes are written even when ctx ended.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.recordFailures(wctx, rejected, retry); err != nil {
		r.dropReadAhead()
		return len(rows), true, err
	}
	return len(rows), len(rejected)+len(retry) > 0 || r.markFailed.Swap(false), nil
}

// markJob is one round's acknowledged rows, for the marker.
type markJob struct {
	round uint64
	rows  []*pending
}

// inflight tracks rows acknowledged but maybe not yet marked published,
// by the round that sent them.
type inflight struct {
	mu  sync.Mutex
	ids map[int64]uint64
}

// handOff gives a round's acknowledged rows to the marker. It blocks while
// the marker still works on the previous round, so at most one round is
// being marked while the next is read and sent.
func (r *Relay) handOff(rows []*pending) {
	if len(rows) == 0 {
		return
	}
	r.roundNo++
	r.inflight.mu.Lock()
	for _, p := range rows {
		r.inflight.ids[p.id] = r.roundNo
	}
	r.inflight.mu.Unlock()
	r.marks <- markJob{r.roundNo, rows}
}

// fetchNew reads pending rows, leaving out those an earlier round sent and
// the marker has not marked yet. Rounds up to markedRound (read before the
// query) were marked before it ran, so the query cannot return their rows.
func (r *Relay) fetchNew(ctx context.Context) ([]*pending, error) {
	marked := r.markedRound.Load()
	r.inflight.mu.Lock()
	for id, round := range r.inflight.ids {
		if round <= marked {
			delete(r.inflight.ids, id)
		}
	}
	extra := len(r.inflight.ids)
	r.inflight.mu.Unlock()
	rows, err := r.fetch(ctx, r.cfg.BatchSize+extra)
	if err != nil || extra == 0 {
		return rows, err
	}
	out := rows[:0]
	r.inflight.mu.Lock()
	for _, p := range rows {
		if _, sent := r.inflight.ids[p.id]; !sent {
			out = append(out, p)
		}
	}
	r.inflight.mu.Unlock()
	return out[:min(len(out), r.cfg.BatchSize)], nil
}

// marker marks handed-off rows published, in round order, until marks is
// closed. A failed mark leaves the rows pending: they are sent again
// (duplicates with the same ce_id), and the next round backs off.
func (r *Relay) marker() {
	for job := range r.marks {
		ids := make([]int64, len(job.rows))
		for i, p := range job.rows {
			ids[i] = p.id
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := r.cfg.DB.ExecContext(ctx, r.q.markPub, r.q.ids(ids))
		cancel()
		if err != nil {
			r.log.Warn("outbox relay: mark rows published failed; they will be published again", "rows", len(ids), "err", err)
			r.markFailed.Store(true)
		} else {
			r.stage(stageMarked, job.rows)
			for _, p := range job.rows {
				r.hooks.Published(p.topic, p.ackAt.Sub(time.UnixMilli(p.created)))
			}
			r.published.Add(int64(len(ids)))
		}
		if err != nil {
			r.inflight.mu.Lock()
			for _, id := range ids {
				delete(r.inflight.ids, id)
			}
			r.inflight.mu.Unlock()
		}
		r.markedRound.Store(job.round)
	}
}

// fetch reads up to BatchSize pending rows of the leased buckets, oldest
// first, skipping keys stopped by a rejected row.
func (r *Relay) fetch(ctx context.Context, limit int) ([]*pending, error) {
	q, args := r.q.fetchAll, []any{limit}
	if len(r.buckets) < NumBuckets {
		q, args = r.q.fetchSome, []any{r.q.bucketsArg(r.buckets), limit}
	}
	// The query reads the pending table in id order and stops after limit
	// rows; the plan needs no hint (see joinPending). Version 1 needed
	// enable_sort off, in a transaction of its own: 4 round trips.
	rs, err := r.cfg.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: relay: read pending rows: %w", err)
	}
	defer rs.Close()
	out := make([]*pending, 0, limit)
	for rs.Next() {
		p := new(pending)
		if err := rs.Scan(&p.id, &p.topic, &p.key, &p.headers, &p.value, &p.created); err != nil {
			return nil, fmt.Errorf("outbox: relay: read pending rows: %w", err)
		}
		out = append(out, p)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("outbox: relay: read pending rows: %w", err)
	}
	return out, nil
}

// ErrRecordTooLarge is the error of a row bigger than MaxRecordBytes.
var ErrRecordTooLarge = errors.New("outbox: record larger than MaxRecordBytes")

func (p *pending) record(maxBytes int) (*kgo.Record, error) {
	hs, err := decodeHeaders(p.headers)
	if err != nil {
		return nil, fmt.Errorf("row %d: %w", p.id, err)
	}
	size := len(p.key) + len(p.value)
	for _, h := range hs {
		size += len(h.Key) + len(h.Value)
	}
	if size > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrRecordTooLarge, size, maxBytes)
	}
	return &kgo.Record{Topic: p.topic, Key: p.key, Value: p.value, Headers: hs}, nil
}

// batchRefusal reports whether err is a broker's refusal of a whole
// record batch (MESSAGE_TOO_LARGE and RECORD_LIST_TOO_LARGE are measured on
// the batch; INVALID_RECORD names records of it but franz-go fails them
// all): every record of the batch gets it, the culprit and its innocent
// batch-mates alike.
func batchRefusal(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) || errors.Is(err, kerr.InvalidRecord)
}

// permanent reports whether the broker refused a record for good: a
// non-retriable Kafka error (too large, invalid, not authorized), or an
// unknown topic (franz-go gives up after its UnknownTopicRetries). Broker
// unavailability, timeouts and producer-state errors are retried.
func permanent(err error) bool {
	if errors.Is(err, ErrRecordTooLarge) || errors.Is(err, errBadHeaders) {
		return true
	}
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke {
	case kerr.UnknownTopicOrPartition, kerr.UnknownTopicID, kerr.InvalidTopicException,
		kerr.TopicAuthorizationFailed, kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord:
		return true
	case kerr.OutOfOrderSequenceNumber, kerr.UnknownProducerID, kerr.InvalidProducerEpoch,
		kerr.InvalidProducerIDMapping, kerr.DuplicateSequenceNumber:
		return false
	}
	return !ke.Retriable
}

// recordFailures writes a round's failures: rejected rows one by one with
// their error, retried rows counted.
func (r *Relay) recordFailures(ctx context.Context, rejected, retry []*pending) error {
	now := time.Now()
	for _, p := range rejected {
		r.log.Error("outbox relay: row rejected for good; its key is stopped until requeued or discarded",
			"id", p.id, "topic", p.topic, "key", string(p.key), "err", p.err)
		if _, err := r.cfg.DB.ExecContext(ctx, r.q.markReject, now.UnixMilli(), p.err.Error(), p.id); err != nil {
			return fmt.Errorf("outbox: relay: mark row %d rejected: %w", p.id, err)
		}
		r.hooks.Failed(p.topic, p.err, true)
		r.rejected.Add(1)
	}
	if len(retry) > 0 {
		byErr := map[string][]int64{}
		for _, p := range retry {
			byErr[p.err.Error()] = append(byErr[p.err.Error()], p.id)
			r.hooks.Failed(p.topic, p.err, false)
		}
		r.retried.Add(int64(len(retry)))
		r.log.Warn("outbox relay: publish failed; retrying in order", "rows", len(retry), "err", retry[0].err)
		for msg, ids := range byErr {
			if _, err := r.cfg.DB.ExecContext(ctx, r.q.markRetry, msg, r.q.ids(ids)); err != nil {
				return fmt.Errorf("outbox: relay: record failed attempts: %w", err)
			}
		}
	}
	return nil
}
