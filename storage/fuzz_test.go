package storage

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// Fuzz tests run their seed corpus as ordinary tests under `go test`; run
// them for real with e.g. `go test -fuzz FuzzValidateBatch ./storage/`.

func seedBatches(f *testing.F) [][]byte {
	var out [][]byte
	for _, codec := range []int8{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd} {
		b := makeBatch(f, batchSpec{n: 3, valueSize: 20, firstTS: 1000, codec: codec})
		out = append(out, b, b[:len(b)-1], b[:batchHeaderSize])
	}
	return out
}

// FuzzValidateBatch: validation and record decoding never panic, and an
// accepted batch is exactly what the contract says.
func FuzzValidateBatch(f *testing.F) {
	for _, b := range seedBatches(f) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, batchHeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ValidateBatch(b)
		if err != nil {
			return
		}
		if h.Size() != int64(len(b)) || h.Magic != 2 || h.NumRecords <= 0 || h.LastOffsetDelta != h.NumRecords-1 {
			t.Fatalf("accepted an invalid batch: %+v (len %d)", h, len(b))
		}
		if checkCRC(b, h) != nil {
			t.Fatal("accepted a batch with a bad CRC")
		}
		_ = forEachRecord(b, h, func(int64, int64) bool { return true }) // hostile content: errors are fine, panics are not
	})
}

// boundedFile fails the test on any read past the size it was given.
type boundedFile struct {
	File
	t    *testing.T
	size int64
}

func (f boundedFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > f.size {
		f.t.Fatalf("over-read: %d bytes at %d of a %d-byte file", len(p), off, f.size)
	}
	return f.File.ReadAt(p, off)
}

