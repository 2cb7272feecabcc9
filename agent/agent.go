// Package agent is the consumer agent: the thin decision-maker between the
// broker and the application. Handlers decide what happened to each event by
// returning a verdict (an error, see Verdict); the agent does the rest:
// consumer group membership, routing by ce_type without decoding payloads,
// retries with backoff that hold back only the failing key, dead letters,
// key-ordered parallelism beyond the partition count, and commits that never
// pass unfinished work.
//
// # Guarantees
//
//   - At least once: an event is committed only after its handler succeeded
//     (nil or Warn), it was skipped (no handler), or it was acknowledged by
//     the dead-letter topic. A crash, kill or rebalance redelivers the rest.
//   - Order: events with the same key in a partition are handled one at a
//     time, in offset order, including across retries. Events without a key
//     count as one key per partition (with WithCorrelationOrder, one key per
//     correlation id).
//   - Commits: the committed offset of a partition is the offset of its
//     lowest unfinished event (or the end of what was fetched, if all is
//     finished). Commits happen every WithCommitInterval, on revocation
//     (after the partition's in-flight handlers finish or WithRevokeTimeout)
//     and on shutdown.
//
// Retries are held in memory unless WithRetryTopic parks long ones in a
// retry topic, co-partitioned with their topic, keeping key order (see
// retrytopic.go and docs/consumer.md).
package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/claimcheck"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/msgtrace"
)

// Message is an event as given to a handler, with where it came from.
type Message struct {
	*event.Event             // the envelope; Data is the undecoded payload
	Record       *kgo.Record // the record as fetched
	Group        string      // the consumer group
	Attempt      int         // 1 on the first call, 2 on the first retry, ...
	// ReplayID names the lookback replay that sent this event again
	// (WithReplay); it is empty for live events.
	ReplayID string

	took time.Duration // the handler call's duration, for receipts

	cl *kgo.Client // the agent's client, for Reply
}

// Agent consumes topics as a member of a consumer group and hands each event
// to its handler. Create with New, run with Run.
type Agent struct {
	cfg    config
	group  string
	topics []string
	cnt    counters
	ran    atomic.Bool
	rt     *retryTopics // nil: retries in memory only

	cl          *kgo.Client
	handlerCtx  context.Context
	stop        chan struct{} // closed on kill or halt
	stopOnce    sync.Once
	commitMu    sync.Mutex // serialises commits with revocation
	commitCount atomic.Int64
	room        chan struct{} // a full partition drained or went away: poll may go on
	pauseMu     sync.Mutex    // serialises PauseFetchPartitions/ResumeFetchPartitions; guards partition.fetchPaused
	parkMu      sync.Mutex    // orders park decisions and publishes to retry topics (see park)
	timeHooks   bool          // hooks are not NopHooks: measure handler durations
	tracer      trace.Tracer  // nil: no spans (WithTracerProvider not given)
	halting     atomic.Bool   // mu.stopping, for workers between events without the lock

	mu struct {
		sync.Mutex
		work     sync.Cond // workers wait for ready keys
		idle     sync.Cond // revocation and shutdown wait for handlers
		parts    map[tp]*partition
		ready    []*keyQueue
		readyAt  int
		stopping bool
		running  int
		fatal    error

		// Retry topics (see retrytopic.go): by partition of a topic, the
		// keys with unfinished events in its retry partition, and how many.
		owed map[tp]map[string]int
	}
}

type tp struct {
	topic     string
	partition int32
}

// partition is the agent's view of one assigned partition: the records
// fetched and not yet finished, in offset order, and its keys.
type partition struct {
	tp        tp
	items     []*item // items[head:] are the window; finished ones wait to be passed
	head      int
	next      int64       // offset after the last record added
	committed int64       // highest committed offset, -1 if none
	full      bool        // window reached: polling waits up to fullGrace, then the partition is paused
	paused    bool        // fetching should be paused (desired state; see syncPause)
	revoked   bool        // no new work starts; results still mark items done
	gone      atomic.Bool // revoked, for workers between events without the lock
	running   int
	keys      map[string]*keyQueue
	idleKeys  int // keys with no items and not queued, kept for reuse (see sweepKeys)

	retryTopic  string // this partition's events are parked in this topic ("": none)
	sourceTopic string // this is a retry partition of this topic ("": it is not)

	fetchPaused bool // what the client was last told; guarded by Agent.pauseMu
}

