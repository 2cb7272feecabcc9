package storage

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Files in the data directory and in each log directory (format).
const (
	cleanShutdownFile = ".clean-shutdown"  // in Dir: present only while every log is cleanly closed
	logStartFile      = "log-start-offset" // in a log dir: decimal log start offset (DeleteRecords)
	deletedSuffix     = ".deleted"         // a log dir being deleted
	reservedPrefix    = "__"               // non-partition dirs of other components (e.g. the broker's __state)
)

// Store holds every partition log under one data directory. It owns the
// group commit (FsyncAlways: per-log sync loops sharing a bound on parallel
// fsyncs), the interval syncer (FsyncInterval) and the retention loop.
type Store struct {
	opts   Options
	fs     FS
	syncer *syncer
	lock   io.Closer  // the data directory's lock, released by Close
	clog   *commitLog // FsyncAlways with the commit log on; nil otherwise

	mu struct {
		sync.Mutex
		logs   map[TopicPartition]*Log
		closed bool
	}

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the data directory and recovers every partition found under it
// (with DefaultLogConfig; the broker then calls SetConfig). After a clean shutdown no log data is
// scanned; after a crash, each log's active segment is scanned and truncated at the first torn or
// corrupt batch.
//
// The data directory is locked (a file named .lock in it) until Close: while one Store has it open,
// Open of the same directory, from this process or another, fails with ErrLocked.
func Open(opts Options) (*Store, error) {
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := opts.FS.MkdirAll(opts.Dir); err != nil {
		return nil, fmt.Errorf("storage: create data dir: %w", err)
	}
	lock, err := lockDir(opts.FS, opts.Dir)
	if err != nil {
		return nil, err
	}
	s, err := open(opts)
	if err != nil {
		lock.Close()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

func open(opts Options) (*Store, error) {
	s := &Store{opts: opts, fs: opts.FS, stop: make(chan struct{})}
	s.mu.logs = map[TopicPartition]*Log{}
	if err := s.fs.SyncDir(filepath.Dir(filepath.Clean(opts.Dir))); err != nil {
		return nil, fmt.Errorf("storage: sync parent of data dir: %w", err)
	}
	marker := filepath.Join(opts.Dir, cleanShutdownFile)
	clean := false
	if f, err := s.fs.Open(marker); err == nil {
		clean = true
		_ = f.Close()
	} else if !isNotExist(err) {
		return nil, fmt.Errorf("storage: %w", err)
	}
	// Before any log is opened: put back what the commit log made durable,
	// so that the scan of each active segment sees it.
	replayed, err := replayCommitLog(s.fs, opts.Dir)
	if err != nil {
		return nil, err
	}
	if replayed > 0 {
		if clean {
			opts.Logger.Warn("storage: commit log records after a clean shutdown; recovering", "records", replayed)
		}
		clean = false
		opts.Logger.Info("storage: replayed the commit log", "records", replayed)
	}
	ents, err := s.fs.ReadDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("storage: list data dir: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir || e.Name == commitLogDir {
			continue
		}
		if strings.HasSuffix(e.Name, deletedSuffix) {
			if err := s.fs.RemoveAll(filepath.Join(opts.Dir, e.Name)); err != nil {
				return nil, fmt.Errorf("storage: finish deleting %s: %w", e.Name, err)
			}
			continue
		}
		tp, ok := parseTopicPartition(e.Name)
		if !ok {
			// Names starting with "__" that are not partitions belong to
			// other components sharing the data dir (the broker's __state).
			if strings.HasPrefix(e.Name, reservedPrefix) {
				continue
			}
			opts.Logger.Warn("storage: ignoring unknown directory", "dir", e.Name)
			continue
		}
		l, err := openLog(s, tp, clean)
		if err != nil {
			s.closeLogs()
			return nil, err
		}
		s.mu.logs[tp] = l
	}
	// Every log is now durable on its own (recovery synced the active
	// segments): the commit log's records are no longer needed.
	if err := removeCommitLog(s.fs, filepath.Join(opts.Dir, commitLogDir)); err != nil {
		s.closeLogs()
		return nil, err
	}
	// From here on, new writes may happen: a crash must not look clean.
	if clean {
		if err := s.fs.Remove(marker); err != nil {
			s.closeLogs()
			return nil, fmt.Errorf("storage: remove clean-shutdown marker: %w", err)
		}
	}
	if err := s.fs.SyncDir(opts.Dir); err != nil {
		s.closeLogs()
		return nil, fmt.Errorf("storage: sync data dir: %w", err)
	}
	s.syncer = newSyncer(s)
	if opts.Fsync == FsyncAlways && opts.CommitLogMaxBatch >= 0 {
		if err := s.fs.MkdirAll(filepath.Join(opts.Dir, commitLogDir)); err != nil {
			s.closeLogs()
			return nil, fmt.Errorf("storage: create commit log dir: %w", err)
		}
		if err := s.fs.SyncDir(opts.Dir); err != nil {
			s.closeLogs()
			return nil, fmt.Errorf("storage: sync data dir: %w", err)
		}
		s.clog = newCommitLog(s)
		s.clog.startPrepareLocked() // the first file, in the background
	}
	switch opts.Fsync {
	case FsyncInterval:
		s.wg.Add(1)
		go s.syncer.runInterval(opts.FsyncInterval)
	}
	if opts.RetentionCheckInterval > 0 {
		s.wg.Add(1)
		go s.runRetention(opts.RetentionCheckInterval)
	}
	return s, nil
}

func parseTopicPartition(name string) (TopicPartition, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return TopicPartition{}, false
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || p < 0 || strconv.FormatInt(p, 10) != name[i+1:] {
		return TopicPartition{}, false
	}
	return TopicPartition{Topic: name[:i], Partition: int32(p)}, true
}

// FS returns the store's file system.
func (s *Store) FS() FS { return s.fs }

// GroupAppends makes the appends of several partitions that follow it, up
// to the call of the returned function, share one commit log round (and so
// one fsync) where they would otherwise be split over two: the round loop
// does not take its next round while a group is open. A produce request's
// batches for several partitions are one group, so the request waits for
// one fsync, not for the later of two. Only for short, non-blocking
// sequences of appends (a round waits for the group to close), and only a
// hint: a round that is already waiting for groups does not wait for one
// opened after that (the appends then may be split), and without the
// commit log (other fsync modes, CommitLogMaxBatch -1) it does nothing.
// A group counts as appends of several logs: its small batches take the
// commit log even on a store where one log appended alone until then
// (Options.CommitLogShareWindow).
// The returned function must be called; calls after the first do nothing.
func (s *Store) GroupAppends() (done func()) {
	if s.clog != nil {
		if done := s.clog.group(); done != nil {
			return done
		}
	}
	return func() {}
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.opts.Dir }

func (s *Store) logDir(tp TopicPartition) string { return filepath.Join(s.opts.Dir, tp.String()) }

// CreateLog creates an empty log for tp; ErrLogExists if it has one. The log
// is durable (its directory entries fsynced) when CreateLog returns.
func (s *Store) CreateLog(tp TopicPartition, cfg LogConfig) (*Log, error) {
	if tp.Topic == "" || strings.ContainsAny(tp.Topic, "/\\") || tp.Topic == "." || tp.Topic == ".." || tp.Partition < 0 {
		return nil, fmt.Errorf("storage: create log %q: invalid topic or partition", tp)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, fmt.Errorf("storage: create log %s: %w", tp, ErrClosed)
	}
	if _, ok := s.mu.logs[tp]; ok {
		return nil, fmt.Errorf("storage: create log %s: %w", tp, ErrLogExists)
	}
	dir := s.logDir(tp)
	if err := s.fs.RemoveAll(dir); err != nil { // debris of a failed create
		return nil, fmt.Errorf("storage: create log %s: %w", tp, err)
	}
	if err := s.fs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("storage: create log %s: %w", tp, err)
	}
	seg, err := createSegment(s.fs, dir, 0)
	if err == nil {
		err = s.fs.SyncDir(s.opts.Dir)
	}
	if err != nil {
		if seg != nil {
			_ = seg.log.Close()
		}
		return nil, fmt.Errorf("storage: create log %s: %w", tp, err)
	}
	l := newLog(s, tp, cfg)
	l.installSegments([]*segment{seg}, 0, 0)
	s.mu.logs[tp] = l
	return l, nil
}

func newLog(s *Store, tp TopicPartition, cfg LogConfig) *Log {
	l := &Log{store: s, tp: tp, dir: s.logDir(tp), fs: s.fs}
	l.SetConfig(cfg)
	return l
}

// installSegments sets the recovered state of a log being opened.
func (l *Log) installSegments(segs []*segment, start, next int64) {
	l.segs.Store(&segs)
	l.mu.active = segs[len(segs)-1]
	l.mu.next = next
	l.leo.Store(next)
	l.hwm.Store(next)
	l.start.Store(start)
	var size int64
	for _, seg := range segs {
		size += seg.size.Load()
	}
	l.size.Store(size)
}

// Log returns the log of tp.
func (s *Store) Log(tp TopicPartition) (*Log, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.mu.logs[tp]
	return l, ok
}

// Logs returns every log, sorted by topic and partition.
func (s *Store) Logs() []*Log {
	s.mu.Lock()
	out := make([]*Log, 0, len(s.mu.logs))
	for _, l := range s.mu.logs {
		out = append(out, l)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].tp, out[j].tp
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return out
}

// DeleteLog deletes tp's log and its files. Appends waiting on it fail with
// ErrClosed; reads in progress finish on the open files.
func (s *Store) DeleteLog(tp TopicPartition) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.mu.logs[tp]
	if !ok {
		return fmt.Errorf("storage: delete log %s: %w", tp, ErrLogNotFound)
	}
	delete(s.mu.logs, tp)
	l.mu.Lock()
	l.mu.closed = true
	l.mu.Unlock()
	l.gone.Store(true)
	l.retMu.Lock()
	for _, seg := range l.segments() {
		seg.release()
	}
	l.retMu.Unlock()
	l.notify()
	// Rename first, so that a crash part-way through the removal never leaves
	// a half-deleted log that looks real at the next Open.
	tomb := l.dir + deletedSuffix
	err := s.fs.RemoveAll(tomb)
	if err == nil {
		err = s.fs.Rename(l.dir, tomb)
	}
	if err == nil {
		err = s.fs.SyncDir(s.opts.Dir)
	}
	if err == nil {
		err = s.fs.RemoveAll(tomb)
	}
	if err == nil && s.clog != nil {
		// The log's commit log records must be gone before a log of the
		// same name can be created, or a replay would write them into it.
		err = s.clog.checkpointAll()
	}
	if err != nil {
		return fmt.Errorf("storage: delete log %s: %w", tp, err)
	}
	return nil
}

