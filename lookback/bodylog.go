package lookback

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The body log of the Pebble store: the compressed blocks, appended to
// segment files in bodies/, named by segment number (16 hex digits,
// ".blk"). The active segment is the highest; a new one starts once the
// active one holds segmentTarget bytes. The index (in Pebble) says where
// each block is: segment, position, length.
//
// Frame layout (part of the on-disk format):
//
//	uint32 BE  stored length n
//	uint32 BE  CRC-32C (Castagnoli) of the next 8 + n bytes
//	uint64 BE  block number
//	n bytes    a zstd frame: the block (see block layout in pebble.go)
//
// The body log is the store's source of truth: an append fsyncs its
// frames before it commits the index batch naming them (with a synced
// WAL write), and returns after both. On open, the frames
// after the last one the index names are read back: those of new blocks
// (numbers from the next one on) are indexed again, any other (a block
// rewritten by an erasure that never committed) is ignored, and a torn
// frame ends the segment, which is cut there.
const (
	frameHeader   = 16
	segmentTarget = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bodyLog is the set of segment files. Appends are serialised by the
// store's write lock; reads run concurrently with them (ReadAt), and
// removing a segment takes mu exclusively so no read is in flight.
type bodyLog struct {
	dir string
	mu  sync.RWMutex
	// segs are the open segments by number; active is the one appended
	// to, end its committed length.
	segs   map[uint64]*os.File
	active uint64
	end    int64
}

func segName(n uint64) string { return fmt.Sprintf("%016x.blk", n) }

// openBodyLog opens the segments in dir. indexedEnd gives, per segment,
// the end of the last frame the index names (0 if none); from there on,
// every intact frame is handed to tail (in log order) and the segment is
// cut after the last intact one.
func openBodyLog(dir string, indexedEnd func(seg uint64) int64, tail func(id uint64, lc loc, data []byte) error) (*bodyLog, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lookback: body log: %w", err)
	}
	l := &bodyLog{dir: dir, segs: map[uint64]*os.File{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("lookback: body log: %w", err)
	}
	var nums []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".blk")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			continue
		}
		nums = append(nums, n)
	}
	slices.Sort(nums)
	if len(nums) == 0 {
		nums = []uint64{1}
	}
	// Only segments from the last one the index names can hold frames it
	// does not know (a segment is started only by an append).
	first := 0
	for i, n := range nums {
		if indexedEnd(n) > 0 {
			first = i
		}
	}
	for i, n := range nums {
		f, err := os.OpenFile(filepath.Join(dir, segName(n)), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			l.close()
			return nil, fmt.Errorf("lookback: body log: %w", err)
		}
		l.segs[n] = f
		l.active = n
		l.end = indexedEnd(n)
		if i < first {
			continue
		}
		if l.end, err = recoverTail(f, n, l.end, tail); err != nil {
			l.close()
			return nil, err
		}
	}
	return l, syncDir(dir)
}

// recoverTail reads the frames of segment n from end on, hands the intact
// ones to tail, and cuts the segment after the last one.
func recoverTail(f *os.File, n uint64, end int64, tail func(id uint64, lc loc, data []byte) error) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("lookback: body log: %w", err)
	}
	for end+frameHeader <= fi.Size() {
		var h [frameHeader]byte
		if _, err := f.ReadAt(h[:], end); err != nil {
			return 0, fmt.Errorf("lookback: body log recovery: %w", err)
		}
		size := int64(binary.BigEndian.Uint32(h[:]))
		if end+frameHeader+size > fi.Size() {
			break // torn
		}
		body := make([]byte, 8+size)
		if _, err := f.ReadAt(body, end+8); err != nil {
			return 0, fmt.Errorf("lookback: body log recovery: %w", err)
		}
		if binary.BigEndian.Uint32(h[4:]) != crc32.Checksum(body, castagnoli) {
			break // torn or never completed
		}
		lc := loc{seg: n, off: end, n: int(size)}
		if err := tail(binary.BigEndian.Uint64(body), lc, body[8:]); err != nil {
			return 0, err
		}
		end += frameHeader + size
	}
	if fi.Size() != end {
		if err := f.Truncate(end); err != nil {
			return 0, fmt.Errorf("lookback: body log: truncate %s: %w", segName(n), err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("lookback: body log: %w", err)
		}
	}
	return end, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("lookback: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("lookback: sync %s: %w", dir, err)
	}
	return nil
}

