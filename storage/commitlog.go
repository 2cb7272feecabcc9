package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The shared commit log (FsyncAlways).
//
// A small batch (at most Options.CommitLogMaxBatch bytes) is written to its
// partition's segment as always, and a copy of it, with where it went
// (partition, segment, position), is queued for the commit log. One round
// loop writes everything queued since the last round to the commit log with
// one pwrite and makes it durable with one fdatasync, then raises the high
// watermark of every partition in the round: one fsync acknowledges the small
// appends of every partition, where the per-partition path needs one fsync
// per partition. The commit log's files are written full of zeros and synced
// before they take records, so a round's fdatasync flushes data only and
// never also commits a new file size (an ext4 journal commit).
//
// The segments of such batches are not fsynced per append. A commit log file
// that is full is retired, and a checkpoint then fsyncs every segment it has
// records of and sets the file aside for reuse; a crash before that replays
// the file into the segments (replayCommitLog) before the logs are opened, so
// recovery still scans only what is after the last clean point: the commit
// log since its last checkpoint and each log's active segment.
//
// Files are recycled: a checkpointed file is renamed <seq>.free (which the
// replay never reads), and the next file is made by renaming a free one to
// its new sequence, so that only the first files are written full of zeros
// (16 MiB of writes and an fsync per file, every ~3 s at 5 MB/s of small
// batches, competing with the rounds' fsyncs). A recycled file still holds
// its earlier records past the new ones; they do not read as records of the
// new file because every record's CRC field is XORed with the low 32 bits of
// its file's sequence (sealCommitRecords), so the replay stops at the first
// earlier record as it stops at zeros or a torn write.
//
// Rounds overlap (pipelined): the round loop writes a round and hands its
// fdatasync to a goroutine of its own, then goes on to the next round while
// up to Options.CommitLogRoundsInFlight rounds are unacknowledged. So an
// append that just missed a round waits for the fsync of its own, not for
// the rest of the one in flight and then its own. Rounds are acknowledged
// strictly in order: a round raises the high watermarks only after its own
// fsync succeeded and every earlier round was acknowledged, so the high
// watermark stays a durable prefix although a later round's fsync may finish
// first; a failed round fails every round after it. A file's rounds all end
// before its checkpoint syncs its segments and deletes it.
//
// Append groups (Store.GroupAppends): while a group is open the round loop
// does not take its next round, so the appends of one produce request to
// several partitions share a round instead of the first one starting a
// round of its own (measured: 20 requests of 8 one-record batches, written
// concurrently, made 121 rounds; as groups, 20). A round waiting for groups
// sets draining, and groups opened while it is set hold nothing, so groups
// from many connections cannot starve the round loop; a group covers only
// writes, which never wait for a round, so it cannot deadlock with one.
//
// Only while it is shared: a batch takes the commit log while appends of
// more than one log arrive (for Options.CommitLogShareWindow after an
// append came from another log than the one before it, or a group opened).
// A store where one log appends alone gains nothing from it (one fsync per
// round either way) and pays for the second write of every batch and, every
// file, a checkpoint and the prewrite of the next file: measured at 5,000
// one-record requests/s on one partition, p99 6-23 ms with the commit log
// against 3.5-7.4 ms without (docs/storage.md).
//
// Large batches take the per-partition path (syncer.go): their fsync is
// mostly data, which the commit log would write a second time. The two paths
// meet in one log without breaking the prefix rule of the high watermark: a
// segment fsync covers every byte written to the file before it, journaled
// or not; and a batch goes to the commit log only when no direct batch before
// it is still waiting for its fsync (HWM >= directEnd), so once its round is
// durable, everything before it is too.
//
// Lock order: Log.mu, then commitLog.mu. The round loop holds rmu (never
// Log.mu) while it writes a round; the fsyncs run without a lock.
type commitLog struct {
	s         *Store
	fs        FS
	dir       string
	maxBatch  int
	fileBytes int64
	depth     int           // rounds in flight at most
	window    time.Duration // CommitLogShareWindow; <0: always shared

	// Whether appends of more than one log are arriving (shared): the log
	// of the last FsyncAlways append, and when (Options.Now, in ns) an
	// append last came from a different log than the one before it. Read
	// and written without a lock: a stale value only picks the other path,
	// and both are correct for any batch.
	lastLog  atomic.Pointer[Log]
	switched atomic.Int64

	mu struct {
		sync.Mutex
		buf      []byte       // records of the next round
		spans    []commitSpan // what they acknowledge
		pending  *pendingSync // the next round, joined by appends since the last one began
		syncing  bool         // the round loop is running
		inflight int          // rounds written and not yet acknowledged
		last     *commitRound // the newest of them; nil if none
		groups   int          // open append groups (GroupAppends) the next round waits for
		draining bool         // the round loop waits for groups to close: no new one opens
	}
	room sync.Cond // on mu: a round was acknowledged, or the last open group closed

	// Owned by the round loop (one at a time), and taken by checkpointAll.
	rmu    sync.Mutex // taken by the round loop, a failing round's fsync and checkpointAll
	cur    *commitFile
	seq    int64             // of the last file started
	prep   chan preparedFile // the next file, being prewritten; nil if none started
	failed error             // a failed write or fsync: every later round fails too

	ckMu     sync.Mutex // serializes checkpoints
	retired  []*commitFile
	ckFailed bool // a segment fsync failed in a checkpoint: keep every file for the replay

	freeMu sync.Mutex
	free   []*commitFile // checkpointed files, renamed <seq>.free, oldest first, for prepare to reuse

	bg sync.WaitGroup // preparers and checkpoints

	rounds, appends, checkpointSyncs, recycled atomic.Int64
}