type keyQueue struct {
	p      *partition
	key    string
	items  []*item // items[0] is the one being handled or retried
	queued bool    // in the ready list, running, or waiting for a retry
}

// item is one fetched record. Items are allocated in bulk per poll, so
// the fields are ordered to keep it at 64 bytes.
type item struct {
	rec      *kgo.Record
	ev       *event.Event // decoded by add; nil if malformed (see bad)
	bad      error        // why the envelope could not be decoded
	h        Handler      // for ev.Type; nil: skip
	dlq      *pendingDLQ  // dead-lettering decided but not yet acknowledged
	rt       *retryItem   // retry topics: nil unless read from one or being parked in one
	attempts int32        // handler calls made
	traced   bool         // ev has a traceparent
	claimed  bool         // WithClaimCheck: ev's claim reference (if any) is resolved
	done     bool
}

// New returns an agent that consumes topics as a member of group.
func New(group string, topics []string, opts ...Option) (*Agent, error) {
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case group == "":
		return nil, errors.New("agent: empty consumer group")
	case len(topics) == 0:
		return nil, errors.New("agent: no topics")
	case cfg.concurrency < 1:
		return nil, fmt.Errorf("agent: concurrency %d < 1", cfg.concurrency)
	case cfg.window < 1:
		return nil, fmt.Errorf("agent: window %d < 1", cfg.window)
	case cfg.maxAttempts < 1:
		return nil, fmt.Errorf("agent: max attempts %d < 1", cfg.maxAttempts)
	case cfg.backoffBase <= 0 || cfg.backoffMax < cfg.backoffBase:
		return nil, fmt.Errorf("agent: bad backoff %v..%v", cfg.backoffBase, cfg.backoffMax)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, group: group, topics: topics, stop: make(chan struct{}), room: make(chan struct{}, 1)}
	if cfg.retryMinDelay > 0 {
		rt, err := newRetryTopics(cfg.retryMinDelay, cfg.retryTopic, group, topics)
		if err != nil {
			return nil, err
		}
		a.rt = rt
		a.mu.owed = map[tp]map[string]int{}
	}
	_, nop := cfg.hooks.(NopHooks)
	a.timeHooks = !nop || cfg.receiptsTopic != ""
	if cfg.replay && cfg.retryMinDelay > 0 {
		return nil, errors.New("agent: WithReplay cannot be combined with WithRetryTopic")
	}
	if cfg.tracerProvider != nil {
		a.tracer = cfg.tracerProvider.Tracer(msgtrace.ScopeName)
	}
	a.mu.work.L = &a.mu.Mutex
	a.mu.idle.L = &a.mu.Mutex
	a.mu.parts = make(map[tp]*partition)
	return a, nil
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats { return a.cnt.stats() }