func (l *bodyLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for n, f := range l.segs {
		errs = append(errs, f.Close())
		delete(l.segs, n)
	}
	return errors.Join(errs...)
}

// loc is where a block is in the body log.
type loc struct {
	seg uint64
	off int64
	n   int // stored length
}

// append writes blocks (compressed, numbered ids) at the end of the
// active segment, starting a new segment first if the active one is full,
// and fsyncs. It returns their locations; on error nothing is appended
// (the segment is cut back).
func (l *bodyLog) append(blocks [][]byte, ids []uint64) ([]loc, error) {
	if l.end >= segmentTarget {
		if err := l.roll(); err != nil {
			return nil, err
		}
	}
	size := 0
	for _, b := range blocks {
		size += frameHeader + len(b)
	}
	buf := make([]byte, 0, size)
	locs := make([]loc, len(blocks))
	for i, b := range blocks {
		locs[i] = loc{seg: l.active, off: l.end + int64(len(buf)), n: len(b)}
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(b)))
		var id [8]byte
		binary.BigEndian.PutUint64(id[:], ids[i])
		buf = binary.BigEndian.AppendUint32(buf, crc32.Update(crc32.Checksum(id[:], castagnoli), castagnoli, b))
		buf = append(buf, id[:]...)
		buf = append(buf, b...)
	}
	l.mu.RLock()
	f := l.segs[l.active]
	l.mu.RUnlock()
	_, err := f.WriteAt(buf, l.end)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		// Best effort: what the index does not name is cut on open anyway.
		f.Truncate(l.end)
		return nil, fmt.Errorf("lookback: body log write: %w", err)
	}
	l.end += int64(len(buf))
	return locs, nil
}

func (l *bodyLog) roll() error {
	n := l.active + 1
	f, err := os.OpenFile(filepath.Join(l.dir, segName(n)), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("lookback: body log: new segment: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	l.mu.Lock()
	l.segs[n] = f
	l.mu.Unlock()
	l.active, l.end = n, 0
	return nil
}

var errFrame = errors.New("lookback: corrupt block frame")

// read returns the stored (compressed) bytes of the block at lc, checked
// against its CRC.
func (l *bodyLog) read(lc loc) ([]byte, error) {
	buf := make([]byte, frameHeader+lc.n)
	l.mu.RLock()
	f := l.segs[lc.seg]
	var err error
	if f == nil {
		err = fmt.Errorf("lookback: segment %s is gone", segName(lc.seg))
	} else {
		_, err = f.ReadAt(buf, lc.off)
	}
	l.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("lookback: body log read: %w", err)
	}
	if int(binary.BigEndian.Uint32(buf)) != lc.n || binary.BigEndian.Uint32(buf[4:]) != crc32.Checksum(buf[8:], castagnoli) {
		return nil, fmt.Errorf("%w at %s:%d", errFrame, segName(lc.seg), lc.off)
	}
	return buf[frameHeader:], nil
}

// wipe overwrites the frame at lc with zeros and fsyncs: after an
// erasure rewrote its block elsewhere, no copy of the erased payload
// stays in the segment.
func (l *bodyLog) wipe(lc loc) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	f := l.segs[lc.seg]
	if f == nil {
		return nil
	}
	if _, err := f.WriteAt(make([]byte, frameHeader+lc.n), lc.off); err != nil {
		return fmt.Errorf("lookback: body log wipe: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("lookback: body log wipe: %w", err)
	}
	return nil
}

// remove deletes segment n (not the active one): retention dropped
// every block in it.
func (l *bodyLog) remove(n uint64) error {
	if n == l.active {
		return nil
	}
	l.mu.Lock()
	f := l.segs[n]
	delete(l.segs, n)
	l.mu.Unlock()
	if f == nil {
		return nil
	}
	f.Close()
	if err := os.Remove(filepath.Join(l.dir, segName(n))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("lookback: body log: %w", err)
	}
	return syncDir(l.dir)
}
