package producer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// publishSpooling publishes r with the fallback spool on: to the spool if
// the broker is down or r's key has events in the spool, otherwise to the
// broker, and to the spool after all if the broker does not take it in
// time. done is called once.
//
// Order: a record that fails in the client fails together with every record
// buffered behind it for its partition (kgo fails a partition's buffer as a
// whole, and only when no request of it is in flight), and promises run one
// at a time in order, so records that end in the spool from the promise
// are appended in their produce order, behind any earlier spooled record of
// their key.
func (p *Producer) publishSpooling(ctx context.Context, r *kgo.Record, typ, id string, done func(Result, error)) {
	if p.sp.mustSpool(r) {
		p.spoolRecord(r, typ, id, done)
		return
	}
	p.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
		switch {
		case err == nil:
			done(Result{Record: r}, nil)
		case ctx.Err() != nil || !spoolable(err):
			done(Result{}, publishError(typ, id, r.Topic, err))
		default:
			p.markDown(err)
			p.spoolRecord(r, typ, id, done)
		}
	})
}

func publishError(typ, id, topic string, err error) error {
	return fmt.Errorf("producer: publish %s %s to %s: %w", typ, id, topic, err)
}

// publishSync is publishSpooling for Publish: through ProduceSync, which
// does not wait for the client's linger.
func (p *Producer) publishSync(ctx context.Context, r *kgo.Record, typ, id string) (Result, error) {
	if !p.sp.mustSpool(r) {
		err := p.cl.ProduceSync(ctx, r).FirstErr()
		switch {
		case err == nil:
			return Result{Record: r}, nil
		case ctx.Err() != nil || !spoolable(err):
			return Result{}, publishError(typ, id, r.Topic, err)
		}
		p.markDown(err)
	}
	wait, err := p.sp.append(r)
	if err == nil {
		err = wait()
	}
	if err != nil {
		p.spoolHooks.Refused(r.Topic, err)
		return Result{}, publishError(typ, id, r.Topic, err)
	}
	p.spoolHooks.Spooled(r.Topic)
	r.Partition, r.Offset = -1, -1
	return Result{Record: r, Spooled: true}, nil
}

// spoolRecord appends r to the spool now (so that spool order is call
// order) and reports the result once it is durable. It may run inside a
// produce promise, so it never waits for the fsync itself.
func (p *Producer) spoolRecord(r *kgo.Record, typ, id string, done func(Result, error)) {
	wait, err := p.sp.append(r)
	if err != nil {
		p.spoolHooks.Refused(r.Topic, err)
		done(Result{}, publishError(typ, id, r.Topic, err))
		return
	}
	go func() {
		if err := wait(); err != nil {
			p.spoolHooks.Refused(r.Topic, err)
			done(Result{}, publishError(typ, id, r.Topic, err))
			return
		}
		p.spoolHooks.Spooled(r.Topic)
		r.Partition, r.Offset = -1, -1
		done(Result{Record: r, Spooled: true}, nil)
	}()
}

// markDown records that the broker failed to take an event in time: from
// now on events go to the spool until the drainer delivers again.
func (p *Producer) markDown(err error) {
	p.sp.failed(err)
	if p.sp.down.CompareAndSwap(false, true) {
		p.spoolHooks.ModeChanged(true)
		p.log.Warn("producer: broker not answering in time, spooling events", "err", err,
			"deadline", p.spoolDeadline, "spool", p.spoolDir)
	}
	p.sp.signal()
}

// spoolable reports whether a produce error means "the broker did not take
// it in time" (spool it) rather than "the broker refused it" (report it).
// A topic the cluster does not know is refused: spooling it would only
// hold the event until someone creates the topic.
func spoolable(err error) bool {
	if errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID) {
		return false
	}
	if errors.Is(err, kgo.ErrRecordTimeout) || errors.Is(err, kgo.ErrRecordRetries) || kerr.IsRetriable(err) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// SpoolStats returns the fallback spool's state; the zero value without
// WithSpool.
func (p *Producer) SpoolStats() SpoolStats {
	if p.sp == nil {
		return SpoolStats{}
	}
	return p.sp.stats()
}

// WaitSpoolEmpty waits until every event spooled so far has been delivered
// (or ctx ends). It returns at once without WithSpool.
func (p *Producer) WaitSpoolEmpty(ctx context.Context) error {
	if p.sp == nil {
		return nil
	}
	select {
	case <-p.sp.emptyCh():
		return nil
	case <-ctx.Done():
		st := p.sp.stats()
		return fmt.Errorf("producer: wait for the spool to drain (%d events left, last error: %v): %w", st.Records, st.Err, ctx.Err())
	}
}

