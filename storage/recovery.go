package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// openLog opens the log of tp from its directory. Closed segments are trusted:
// they were synced with their indexes when they rolled, and their indexes are
// loaded lazily, so opening costs O(segments), not O(bytes). The active
// segment is the recovery point: after a clean shutdown its index files are
// loaded and only the bytes after the last index entry are walked (headers
// only); after a crash it is scanned from the start, every batch's CRC and
// offset checked, and it is truncated at the first torn or corrupt batch.
func openLog(s *Store, tp TopicPartition, clean bool) (*Log, error) {
	l := newLog(s, tp, DefaultLogConfig())
	ents, err := s.fs.ReadDir(l.dir)
	if err != nil {
		return nil, l.errorf("open: %w", err)
	}
	var bases []int64
	have := map[string]bool{}
	for _, e := range ents {
		have[e.Name] = true
	}
	for _, e := range ents {
		name := e.Name
		switch {
		case strings.HasSuffix(name, ".tmp"):
			_ = s.fs.Remove(filepath.Join(l.dir, name))
		case strings.HasSuffix(name, logSuffix):
			base, err := strconv.ParseInt(strings.TrimSuffix(name, logSuffix), 10, 64)
			if err != nil || base < 0 || segmentName(base)+logSuffix != name {
				return nil, l.errorf("open: unexpected file %s", name)
			}
			bases = append(bases, base)
		case strings.HasSuffix(name, indexSuffix) || strings.HasSuffix(name, timeIndexSuffix):
			stem := strings.TrimSuffix(strings.TrimSuffix(name, timeIndexSuffix), indexSuffix)
			if !have[stem+logSuffix] { // left by a crash during retention
				_ = s.fs.Remove(filepath.Join(l.dir, name))
			}
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })

	cpStart := int64(-1)
	if b, err := ReadFile(s.fs, filepath.Join(l.dir, logStartFile)); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v >= 0 {
			cpStart = v
		}
	} else if !isNotExist(err) {
		return nil, l.errorf("open: %w", err)
	}

	var segs []*segment
	fail := func(err error) (*Log, error) {
		for _, seg := range segs {
			seg.release()
		}
		return nil, l.errorf("open: %w", err)
	}
	if len(bases) == 0 { // only possible after damage; start empty at the checkpoint
		seg, err := createSegment(s.fs, l.dir, max(cpStart, 0))
		if err != nil {
			return fail(err)
		}
		segs = append(segs, seg)
	}
	for _, base := range bases {
		f, err := s.fs.OpenReadWrite(filepath.Join(l.dir, segmentName(base)+logSuffix))
		if err != nil {
			return fail(err)
		}
		seg := newSegment(l.dir, base, f)
		segs = append(segs, seg)
		size, err := f.Size()
		if err != nil {
			return fail(err)
		}
		seg.size.Store(size)
	}
	active := segs[len(segs)-1]
	interval := l.Config().IndexIntervalBytes
	var next int64
	if clean {
		next, err = openActiveClean(s.fs, active, interval)
		if err != nil {
			s.opts.Logger.Warn("storage: active segment index unusable after clean shutdown; recovering", "log", tp.String(), "err", err)
		}
	}
	if !clean || err != nil {
		next, err = recoverActive(s.fs, active, interval, s.opts.Logger.Warn, tp)
		if err != nil {
			return fail(err)
		}
	}
	start := segs[0].base
	if cpStart > start {
		start = min(cpStart, next)
	}
	if active.size.Load() > 0 {
		// segment.ms counts from when this process first saw the segment: a
		// batch's own timestamp may be arbitrarily old (a producer's clock).
		active.rollAt = s.opts.Now().UnixMilli()
	}
	l.installSegments(segs, start, next)
	return l, nil
}

// openActiveClean loads the active segment's index files, written at the
// clean shutdown, and walks the headers after the last offset index entry (at
// most about one index interval plus one batch) to find the log end.
func openActiveClean(fsys FS, seg *segment, interval int) (int64, error) {
	size := seg.size.Load()
	ob, err := ReadFile(fsys, seg.path+indexSuffix)
	if err != nil {
		return 0, err
	}
	tb, err := ReadFile(fsys, seg.path+timeIndexSuffix)
	if err != nil {
		return 0, err
	}
	if err := parseOffsetIndex(ob, size, &seg.offIdx); err != nil {
		return 0, err
	}
	if err := parseTimeIndex(tb, &seg.timeIdx); err != nil {
		return 0, err
	}
	if last, ok := seg.timeIdx.view().last(); ok {
		seg.maxTS, seg.maxTSRel = last.ts, last.rel
	}
	next := seg.base
	if size == 0 {
		seg.loaded.Store(true)
		return next, nil
	}
	var pos int64
	if last, ok := seg.offIdx.view().last(); ok {
		pos = int64(last.pos)
	}
	seg.bytesSinceIndex = size - pos // as indexLocked counts: from the last indexed batch's start
	end, err := scanSegment(seg.log, pos, size, false, func(_ int64, h BatchHeader, _ []byte) error {
		if h.MaxTimestamp > seg.maxTS {
			seg.maxTS, seg.maxTSRel = h.MaxTimestamp, uint32(h.BaseOffset-seg.base)
		}
		next = h.LastOffset() + 1
		return nil
	})
	if err != nil {
		return 0, err
	}
	if end != size {
		return 0, fmt.Errorf("%w: segment ends at %d, file is %d bytes", ErrCorruptBatch, end, size)
	}
	seg.loaded.Store(true)
	return next, nil
}

// recoverActive rebuilds the active segment's indexes by scanning all of it,
// truncates it at the first torn or corrupt batch and syncs it (the bytes may
// have been only in the page cache of a crashed process).
func recoverActive(fsys FS, seg *segment, interval int, warn func(string, ...any), tp TopicPartition) (int64, error) {
	size := seg.size.Load()
	seg.offIdx, seg.timeIdx = entries[offsetEntry]{}, entries[timeEntry]{}
	seg.bytesSinceIndex, seg.maxTS = 0, -1
	next := seg.base
	end, err := scanSegment(seg.log, 0, size, true, func(pos int64, h BatchHeader, _ []byte) error {
		if h.BaseOffset != next {
			return fmt.Errorf("%w: batch at %d has base offset %d, expected %d", ErrCorruptBatch, pos, h.BaseOffset, next)
		}
		if h.NumRecords <= 0 || h.LastOffsetDelta != h.NumRecords-1 {
			return fmt.Errorf("%w: batch at %d has bad record counts", ErrCorruptBatch, pos)
		}
		seg.indexLocked(pos, h, interval)
		next = h.LastOffset() + 1
		return nil
	})
	if err != nil && !errors.Is(err, ErrCorruptBatch) {
		return 0, err
	}
	if end < size {
		warn("storage: truncating torn or corrupt tail", "log", tp.String(), "segment", seg.path,
			"at", end, "dropped_bytes", size-end, "cause", err)
		if err := seg.log.Truncate(end); err != nil {
			return 0, err
		}
		seg.size.Store(end)
	}
	if err := seg.log.Sync(); err != nil {
		return 0, err
	}
	seg.loaded.Store(true)
	return next, nil
}