// Close stops the background loops, syncs every log, writes the index files of
// the active segments and then the clean-shutdown checkpoint. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.lock != nil {
			// Last, whatever the outcome: the next Open may take over.
			defer s.lock.Close()
		}
		s.mu.Lock()
		s.mu.closed = true
		s.mu.Unlock()
		logs := s.Logs()
		// No new writes after this; writes already made have joined an fsync.
		for _, l := range logs {
			l.mu.Lock()
			l.mu.closed = true
			l.mu.Unlock()
		}
		close(s.stop)
		s.wg.Wait()
		s.syncer.loops.Wait() // the last fsyncs of appends already written
		var errs []error
		for _, l := range logs {
			errs = append(errs, l.close())
		}
		if s.clog != nil {
			// Every segment is synced now, unless a log failed: then the
			// commit log stays for the replay at the next Open.
			errs = append(errs, s.clog.close(errors.Join(errs...) == nil))
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = err
			return
		}
		s.closeErr = WriteFileAtomic(s.fs, filepath.Join(s.opts.Dir, cleanShutdownFile), nil)
	})
	return s.closeErr
}

// closeLogs releases the files of logs opened so far (failed Open).
func (s *Store) closeLogs() {
	for _, l := range s.mu.logs {
		for _, seg := range l.segments() {
			seg.release()
		}
	}
}