// drainChunk bounds the events the drainer has in flight.
const drainChunk = 1000

// Drain backoff after a failed delivery: doubling from min to max.
const (
	drainBackoffMin = 50 * time.Millisecond
	drainBackoffMax = time.Second
)

// drain publishes spooled events, oldest first, until ctx ends. A chunk of
// events is produced at once (the client keeps per-partition order); when
// all of a prefix is acknowledged the log start offset moves past it, and
// that is the drain's durable progress. Events acknowledged beyond a failed
// one are remembered and not sent again in this run; after a crash they
// (and anything acknowledged but not yet past the start offset) are sent
// again, with their ce_id, for dedupe to drop.
func (p *Producer) drain(ctx context.Context) {
	defer close(p.drainDone)
	s := p.sp
	cursor := s.log.LogStartOffset()
	acked := map[int64]bool{}
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		more := s.log.Wait() // before the scan, so no append is missed
		var (
			offs []int64
			recs []*kgo.Record
		)
		err := s.scan(cursor, func(off int64, r *kgo.Record) bool {
			if !acked[off] {
				offs, recs = append(offs, off), append(recs, r)
			}
			return len(recs) < drainChunk
		})
		if err != nil {
			// The spool's storage failed (a read error or corruption):
			// nothing can be drained until the producer is reopened.
			s.failed(err)
			p.log.Error("producer: spool unreadable, drain stopped", "err", err, "spool", p.spoolDir)
			<-ctx.Done()
			return
		}
		if len(recs) == 0 {
			select {
			case <-ctx.Done():
			case <-more:
			case <-s.wake:
			}
			continue
		}
		if p.drainGate != nil {
			select {
			case <-p.drainGate:
			case <-ctx.Done():
				return
			}
		}
		ok, firstErr := p.deliver(ctx, recs)
		var delivered []*kgo.Record
		for i, r := range recs {
			if ok[i] {
				acked[offs[i]] = true
				delivered = append(delivered, r)
			}
		}
		for acked[cursor] {
			delete(acked, cursor)
			cursor++
		}
		if cursor > s.log.LogStartOffset() {
			if _, err := s.log.DeleteRecordsBefore(cursor); err != nil {
				// Delivered but not recorded as such: sent again after a restart.
				p.log.Error("producer: spool: record drain progress", "err", err)
			}
		}
		if len(delivered) > 0 {
			p.spoolHooks.Delivered(len(delivered)) // before WaitSpoolEmpty can return
			s.delivered(delivered)
		}
		if firstErr == nil {
			backoff = 0
			if s.down.CompareAndSwap(true, false) {
				p.spoolHooks.ModeChanged(false)
				p.log.Info("producer: broker back, publishing directly again", "spooled", s.records.Load())
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(firstErr, context.DeadlineExceeded) {
			firstErr = fmt.Errorf("%w (no answer within the spool deadline %v)", firstErr, p.spoolDeadline)
		}
		s.failed(firstErr)
		// Whether new events go straight to the spool depends on whether
		// the cluster answers at all, not on why this delivery failed (a
		// topic that does not exist must not stop every other topic).
		pctx, cancel := context.WithTimeout(ctx, p.spoolDeadline)
		perr := p.dcl.Ping(pctx)
		cancel()
		if perr == nil {
			if s.down.CompareAndSwap(true, false) {
				p.spoolHooks.ModeChanged(false)
				p.log.Info("producer: broker answers again, publishing directly", "spooled", s.records.Load())
			}
		} else if s.down.CompareAndSwap(false, true) {
			p.spoolHooks.ModeChanged(true)
		}
		backoff = min(max(2*backoff, drainBackoffMin), drainBackoffMax)
		d := backoff/2 + rand.N(backoff/2+1)
		p.log.Warn("producer: spool drain failed, will retry", "err", firstErr, "delivered", len(delivered),
			"left", s.records.Load(), "retry_in", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// deliver produces recs and waits for every answer, giving up after the
// spool deadline (for the records the client can still take back: not
// those in a request without an answer); ok[i] reports recs[i]
// acknowledged.
func (p *Producer) deliver(ctx context.Context, recs []*kgo.Record) ([]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, p.spoolDeadline)
	defer cancel()
	ok := make([]bool, len(recs))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	wg.Add(len(recs))
	for i, r := range recs {
		p.dcl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err == nil {
				ok[i] = true
				return
			}
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("producer: drain %s to %s: %w", idOf(r), r.Topic, err)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return ok, firstErr
}

// idOf returns the record's ce_id, for messages.
func idOf(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == "ce_id" {
			return "event " + string(h.Value)
		}
	}
	return "record"
}