// Run consumes until ctx is cancelled (then it returns nil), a handler
// returns Kill (an error wrapping ErrKilled and the handler's error), or an
// event exhausts its attempts under OnExhaustedHalt (an error wrapping
// ErrRetriesExhausted). Before returning it stops fetching, lets in-flight
// handlers finish (bounded by WithShutdownTimeout), commits what is finished
// and leaves the group. Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	if !a.ran.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	topics, partitioner := a.topics, kgo.StickyKeyPartitioner(nil)
	kopts := append(append([]kgo.Opt{}, a.cfg.kopts...),
		kgo.ConsumerGroup(a.group),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(a.onRevoked),
		kgo.OnPartitionsLost(a.onLost),
	)
	if a.rt != nil {
		admin, err := a.startRetryTopics(ctx)
		if err != nil {
			return err
		}
		defer admin.Close()
		topics = a.rt.all()
		partitioner = retryPartitioner{rt: a.rt, keys: partitioner}
		kopts = append(kopts, kgo.Balancers(pairedBalancer{a.rt}), kgo.AdjustFetchOffsetsFn(a.inheritAssigned))
	}
	if a.cfg.replay {
		topics = append(slices.Clip(topics), ReplayTopic(a.group))
	}
	kopts = append(kopts, kgo.ConsumeTopics(topics...), kgo.RecordPartitioner(partitioner))
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return fmt.Errorf("agent: new client: %w", err)
	}
	a.cl = cl
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	a.handlerCtx = hctx

	var workers sync.WaitGroup
	for range a.cfg.concurrency {
		workers.Go(a.worker)
	}
	pollCtx, cancelPoll := context.WithCancel(ctx)
	defer cancelPoll()
	var bg sync.WaitGroup
	bg.Go(func() {
		select {
		case <-a.stop:
			cancelPoll()
		case <-pollCtx.Done():
		}
	})
	bg.Go(func() { a.commitLoop(pollCtx) })

	a.poll(pollCtx)

	// Shutdown: no new work, in-flight work finishes (bounded), commit.
	cancelPoll()
	a.mu.Lock()
	a.mu.stopping = true
	a.halting.Store(true)
	a.mu.work.Broadcast()
	if !a.waitIdleLocked(nil, a.cfg.shutdownTimeout) {
		a.cfg.log.Warn("agent: shutdown timeout: cancelling in-flight handlers", "group", a.group)
		cancelHandlers()
		a.waitIdleLocked(nil, a.cfg.shutdownTimeout)
	}
	fatal := a.mu.fatal
	a.mu.Unlock()
	bg.Wait()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	if err := a.commit(cctx, nil); err != nil {
		a.cfg.log.Error("agent: final commit", "group", a.group, "err", err)
	}
	cancel()
	cl.Close() // leaves the group; onRevoked commits again (nothing new)
	workers.Wait()
	return fatal
}

func (a *Agent) poll(ctx context.Context) {
	for {
		if !a.waitRoom(ctx) {
			return
		}
		fs := a.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			a.cl.AllowRebalance()
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				a.cfg.log.Error("agent: fetch", "topic", t, "partition", p, "err", err)
			}
		})
		a.add(fs)
		a.cl.AllowRebalance()
	}
}

// addChunk is how many records add decodes before handing them to the
// workers, so that they work while the rest of a large poll is decoded.
const addChunk = 256

// add enters fetched records into their partitions' windows and queues
// keys that became ready. A partition whose window is reached is marked
// full; waitRoom deals with it before the next poll.
//
// Envelopes are decoded and handlers resolved here, in offset order right
// after the poll and outside the lock: workers take records in key order,
// which jumps through memory, and doing it there costs twice as much.
func (a *Agent) add(fs kgo.Fetches) {
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		items := make([]item, len(fp.Records)) // one allocation per partition and poll
		fromRetry := a.isRetryTopic(fp.Topic)
		for lo := 0; lo < len(items); lo += addChunk {
			chunk := items[lo:min(lo+addChunk, len(items))]
			evs := make([]event.Event, len(chunk)) // one allocation per chunk, not per event
			var errs [addChunk]error
			event.DecodeRecords(evs, fp.Records[lo:lo+len(chunk)], errs[:])
			for i := range chunk {
				it := &chunk[i]
				it.rec = fp.Records[lo+i]
				if fromRetry {
					it.rt = new(retryItem)
					var attempts int
					attempts, it.rt.notBefore, it.rt.origOffset = parseRetryHeaders(it.rec)
					it.attempts = int32(min(attempts, math.MaxInt32))
				}
				if it.bad = errs[i]; it.bad != nil {
					continue // it.ev stays nil: malformed
				}
				it.ev = &evs[i]
				if it.h = a.cfg.handlers[it.ev.Type]; it.h == nil {
					it.h = a.cfg.defaultHandler
				}
				it.traced = it.ev.TraceParent != ""
			}
			a.enqueue(tp{fp.Topic, fp.Partition}, chunk)
		}
	})
}