// Commit log files and records (format).
const (
	commitLogDir       = "commitlog" // in Dir; no "-<n>" suffix, so never a partition's name
	commitLogSuffix    = ".clog"     // <20-digit sequence>.clog
	commitFreeSuffix   = ".free"     // <20-digit sequence>.free: checkpointed, for reuse; never replayed
	maxFreeCommitFiles = 2           // more checkpointed files than this are deleted
	commitRecordHeader = 8           // length uint32 | crc uint32
	commitRecordFixed  = 18          // segmentBase int64 | position uint32 | partition int32 | topicLen uint16
)

// commitSpan is one queued batch: its log, its segment and its end offset.
type commitSpan struct {
	l   *Log
	seg *segment
	end int64
}

type commitFile struct {
	seq    int64
	reused int64 // the sequence the file had in its earlier use; 0 if new
	path   string
	f      File
	pos    int64             // where the next round is written
	segs   map[*segment]*Log // segments with records in the file, for the checkpoint
	rounds sync.WaitGroup    // fsyncs of rounds written to the file, in flight
}

// commitRound is one round in flight: written, its fsync running or done,
// waiting to be acknowledged after the round before it.
type commitRound struct {
	spans []commitSpan
	p     *pendingSync
	prev  *commitRound  // the round before, if it was still in flight
	done  chan struct{} // closed when acknowledged or failed; err is set then
	err   error
}

type preparedFile struct {
	f   *commitFile
	err error
}

func newCommitLog(s *Store) *commitLog {
	c := &commitLog{s: s, fs: s.fs, dir: filepath.Join(s.opts.Dir, commitLogDir),
		maxBatch: s.opts.CommitLogMaxBatch, fileBytes: s.opts.CommitLogFileBytes, depth: s.opts.CommitLogRoundsInFlight,
		window: s.opts.CommitLogShareWindow}
	c.room.L = &c.mu.Mutex
	return c
}

// eligibleLocked reports whether l's append of n bytes goes to the commit
// log: it is small, no direct batch of l waits for its fsync, and other logs
// are appending too (shared). The caller holds l.mu.
func (c *commitLog) eligibleLocked(l *Log, n int) bool {
	if c == nil {
		return false
	}
	shared := c.shared(l) // first: every append of the store counts
	return n <= c.maxBatch && l.hwm.Load() >= l.mu.directEnd && shared
}

