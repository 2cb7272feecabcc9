package producer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/storage"
)

// The fallback spool is one storage.Log in the spool directory, written in
// FsyncAlways mode (an append returns once fsynced; concurrent appends
// share an fsync). Each spooled event is one record batch of one record:
// the event's key, value and headers as published, its timestamp, and one
// header more, spool_topic, naming the topic it is for (stripped again when
// it is drained). The drainer's progress is the log start offset, advanced
// durably by DeleteRecordsBefore once a prefix of the spool is acknowledged
// by the broker; whole drained segments are deleted with it.
//
//	<dir>/
//	  spool-0/                  the queue (storage.Log, see storage/doc.go)
//	    00000000000000000000.log  one batch per spooled event, in spool order
//	    log-start-offset          the drain cursor: everything below it was delivered
//	  .clean-shutdown           storage's checkpoint
const (
	// HeaderSpoolTopic is the spool's own header on a spooled record: the
	// topic the event is published to when drained. It never reaches the
	// broker. It is part of the spool's on-disk format.
	HeaderSpoolTopic = "spool_topic"
)

// spoolTP names the spool's one log inside its directory (format).
var spoolTP = storage.TopicPartition{Topic: "spool", Partition: 0}

// ErrSpoolFull is returned (wrapped) by Publish when an event should be
// spooled but the spool already holds its maximum size. Nothing is written.
var ErrSpoolFull = errors.New("producer: spool full")

// ErrSpoolLocked is returned (wrapped) by New when another producer has
// the spool directory open.
var ErrSpoolLocked = errors.New("producer: spool locked")

// ErrSpoolClosed is returned (wrapped) when an event is spooled after Close.
var ErrSpoolClosed = errors.New("producer: spool closed")

// SpoolHooks receive the fallback spool's events, for metrics (package
// producer/producerprom adapts them to Prometheus). They are called from
// publishing goroutines, produce promises and the drainer, and must be
// fast and safe for concurrent use.
type SpoolHooks interface {
	// Spooled is called when an event is durable in the spool (its
	// Publish reports Spooled).
	Spooled(topic string)
	// Delivered is called when the broker acknowledged n spooled events.
	Delivered(n int)
	// Refused is called when an event that should have been spooled was
	// not: the spool is full (errors.Is(err, ErrSpoolFull)) or its disk
	// failed. The publish fails with err.
	Refused(topic string, err error)
	// ModeChanged is called when spool mode starts (the broker is
	// considered down: every event goes to the spool) or ends.
	ModeChanged(spooling bool)
}

// NopSpoolHooks implements SpoolHooks with no-ops.
type NopSpoolHooks struct{}

func (NopSpoolHooks) Spooled(string)        {}
func (NopSpoolHooks) Delivered(int)         {}
func (NopSpoolHooks) Refused(string, error) {}
func (NopSpoolHooks) ModeChanged(bool)      {}

// SpoolStats describes the fallback spool at one moment.
type SpoolStats struct {
	Records int64 // events in the spool, not yet acknowledged by the broker
	Bytes   int64 // bytes of the spool on disk (at most the configured maximum)
	// Spooling reports that the broker is considered unreachable: every
	// Publish goes straight to the spool until the drainer delivers again.
	Spooling bool
	// Err is the error of the drainer's last failed delivery, nil after a
	// success.
	Err error
}

type spool struct {
	store    *storage.Store
	log      *storage.Log
	unlock   func()
	maxBytes int64
	logger   *slog.Logger

	// records counts spooled events not yet delivered; down is set when a
	// publish failed in a way that spools, and cleared when the drainer
	// delivers. Both are read without mu on the publish path: while both
	// are zero nothing of any key is in the spool, so an event goes to the
	// broker directly.
	records atomic.Int64
	down    atomic.Bool

	mu struct {
		sync.Mutex
		keys    map[string]map[string]int // topic -> key -> events in the spool
		closed  bool
		lastErr error
		empty   chan struct{} // closed (and replaced) whenever records drops to 0
	}
	wake chan struct{} // capacity 1: something was spooled or the broker may be back
}

