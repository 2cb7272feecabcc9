// Package producers keeps Spool's idempotent-producer state: producer IDs
// (InitProducerId) and, per partition, each producer's epoch and the
// sequence numbers of its last five batches, so that a retried batch is
// acknowledged with its original offsets instead of being written twice.
//
// The sequence check runs inside storage's append lock (AppendOptions.Check),
// atomically with the append. State is rebuilt on start-up from a snapshot
// written at shutdown (and every ExpirationCheckInterval when Config.Logs is
// set) plus a scan of the
// batch headers after it (storage.Log.ScanBatches), so dedup holds across a
// crash and a restart.
//
// Files, in Config.Dir (written with storage.WriteFileAtomic):
//
//	producer-ids   decimal: the first producer ID not yet handed out. IDs are
//	               reserved in blocks of idBlock, durably, before use, so an
//	               ID is never handed out twice, even after a crash.
//	snapshot       JSON: per partition, the offset the state covers up to
//	               (exclusive) and each producer's epoch and last batches.
package producers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/storage"
)

const (
	// maxBatches is how many batches per producer and partition are kept for
	// duplicate detection: the producer's max.in.flight.requests limit (5).
	maxBatches = 5
	idBlock    = 1000
	idsName    = "producer-ids"
	snapName   = "snapshot"
	// dupWait bounds how long a duplicate waits for its original's fsync.
	dupWait = 5 * time.Second
)

// Config configures a Manager.
type Config struct {
	// Dir holds the producer-ids and snapshot files. Required.
	Dir string
	// FS is the file system. Default storage.OSFS.
	FS storage.FS
	// Expiration is producer.id.expiration.ms: a producer's state on a
	// partition is dropped after this long without an append there.
	// Default 24h.
	Expiration time.Duration
	// ExpirationCheckInterval is producer.id.expiration.check.interval.ms,
	// also the period of snapshots. Default 10 minutes.
	ExpirationCheckInterval time.Duration
	// Logs, if set, returns the logs whose state the periodic snapshot
	// writes (every ExpirationCheckInterval), so that a start after a crash
	// scans only what was appended since the last one, not whole logs.
	// Default nil: snapshots only at Close.
	Logs func() []*storage.Log
	// Logger gets snapshot failures. Default: discard.
	Logger *slog.Logger
}