// shared notes an append of l and reports whether appends of more than one
// log are arriving: this one comes from another log than the one before, or
// one did less than window ago. The store's first append does not count as
// a switch: a store with one busy log never takes the commit log.
func (c *commitLog) shared(l *Log) bool {
	if c.window < 0 {
		return true
	}
	now := c.s.opts.Now().UnixNano()
	if prev := c.lastLog.Load(); prev != l {
		c.lastLog.Store(l)
		if prev != nil {
			c.switched.Store(now)
			return true
		}
	}
	return now-c.switched.Load() < int64(c.window)
}

// joinLocked queues the record of a batch just written to seg at pos (its
// offsets end at end) for the next round and returns that round. The caller
// holds l.mu, so a log's records are queued in offset order.
func (c *commitLog) joinLocked(l *Log, seg *segment, pos int64, batch []byte, end int64) *pendingSync {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.buf = appendCommitRecord(c.mu.buf, l.tp, seg.base, pos, batch)
	c.mu.spans = append(c.mu.spans, commitSpan{l: l, seg: seg, end: end})
	p := c.mu.pending
	if p == nil {
		p = &pendingSync{done: make(chan struct{})}
		c.mu.pending = p
	}
	if !c.mu.syncing {
		c.mu.syncing = true
		c.s.syncer.loops.Add(1) // not concurrent with loops.Wait: Close marks logs closed first
		go c.roundLoop()
	}
	c.appends.Add(1)
	return p
}

// group opens an append group (Store.GroupAppends): the next round is not
// taken until it closes. It returns nil, and opens nothing, if the round
// loop is already waiting for groups to close: so a steady stream of groups
// from many connections cannot hold rounds back, a waiting round waits only
// for the groups opened before it began to wait. A group is the appends of
// several logs, so it also counts as a switch (shared).
func (c *commitLog) group() func() {
	c.switched.Store(c.s.opts.Now().UnixNano())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.draining {
		return nil
	}
	c.mu.groups++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.mu.groups--
			if c.mu.groups == 0 {
				c.room.Signal() // the round loop is the only waiter
			}
			c.mu.Unlock()
		})
	}
}

// appendCommitRecord appends one record to b.
func appendCommitRecord(b []byte, tp TopicPartition, segBase, pos int64, batch []byte) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, uint32(commitRecordFixed+len(tp.Topic)+len(batch)))
	b = binary.BigEndian.AppendUint32(b, 0) // crc, below
	b = binary.BigEndian.AppendUint64(b, uint64(segBase))
	b = binary.BigEndian.AppendUint32(b, uint32(pos))
	b = binary.BigEndian.AppendUint32(b, uint32(tp.Partition))
	b = binary.BigEndian.AppendUint16(b, uint16(len(tp.Topic)))
	b = append(b, tp.Topic...)
	b = append(b, batch...)
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+commitRecordHeader:], castagnoli))
	return b
}

// roundLoop writes rounds until no append is waiting, each as soon as fewer
// than depth rounds are in flight; finishRound makes each durable and
// acknowledges it.
func (c *commitLog) roundLoop() {
	defer c.s.syncer.loops.Done()
	var spare []byte
	for {
		c.mu.Lock()
		for c.mu.pending != nil && c.mu.inflight >= c.depth {
			c.room.Wait()
		}
		for c.mu.pending != nil && c.mu.groups > 0 {
			c.mu.draining = true // groups opened from now on do not delay this round
			c.room.Wait()
		}
		c.mu.draining = false
		if c.mu.pending == nil {
			c.mu.syncing = false
			c.mu.Unlock()
			return
		}
		r := &commitRound{spans: c.mu.spans, p: c.mu.pending, prev: c.mu.last, done: make(chan struct{})}
		buf := c.mu.buf
		c.mu.buf, c.mu.spans, c.mu.pending = spare[:0], nil, nil
		c.mu.last = r
		c.mu.inflight++
		c.mu.Unlock()
		f, err := c.write(buf, r.spans)
		spare = buf // written: the next round may reuse it
		c.s.syncer.loops.Add(1)
		go c.finishRound(r, f, err)
	}
}

