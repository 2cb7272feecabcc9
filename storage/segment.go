package storage

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// File name suffixes of a segment (format).
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
)

// segmentName is the file name stem of the segment starting at base (format:
// the base offset as 20 zero-padded decimal digits, so names sort by offset).
func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

// segment is one .log file plus its indexes. Its bytes are immutable up to
// size; only the active segment grows, under its log's mu.
type segment struct {
	base int64
	path string // without suffix
	log  File

	size      atomic.Int64 // bytes written and visible to readers
	wbStarted atomic.Int64 // writeback started for the bytes before this (trickleWriteback)
	refs      atomic.Int32 // 1 for the log's list + 1 per reader; files close at 0

	// Indexes. The active segment's are built as it is written; a closed
	// segment's are loaded from its files on first use.
	loadMu  sync.Mutex
	loaded  atomic.Bool
	offIdx  entries[offsetEntry]
	timeIdx entries[timeEntry]

	// Writer state, guarded by the log's mu while the segment is active.
	bytesSinceIndex int64
	maxTS           int64  // largest batch max timestamp, -1 if none
	maxTSRel        uint32 // relative base offset of the first batch with maxTS
	rollAt          int64  // Unix ms of the first append (or of opening): segment.ms counts from here; -1 if empty
}

func newSegment(dir string, base int64, f File) *segment {
	s := &segment{base: base, path: filepath.Join(dir, segmentName(base)), log: f, maxTS: -1, rollAt: -1}
	s.refs.Store(1)
	return s
}

// acquire takes a reader reference; false if the segment was deleted.
func (s *segment) acquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		_ = s.log.Close()
	}
}

// appendLocked writes batch b (header h, offsets assigned) at the end of the
// active segment and indexes it. On a write error the caller truncates.
func (s *segment) appendLocked(b []byte, h BatchHeader, indexInterval int) error {
	pos := s.size.Load()
	if _, err := s.log.WriteAt(b, pos); err != nil {
		return err
	}
	s.indexLocked(pos, h, indexInterval)
	s.size.Store(pos + int64(len(b)))
	return nil
}

// indexLocked updates the writer state and the sparse indexes for the batch
// at pos: an index entry when at least indexInterval bytes were written since
// the last one (Kafka's rule), so lookups scan at most about that many bytes.
func (s *segment) indexLocked(pos int64, h BatchHeader, indexInterval int) {
	rel := uint32(h.BaseOffset - s.base)
	if h.MaxTimestamp > s.maxTS {
		s.maxTS, s.maxTSRel = h.MaxTimestamp, rel
	}
	if s.bytesSinceIndex >= int64(indexInterval) {
		s.offIdx.add(offsetEntry{rel: rel, pos: uint32(pos)})
		s.addTimeEntryLocked()
		s.bytesSinceIndex = 0
	}
	s.bytesSinceIndex += h.Size()
}

func (s *segment) addTimeEntryLocked() {
	if s.maxTS < 0 {
		return
	}
	if last, ok := s.timeIdx.view().last(); ok && last.ts >= s.maxTS {
		return
	}
	s.timeIdx.add(timeEntry{ts: s.maxTS, rel: s.maxTSRel})
}

// flushIndexesLocked writes and syncs both index files, ending the time index
// with the segment's max timestamp, and syncs the .log: done when the segment
// is closed (roll, clean shutdown) so that it never needs recovery.
func (s *segment) flushIndexesLocked(fsys FS) error {
	s.addTimeEntryLocked()
	if err := writeFileSynced(fsys, s.path+indexSuffix, encodeOffsetIndex(s.offIdx.view())); err != nil {
		return err
	}
	if err := writeFileSynced(fsys, s.path+timeIndexSuffix, encodeTimeIndex(s.timeIdx.view())); err != nil {
		return err
	}
	return s.log.Sync()
}

