package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// TopicPartition names a partition; its log lives in the directory "<topic>-<partition>".
type TopicPartition struct {
	Topic     string
	Partition int32
}

// String returns "<topic>-<partition>", the log's directory name.
func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// Log is one partition's append-only log: a list of segments, the last of
// which (the active segment) takes appends.
//
// Concurrency: appends serialize on mu, which covers the write to the
// active segment but never an fsync (except at a roll). Readers take no lock:
// they load the segment list, the high watermark and each segment's size
// atomically, and read with ReadAt.
type Log struct {
	store *Store
	tp    TopicPartition
	dir   string
	fs    FS
	cfg   atomic.Pointer[LogConfig]

	segs  atomic.Pointer[[]*segment] // copy-on-write, sorted by base offset
	start atomic.Int64               // log start offset
	leo   atomic.Int64               // log end offset: next offset to assign
	hwm   atomic.Int64               // high watermark: end of what readers may see
	size  atomic.Int64               // bytes in all segments
	dirty atomic.Bool                // FsyncInterval: written since the last sync
	err   atomic.Pointer[error]      // why the log failed (ErrLogFailed)
	gone  atomic.Bool                // closed or deleted: set before its segments are released

	waitMu   sync.Mutex
	waitCh   chan struct{} // closed at the next HWM advance; nil until Wait is called
	watchers []*Waiter     // woken at every HWM advance (Watch)

	retMu sync.Mutex // serializes retention and DeleteRecordsBefore

	mu struct {
		sync.Mutex
		closed  bool
		active  *segment
		next    int64        // == leo, guarded
		pending *pendingSync // FsyncAlways: the next fsync, joined by appends since the last one began
		syncing bool         // FsyncAlways: the log's sync loop is running

		unflushed  int64       // FsyncInterval/Never: records appended since the last flush.messages fsync
		flushTimer *time.Timer // FsyncInterval/Never: the pending flush.ms fsync, nil if none
		// FsyncAlways: end offset of the last batch acknowledged by a
		// segment fsync (not the commit log); a batch goes to the commit log
		// only once the HWM has reached it (see commitlog.go).
		directEnd int64
	}
}

// TopicPartition returns the log's partition.
func (l *Log) TopicPartition() TopicPartition { return l.tp }

// Config returns the log's configuration.
func (l *Log) Config() LogConfig { return *l.cfg.Load() }

// SetConfig replaces the log's configuration (zero fields take defaults); it
// applies to later appends and retention runs.
func (l *Log) SetConfig(cfg LogConfig) {
	cfg = cfg.normalized()
	l.cfg.Store(&cfg)
}

// LogStartOffset returns the first offset that may be read.
func (l *Log) LogStartOffset() int64 { return l.start.Load() }

// Dir returns the log's directory. Files in it other than the ones storage
// writes (segments, indexes, log-start-offset, *.tmp) are left alone, so a
// caller may keep its own there: the broker keeps topic-meta.json.
func (l *Log) Dir() string { return l.dir }

// LogEndOffset returns the next offset to assign.
func (l *Log) LogEndOffset() int64 { return l.leo.Load() }

// HighWatermark returns the end of what readers may see: in FsyncAlways mode
// the durable end, otherwise the log end offset.
func (l *Log) HighWatermark() int64 { return l.hwm.Load() }

// Size returns the bytes in all of the log's segments.
func (l *Log) Size() int64 { return l.size.Load() }

// Wait returns a channel closed at the next HighWatermark advance, or when
// the log is closed or deleted. To avoid missing an advance, call Wait before
// checking HighWatermark.
func (l *Log) Wait() <-chan struct{} {
	l.waitMu.Lock()
	defer l.waitMu.Unlock()
	if l.waitCh == nil {
		l.waitCh = make(chan struct{})
	}
	return l.waitCh
}

func (l *Log) notify() {
	l.waitMu.Lock()
	if l.waitCh != nil {
		close(l.waitCh)
		l.waitCh = nil
	}
	for _, w := range l.watchers {
		w.wake()
	}
	l.waitMu.Unlock()
}

// A Waiter is woken when the high watermark of any of the logs it watches
// advances, or one of them is closed or deleted: one channel for a reader
// of many logs (a fetch of many partitions), where Wait would need a
// goroutine per log to wait for the first of them.
type Waiter struct{ c chan struct{} }