// WithDefaults returns c with every unset field defaulted.
func (c Config) WithDefaults() Config {
	if c.FS == nil {
		c.FS = storage.OSFS{}
	}
	if c.Expiration == 0 {
		c.Expiration = 24 * time.Hour
	}
	if c.ExpirationCheckInterval == 0 {
		c.ExpirationCheckInterval = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// DuplicateError is returned by the append check for a retried batch that is
// already in the log: the produce is answered with these offsets.
type DuplicateError struct{ BaseOffset, LastOffset int64 }

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("producers: duplicate of the batch at offsets %d-%d", e.BaseOffset, e.LastOffset)
}

type batchMeta struct {
	FirstSeq   int32 `json:"first_seq"`
	LastSeq    int32 `json:"last_seq"`
	BaseOffset int64 `json:"base"`
	LastOffset int64 `json:"last"`
}

type producer struct {
	Epoch    int16       `json:"epoch"`
	Batches  []batchMeta `json:"batches"` // oldest first
	lastSeen time.Time
}

type partition struct {
	mu        sync.Mutex
	producers map[int64]*producer
}

// Manager holds every partition's producer state and hands out producer IDs.
type Manager struct {
	cfg Config

	idMu            sync.Mutex
	nextID, limitID int64
	// allocated is nextID for readers without idMu: every ID below it was
	// handed out by InitProducerID (or found in a log); state is kept only
	// for those, a client-chosen ID is refused with UNKNOWN_PRODUCER_ID.
	allocated atomic.Int64

	mu    sync.Mutex
	parts map[storage.TopicPartition]*partition

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Open loads the producer IDs and rebuilds every log's producer state: from
// the snapshot where it is valid, then from the batch headers after it.
func Open(cfg Config, logs []*storage.Log) (*Manager, error) {
	cfg = cfg.WithDefaults()
	if cfg.Dir == "" {
		return nil, errors.New("producers: config: Dir is required")
	}
	if err := storage.MkdirAllDurable(cfg.FS, cfg.Dir); err != nil {
		return nil, fmt.Errorf("producers: %w", err)
	}
	m := &Manager{cfg: cfg, parts: make(map[storage.TopicPartition]*partition),
		stop: make(chan struct{}), done: make(chan struct{})}
	data, err := storage.ReadFile(cfg.FS, filepath.Join(cfg.Dir, idsName))
	switch {
	case err == nil:
		n, perr := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if perr != nil || n < 0 {
			return nil, fmt.Errorf("producers: %s: bad content %q", idsName, data)
		}
		m.nextID, m.limitID = n, n
	case !isNotExist(err):
		return nil, fmt.Errorf("producers: %w", err)
	}
	if err := m.load(logs); err != nil {
		return nil, err
	}
	go m.loop()
	return m, nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// snapshotFile is the snapshot's JSON layout.
type snapshotFile struct {
	Partitions []snapshotPartition `json:"partitions"`
}

type snapshotPartition struct {
	Topic     string              `json:"topic"`
	Partition int32               `json:"partition"`
	Offset    int64               `json:"offset"` // state covers the batches before it
	Producers map[int64]*producer `json:"producers"`
}

// intact reports whether every producer entry is present (a JSON null is
// damage: the partition is then rebuilt from its log alone).
func (s snapshotPartition) intact() bool {
	for _, pr := range s.Producers {
		if pr == nil {
			return false
		}
	}
	return true
}

func (m *Manager) load(logs []*storage.Log) error {
	snap := map[storage.TopicPartition]snapshotPartition{}
	data, err := storage.ReadFile(m.cfg.FS, filepath.Join(m.cfg.Dir, snapName))
	switch {
	case err == nil:
		var f snapshotFile
		if err := json.Unmarshal(data, &f); err != nil {
			// Written atomically: damage, but the logs hold everything the
			// snapshot does; rebuild from them.
			m.cfg.Logger.Warn("producers: ignoring unreadable snapshot", "err", err)
		}
		for _, p := range f.Partitions {
			snap[storage.TopicPartition{Topic: p.Topic, Partition: p.Partition}] = p
		}
	case !isNotExist(err):
		return fmt.Errorf("producers: %w", err)
	}
	now := time.Now()
	for _, l := range logs {
		tp := l.TopicPartition()
		p := &partition{producers: make(map[int64]*producer)}
		from := l.LogStartOffset()
		if s, ok := snap[tp]; ok && s.Offset <= l.HighWatermark() && s.Offset >= from && s.intact() {
			for id, pr := range s.Producers {
				pr.lastSeen = now
				p.producers[id] = pr
			}
			from = s.Offset
		} else if ok && !s.intact() {
			m.cfg.Logger.Warn("producers: damaged snapshot entry; rebuilding the partition's producer state from its log", "topic", tp.Topic, "partition", tp.Partition)
		}
		err := l.ScanBatches(from, func(h storage.BatchHeader) error {
			p.replay(h, now)
			return nil
		})
		if err != nil {
			return fmt.Errorf("producers: rebuild %s-%d: %w", tp.Topic, tp.Partition, err)
		}
		m.parts[tp] = p
		// IDs found in the logs were allocated, even if the IDs file was
		// lost: count them so that their producers are not refused.
		for id := range p.producers {
			if id >= m.nextID {
				m.nextID, m.limitID = id+1, id+1
			}
		}
	}
	m.allocated.Store(m.nextID)
	return nil
}

func lastSeq(h storage.BatchHeader) int32 {
	// Sequences wrap from MaxInt32 to 0, as in Kafka.
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (1 << 31))
}

// replay applies a stored batch without checks (it is in the log).
func (p *partition) replay(h storage.BatchHeader, now time.Time) {
	if h.ProducerID < 0 || h.IsControl() {
		return
	}
	pr := p.producers[h.ProducerID]
	switch {
	case pr == nil:
		pr = &producer{Epoch: h.ProducerEpoch}
		p.producers[h.ProducerID] = pr
	case h.ProducerEpoch > pr.Epoch:
		pr.Epoch, pr.Batches = h.ProducerEpoch, nil
	case h.ProducerEpoch < pr.Epoch:
		return
	}
	b := batchMeta{FirstSeq: h.BaseSequence, LastSeq: lastSeq(h), BaseOffset: h.BaseOffset, LastOffset: h.LastOffset()}
	if slices.Contains(pr.Batches, b) {
		return // covered by the snapshot already
	}
	pr.add(b)
	pr.lastSeen = now
}

func (pr *producer) add(b batchMeta) {
	pr.Batches = append(pr.Batches, b)
	if len(pr.Batches) > maxBatches {
		pr.Batches = slices.Delete(pr.Batches, 0, len(pr.Batches)-maxBatches)
	}
}

func (m *Manager) partition(tp storage.TopicPartition) *partition {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.parts[tp]
	if p == nil {
		p = &partition{producers: make(map[int64]*producer)}
		m.parts[tp] = p
	}
	return p
}

// Forget drops a partition's state (its topic was deleted).
func (m *Manager) Forget(tp storage.TopicPartition) {
	m.mu.Lock()
	delete(m.parts, tp)
	m.mu.Unlock()
}

// check validates a batch against the producer's state and, if it is to be
// written, records it; undo takes the record back if the write then fails.
// Kafka's rules (ProducerStateManager, 2.5+):
//   - an older epoch: INVALID_PRODUCER_EPOCH;
//   - a newer epoch must start at sequence 0;
//   - the same epoch: a batch equal to one of the last five is a duplicate;
//     otherwise the sequence must follow the last one
//     (OUT_OF_ORDER_SEQUENCE_NUMBER);
//   - an unknown producer (new, or its state expired or was removed with
//     the log's head) is accepted at any sequence (KIP-360).
func (p *partition) check(h storage.BatchHeader, base int64, now time.Time) (undo func(), err error) {
	if h.ProducerID < 0 {
		return func() {}, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := p.producers[h.ProducerID]
	b := batchMeta{FirstSeq: h.BaseSequence, LastSeq: lastSeq(h), BaseOffset: base, LastOffset: base + int64(h.LastOffsetDelta)}
	var prev *producer
	switch {
	case pr == nil:
		pr = &producer{Epoch: h.ProducerEpoch}
		p.producers[h.ProducerID] = pr
	case h.ProducerEpoch < pr.Epoch:
		return nil, kerr.InvalidProducerEpoch
	case h.ProducerEpoch > pr.Epoch:
		if h.BaseSequence != 0 {
			return nil, kerr.OutOfOrderSequenceNumber
		}
		cp := *pr
		prev = &cp
		pr.Epoch, pr.Batches = h.ProducerEpoch, nil
	default:
		for _, old := range pr.Batches {
			if old.FirstSeq == b.FirstSeq && old.LastSeq == b.LastSeq {
				return nil, &DuplicateError{BaseOffset: old.BaseOffset, LastOffset: old.LastOffset}
			}
		}
		if n := len(pr.Batches); n > 0 && b.FirstSeq != int32((int64(pr.Batches[n-1].LastSeq)+1)%(1<<31)) {
			return nil, kerr.OutOfOrderSequenceNumber
		}
		cp := *pr
		cp.Batches = slices.Clone(pr.Batches)
		prev = &cp
	}
	pr.add(b)
	pr.lastSeen = now
	id := h.ProducerID
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		cur := p.producers[id]
		if cur == nil || len(cur.Batches) == 0 || cur.Batches[len(cur.Batches)-1] != b {
			return
		}
		if prev == nil {
			delete(p.producers, id)
		} else {
			*cur = *prev
		}
	}, nil
}

// Append appends a produce batch to l with the idempotent-producer check
// run atomically with it. A retried duplicate is not written: its original
// offsets are returned once they are durable (the original append may still
// be waiting for its fsync). Errors are kerr errors for the response
// (INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER) or storage's.
//
// Append is AppendAsync followed by Pending.Wait.
func (m *Manager) Append(ctx context.Context, l *storage.Log, batch []byte, opts storage.AppendOptions) (storage.AppendResult, error) {
	p, err := m.AppendAsync(ctx, l, batch, opts)
	if err != nil {
		return storage.AppendResult{}, err
	}
	return p.Wait(ctx)
}

// Pending is a produce batch that AppendAsync wrote (or found to be a
// duplicate of a batch already written); Wait tells when it may be
// acknowledged.
type Pending struct {
	l    *storage.Log
	app  *storage.PendingAppend // the batch was written
	dup  *DuplicateError        // or it is a retry of this one
	undo func()
}

// AppendAsync is the first half of Append (see storage.Log.AppendAsync): the
// sequence check and the write, in the order of the calls, without waiting
// for durability. A duplicate is not an error here: its Pending answers with
// the original's offsets once they are durable.
func (m *Manager) AppendAsync(ctx context.Context, l *storage.Log, batch []byte, opts storage.AppendOptions) (*Pending, error) {
	p := m.partition(l.TopicPartition())
	var undo func()
	opts.Check = func(h storage.BatchHeader, base int64) error {
		if h.ProducerID >= m.allocated.Load() {
			return fmt.Errorf("producers: producer ID %d was not allocated by this broker (InitProducerId): %w", h.ProducerID, kerr.UnknownProducerID)
		}
		u, err := p.check(h, base, time.Now())
		undo = u
		return err
	}
	app, err := l.AppendAsync(ctx, batch, opts)
	var dup *DuplicateError
	switch {
	case err == nil:
		return &Pending{l: l, app: app, undo: undo}, nil
	case errors.As(err, &dup):
		return &Pending{l: l, dup: dup}, nil
	default:
		if undo != nil {
			undo()
		}
		return nil, err
	}
}

// Wait returns the batch's offsets once it is durable per the fsync mode. A
// duplicate's wait for its original is bounded (REQUEST_TIMED_OUT after
// dupWait; the producer retries) and ends early when ctx ends; a written
// batch's wait is not cancellable (storage.PendingAppend.Wait).
func (p *Pending) Wait(ctx context.Context) (storage.AppendResult, error) {
	if p.dup == nil {
		res, err := p.app.Wait()
		if err != nil && p.undo != nil {
			p.undo()
		}
		return res, err
	}
	l, dup := p.l, p.dup
	// The wait is bounded: a log closed meanwhile never advances, and
	// the producer retries a REQUEST_TIMED_OUT.
	give := time.NewTimer(dupWait)
	defer give.Stop()
	for {
		wait := l.Wait() // before the check: an advance in between closes it
		if l.HighWatermark() > dup.LastOffset {
			break
		}
		select {
		case <-wait:
		case <-give.C:
			return storage.AppendResult{}, kerr.RequestTimedOut
		case <-ctx.Done():
			return storage.AppendResult{}, ctx.Err()
		}
	}
	return storage.AppendResult{BaseOffset: dup.BaseOffset, LastOffset: dup.LastOffset, LogStartOffset: l.LogStartOffset()}, nil
}

// InitProducerID serves InitProducerId v0-4 for idempotent producers: a new,
// never reused producer ID with epoch 0 (Kafka also hands a non-transactional
// producer a fresh ID, even when it sends its current one to bump the
// epoch). Transactions are not supported: a transactional ID gets
// UNSUPPORTED_VERSION, which clients report as unsupported.
func (m *Manager) InitProducerID(req *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return resp
	}
	id, err := m.allocate()
	if err != nil {
		m.cfg.Logger.Error("producers: allocate producer ID", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}

func (m *Manager) allocate() (int64, error) {
	m.idMu.Lock()
	defer m.idMu.Unlock()
	if m.nextID == m.limitID {
		limit := m.limitID + idBlock
		if err := storage.WriteFileAtomic(m.cfg.FS, filepath.Join(m.cfg.Dir, idsName), []byte(strconv.FormatInt(limit, 10)+"\n")); err != nil {
			return -1, fmt.Errorf("producers: reserve IDs: %w", err)
		}
		m.limitID = limit
	}
	id := m.nextID
	m.nextID++
	m.allocated.Store(m.nextID)
	return id, nil
}

func (m *Manager) loop() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.ExpirationCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.Expire(time.Now())
			if m.cfg.Logs != nil {
				if err := m.Snapshot(m.cfg.Logs()); err != nil {
					m.cfg.Logger.Warn("producers: periodic snapshot", "err", err)
				}
			}
		case <-m.stop:
			return
		}
	}
}

