package storage

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// EnforceRetention deletes closed segments, oldest first, while the oldest is
// entirely below the log start offset, older than retention.ms (its newest
// timestamp), or the log exceeds retention.bytes without it (Kafka semantics).
// The active segment is never deleted. The log start offset moves to the base
// of the first remaining segment.
func (l *Log) EnforceRetention(now time.Time) (deletedSegments int, err error) {
	l.retMu.Lock()
	defer l.retMu.Unlock()
	if l.isClosed() {
		return 0, nil
	}
	cfg := l.Config()
	segs := l.segments()
	start := l.start.Load()
	size := l.size.Load()
	retMs, retBytes := cfg.retention()
	n := 0
	for ; n < len(segs)-1; n++ {
		seg, next := segs[n], segs[n+1]
		if next.base <= start {
			size -= seg.size.Load()
			continue
		}
		if retBytes >= 0 && size-seg.size.Load() >= retBytes {
			size -= seg.size.Load()
			continue
		}
		if retMs >= 0 {
			if err := seg.loadIndexes(l.fs, cfg.IndexIntervalBytes); err != nil {
				return 0, err
			}
			if ts, _ := seg.maxTimestamp(); ts >= 0 && now.UnixMilli()-ts > retMs {
				size -= seg.size.Load()
				continue
			}
		}
		break
	}
	if n == 0 {
		return 0, nil
	}
	return n, l.deleteSegments(n)
}

func (l *Log) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.closed
}

// deleteSegments removes the n oldest segments (never the active one). The
// caller holds retMu. The list and log start change first, so new readers
// stop using them; readers already inside keep the files open until they
// release them.
func (l *Log) deleteSegments(n int) error {
	l.mu.Lock()
	segs := l.segments()
	n = min(n, len(segs)-1)
	dead := segs[:n]
	rest := append([]*segment(nil), segs[n:]...)
	l.segs.Store(&rest)
	l.mu.Unlock()
	for {
		cur := l.start.Load()
		if rest[0].base <= cur || l.start.CompareAndSwap(cur, rest[0].base) {
			break
		}
	}
	var firstErr error
	for _, seg := range dead {
		l.size.Add(-seg.size.Load())
		for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			if err := l.fs.Remove(seg.path + suffix); err != nil && !isNotExist(err) && firstErr == nil {
				firstErr = err
			}
		}
		seg.release()
	}
	if err := l.fs.SyncDir(l.dir); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr != nil {
		return l.errorf("delete segments: %w", firstErr)
	}
	return nil
}

// DeleteRecordsBefore advances the log start offset to offset (durably, via
// a checkpoint file) and deletes the segments entirely below it: Kafka's
// DeleteRecords. offset -1 means the high watermark; an offset beyond the
// high watermark is ErrOffsetOutOfRange. It returns the new log start offset.
func (l *Log) DeleteRecordsBefore(offset int64) (int64, error) {
	l.retMu.Lock()
	defer l.retMu.Unlock()
	if l.isClosed() {
		return 0, l.errorf("delete records: %w", ErrClosed)
	}
	hw := l.hwm.Load()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return 0, l.errorf("delete records before %d: %w (high watermark %d)", offset, ErrOffsetOutOfRange, hw)
	}
	start := l.start.Load()
	if offset <= start {
		return start, nil
	}
	if err := WriteFileAtomic(l.fs, filepath.Join(l.dir, logStartFile), []byte(strconv.FormatInt(offset, 10))); err != nil {
		return start, l.errorf("delete records: %w", err)
	}
	l.start.Store(offset)
	segs := l.segments()
	n := 0
	for n < len(segs)-1 && segs[n+1].base <= offset {
		n++
	}
	if n > 0 {
		if err := l.deleteSegments(n); err != nil {
			return offset, fmt.Errorf("%w (log start offset is %d)", err, offset)
		}
	}
	return offset, nil
}
