package storage

import (
	"encoding/binary"
	"fmt"
	"sort"
	"sync/atomic"
)

// Index file formats (part of the on-disk format, big-endian):
//
//	.index      8 bytes per entry:  relOffset uint32 | position uint32
//	.timeindex 12 bytes per entry:  timestamp int64  | relOffset uint32
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

// offsetEntry maps the batch starting at base+rel to its byte position.
type offsetEntry struct{ rel, pos uint32 }

// timeEntry says: the largest timestamp in the segment up to here is ts, first
// reached by the batch starting at base+rel. Entries are strictly increasing in
// ts and non-decreasing in rel.
type timeEntry struct {
	ts  int64
	rel uint32
}

const entriesChunk = 1024

// entries is an append-only list with one writer and lock-free readers: it
// grows in fixed chunks that never move, and publishes its length after the
// entry is written, so a reader that loads n sees n complete entries.
type entries[T any] struct {
	n      atomic.Int64
	chunks atomic.Pointer[[]*[entriesChunk]T]
}

type entriesView[T any] struct {
	n      int
	chunks []*[entriesChunk]T
}

func (e *entries[T]) add(v T) {
	n := int(e.n.Load())
	var chunks []*[entriesChunk]T
	if p := e.chunks.Load(); p != nil {
		chunks = *p
	}
	if n/entriesChunk == len(chunks) {
		grown := make([]*[entriesChunk]T, len(chunks)+1)
		copy(grown, chunks)
		grown[len(chunks)] = new([entriesChunk]T)
		e.chunks.Store(&grown)
		chunks = grown
	}
	chunks[n/entriesChunk][n%entriesChunk] = v
	e.n.Store(int64(n + 1))
}

func (e *entries[T]) view() entriesView[T] {
	n := int(e.n.Load())
	v := entriesView[T]{n: n}
	if p := e.chunks.Load(); p != nil {
		v.chunks = *p
	}
	return v
}

func (v entriesView[T]) at(i int) T { return v.chunks[i/entriesChunk][i%entriesChunk] }

func (v entriesView[T]) last() (T, bool) {
	if v.n == 0 {
		var zero T
		return zero, false
	}
	return v.at(v.n - 1), true
}

// lookupOffset returns the position of the last indexed batch whose relative
// offset is <= rel (0 if none): where a scan for rel starts.
func lookupOffset(v entriesView[offsetEntry], rel uint32) int64 {
	pos, _ := lookupEntry(v, rel)
	return pos
}

// lookupEntry is lookupOffset that also returns the indexed batch's relative
// base offset, which the scan can check the first header against.
func lookupEntry(v entriesView[offsetEntry], rel uint32) (pos int64, baseRel uint32) {
	i := sort.Search(v.n, func(i int) bool { return v.at(i).rel > rel })
	if i == 0 {
		return 0, 0
	}
	e := v.at(i - 1)
	return int64(e.pos), e.rel
}

// lookupTime returns the relative offset of a batch at or before the first
// batch whose max timestamp is >= ts: every batch before it has timestamps < ts.
func lookupTime(v entriesView[timeEntry], ts int64) uint32 {
	i := sort.Search(v.n, func(i int) bool { return v.at(i).ts >= ts })
	if i == 0 {
		return 0
	}
	return v.at(i - 1).rel
}

func encodeOffsetIndex(v entriesView[offsetEntry]) []byte {
	b := make([]byte, v.n*offsetEntrySize)
	for i := 0; i < v.n; i++ {
		e := v.at(i)
		binary.BigEndian.PutUint32(b[i*offsetEntrySize:], e.rel)
		binary.BigEndian.PutUint32(b[i*offsetEntrySize+4:], e.pos)
	}
	return b
}

func encodeTimeIndex(v entriesView[timeEntry]) []byte {
	b := make([]byte, v.n*timeEntrySize)
	for i := 0; i < v.n; i++ {
		e := v.at(i)
		binary.BigEndian.PutUint64(b[i*timeEntrySize:], uint64(e.ts))
		binary.BigEndian.PutUint32(b[i*timeEntrySize+8:], e.rel)
	}
	return b
}

// parseOffsetIndex decodes an .index file of a segment of segSize bytes.
// Any inconsistency is an error: the caller rebuilds the index from the segment.
func parseOffsetIndex(b []byte, segSize int64, dst *entries[offsetEntry]) error {
	if len(b)%offsetEntrySize != 0 {
		return fmt.Errorf("offset index: %d bytes is not a whole number of entries", len(b))
	}
	var prev offsetEntry
	for i := 0; i < len(b); i += offsetEntrySize {
		e := offsetEntry{rel: binary.BigEndian.Uint32(b[i:]), pos: binary.BigEndian.Uint32(b[i+4:])}
		if int64(e.pos)+batchHeaderSize > segSize {
			return fmt.Errorf("offset index: entry %d: position %d beyond segment size %d", i/offsetEntrySize, e.pos, segSize)
		}
		if i > 0 && (e.rel <= prev.rel || e.pos <= prev.pos) {
			return fmt.Errorf("offset index: entry %d: not increasing", i/offsetEntrySize)
		}
		dst.add(e)
		prev = e
	}
	return nil
}

// parseTimeIndex decodes a .timeindex file.
func parseTimeIndex(b []byte, dst *entries[timeEntry]) error {
	if len(b)%timeEntrySize != 0 {
		return fmt.Errorf("time index: %d bytes is not a whole number of entries", len(b))
	}
	var prev timeEntry
	for i := 0; i < len(b); i += timeEntrySize {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(b[i:])), rel: binary.BigEndian.Uint32(b[i+8:])}
		if i > 0 && (e.ts <= prev.ts || e.rel < prev.rel) {
			return fmt.Errorf("time index: entry %d: not increasing", i/timeEntrySize)
		}
		dst.add(e)
		prev = e
	}
	return nil
}