// NewWaiter returns a Waiter that watches no log yet.
func NewWaiter() *Waiter { return &Waiter{c: make(chan struct{}, 1)} }

// C returns the channel that receives a value after an advance of a watched
// log. Advances coalesce: several before the receive leave one value. To
// avoid missing an advance, Watch the logs before checking their
// HighWatermark.
func (w *Waiter) C() <-chan struct{} { return w.c }

func (w *Waiter) wake() {
	select {
	case w.c <- struct{}{}:
	default: // already signalled
	}
}

// Watch makes every later HWM advance of l (and its close or deletion) wake
// w, until Unwatch.
func (l *Log) Watch(w *Waiter) {
	l.waitMu.Lock()
	l.watchers = append(l.watchers, w)
	l.waitMu.Unlock()
}

// Unwatch stops l from waking w; it does nothing if l does not wake w.
func (l *Log) Unwatch(w *Waiter) {
	l.waitMu.Lock()
	defer l.waitMu.Unlock()
	for i, x := range l.watchers {
		if x == w {
			last := len(l.watchers) - 1
			l.watchers[i] = l.watchers[last]
			l.watchers[last] = nil
			l.watchers = l.watchers[:last]
			return
		}
	}
}

// advanceHWM raises the high watermark to end and wakes waiters.
func (l *Log) advanceHWM(end int64) {
	for {
		cur := l.hwm.Load()
		if end <= cur {
			return
		}
		if l.hwm.CompareAndSwap(cur, end) {
			l.notify()
			return
		}
	}
}

func (l *Log) segments() []*segment { return *l.segs.Load() }

func (l *Log) errorf(format string, args ...any) error {
	return fmt.Errorf("storage: %s: "+format, append([]any{l.tp}, args...)...)
}

// fail marks the log failed: appends are refused until the store is reopened.
func (l *Log) fail(cause error) error {
	err := fmt.Errorf("storage: %s: %w: %w", l.tp, ErrLogFailed, cause)
	l.err.CompareAndSwap(nil, &err)
	return *l.err.Load()
}

// AppendOptions modify one Append.
type AppendOptions struct {
	// Check, if set, runs under the log's append lock after validation and before anything is
	// written, with the parsed header and the base offset the batch would get. A non-nil error
	// refuses the batch (returned unchanged, nothing written). Used for idempotent-producer sequence checks.
	Check func(h BatchHeader, baseOffset int64) error
	// LogAppendTime, if non-zero, stamps the batch as Kafka does for message.timestamp.type=LogAppendTime:
	// timestamp-type attribute bit set, MaxTimestamp = this time, CRC recomputed.
	LogAppendTime time.Time
	// Records, if set, has every record of the batch checked (see
	// RecordRules) before anything is written: what Kafka's LogValidator
	// does for a produce. Nil: only the framing and CRC are checked.
	Records *RecordRules
}

// AppendResult describes an appended batch.
type AppendResult struct {
	BaseOffset, LastOffset int64
	LogStartOffset         int64
}

// Append validates one batch, assigns offsets (rewrites BaseOffset), writes it, and returns when it is
// durable per the fsync mode (FsyncAlways: after fsync, shared with concurrent appends = group commit).
// The log end offset advances by NumRecords. On any error nothing of the batch is stored.
//
// Append rewrites the batch in place (base offset; with LogAppendTime also the
// attributes, max timestamp and CRC), so the caller must not reuse batch
// concurrently. ctx is checked before writing; once written, Append waits for
// the fsync regardless of ctx, so that its answer is never "maybe".
//
// Append is AppendAsync followed by PendingAppend.Wait.
func (l *Log) Append(ctx context.Context, batch []byte, opts AppendOptions) (AppendResult, error) {
	p, err := l.AppendAsync(ctx, batch, opts)
	if err != nil {
		return AppendResult{}, err
	}
	return p.Wait()
}

// PendingAppend is a batch that AppendAsync wrote and assigned offsets to;
// Wait tells when it is durable.
type PendingAppend struct {
	l         *Log
	base, end int64        // offsets [base, end)
	sync      *pendingSync // FsyncAlways: the fsync that covers the batch; nil: durable already
	clog      bool         // the commit log's round covers it; its segment is fsynced later
}