// openSpool opens (or creates) the spool in dir and counts what it holds.
func openSpool(dir string, maxBytes int64, fsys storage.FS, logger *slog.Logger) (*spool, error) {
	if dir == "" {
		return nil, errors.New("producer: spool: empty directory")
	}
	if maxBytes <= 0 {
		return nil, fmt.Errorf("producer: spool: maximum size %d must be positive", maxBytes)
	}
	unlock := func() {}
	if _, ok := fsys.(storage.OSFS); ok {
		var err error
		if unlock, err = lockDir(dir); err != nil {
			return nil, err
		}
	}
	st, err := storage.Open(storage.Options{
		Dir: dir, FS: fsys, Fsync: storage.FsyncAlways, RetentionCheckInterval: -1, Logger: logger,
	})
	if err != nil {
		unlock()
		return nil, fmt.Errorf("producer: spool: %w", err)
	}
	// Small segments, so that drained ones are deleted soon and what is
	// drained but not yet deleted stays a small part of the bound. Spooled
	// events are never deleted by age or size: only the drain removes them.
	cfg := storage.LogConfig{
		SegmentBytes:   min(max(maxBytes/16, 4<<10), 64<<20),
		RetentionMs:    -1,
		RetentionBytes: -1,
	}
	l, ok := st.Log(spoolTP)
	if ok {
		l.SetConfig(cfg)
	} else if l, err = st.CreateLog(spoolTP, cfg); err != nil {
		_ = st.Close()
		unlock()
		return nil, fmt.Errorf("producer: spool: %w", err)
	}
	s := &spool{store: st, log: l, unlock: unlock, maxBytes: maxBytes, logger: logger, wake: make(chan struct{}, 1)}
	s.mu.keys = map[string]map[string]int{}
	s.mu.empty = make(chan struct{})
	var n int64
	err = s.scan(l.LogStartOffset(), func(_ int64, r *kgo.Record) bool {
		s.countLocked(r.Topic, r.Key, 1)
		n++
		return true
	})
	if err != nil {
		_ = st.Close()
		unlock()
		return nil, fmt.Errorf("producer: spool: recover: %w", err)
	}
	s.records.Store(n)
	if n == 0 {
		close(s.mu.empty)
	}
	return s, nil
}

// close closes the store; appends after it fail with ErrSpoolClosed.
func (s *spool) close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	s.mu.Unlock()
	defer s.unlock()
	if err := s.store.Close(); err != nil {
		return fmt.Errorf("producer: spool: close: %w", err)
	}
	return nil
}

// mustSpool reports whether r goes to the spool rather than the broker:
// the broker is considered down, or events of r's key wait in the spool.
// Events without a key only follow the first rule (Kafka orders nothing
// across keys).
func (s *spool) mustSpool(r *kgo.Record) bool {
	if s.down.Load() {
		return true
	}
	if s.records.Load() == 0 || r.Key == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.keys[r.Topic][string(r.Key)] > 0
}

// countLocked adds d to the spooled events of (topic, key).
func (s *spool) countLocked(topic string, key []byte, d int) {
	if key == nil {
		return
	}
	byKey := s.mu.keys[topic]
	if byKey == nil {
		byKey = map[string]int{}
		s.mu.keys[topic] = byKey
	}
	if n := byKey[string(key)] + d; n > 0 {
		byKey[string(key)] = n
	} else {
		delete(byKey, string(key))
		if len(byKey) == 0 {
			delete(s.mu.keys, topic)
		}
	}
}

// append writes r to the spool in call order and returns a function that
// waits until it is durable. The event counts as spooled (its key is held
// back) from the moment append returns, so an event of the same key
// published after it is spooled behind it.
func (s *spool) append(r *kgo.Record) (wait func() error, err error) {
	batch := encodeSpooled(r)
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil, ErrSpoolClosed
	}
	if size := s.log.Size(); size+int64(len(batch)) > s.maxBytes {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %d of %d bytes used, event of %d bytes does not fit", ErrSpoolFull, size, s.maxBytes, len(batch))
	}
	// The write happens under mu so that spool order is the order of the
	// decisions to spool; the fsync is waited for outside it.
	pa, err := s.log.AppendAsync(context.Background(), batch, storage.AppendOptions{})
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("producer: spool: %w", err)
	}
	s.countLocked(r.Topic, r.Key, 1)
	if s.records.Add(1) == 1 {
		s.mu.empty = make(chan struct{})
	}
	s.mu.Unlock()
	s.signal()
	return func() error {
		if _, err := pa.Wait(); err != nil {
			return fmt.Errorf("producer: spool: %w", err)
		}
		return nil
	}, nil
}