// enqueue appends items (consecutive records of partition k) to k's window
// and queues their keys.
func (a *Agent) enqueue(k tp, items []item) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.mu.parts[k]
	if p == nil {
		p = &partition{tp: k, committed: -1, keys: make(map[string]*keyQueue)}
		if a.rt != nil {
			p.retryTopic, p.sourceTopic = a.rt.retryOf[k.topic], a.rt.sourceOf[k.topic]
		}
		a.mu.parts[k] = p
	}
	woke := 0
	for i := range items {
		it := &items[i]
		p.items = append(p.items, it)
		key := a.orderKey(it.rec)
		kq := p.keys[key]
		if kq == nil {
			kq = &keyQueue{p: p, key: key}
			p.keys[kq.key] = kq
		} else if len(kq.items) == 0 && !kq.queued {
			p.idleKeys--
		}
		kq.items = append(kq.items, it)
		if !kq.queued {
			kq.queued = true
			a.mu.ready = append(a.mu.ready, kq)
			woke++
		}
	}
	p.next = items[len(items)-1].rec.Offset + 1
	if len(p.items)-p.head >= a.cfg.window {
		p.full = true
	}
	if woke > 1 {
		a.mu.work.Broadcast()
	} else if woke == 1 {
		a.mu.work.Signal()
	}
}

// fullGrace is how long polling waits for a full partition to drain to half
// its window before pausing it. A busy partition usually drains within it,
// which avoids pausing: franz-go drops buffered data of a paused partition,
// and a resumed partition waits for any long poll in flight on its broker
// (up to the fetch max wait, 5s by default) before it is fetched again.
// A partition that is stuck (a key held back by a retry) gets paused, and
// the others are fetched again.
const fullGrace = 100 * time.Millisecond

// waitRoom holds off polling while a partition is full and not paused, for
// up to fullGrace, then pauses the partitions still full. It reports false
// if ctx is done.
func (a *Agent) waitRoom(ctx context.Context) bool {
	var grace *time.Timer
	defer func() {
		if grace != nil {
			grace.Stop()
		}
	}()
	expired := false
	for {
		a.mu.Lock()
		var full []*partition
		for _, p := range a.mu.parts {
			if p.full && !p.paused && !p.revoked {
				full = append(full, p)
			}
		}
		if len(full) == 0 {
			a.mu.Unlock()
			return true
		}
		if expired {
			for _, p := range full {
				p.paused = true
			}
			a.mu.Unlock()
			a.syncPause(full)
			return true
		}
		a.mu.Unlock()
		if grace == nil {
			grace = time.NewTimer(fullGrace)
		}
		select {
		case <-a.room:
		case <-grace.C:
			expired = true
		case <-ctx.Done():
			return false
		}
	}
}

// syncPause tells the client to pause or resume fetching ps as their paused
// flags say now. Serialised by pauseMu, so the last call leaves the client
// in the latest desired state whatever order concurrent callers run in.
func (a *Agent) syncPause(ps []*partition) {
	a.pauseMu.Lock()
	defer a.pauseMu.Unlock()
	var pause, resume map[string][]int32
	a.mu.Lock()
	for _, p := range ps {
		if p.revoked || p.paused == p.fetchPaused {
			continue // revoked: onRevoked resumes it
		}
		m := &resume
		if p.paused {
			m = &pause
		}
		if *m == nil {
			*m = make(map[string][]int32)
		}
		(*m)[p.tp.topic] = append((*m)[p.tp.topic], p.tp.partition)
		p.fetchPaused = p.paused
	}
	a.mu.Unlock()
	if pause != nil {
		a.cl.PauseFetchPartitions(pause)
	}
	if resume != nil {
		a.cl.ResumeFetchPartitions(resume)
	}
}

func (a *Agent) notifyRoom() {
	select {
	case a.room <- struct{}{}:
	default:
	}
}

// result is what a worker decided about one attempt.
type result struct {
	done  bool
	retry time.Duration // > 0: schedule a retry after this delay
	fatal error         // kill or halt
}

// drainLimit is how many events of one key a worker handles in a turn before
// yielding to other keys, and at most how many it takes per lock hold.
const drainLimit = 32