func writeFileSynced(fsys FS, path string, data []byte) error {
	f, err := fsys.Create(path)
	if err != nil {
		return err
	}
	if len(data) > 0 {
		_, err = f.WriteAt(data, 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// loadIndexes loads a closed segment's index files, rebuilding them from the
// segment's batches if they are missing or inconsistent.
func (s *segment) loadIndexes(fsys FS, indexInterval int) error {
	if s.loaded.Load() {
		return nil
	}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if s.loaded.Load() {
		return nil
	}
	size := s.size.Load()
	ob, err1 := ReadFile(fsys, s.path+indexSuffix)
	tb, err2 := ReadFile(fsys, s.path+timeIndexSuffix)
	if err := errors.Join(err1, err2); err == nil {
		err = errors.Join(parseOffsetIndex(ob, size, &s.offIdx), parseTimeIndex(tb, &s.timeIdx))
		if err == nil {
			if last, ok := s.timeIdx.view().last(); ok {
				s.maxTS, s.maxTSRel = last.ts, last.rel
			}
			s.loaded.Store(true)
			return nil
		}
	}
	// Rebuild: a crash between roll steps, or a damaged index file.
	s.offIdx, s.timeIdx = entries[offsetEntry]{}, entries[timeEntry]{}
	s.bytesSinceIndex, s.maxTS = 0, -1
	_, err := scanSegment(s.log, 0, size, false, func(pos int64, h BatchHeader, _ []byte) error {
		s.indexLocked(pos, h, indexInterval)
		return nil
	})
	s.addTimeEntryLocked()
	s.loaded.Store(true)
	if err != nil {
		return fmt.Errorf("storage: segment %s: rebuilding index: %w", s.path, err)
	}
	return nil
}

// maxTimestamp returns the segment's largest batch max timestamp and the
// base offset of the first batch reaching it ((-1, -1) if unknown).
// The caller holds the log's mu if the segment is active.
func (s *segment) maxTimestamp() (ts, batchBase int64) {
	if s.maxTS < 0 {
		return -1, -1
	}
	return s.maxTS, s.base + int64(s.maxTSRel)
}

// findBatch returns the position and header of the batch containing offset,
// scanning headers from the sparse index entry at or before it. found is
// false if the segment has no batch containing offset below hw.
func (s *segment) findBatch(offset, hw, size int64) (pos int64, h BatchHeader, found bool, err error) {
	pos, rel := lookupEntry(s.offIdx.view(), uint32(offset-s.base))
	next := s.base + int64(rel)
	hdr := make([]byte, batchHeaderSize)
	for pos < size {
		if h, err = readHeaderAt(s.log, hdr, pos, size); err != nil {
			return pos, h, false, fmt.Errorf("storage: segment %s at %d: %w", s.path, pos, err)
		}
		// The base offset is outside the CRC: check that offsets follow on.
		if h.BaseOffset != next || h.LastOffsetDelta < 0 {
			return pos, h, false, fmt.Errorf("storage: segment %s at %d: %w: base offset %d, expected %d",
				s.path, pos, ErrCorruptBatch, h.BaseOffset, next)
		}
		next = h.LastOffset() + 1
		if h.BaseOffset >= hw {
			return pos, h, false, nil
		}
		if h.LastOffset() >= offset {
			return pos, h, true, nil
		}
		pos += h.Size()
	}
	return pos, h, false, nil
}

func readHeaderAt(f File, hdr []byte, pos, size int64) (BatchHeader, error) {
	if pos+batchHeaderSize > size {
		return BatchHeader{}, fmt.Errorf("%w: truncated batch header", ErrCorruptBatch)
	}
	if _, err := f.ReadAt(hdr, pos); err != nil {
		return BatchHeader{}, err
	}
	h, err := parseBatchHeader(hdr)
	if err != nil {
		return h, err
	}
	if h.Magic != batchMagic {
		return h, fmt.Errorf("%w: magic %d", ErrCorruptBatch, h.Magic)
	}
	if pos+h.Size() > size {
		return h, fmt.Errorf("%w: batch of %d bytes runs past the end of the segment", ErrCorruptBatch, h.Size())
	}
	return h, nil
}

// read returns whole batches from the one containing offset, up to maxBytes
// (the first batch always whole), none at or beyond hw. Each batch's CRC is
// verified and offsets must follow on: corrupt bytes are never returned.
func (s *segment) read(buf []byte, offset int64, maxBytes int, hw int64) ([]byte, error) {
	size := s.size.Load()
	pos, first, found, err := s.findBatch(offset, hw, size)
	if err != nil || !found {
		return nil, err
	}
	n := min(int64(max(maxBytes, 0)), size-pos)
	n = max(n, first.Size())
	if int64(cap(buf)) >= n {
		buf = buf[:n]
	} else {
		buf = make([]byte, n)
	}
	if _, err := s.log.ReadAt(buf, pos); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("storage: segment %s: read at %d: %w", s.path, pos, err)
	}
	off := 0
	next := first.BaseOffset
	for off+batchHeaderSize <= len(buf) {
		h, err := parseBatchHeader(buf[off:])
		if err != nil {
			return nil, fmt.Errorf("storage: segment %s at %d: %w", s.path, pos+int64(off), err)
		}
		if h.BaseOffset != next || h.Magic != batchMagic {
			return nil, fmt.Errorf("storage: segment %s at %d: %w: batch base offset %d, expected %d",
				s.path, pos+int64(off), ErrCorruptBatch, h.BaseOffset, next)
		}
		if h.BaseOffset >= hw || int64(off)+h.Size() > int64(len(buf)) {
			break
		}
		if err := checkCRC(buf[off:off+int(h.Size())], h); err != nil {
			return nil, fmt.Errorf("storage: segment %s at %d (offset %d): %w", s.path, pos+int64(off), h.BaseOffset, err)
		}
		next = h.LastOffset() + 1
		off += int(h.Size())
	}
	return buf[:off], nil
}

// scanSegment walks the batches of f in [pos, end), calling fn with each
// batch's position and header, and with its bytes if withData (CRC-checked).
// It returns the position after the last good batch and, if it stopped early
// at a torn or corrupt batch, an error wrapping ErrCorruptBatch.
func scanSegment(f File, pos, end int64, withData bool, fn func(pos int64, h BatchHeader, b []byte) error) (int64, error) {
	if !withData {
		hdr := make([]byte, batchHeaderSize)
		for pos < end {
			h, err := readHeaderAt(f, hdr, pos, end)
			if err != nil {
				return pos, err
			}
			if err := fn(pos, h, nil); err != nil {
				return pos, err
			}
			pos += h.Size()
		}
		return pos, nil
	}
	buf := make([]byte, min(end-pos, 1<<20))
	for pos < end {
		n := min(int64(len(buf)), end-pos)
		chunk := buf[:n]
		if _, err := f.ReadAt(chunk, pos); err != nil && !errors.Is(err, io.EOF) {
			return pos, err
		}
		off := int64(0)
		for off < n {
			if off+batchHeaderSize > n {
				if pos+off+batchHeaderSize > end {
					return pos + off, fmt.Errorf("%w: truncated batch header at %d", ErrCorruptBatch, pos+off)
				}
				break // refill
			}
			h, err := parseBatchHeader(chunk[off:])
			if err == nil && h.Magic != batchMagic {
				err = fmt.Errorf("%w: magic %d", ErrCorruptBatch, h.Magic)
			}
			if err != nil {
				return pos + off, fmt.Errorf("at %d: %w", pos+off, err)
			}
			if pos+off+h.Size() > end {
				return pos + off, fmt.Errorf("%w: torn batch at %d", ErrCorruptBatch, pos+off)
			}
			if off+h.Size() > n {
				if off == 0 { // a batch bigger than the buffer
					buf = make([]byte, h.Size())
				}
				break
			}
			b := chunk[off : off+h.Size()]
			if err := checkCRC(b, h); err != nil {
				return pos + off, fmt.Errorf("at %d: %w", pos+off, err)
			}
			if err := fn(pos+off, h, b); err != nil {
				return pos + off, err
			}
			off += h.Size()
		}
		pos += off
	}
	return pos, nil
}