// AppendAsync is the first half of Append: it validates the batch, runs
// opts.Check, assigns offsets, writes the batch and (FsyncAlways) registers
// it for the log's next group-commit fsync, then returns without waiting for
// that fsync. Errors are Append's; on an error nothing of the batch is stored.
//
// Appends are ordered by their AppendAsync calls: a batch written by an
// AppendAsync that returned gets lower offsets than any batch appended
// after that, whether or not either is durable yet. So a caller can append
// several batches in order (an idempotent producer's sequences) and wait for
// them all at once. The batch is not visible to readers, and must not be
// acknowledged, before Wait returns without error.
func (l *Log) AppendAsync(ctx context.Context, batch []byte, opts AppendOptions) (*PendingAppend, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := validateBatch(batch)
	if err == nil && opts.Records != nil {
		err = checkRecords(batch, h, opts.Records, !opts.LogAppendTime.IsZero())
	}
	if err != nil {
		return nil, l.errorf("append: %w", err)
	}
	if !opts.LogAppendTime.IsZero() {
		setLogAppendTime(batch, opts.LogAppendTime.UnixMilli())
		h.Attributes |= attrTimestampLA
		h.MaxTimestamp = opts.LogAppendTime.UnixMilli()
	}
	p, seg, pos, err := l.writeLocked(batch, h, opts)
	if err != nil {
		return nil, err
	}

	if p.sync != nil {
		if wb, ok := seg.log.(writebackStarter); ok {
			switch {
			case len(batch) >= writebackMin && seg.acquire():
				wb.startWriteback(pos, int64(len(batch))) // outside mu: it may wait for the device queue
				seg.release()
			case p.clog:
				seg.trickleWriteback(wb, pos+int64(len(batch)))
			}
		}
	}
	return p, nil
}

// trickleWriteback starts writeback of the segment's bytes before end once
// checkpointTrickle of them have not been started: the small batches the
// commit log acknowledged are then mostly on the disk when a checkpoint
// fsyncs the segment, so the checkpoint is not one burst of every
// partition's last 16 MiB competing with the rounds' fsyncs. In a goroutine
// of its own: off the request's path, and only about every 256 KiB.
func (s *segment) trickleWriteback(wb writebackStarter, end int64) {
	from := s.wbStarted.Load()
	if end-from < checkpointTrickle || !s.wbStarted.CompareAndSwap(from, end) || !s.acquire() {
		return
	}
	go func() {
		defer s.release()
		wb.startWriteback(from, end-from)
	}()
}

// writeLocked is AppendAsync's part under the log's lock: checks, offset
// assignment, roll and write. It returns the pending append and the
// segment and position the batch was written at.
func (l *Log) writeLocked(batch []byte, h BatchHeader, opts AppendOptions) (p *PendingAppend, seg *segment, pos int64, err error) {
	cfg := l.cfg.Load()
	mode := l.store.opts.Fsync
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() {
		// A panic under the lock (in opts.Check or the file system) leaves
		// the segment's tail unknown: fail the log, so nothing more is
		// appended to it, release the lock (deferred above), so readers,
		// Close and other partitions are not wedged, and let the panic go
		// on to the caller's recover.
		if r := recover(); r != nil {
			l.fail(fmt.Errorf("panic during append: %v", r))
			panic(r)
		}
	}()
	if l.mu.closed {
		return nil, nil, 0, l.errorf("append: %w", ErrClosed)
	}
	if p := l.err.Load(); p != nil {
		return nil, nil, 0, *p
	}
	base := l.mu.next
	if opts.Check != nil {
		if err := opts.Check(h, base); err != nil {
			return nil, nil, 0, err
		}
	}
	setBaseOffset(batch, base)
	h.BaseOffset = base
	if err := l.maybeRollLocked(h, cfg); err != nil {
		return nil, nil, 0, err
	}
	seg = l.mu.active
	pos = seg.size.Load()
	if pos == 0 {
		seg.rollAt = l.store.opts.Now().UnixMilli()
	}
	if err := seg.appendLocked(batch, h, cfg.IndexIntervalBytes); err != nil {
		// Take back whatever part of the batch reached the file; if even
		// that fails the file's tail is unknown and the log must stop.
		if terr := seg.log.Truncate(pos); terr != nil {
			err = l.fail(errors.Join(err, terr))
		}
		return nil, nil, 0, l.errorf("append: write: %w", err)
	}
	l.size.Add(int64(len(batch)))
	end := h.LastOffset() + 1
	l.mu.next = end
	l.leo.Store(end)
	p = &PendingAppend{l: l, base: base, end: end}
	switch mode {
	case FsyncAlways:
		if c := l.store.clog; c.eligibleLocked(l, len(batch)) {
			p.sync, p.clog = c.joinLocked(l, seg, pos, batch, end), true
			break
		}
		// Joined after the write and under mu: the fsync the sync loop
		// starts for p.sync reads the log end after taking p.sync, so it
		// covers this batch (see syncer).
		l.mu.directEnd = end
		p.sync = l.joinSyncLocked()
	case FsyncInterval:
		l.dirty.Store(true)
		l.advanceHWM(end)
		p.sync = l.flushPolicyLocked(cfg, h.NumRecords)
	default:
		l.advanceHWM(end)
		p.sync = l.flushPolicyLocked(cfg, h.NumRecords)
	}
	return p, seg, pos, nil
}