// worker takes ready keys and handles their queued events in offset order,
// one key at a time. It takes up to drainLimit of a key's queued events per
// lock hold and handles them outside the lock, checking revocation and
// stopping between events; it marks them finished when it takes the lock
// again (until then commits stay at or below them).
func (a *Agent) worker() {
	batch := make([]*item, 0, drainLimit)
	a.mu.Lock()
	defer a.mu.Unlock()
	var kq *keyQueue
	streak := 0
	for {
		if kq == nil {
			for a.mu.readyAt == len(a.mu.ready) && !a.mu.stopping {
				a.mu.work.Wait()
			}
			if a.mu.stopping {
				return
			}
			kq = a.mu.ready[a.mu.readyAt]
			a.mu.ready[a.mu.readyAt] = nil
			a.mu.readyAt++
			if a.mu.readyAt == len(a.mu.ready) {
				a.mu.ready, a.mu.readyAt = a.mu.ready[:0], 0
			}
			streak = 0
		}
		p := kq.p
		if p.revoked || a.mu.stopping {
			kq.queued = false
			kq = nil
			continue
		}
		batch = append(batch[:0], kq.items[:min(len(kq.items), drainLimit-streak)]...)
		p.running++
		a.mu.running++
		a.mu.Unlock()
		n, res := a.processBatch(p, batch)
		a.mu.Lock()
		p.running--
		a.mu.running--
		if a.mu.running == 0 || p.running == 0 {
			a.mu.idle.Broadcast()
		}
		for _, it := range batch[:n] {
			it.done = true
		}
		if p.sourceTopic != "" {
			a.retryFinishedLocked(p, batch[:n])
		}
		m := copy(kq.items, kq.items[n:]) // keeps the backing array for reuse
		clear(kq.items[m:])
		kq.items = kq.items[:m]
		clear(batch)
		resume := n > 0 && a.advanceLocked(p)
		streak += n
		switch {
		case res.fatal != nil:
			a.failLocked(res.fatal)
			kq = nil // stays queued: nothing more of this key runs
		case res.retry > 0:
			a.scheduleRetry(kq, res.retry)
			kq = nil
		case res.done:
			if len(kq.items) == 0 {
				kq.queued = false
				a.idleKeyLocked(p)
				kq = nil
			} else if streak >= drainLimit {
				a.mu.ready = append(a.mu.ready, kq)
				a.mu.work.Signal()
				kq = nil
			}
		default: // stopping or revoked while handling: leave unfinished
			kq.queued = false
			kq = nil
		}
		if resume {
			a.mu.Unlock()
			a.syncPause([]*partition{p})
			a.mu.Lock()
		}
	}
}

// idleKeyLocked notes that a key of p has no more items. Its queue stays in
// p.keys, so a key that comes back (the usual case) costs no allocation,
// until there are more idle keys than twice the window: then they are
// dropped, which bounds the memory (and amortises the sweep).
func (a *Agent) idleKeyLocked(p *partition) {
	if p.idleKeys++; p.idleKeys <= 2*a.cfg.window {
		return
	}
	for k, q := range p.keys {
		if len(q.items) == 0 && !q.queued {
			delete(p.keys, k)
		}
	}
	p.idleKeys = 0
}

// processBatch handles batch, consecutive events of one key, in order
// until one is not done or the partition is revoked or the agent stops. It
// returns how many are done and the result of the last one handled (or a
// zero result if it stopped before handling one).
func (a *Agent) processBatch(p *partition, batch []*item) (int, result) {
	calls := make([]callState, len(batch)) // one allocation per batch, not per event
	for i, it := range batch {
		if i > 0 && (p.gone.Load() || a.halting.Load()) {
			return i, result{}
		}
		if res := a.process(&calls[i], p, it); !res.done {
			return i, res
		}
	}
	return len(batch), result{done: true}
}

// advanceLocked passes finished items at the head of p's window; when a full
// partition is down to half its window it lets the poll loop go on, and it
// reports whether p should resume fetching.
func (a *Agent) advanceLocked(p *partition) bool {
	for p.head < len(p.items) && p.items[p.head].done {
		p.items[p.head] = nil
		p.head++
	}
	if p.head == len(p.items) {
		p.items, p.head = p.items[:0], 0
	} else if p.head > 256 && p.head > len(p.items)/2 {
		n := copy(p.items, p.items[p.head:])
		clear(p.items[n:])
		p.items, p.head = p.items[:n], 0
	}
	if (p.full || p.paused) && len(p.items)-p.head <= a.cfg.window/2 {
		p.full = false
		a.notifyRoom()
		if p.paused && !p.revoked {
			p.paused = false
			return true
		}
	}
	return false
}