// write appends one round to the current file (f is nil if the round is
// empty, or on error). The round's fsync is then f's to wait for (f.rounds).
func (c *commitLog) write(buf []byte, spans []commitSpan) (*commitFile, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.failed != nil {
		return nil, c.failed
	}
	if len(buf) == 0 {
		return nil, nil
	}
	f, err := c.fileFor(int64(len(buf)))
	if err == nil {
		sealCommitRecords(buf, f.seq)
		_, err = f.f.WriteAt(buf, f.pos)
	}
	if err != nil {
		return nil, c.failLocked(err)
	}
	f.pos += int64(len(buf))
	for _, sp := range spans {
		f.segs[sp.seg] = sp.l
	}
	f.rounds.Add(1)
	return f, nil
}

// failLocked records a failed write or fsync: it fails every later round.
// The caller holds rmu.
func (c *commitLog) failLocked(err error) error {
	if c.failed == nil {
		c.failed = fmt.Errorf("storage: commit log: %w", err)
		c.s.opts.Logger.Error("storage: commit log write or fsync failed; appends of small batches fail until restart", "err", err)
	}
	return c.failed
}

// finishRound fsyncs round r written to f (unless it failed to be written:
// err), waits for the round before it, and acknowledges r: raises the high
// watermarks of its appends, or fails their logs if r or any earlier round
// failed.
func (c *commitLog) finishRound(r *commitRound, f *commitFile, err error) {
	defer c.s.syncer.loops.Done()
	if f != nil {
		start := time.Now()
		err = f.f.Sync()
		c.rounds.Add(1)
		if h := c.s.opts.OnFsync; h != nil {
			h(time.Since(start), err)
		}
		if err != nil {
			c.rmu.Lock()
			err = c.failLocked(err)
			c.rmu.Unlock()
		}
		f.rounds.Done()
	}
	if r.prev != nil {
		<-r.prev.done
		if err == nil {
			err = r.prev.err
		}
		r.prev = nil
	}
	r.err = err
	for _, sp := range r.spans {
		switch {
		case err != nil:
			// Nothing of the round may be acknowledged; the log's bytes
			// after its HWM are in doubt until recovery.
			sp.l.fail(err)
			sp.l.notify()
		case !sp.l.gone.Load(): // a deleted log's waiters get ErrClosed
			sp.l.advanceHWM(sp.end)
		}
	}
	close(r.p.done)
	close(r.done)
	c.mu.Lock()
	c.mu.inflight--
	if c.mu.last == r {
		c.mu.last = nil
	}
	c.room.Signal()
	c.mu.Unlock()
}

// fileFor returns the file the next n bytes go to, retiring a full one. The
// caller holds rmu.
func (c *commitLog) fileFor(n int64) (*commitFile, error) {
	if f := c.cur; f != nil && (f.pos == 0 || f.pos+n <= c.fileBytes) {
		return f, nil // a round larger than a file goes into an empty one, which grows
	}
	if c.cur != nil {
		c.retire(c.cur)
		c.cur = nil
		c.bg.Add(1)
		go func() {
			defer c.bg.Done()
			c.checkpointRetired()
		}()
	}
	if c.prep == nil {
		c.startPrepareLocked()
	}
	r := <-c.prep
	c.prep = nil
	if r.err != nil {
		return nil, r.err
	}
	c.cur = r.f
	c.startPrepareLocked() // the one after, in the background
	return c.cur, nil
}

// startPrepareLocked starts prewriting the next file. The caller holds rmu
// (or is Open, before anything runs).
func (c *commitLog) startPrepareLocked() {
	c.seq++
	seq := c.seq
	ch := make(chan preparedFile, 1)
	c.prep = ch
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		f, err := c.prepare(seq)
		ch <- preparedFile{f, err}
	}()
}

var zeroChunk [1 << 20]byte