// Wait returns when the batch is durable per the fsync mode (FsyncAlways:
// once the group-commit fsync that covers it finished; otherwise at once),
// with its offsets. It takes no context on purpose: the batch is written,
// so the only honest answers are "durable" or "failed" (ErrLogFailed after
// a failed fsync, ErrClosed if the log was closed or deleted before its
// fsync), never "maybe". Wait may be called more than once and from any
// goroutine.
func (p *PendingAppend) Wait() (AppendResult, error) {
	l := p.l
	if p.sync != nil {
		<-p.sync.done
		if l.hwm.Load() < p.end {
			if e := l.err.Load(); e != nil {
				return AppendResult{}, *e
			}
			return AppendResult{}, l.errorf("append: %w before the batch was synced", ErrClosed)
		}
	}
	return AppendResult{BaseOffset: p.base, LastOffset: p.end - 1, LogStartOffset: l.start.Load()}, nil
}

// writebackStarter is implemented by files that can start writeback early
// (OSFS on Linux: sync_file_range). Starting it right after the write lets
// the disk work while other appenders write, so the fsync waits
// for less. Small batches are left to the fsync: one syscall fewer.
type writebackStarter interface{ startWriteback(off, n int64) }

const writebackMin = 128 << 10

// checkpointTrickle is how many bytes of small batches a segment gathers
// before their writeback is started (trickleWriteback).
const checkpointTrickle = 256 << 10

// maybeRollLocked starts a new active segment if the batch would overflow
// the active one, the active one is older than segment.ms, or the relative
// offsets would overflow the index format.
func (l *Log) maybeRollLocked(h BatchHeader, cfg *LogConfig) error {
	seg := l.mu.active
	size := seg.size.Load()
	if size == 0 {
		return nil
	}
	full := size+h.Size() > cfg.SegmentBytes
	old := seg.rollAt >= 0 && l.store.opts.Now().UnixMilli()-seg.rollAt > cfg.SegmentMs.Milliseconds()
	overflow := h.LastOffset()-seg.base > 1<<31
	if !full && !old && !overflow {
		return nil
	}
	return l.rollLocked()
}

// rollLocked closes the active segment (indexes written, everything synced)
// and starts a new one at the log end offset, with its directory entry synced
// before any byte is acknowledged in it. Afterwards the closed segment never
// needs recovery: the recovery point is always the active segment.
func (l *Log) rollLocked() error {
	old := l.mu.active
	if err := old.flushIndexesLocked(l.fs); err != nil {
		return l.fail(fmt.Errorf("roll: %w", err))
	}
	base := l.mu.next
	seg, err := createSegment(l.fs, l.dir, base)
	if err != nil {
		return l.fail(fmt.Errorf("roll: %w", err))
	}
	seg.loaded.Store(true)
	old.loaded.Store(true)
	segs := append(append([]*segment(nil), l.segments()...), seg)
	l.segs.Store(&segs)
	l.mu.active = seg
	return nil
}

// createSegment creates an empty .log file and syncs the directory.
func createSegment(fsys FS, dir string, base int64) (*segment, error) {
	s := newSegment(dir, base, nil)
	f, err := fsys.Create(s.path + logSuffix)
	if err != nil {
		return nil, err
	}
	s.log = f
	if err := fsys.SyncDir(dir); err != nil {
		_ = f.Close()
		return nil, err
	}
	s.loaded.Store(true)
	return s, nil
}

// ReadResult is what Read returns.
type ReadResult struct {
	Records        []byte // whole stored batches, byte-for-byte; may be empty
	HighWatermark  int64
	LogStartOffset int64
}