// Expire drops the state of producers idle for longer than Expiration.
func (m *Manager) Expire(now time.Time) {
	m.mu.Lock()
	parts := make([]*partition, 0, len(m.parts))
	for _, p := range m.parts {
		parts = append(parts, p)
	}
	m.mu.Unlock()
	for _, p := range parts {
		p.mu.Lock()
		for id, pr := range p.producers {
			if now.Sub(pr.lastSeen) > m.cfg.Expiration {
				delete(p.producers, id)
			}
		}
		p.mu.Unlock()
	}
}

// Snapshot writes the state of every partition in logs. Each partition's
// state is cut at the log's high watermark read first, so the snapshot
// never holds a batch that a crash could still take back.
func (m *Manager) Snapshot(logs []*storage.Log) error {
	var f snapshotFile
	for _, l := range logs {
		tp := l.TopicPartition()
		m.mu.Lock()
		p := m.parts[tp]
		m.mu.Unlock()
		if p == nil {
			continue
		}
		hw := l.HighWatermark()
		sp := snapshotPartition{Topic: tp.Topic, Partition: tp.Partition, Offset: hw, Producers: map[int64]*producer{}}
		p.mu.Lock()
		for id, pr := range p.producers {
			cp := &producer{Epoch: pr.Epoch}
			for _, b := range pr.Batches {
				if b.LastOffset < hw {
					cp.Batches = append(cp.Batches, b)
				}
			}
			sp.Producers[id] = cp
		}
		p.mu.Unlock()
		f.Partitions = append(f.Partitions, sp)
	}
	data, err := json.Marshal(&f)
	if err != nil {
		return fmt.Errorf("producers: snapshot: %w", err)
	}
	if err := storage.WriteFileAtomic(m.cfg.FS, filepath.Join(m.cfg.Dir, snapName), data); err != nil {
		return fmt.Errorf("producers: snapshot: %w", err)
	}
	return nil
}

// Close stops the expiry loop and writes a final snapshot of logs (call it
// after the last append, before the store closes); with nil logs (a failed
// start) it writes none, keeping the snapshot there is. Idempotent.
func (m *Manager) Close(logs []*storage.Log) error {
	var err error
	m.once.Do(func() {
		close(m.stop)
		<-m.done
		if logs != nil {
			err = m.Snapshot(logs)
		}
	})
	return err
}