// prepare makes file seq, synced with its directory entry, so that the
// fdatasyncs of the rounds written into it commit no metadata: a free
// (checkpointed) file renamed, or else (none, or its rename failed) a new
// one written full of zeros.
func (c *commitLog) prepare(seq int64) (*commitFile, error) {
	path := filepath.Join(c.dir, segmentName(seq)+commitLogSuffix)
	old, err := c.reuse(path)
	if old != nil {
		c.recycled.Add(1)
		return &commitFile{seq: seq, reused: old.seq, path: path, f: old.f, segs: map[*segment]*Log{}}, nil
	}
	if err != nil {
		c.s.opts.Logger.Warn("storage: commit log: reusing a file failed; writing a new one", "file", path, "err", err)
	}
	f, err := c.fs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("storage: commit log: %w", err)
	}
	for off := int64(0); off < c.fileBytes && err == nil; off += int64(len(zeroChunk)) {
		_, err = f.WriteAt(zeroChunk[:min(int64(len(zeroChunk)), c.fileBytes-off)], off)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = c.fs.SyncDir(c.dir)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("storage: commit log: prepare %s: %w", path, err)
	}
	return &commitFile{seq: seq, path: path, f: f, segs: map[*segment]*Log{}}, nil
}

// reuse renames the oldest free file to path and syncs the directory, and
// returns it as it was (its earlier sequence and file); nil if there is
// none. Its data was synced when it was written, so the rounds' fdatasyncs
// again flush data only.
func (c *commitLog) reuse(path string) (*commitFile, error) {
	c.freeMu.Lock()
	if len(c.free) == 0 {
		c.freeMu.Unlock()
		return nil, nil
	}
	old := c.free[0]
	c.free = c.free[1:]
	c.freeMu.Unlock()
	err := c.fs.Rename(freePath(old), path)
	if err == nil {
		err = c.fs.SyncDir(c.dir)
	}
	if err != nil {
		_ = old.f.Close() // left as .free: never replayed, deleted at the next Open or clean Close
		return nil, err
	}
	return old, nil
}

// freePath is where checkpointed file f waits for reuse.
func freePath(f *commitFile) string {
	return filepath.Join(filepath.Dir(f.path), segmentName(f.seq)+commitFreeSuffix)
}

// setAside keeps checkpointed file f for reuse, renamed <seq>.free, or
// deletes it if enough are kept. The rename or removal is made durable by
// the next SyncDir of the directory; until then a crash may bring f back
// under its name, and the replay then writes its records again where they
// already are (checkpointAll, which DeleteLog runs, ends with that SyncDir).
// If the rename or removal fails, f stays as it was, open and retired, for
// the next checkpoint to try again.
func (c *commitLog) setAside(f *commitFile) error {
	c.freeMu.Lock()
	defer c.freeMu.Unlock()
	if len(c.free) >= maxFreeCommitFiles {
		if err := c.fs.Remove(f.path); err != nil {
			return err
		}
		_ = f.f.Close()
		return nil
	}
	if err := c.fs.Rename(f.path, freePath(f)); err != nil {
		return err
	}
	f.segs = nil // checkpointed: holds no segment alive while it waits
	c.free = append(c.free, f)
	return nil
}

func (c *commitLog) retire(f *commitFile) {
	c.ckMu.Lock()
	c.retired = append(c.retired, f)
	c.ckMu.Unlock()
}

// checkpointRetired checkpoints the retired files, oldest first.
func (c *commitLog) checkpointRetired() {
	c.ckMu.Lock()
	defer c.ckMu.Unlock()
	c.checkpointRetiredLocked()
}

// checkpointRetiredLocked fsyncs every segment a retired file has records
// of, then deletes the file: its records are then durable where they belong.
// The caller holds ckMu.
func (c *commitLog) checkpointRetiredLocked() error {
	for len(c.retired) > 0 && !c.ckFailed {
		f := c.retired[0]
		f.rounds.Wait() // no fsync of the file's rounds is running when it is closed
		for seg, l := range f.segs {
			if !seg.acquire() {
				continue // deleted by retention (closed, so synced at its roll) or with its log
			}
			start := time.Now()
			err := seg.log.Sync()
			seg.release()
			c.checkpointSyncs.Add(1)
			if h := c.s.opts.OnFsync; h != nil {
				h(time.Since(start), err)
			}
			if err != nil {
				// The kernel may have dropped the segment's dirty pages: the
				// commit log files are now the only copy. Keep them all for
				// the replay at the next Open, and stop the log.
				c.ckFailed = true
				c.s.opts.Logger.Error("storage: checkpoint fsync failed", "log", l.tp.String(), "err", err)
				l.fail(err)
				l.notify()
				return err
			}
		}
		if err := c.setAside(f); err != nil {
			return err
		}
		c.retired = c.retired[1:]
	}
	return nil
}