func (a *Agent) scheduleRetry(kq *keyQueue, d time.Duration) {
	time.AfterFunc(d, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if kq.p.revoked || a.mu.stopping {
			kq.queued = false
			return
		}
		a.mu.ready = append(a.mu.ready, kq)
		a.mu.work.Signal()
	})
}

func (a *Agent) failLocked(err error) {
	if a.mu.fatal == nil {
		a.mu.fatal = err
	}
	a.mu.stopping = true
	a.halting.Store(true)
	a.mu.work.Broadcast()
	a.stopOnce.Do(func() { close(a.stop) })
}

// waitIdleLocked waits until no handler runs (of ps, or of any partition if
// ps is nil) or timeout passes; it reports whether it became idle.
func (a *Agent) waitIdleLocked(ps []*partition, timeout time.Duration) bool {
	busy := func() bool {
		if ps == nil {
			return a.mu.running > 0
		}
		for _, p := range ps {
			if p.running > 0 {
				return true
			}
		}
		return false
	}
	if !busy() {
		return true
	}
	timedOut := false
	t := time.AfterFunc(timeout, func() {
		a.mu.Lock()
		timedOut = true
		a.mu.idle.Broadcast()
		a.mu.Unlock()
	})
	defer t.Stop()
	for busy() && !timedOut {
		a.mu.idle.Wait()
	}
	return !busy()
}

func (a *Agent) backoff(attempt int) time.Duration {
	d := a.cfg.backoffBase
	for i := 1; i < attempt && d < a.cfg.backoffMax; i++ {
		d *= 2
	}
	d = min(d, a.cfg.backoffMax)
	return d/2 + rand.N(d/2+1)
}

// callState is what one handler call needs allocated: the Message and the
// context carrying the event.
type callState struct {
	m   Message
	ctx event.Context
}

