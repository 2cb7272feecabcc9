package storage

import (
	"errors"
)

// OffsetForTimestamp returns the first record (by offset) whose timestamp is >= ts, with that
// timestamp, like Kafka's ListOffsets; (-1, -1, nil) if there is none below the high watermark.
// The time index narrows the search to a few KiB; compressed batches are decompressed.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, err error) {
	if l.gone.Load() {
		return -1, -1, l.errorf("offset for timestamp: %w", ErrClosed)
	}
	hw, start := l.hwm.Load(), l.start.Load()
	segs := l.segments()
	interval := l.Config().IndexIntervalBytes
	for _, seg := range segs {
		if !seg.acquire() {
			continue
		}
		offset, timestamp, err = l.offsetForTimestampIn(seg, ts, hw, start, interval)
		seg.release()
		if err != nil || offset >= 0 {
			return offset, timestamp, err
		}
	}
	return -1, -1, nil
}

func (l *Log) offsetForTimestampIn(seg *segment, ts, hw, start int64, interval int) (int64, int64, error) {
	if err := seg.loadIndexes(l.fs, interval); err != nil {
		return -1, -1, err
	}
	if segMax, _ := l.segmentMax(seg); segMax < ts {
		return -1, -1, nil
	}
	rel := lookupTime(seg.timeIdx.view(), ts)
	pos := lookupOffset(seg.offIdx.view(), rel)
	found, foundTS := int64(-1), int64(-1)
	_, err := scanSegment(seg.log, pos, seg.size.Load(), true, func(_ int64, h BatchHeader, b []byte) error {
		if h.BaseOffset >= hw {
			return errStopScan
		}
		if h.MaxTimestamp < ts || h.LastOffset() < start {
			return nil
		}
		if err := forEachRecord(b, h, func(o, t int64) bool {
			if o >= start && t >= ts {
				found, foundTS = o, t
				return false
			}
			return true
		}); err != nil {
			return err
		}
		if found >= 0 {
			return errStopScan
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return -1, -1, l.errorf("offset for timestamp %d: %w", ts, err)
	}
	return found, foundTS, nil
}

// segmentMax returns the segment's max timestamp and the base of the batch
// holding it, reading the active segment's writer state under mu.
func (l *Log) segmentMax(seg *segment) (int64, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return seg.maxTimestamp()
}

// MaxTimestamp returns the record with the largest timestamp (KIP-734), the earliest one on ties;
// (-1, -1, nil) if the log has no readable records.
func (l *Log) MaxTimestamp() (offset, timestamp int64, err error) {
	if l.gone.Load() {
		return -1, -1, l.errorf("max timestamp: %w", ErrClosed)
	}
	hw, start := l.hwm.Load(), l.start.Load()
	interval := l.Config().IndexIntervalBytes
	var best *segment
	bestTS, bestBase := int64(-1), int64(-1)
	for _, seg := range l.segments() {
		if !seg.acquire() {
			continue
		}
		if err := seg.loadIndexes(l.fs, interval); err != nil {
			seg.release()
			return -1, -1, err
		}
		ts, base := l.segmentMax(seg)
		if base >= hw || base >= 0 && base < start {
			// The max is in a batch not yet readable, or deleted: scan.
			ts, base, err = maxByScan(seg, hw, start)
			if err != nil {
				seg.release()
				return -1, -1, l.errorf("max timestamp: %w", err)
			}
		}
		if ts > bestTS {
			if best != nil {
				best.release()
			}
			best, bestTS, bestBase = seg, ts, base
			continue
		}
		seg.release()
	}
	if best == nil {
		return -1, -1, nil
	}
	defer best.release()
	offset, timestamp = -1, -1
	pos := lookupOffset(best.offIdx.view(), uint32(bestBase-best.base))
	_, err = scanSegment(best.log, pos, best.size.Load(), true, func(_ int64, h BatchHeader, b []byte) error {
		if h.BaseOffset != bestBase {
			return nil
		}
		if err := forEachRecord(b, h, func(o, t int64) bool {
			if t == bestTS && o >= start {
				offset, timestamp = o, t
				return false
			}
			return true
		}); err != nil {
			return err
		}
		return errStopScan
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return -1, -1, l.errorf("max timestamp: %w", err)
	}
	return offset, timestamp, nil
}

// maxByScan finds the largest batch max timestamp among the readable batches
// of seg (those in [start, hw)).
func maxByScan(seg *segment, hw, start int64) (int64, int64, error) {
	ts, base := int64(-1), int64(-1)
	_, err := scanSegment(seg.log, 0, seg.size.Load(), false, func(_ int64, h BatchHeader, _ []byte) error {
		if h.BaseOffset >= hw {
			return errStopScan
		}
		if h.LastOffset() >= start && h.MaxTimestamp > ts {
			ts, base = h.MaxTimestamp, h.BaseOffset
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return -1, -1, err
	}
	return ts, base, nil
}