// checkpointAll makes every record queued so far durable in its segment and
// deletes the commit log files that hold them (DeleteLog: a log created
// again under the same name must never be replayed into).
func (c *commitLog) checkpointAll() error {
	c.mu.Lock()
	var p *pendingSync
	if c.mu.syncing || c.mu.inflight > 0 || len(c.mu.spans) > 0 {
		if p = c.mu.pending; p == nil {
			p = &pendingSync{done: make(chan struct{})}
			c.mu.pending = p // a round after the one in flight, if any
		}
		if !c.mu.syncing {
			c.mu.syncing = true
			c.s.syncer.loops.Add(1)
			go c.roundLoop()
		}
	}
	c.mu.Unlock()
	if p != nil {
		<-p.done // rounds are acknowledged in order: every earlier one too
	}
	c.rmu.Lock()
	if c.cur != nil && c.cur.pos > 0 {
		c.retire(c.cur)
		c.cur = nil
	}
	c.rmu.Unlock()
	c.ckMu.Lock()
	err := c.checkpointRetiredLocked()
	c.ckMu.Unlock()
	if err == nil {
		err = c.fs.SyncDir(c.dir)
	}
	if err != nil {
		return fmt.Errorf("storage: commit log checkpoint: %w", err)
	}
	return nil
}

// close waits for the background work and closes the files. If every log
// closed cleanly (all segments synced) it also deletes them.
func (c *commitLog) close(remove bool) error {
	c.bg.Wait()
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.prep != nil {
		if r := <-c.prep; r.f != nil {
			_ = r.f.f.Close()
		}
		c.prep = nil
	}
	if c.cur != nil {
		_ = c.cur.f.Close()
	}
	c.ckMu.Lock()
	for _, f := range c.retired {
		_ = f.f.Close()
	}
	keep := c.ckFailed
	c.ckMu.Unlock()
	c.freeMu.Lock()
	for _, f := range c.free {
		_ = f.f.Close()
	}
	c.free = nil
	c.freeMu.Unlock()
	if !remove || keep {
		return nil
	}
	return removeCommitLog(c.fs, c.dir)
}

// removeCommitLog deletes every file of the commit log durably.
func removeCommitLog(fsys FS, dir string) error {
	ents, err := fsys.ReadDir(dir)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: commit log: %w", err)
	}
	for _, e := range ents {
		if err := fsys.Remove(filepath.Join(dir, e.Name)); err != nil {
			return fmt.Errorf("storage: commit log: %w", err)
		}
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("storage: commit log: %w", err)
	}
	return nil
}

// replayCommitLog writes every record of the commit log's files back to its
// segment, at its position, and syncs the segments it wrote to. It runs in
// Open before any log is opened, so that the scan of each active segment then
// sees every batch the commit log made durable; records of logs or segments
// that no longer exist are skipped (deleted logs are checkpointed before
// DeleteLog returns, so a record never belongs to a later log of the same
// name). Each file's records end at the first zero length, torn record or
// CRC mismatch. It returns how many records it replayed.
func replayCommitLog(fsys FS, dataDir string) (int, error) {
	dir := filepath.Join(dataDir, commitLogDir)
	ents, err := fsys.ReadDir(dir)
	if isNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: commit log: %w", err)
	}
	var names []string
	for _, e := range ents {
		if _, ok := commitFileSeq(e.Name); ok {
			names = append(names, e.Name)
		}
	}
	sort.Strings(names)        // 20 digits: by sequence
	files := map[string]File{} // nil: missing, skip its records
	defer func() {
		for _, f := range files {
			if f != nil {
				_ = f.Close()
			}
		}
	}()
	n := 0
	for _, name := range names {
		data, err := ReadFile(fsys, filepath.Join(dir, name))
		if err != nil {
			return n, fmt.Errorf("storage: commit log: %w", err)
		}
		seq, _ := commitFileSeq(name)
		mask := commitMask(seq)
		for off := 0; ; {
			rec, next, ok := parseCommitRecord(data, off, mask)
			if !ok {
				break
			}
			off = next
			path := filepath.Join(dataDir, rec.tp.String(), segmentName(rec.segBase)+logSuffix)
			f, seen := files[path]
			if !seen {
				f, err = fsys.OpenReadWrite(path)
				if err != nil && !isNotExist(err) {
					return n, fmt.Errorf("storage: commit log: replay: %w", err)
				}
				files[path] = f // nil if missing
			}
			if f == nil {
				continue
			}
			if _, err := f.WriteAt(rec.batch, rec.pos); err != nil {
				return n, fmt.Errorf("storage: commit log: replay into %s: %w", path, err)
			}
			n++
		}
	}
	var errs []error
	for _, f := range files {
		if f != nil {
			errs = append(errs, f.Sync())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("storage: commit log: replay: %w", err)
	}
	return n, nil
}