// process handles one attempt of it and decides what happens next.
func (a *Agent) process(cs *callState, p *partition, it *item) result {
	m := &cs.m
	*m = Message{Record: it.rec, Group: a.group, Attempt: int(it.attempts) + 1, cl: a.cl}
	if a.cfg.replay && it.rec.Topic == ReplayTopic(a.group) {
		if orig, id, ok := replayOrigin(it.rec); ok {
			m.Record, m.ReplayID = orig, id
		}
	}
	if it.dlq != nil { // dead-lettering decided earlier; its publish failed
		m.Event, m.Attempt = it.ev, int(it.attempts)
		return a.deadLetter(m, it, it.dlq.reason, it.dlq.err)
	}
	if it.rt != nil && it.rt.pending != nil { // parking decided earlier; its publish failed
		m.Event, m.Attempt = it.ev, int(it.attempts)
		return a.publishPending(m, it)
	}
	if it.ev == nil { // malformed envelope
		it.ev = &event.Event{Key: it.rec.Key, Data: it.rec.Value}
		m.Event = it.ev
		return a.deadLetter(m, it, ReasonMalformed, it.bad)
	}
	m.Event = it.ev
	h := it.h
	if h == nil {
		a.outcome(m, OutcomeSkipped, nil)
		return result{done: true}
	}
	if p.retryTopic != "" && a.owes(p, it) { // an earlier event of its key is in the retry topic
		return a.park(m, p, it, time.Time{})
	}
	if it.rt != nil && !it.rt.notBefore.IsZero() { // parked in a retry topic
		if wait := it.rt.notBefore.Sub(a.cfg.now()); wait > 0 {
			return result{retry: wait}
		}
	}
	if a.cfg.claims != nil && !it.claimed {
		if res, ok := a.resolveClaim(m, it); !ok {
			return res
		}
	}
	cs.ctx = event.Context{Context: a.handlerCtx, Event: it.ev}
	var ctx context.Context = &cs.ctx
	if it.traced {
		ctx = a.cfg.propagator.Extract(ctx, propagation.MapCarrier{
			event.HeaderTraceParent: it.ev.TraceParent,
			event.HeaderTraceState:  it.ev.TraceState,
		})
	}
	it.attempts++
	a.cnt.inFlight.Add(1)
	a.cfg.hooks.HandlerStarted(m)
	var start time.Time
	if a.timeHooks {
		start = time.Now()
	}
	var span trace.Span
	if a.tracer != nil {
		ctx, span = msgtrace.StartProcess(ctx, a.tracer, m.Record, a.group, msgtrace.Message{ID: m.ID, CorrelationID: m.CorrelationID, Type: m.Type}, m.Attempt)
	}
	err := call(ctx, h, m)
	if span != nil {
		v, _ := VerdictOf(err)
		msgtrace.EndProcess(span, v.String(), v != VerdictSuccess, err)
	}
	var took time.Duration
	if a.timeHooks {
		took = time.Since(start)
	}
	m.took = took
	a.cfg.hooks.HandlerDone(m, took, err)
	a.cnt.inFlight.Add(-1)

	v, delay := VerdictOf(err)
	switch v {
	case VerdictSuccess:
		a.outcome(m, OutcomeSucceeded, nil)
		return result{done: true}
	case VerdictWarn:
		a.cfg.log.Warn("agent: handler warning", a.attrs(m, err)...)
		a.outcome(m, OutcomeWarned, err)
		return result{done: true}
	case VerdictDeadLetter:
		return a.deadLetter(m, it, ReasonDeadLetter, err)
	case VerdictKill:
		a.cfg.log.Error("agent: handler killed the agent", a.attrs(m, err)...)
		a.outcome(m, OutcomeKilled, err)
		return result{fatal: fmt.Errorf("%w: %s: %w", ErrKilled, ident(m), err)}
	}
	// Retry or an unflagged error.
	if int(it.attempts) >= a.cfg.maxAttempts {
		if a.cfg.exhausted == OnExhaustedHalt {
			a.cfg.log.Error("agent: retries exhausted, halting", a.attrs(m, err)...)
			a.outcome(m, OutcomeHalted, err)
			return result{fatal: fmt.Errorf("%w: %s after %d attempts: %w", ErrRetriesExhausted, ident(m), it.attempts, err)}
		}
		return a.deadLetter(m, it, ReasonRetriesExhausted, err)
	}
	if delay <= 0 {
		delay = a.backoff(int(it.attempts))
	}
	a.cfg.log.Info("agent: retrying", append(a.attrs(m, err), "delay", delay)...)
	a.outcome(m, OutcomeRetried, err)
	switch {
	case p.retryTopic != "" && delay >= a.rt.minDelay:
		return a.park(m, p, it, a.cfg.now().Add(delay))
	case p.sourceTopic != "" && delay >= a.rt.minDelay:
		return a.repark(m, p, it, a.cfg.now().Add(delay), delay)
	}
	return result{retry: delay}
}

// resolveClaim puts the payload a claim check reference stands for into
// the event, once (it stays resolved across retries). It reports false with
// the item's result when the handler must not run: dead-lettered for a
// missing or mismatching blob, retried later when the store failed.
func (a *Agent) resolveClaim(m *Message, it *item) (result, bool) {
	_, err := a.cfg.claims.Resolve(a.handlerCtx, it.ev)
	if err == nil {
		it.claimed = true
		return result{}, true
	}
	if errors.Is(err, claimcheck.ErrClaimMissing) {
		return a.deadLetter(m, it, ReasonClaimMissing, err), false
	}
	a.cfg.log.Warn("agent: claim check store failed, will retry", a.attrs(m, err)...)
	if a.handlerCtx.Err() != nil {
		return result{}, false
	}
	return result{retry: a.backoff(1)}, false
}

func call(ctx context.Context, h Handler, m *Message) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return h(ctx, m)
}

func (a *Agent) outcome(m *Message, o Outcome, err error) {
	a.cnt.outcomes[o].Add(1)
	a.cfg.hooks.Outcome(m, o, err)
	a.receipt(m, o)
}