// Read returns whole batches starting at the batch that contains offset, stopping before the batch that
// would exceed maxBytes, except that the first batch is always returned whole (KIP-74). Never returns
// data at or beyond HighWatermark. offset in [HighWatermark, LogEndOffset] -> empty, no error.
// offset < LogStartOffset or > LogEndOffset -> ErrOffsetOutOfRange. CRC of each batch read is verified;
// a corrupt batch is never served (ErrCorruptBatch). Never holds the append lock during I/O.
//
// Like Kafka, one Read returns batches from one segment only.
func (l *Log) Read(offset int64, maxBytes int) (ReadResult, error) {
	return l.ReadInto(nil, offset, maxBytes)
}

// ReadInto is Read that reads into buf's capacity when it is large enough
// (Records then aliases buf), so a caller can reuse buffers across fetches.
func (l *Log) ReadInto(buf []byte, offset int64, maxBytes int) (ReadResult, error) {
	for {
		// Load order matters: the HWM first, so that every batch below it is
		// already counted in its segment's size and present in the list.
		hw := l.hwm.Load()
		res := ReadResult{HighWatermark: hw, LogStartOffset: l.start.Load()}
		segs := l.segments()
		if offset < res.LogStartOffset || offset > l.leo.Load() {
			return res, l.errorf("read offset %d: %w (log start %d, end %d)", offset, ErrOffsetOutOfRange,
				res.LogStartOffset, l.leo.Load())
		}
		if offset >= hw {
			return res, nil
		}
		i := segmentFor(segs, offset)
		retry := false
		for ; i < len(segs); i++ {
			seg := segs[i]
			if !seg.acquire() {
				if l.gone.Load() {
					return res, l.errorf("read: %w", ErrClosed)
				}
				retry = true // deleted by retention, which swapped the list first: reload it
				break
			}
			recs, err := l.readSegment(seg, buf, offset, maxBytes, hw)
			seg.release()
			if err != nil {
				return res, err
			}
			if len(recs) > 0 {
				res.Records = recs
				return res, nil
			}
		}
		if !retry {
			return res, nil
		}
	}
}

func (l *Log) readSegment(seg *segment, buf []byte, offset int64, maxBytes int, hw int64) ([]byte, error) {
	if err := seg.loadIndexes(l.fs, l.Config().IndexIntervalBytes); err != nil {
		l.store.opts.Logger.Warn("storage: index rebuilt with errors", "log", l.tp.String(), "err", err)
	}
	recs, err := seg.read(buf, max(offset, seg.base), maxBytes, hw)
	if err != nil {
		return nil, fmt.Errorf("storage: %s: read offset %d: %w", l.tp, offset, err)
	}
	return recs, nil
}

// segmentFor returns the index of the last segment whose base is <= offset (0 if none).
func segmentFor(segs []*segment, offset int64) int {
	lo, hi := 0, len(segs)
	for lo < hi {
		m := (lo + hi) / 2
		if segs[m].base <= offset {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return max(lo-1, 0)
}

// ScanBatches calls fn with each stored batch header from the batch containing `from` to the
// high watermark (used to rebuild idempotent-producer state from the log tail after a crash).
// An error from fn stops the scan and is returned.
func (l *Log) ScanBatches(from int64, fn func(h BatchHeader) error) error {
	if l.gone.Load() {
		return l.errorf("scan: %w", ErrClosed)
	}
	hw := l.hwm.Load()
	segs := l.segments()
	from = max(from, l.start.Load())
	for i := segmentFor(segs, from); i < len(segs); i++ {
		seg := segs[i]
		if !seg.acquire() {
			continue
		}
		err := seg.loadIndexes(l.fs, l.Config().IndexIntervalBytes)
		var stop bool
		if err == nil {
			start := lookupOffset(seg.offIdx.view(), uint32(max(from-seg.base, 0)))
			_, err = scanSegment(seg.log, start, seg.size.Load(), false, func(_ int64, h BatchHeader, _ []byte) error {
				if h.BaseOffset >= hw {
					stop = true
					return errStopScan
				}
				if h.LastOffset() < from {
					return nil
				}
				return fn(h)
			})
		}
		seg.release()
		if errors.Is(err, errStopScan) {
			return nil
		}
		if err != nil {
			return err
		}
		if stop {
			return nil
		}
	}
	return nil
}

var errStopScan = errors.New("stop scan")