type commitRecord struct {
	tp      TopicPartition
	segBase int64
	pos     int64
	batch   []byte
}

// commitFileSeq returns the sequence of the commit log file named name
// (<sequence>.clog); ok is false for any other name (.free files too).
func commitFileSeq(name string) (seq int64, ok bool) {
	digits, found := strings.CutSuffix(name, commitLogSuffix)
	if !found {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 63)
	return int64(n), err == nil
}

// commitMask is what the CRC fields of file seq's records are XORed with:
// the low 32 bits of seq, so that records of a file's earlier use (another
// sequence, less than 2^32 files before) fail the check in its next use.
func commitMask(seq int64) uint32 { return uint32(seq) }

// sealCommitRecords XORs the CRC field of every record in b (whole records,
// as appendCommitRecord made them) with commitMask(seq), for file seq.
func sealCommitRecords(b []byte, seq int64) {
	m := commitMask(seq)
	for off := 0; off+commitRecordHeader <= len(b); {
		crc := binary.BigEndian.Uint32(b[off+4:])
		binary.BigEndian.PutUint32(b[off+4:], crc^m)
		off += commitRecordHeader + int(binary.BigEndian.Uint32(b[off:]))
	}
}

// parseCommitRecord parses the record at data[off:] of a file whose records
// are sealed with mask (commitMask); ok is false at the end of the records
// (zero length, torn, bad CRC or bad fields). A CRC without the mask is also
// accepted: files written before records were sealed hold such CRCs, and no
// recycled file does (mask is never 0 in practice: sequences start at 1).
func parseCommitRecord(data []byte, off int, mask uint32) (rec commitRecord, next int, ok bool) {
	if off+commitRecordHeader > len(data) {
		return rec, off, false
	}
	n := int(binary.BigEndian.Uint32(data[off:]))
	if n < commitRecordFixed || n > len(data)-off-commitRecordHeader {
		return rec, off, false
	}
	body := data[off+commitRecordHeader : off+commitRecordHeader+n]
	if crc, got := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(data[off+4:]); got != crc^mask && got != crc {
		return rec, off, false
	}
	rec.segBase = int64(binary.BigEndian.Uint64(body))
	rec.pos = int64(binary.BigEndian.Uint32(body[8:]))
	rec.tp.Partition = int32(binary.BigEndian.Uint32(body[12:]))
	tl := int(binary.BigEndian.Uint16(body[16:]))
	if commitRecordFixed+tl > n || rec.segBase < 0 || rec.tp.Partition < 0 || tl == 0 {
		return rec, off, false
	}
	rec.tp.Topic = string(body[commitRecordFixed : commitRecordFixed+tl])
	rec.batch = body[commitRecordFixed+tl:]
	if strings.ContainsAny(rec.tp.Topic, "/\\") || rec.tp.Topic == "." || rec.tp.Topic == ".." {
		return rec, off, false
	}
	return rec, off + commitRecordHeader + n, true
}

// CommitLogStats are the commit log's counters (FsyncAlways).
type CommitLogStats struct {
	Appends         int64 // appends acknowledged through the commit log
	Rounds          int64 // commit log fsyncs: Appends/Rounds appends share each
	CheckpointSyncs int64 // segment fsyncs of checkpoints (not on any append's path)
	RecycledFiles   int64 // files made by renaming a checkpointed one (the others are written full of zeros)
}