func ident(m *Message) string {
	return fmt.Sprintf("event %s (type %q) at %s[%d]@%d", m.ID, m.Type, m.Record.Topic, m.Record.Partition, m.Record.Offset)
}

func (a *Agent) attrs(m *Message, err error) []any {
	return []any{"group", a.group, "topic", m.Record.Topic, "partition", m.Record.Partition,
		"offset", m.Record.Offset, "id", m.ID, "type", m.Type, "attempt", m.Attempt, "err", err}
}

func (a *Agent) commitLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.commitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.commit(ctx, nil); err != nil && ctx.Err() == nil {
				a.cfg.log.Error("agent: commit", "group", a.group, "err", err)
			}
		}
	}
}

// commit commits the lowest unfinished offset of ps (of every partition not
// revoked, if ps is nil) where it moved.
func (a *Agent) commit(ctx context.Context, ps []*partition) error {
	a.commitMu.Lock()
	defer a.commitMu.Unlock()
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	points := make(map[*partition]int64)
	a.mu.Lock()
	consider := func(p *partition) {
		at := p.next
		if p.head < len(p.items) {
			at = p.items[p.head].rec.Offset
		}
		if at > p.committed {
			if offsets[p.tp.topic] == nil {
				offsets[p.tp.topic] = make(map[int32]kgo.EpochOffset)
			}
			offsets[p.tp.topic][p.tp.partition] = kgo.EpochOffset{Epoch: -1, Offset: at}
			points[p] = at
		}
	}
	if ps == nil {
		for _, p := range a.mu.parts {
			if !p.revoked {
				consider(p)
			}
		}
	} else {
		for _, p := range ps {
			consider(p)
		}
	}
	a.mu.Unlock()
	if len(offsets) == 0 {
		return nil
	}
	var cerr error
	a.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("agent: commit: %w", cerr)
	}
	a.commitCount.Add(1)
	a.mu.Lock()
	for p, at := range points {
		p.committed = max(p.committed, at)
	}
	a.mu.Unlock()
	return nil
}

func (a *Agent) revokedParts(m map[string][]int32) []*partition {
	var ps []*partition
	for t, parts := range m {
		for _, n := range parts {
			if p := a.mu.parts[tp{t, n}]; p != nil {
				p.revoked = true
				p.gone.Store(true)
				ps = append(ps, p)
			}
		}
	}
	return ps
}

// onRevoked runs in the group's goroutine when partitions are taken away:
// no new work starts on them, in-flight handlers get WithRevokeTimeout to
// finish, what is finished is committed, and their state is dropped (a
// handler still running after the timeout finishes into the void; its event
// is redelivered to the new owner).
func (a *Agent) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	a.mu.Lock()
	ps := a.revokedParts(revoked)
	if !a.waitIdleLocked(ps, a.cfg.revokeTimeout) {
		a.cfg.log.Warn("agent: revoke timeout: handlers still running", "group", a.group)
	}
	a.dropRetryStateLocked(revoked)
	a.mu.Unlock()
	if len(ps) > 0 {
		if err := a.commit(ctx, ps); err != nil {
			a.cfg.log.Error("agent: commit on revoke", "group", a.group, "err", err)
		}
	}
	a.drop(ps)
	a.pauseMu.Lock()                  // after any syncPause of these partitions
	cl.ResumeFetchPartitions(revoked) // a paused partition assigned again must fetch
	a.pauseMu.Unlock()
}

// onLost drops partitions that can no longer be committed.
func (a *Agent) onLost(_ context.Context, cl *kgo.Client, lost map[string][]int32) {
	a.mu.Lock()
	ps := a.revokedParts(lost)
	a.dropRetryStateLocked(lost)
	a.mu.Unlock()
	a.drop(ps)
	a.pauseMu.Lock()
	cl.ResumeFetchPartitions(lost)
	a.pauseMu.Unlock()
}

func (a *Agent) drop(ps []*partition) {
	a.mu.Lock()
	for _, p := range ps {
		if a.mu.parts[p.tp] == p {
			delete(a.mu.parts, p.tp)
		}
	}
	a.mu.Unlock()
	a.notifyRoom() // a full partition may be gone
}