// close flushes the active segment's indexes and syncs the log: afterwards no
// part of it needs recovery.
func (l *Log) close() error {
	err := l.closeActive()
	l.gone.Store(true)
	l.notify()
	l.retMu.Lock() // lock order: retMu before mu, so not under mu
	for _, seg := range l.segments() {
		seg.release()
	}
	l.retMu.Unlock()
	if err != nil {
		return fmt.Errorf("storage: %s: close: %w", l.tp, err)
	}
	return nil
}

func (l *Log) closeActive() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.flushTimer != nil {
		l.mu.flushTimer.Stop()
		l.mu.flushTimer = nil
	}
	var err error
	if l.err.Load() == nil {
		err = l.mu.active.flushIndexesLocked(l.fs)
		if err == nil {
			err = l.fs.SyncDir(l.dir)
		}
		if err == nil {
			l.advanceHWM(l.mu.next)
		}
	} else {
		err = *l.err.Load()
	}
	return err
}

func (s *Store) runRetention(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		for _, l := range s.Logs() {
			if n, err := l.EnforceRetention(s.opts.Now()); err != nil {
				s.opts.Logger.Warn("storage: retention", "log", l.tp.String(), "err", err)
			} else if n > 0 {
				s.opts.Logger.Info("storage: retention deleted segments", "log", l.tp.String(), "segments", n)
			}
		}
	}
}

// Stats are counters for metrics.
type Stats struct {
	SyncedAppends int64 // FsyncAlways appends that waited for an fsync, either path
	Fsyncs        int64 // FsyncAlways fsyncs that acknowledged appends: SyncedAppends/Fsyncs is the group-commit factor
	// The part of the above that went through each path.
	SegmentAppends, SegmentFsyncs int64 // per-partition path: fsyncs of the partition's segment
	CommitLog                     CommitLogStats
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{SegmentAppends: s.syncer.appends.Load(), SegmentFsyncs: s.syncer.fsyncs.Load()}
	if c := s.clog; c != nil {
		st.CommitLog = CommitLogStats{Appends: c.appends.Load(), Rounds: c.rounds.Load(), CheckpointSyncs: c.checkpointSyncs.Load(), RecycledFiles: c.recycled.Load()}
	}
	st.SyncedAppends = st.SegmentAppends + st.CommitLog.Appends
	st.Fsyncs = st.SegmentFsyncs + st.CommitLog.Rounds
	return st
}