func fuzzSegmentFile(t *testing.T, data []byte) (*MemFS, File) {
	fsys := NewMemFS()
	if err := fsys.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Create("/d/" + segmentName(0) + logSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 {
		f.WriteAt(data, 0)
	}
	return fsys, boundedFile{f, t, int64(len(data))}
}

// FuzzSegmentRecovery: the segment reader and recovery accept arbitrary
// bytes without panicking or reading past the end, keep only a prefix of
// valid contiguous batches, and reads of the result serve only valid batches.
func FuzzSegmentRecovery(f *testing.F) {
	var seg []byte
	for i, b := range seedBatches(f) {
		if i%3 == 0 {
			b = bytes.Clone(b)
			setBaseOffset(b, int64(3*(i/3)))
			seg = append(seg, b...)
		}
	}
	f.Add(seg, false)
	f.Add(seg, true)
	f.Add(seg[:len(seg)-5], false)
	f.Add(append(bytes.Clone(seg), 0xff, 0xff), true)
	f.Fuzz(func(t *testing.T, data []byte, fixCRCs bool) {
		if fixCRCs { // get past the CRC to the offset, count and framing checks
			for pos := 0; pos+batchHeaderSize <= len(data); {
				h, _ := ParseBatchHeader(data[pos:])
				if h.Length < batchHeaderSize-batchLengthEnd || int64(pos)+h.Size() > int64(len(data)) {
					break
				}
				fixCRC(data[pos : pos+int(h.Size())])
				pos += int(h.Size())
			}
		}
		fsys, file := fuzzSegmentFile(t, data)
		_, _ = scanSegment(file, 0, int64(len(data)), false, func(int64, BatchHeader, []byte) error { return nil })
		s := newSegment("/d", 0, file)
		s.size.Store(int64(len(data)))
		next, err := recoverActive(fsys, s, 64, func(string, ...any) {}, tp0)
		if err != nil {
			t.Fatalf("recoverActive: %v", err)
		}
		size := s.size.Load()
		if size > int64(len(data)) {
			t.Fatalf("recovered size %d > %d", size, len(data))
		}
		// Everything kept is served back as valid, contiguous batches.
		off := int64(0)
		for off < next {
			recs, err := s.read(nil, off, 1<<20, next)
			if err != nil || len(recs) == 0 {
				t.Fatalf("read(%d) after recovery: %d bytes, %v", off, len(recs), err)
			}
			for len(recs) > 0 {
				h, err := ParseBatchHeader(recs)
				if err != nil || h.Size() > int64(len(recs)) {
					t.Fatalf("bad framing served: %v", err)
				}
				if _, err := ValidateBatch(recs[:h.Size()]); err != nil || h.BaseOffset != off {
					t.Fatalf("invalid batch served at %d: %v", off, err)
				}
				off = h.LastOffset() + 1
				recs = recs[h.Size():]
			}
		}
	})
}

// FuzzIndexFiles: damaged index files never panic the loader; the segment
// falls back to rebuilding, and lookups stay within the segment.
func FuzzIndexFiles(f *testing.F) {
	var seg []byte
	next := int64(0)
	for i := 0; i < 20; i++ {
		b := makeBatch(f, batchSpec{n: 2, valueSize: 40, firstTS: int64(100 * i)})
		setBaseOffset(b, next)
		next += 2
		seg = append(seg, b...)
	}
	var idxSeed, tidxSeed []byte
	{
		s := newSegment("/d", 0, nil)
		for pos, i := int64(0), 0; pos < int64(len(seg)); i++ {
			h, _ := ParseBatchHeader(seg[pos:])
			s.indexLocked(pos, h, 200)
			pos += h.Size()
		}
		s.addTimeEntryLocked()
		idxSeed, tidxSeed = encodeOffsetIndex(s.offIdx.view()), encodeTimeIndex(s.timeIdx.view())
	}
	f.Add(idxSeed, tidxSeed)
	f.Add([]byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, idx, tidx []byte) {
		var oe entries[offsetEntry]
		if parseOffsetIndex(idx, int64(len(seg)), &oe) == nil {
			v := oe.view()
			if !bytes.Equal(encodeOffsetIndex(v), idx) {
				t.Fatal("offset index: parse-encode not stable")
			}
			for i := 0; i < v.n; i++ {
				if int64(v.at(i).pos) >= int64(len(seg)) {
					t.Fatalf("accepted entry beyond the segment")
				}
			}
		}
		var te entries[timeEntry]
		if parseTimeIndex(tidx, &te) == nil && !bytes.Equal(encodeTimeIndex(te.view()), tidx) {
			t.Fatal("time index: parse-encode not stable")
		}
		lookupTime(te.view(), 500)

		fsys, file := fuzzSegmentFile(t, seg)
		writeFileSynced(fsys, "/d/"+segmentName(0)+indexSuffix, idx)
		writeFileSynced(fsys, "/d/"+segmentName(0)+timeIndexSuffix, tidx)
		s := newSegment("/d", 0, file)
		s.size.Store(int64(len(seg)))
		_ = s.loadIndexes(fsys, 200)
		for o := int64(0); o < next; o += 3 {
			recs, err := s.read(nil, o, 100, next)
			if err != nil {
				continue // a consistent-looking but wrong index may point mid-batch: an error, never bad bytes
			}
			h, err := ValidateBatch(recs[:min(len(recs), int(binary.BigEndian.Uint32(recs[8:]))+12)])
			if err != nil || h.BaseOffset > o || h.LastOffset() < o {
				t.Fatalf("read(%d) served batch %d..%d: %v", o, h.BaseOffset, h.LastOffset(), err)
			}
		}
	})
}

// FuzzCommitLogRecords: the commit log reader never panics or reads past its
// input, and every record it accepts encodes back to exactly its bytes.
func FuzzCommitLogRecords(f *testing.F) {
	var seed []byte
	seed = appendCommitRecord(seed, TopicPartition{Topic: "t", Partition: 3}, 100, 4096, makeBatch(f, batchSpec{n: 2, valueSize: 20}))
	seed = appendCommitRecord(seed, TopicPartition{Topic: "orders", Partition: 0}, 0, 0, makeBatch(f, batchSpec{n: 1}))
	f.Add(seed)
	f.Add(append(seed[:len(seed)-3:len(seed)-3], make([]byte, 64)...)) // torn, then zeros
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, data []byte) {
		for off := 0; ; {
			rec, next, ok := parseCommitRecord(data, off, 0)
			if !ok {
				if next != off {
					t.Fatalf("a rejected record moved the offset from %d to %d", off, next)
				}
				return
			}
			if next <= off || next > len(data) {
				t.Fatalf("record at %d ends at %d of %d", off, next, len(data))
			}
			if got := appendCommitRecord(nil, rec.tp, rec.segBase, rec.pos, rec.batch); !bytes.Equal(got, data[off:next]) {
				t.Fatalf("record at %d does not encode back to its bytes", off)
			}
			off = next
		}
	})
}