func (s *spool) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// delivered accounts for rs, acknowledged by the broker.
func (s *spool) delivered(rs []*kgo.Record) {
	s.mu.Lock()
	for _, r := range rs {
		s.countLocked(r.Topic, r.Key, -1)
	}
	s.mu.lastErr = nil
	if s.records.Add(-int64(len(rs))) == 0 {
		close(s.mu.empty)
	}
	s.mu.Unlock()
}

func (s *spool) failed(err error) {
	s.mu.Lock()
	s.mu.lastErr = err
	s.mu.Unlock()
}

func (s *spool) stats() SpoolStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SpoolStats{Records: s.records.Load(), Bytes: s.log.Size(), Spooling: s.down.Load(), Err: s.mu.lastErr}
}

// emptyCh returns a channel closed once the spool is empty.
func (s *spool) emptyCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.empty
}

// scan calls fn with each durable spooled record from offset on, in
// order, until fn returns false.
func (s *spool) scan(from int64, fn func(off int64, r *kgo.Record) bool) error {
	for {
		res, err := s.log.Read(from, 1<<20)
		if err != nil {
			return err
		}
		if len(res.Records) == 0 {
			return nil
		}
		for b := res.Records; len(b) > 0; {
			off, r, n, err := decodeSpooled(b)
			if err != nil {
				return err
			}
			b = b[n:]
			if off < from {
				continue
			}
			if !fn(off, r) {
				return nil
			}
			from = off + 1
		}
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeSpooled builds the spool's record batch for r: magic 2, one
// record, no compression, no producer id.
func encodeSpooled(r *kgo.Record) []byte {
	hs := make([]kmsg.Header, 0, len(r.Headers)+1)
	for _, h := range r.Headers {
		hs = append(hs, kmsg.Header{Key: h.Key, Value: h.Value})
	}
	hs = append(hs, kmsg.Header{Key: HeaderSpoolTopic, Value: []byte(r.Topic)})
	rec := kmsg.Record{Key: r.Key, Value: r.Value, Headers: hs}
	body := rec.AppendTo(nil)
	rec.Length = int32(len(body) - 1) // everything after the (1-byte, zero) length
	body = rec.AppendTo(body[:0])
	ts := r.Timestamp.UnixMilli()
	if r.Timestamp.IsZero() {
		ts = -1
	}
	b := (&kmsg.RecordBatch{
		Magic: 2, FirstTimestamp: ts, MaxTimestamp: ts, NumRecords: 1,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, Records: body,
	}).AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))                   // length
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli)) // CRC-32C
	return b
}

// decodeSpooled decodes the first batch of b (storage has checked its
// CRC) into the record to publish, and returns its offset and size.
func decodeSpooled(b []byte) (int64, *kgo.Record, int, error) {
	h, err := storage.ParseBatchHeader(b)
	if err != nil {
		return 0, nil, 0, err
	}
	n := int(h.Size())
	if n > len(b) || h.NumRecords != 1 {
		return 0, nil, 0, fmt.Errorf("producer: spool: batch at offset %d is not a spooled event", h.BaseOffset)
	}
	var batch kmsg.RecordBatch
	if err := batch.ReadFrom(b[:n]); err != nil {
		return 0, nil, 0, fmt.Errorf("producer: spool: batch at offset %d: %w", h.BaseOffset, err)
	}
	var rec kmsg.Record
	if err := rec.ReadFrom(batch.Records); err != nil {
		return 0, nil, 0, fmt.Errorf("producer: spool: record at offset %d: %w", h.BaseOffset, err)
	}
	// The spool's own header is always the last one; an application header
	// of the same name before it is the application's and is kept.
	last := len(rec.Headers) - 1
	if last < 0 || rec.Headers[last].Key != HeaderSpoolTopic || len(rec.Headers[last].Value) == 0 {
		return 0, nil, 0, fmt.Errorf("producer: spool: record at offset %d has no %s header", h.BaseOffset, HeaderSpoolTopic)
	}
	r := &kgo.Record{Topic: string(rec.Headers[last].Value), Key: rec.Key, Value: rec.Value}
	if last > 0 {
		r.Headers = make([]kgo.RecordHeader, last)
		for i, hd := range rec.Headers[:last] {
			r.Headers[i] = kgo.RecordHeader{Key: hd.Key, Value: hd.Value}
		}
	}
	if ts := batch.FirstTimestamp + rec.TimestampDelta64; ts >= 0 {
		r.Timestamp = time.UnixMilli(ts)
	}
	return h.BaseOffset, r, n, nil
}
