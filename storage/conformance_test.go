package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"testing"
	"time"
)

// The conformance suite runs every test on both FS implementations.

type fsCase struct {
	name string
	new  func(t *testing.T) (FS, string)
}

var fsCases = []fsCase{
	{"os", func(t *testing.T) (FS, string) { return OSFS{}, t.TempDir() }},
	{"mem", func(t *testing.T) (FS, string) { return NewMemFS(), "/data" }},
}

func forEachFS(t *testing.T, fn func(t *testing.T, fsys FS, dir string)) {
	for _, c := range fsCases {
		t.Run(c.name, func(t *testing.T) {
			fsys, dir := c.new(t)
			fn(t, fsys, dir)
		})
	}
}

var tp0 = TopicPartition{Topic: "t", Partition: 0}

func openStore(t *testing.T, fsys FS, dir string, mut ...func(*Options)) *Store {
	t.Helper()
	opts := Options{Dir: dir, FS: fsys, RetentionCheckInterval: -1}
	for _, m := range mut {
		m(&opts)
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustAppend(t *testing.T, l *Log, b []byte) AppendResult {
	t.Helper()
	res, err := l.Append(context.Background(), b, AppendOptions{})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res
}

// readAll reads every batch from offset from to the high watermark.
func readAll(t *testing.T, l *Log, from int64) []BatchHeader {
	t.Helper()
	var out []BatchHeader
	off := from
	for off < l.HighWatermark() {
		res, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(res.Records) == 0 {
			t.Fatalf("Read(%d): empty below HWM %d", off, res.HighWatermark)
		}
		for b := res.Records; len(b) > 0; {
			h, err := ValidateBatch(b[:min(len(b), int(mustHeader(t, b).Size()))])
			if err != nil {
				t.Fatalf("Read(%d) returned a bad batch: %v", off, err)
			}
			out = append(out, h)
			b = b[h.Size():]
			off = h.LastOffset() + 1
		}
	}
	return out
}

func mustHeader(t *testing.T, b []byte) BatchHeader {
	t.Helper()
	h, err := ParseBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestAppendRead(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string) {
		s := openStore(t, fsys, dir)
		l, err := s.CreateLog(tp0, LogConfig{})
		if err != nil {
			t.Fatal(err)
		}
		var batches [][]byte
		for i := 0; i < 20; i++ {
			b := makeBatch(t, batchSpec{n: 1 + i%5, valueSize: 100, firstTS: 1000 + int64(i)})
			res := mustAppend(t, l, b)
			if want := l.LogEndOffset() - int64(1+i%5); res.BaseOffset != want {
				t.Fatalf("batch %d: base offset %d, want %d", i, res.BaseOffset, want)
			}
			batches = append(batches, bytes.Clone(b))
		}
		if l.HighWatermark() != l.LogEndOffset() || l.LogEndOffset() != 60 {
			t.Fatalf("HWM %d LEO %d, want 60", l.HighWatermark(), l.LogEndOffset())
		}
		// Every offset reads back starting with the batch containing it, byte-for-byte.
		off := int64(0)
		for i, b := range batches {
			h := mustHeader(t, b)
			for o := off; o <= h.LastOffset(); o++ {
				res, err := l.Read(o, 1)
				if err != nil {
					t.Fatalf("Read(%d): %v", o, err)
				}
				if !bytes.Equal(res.Records, b) {
					t.Fatalf("Read(%d): got %d bytes, want batch %d whole (KIP-74)", o, len(res.Records), i)
				}
			}
			off = h.LastOffset() + 1
		}
		// Reading at the end is empty; past it is out of range.
		if res, err := l.Read(60, 1<<20); err != nil || len(res.Records) != 0 {
			t.Fatalf("Read(LEO) = %d bytes, %v", len(res.Records), err)
		}
		for _, o := range []int64{-1, 61} {
			if _, err := l.Read(o, 100); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("Read(%d) err = %v, want ErrOffsetOutOfRange", o, err)
			}
		}
		// maxBytes stops before the batch that would exceed it.
		res, err := l.Read(0, len(batches[0])+len(batches[1])+10)
		if err != nil || !bytes.Equal(res.Records, append(bytes.Clone(batches[0]), batches[1]...)) {
			t.Fatalf("Read(0, two batches) = %d bytes, %v", len(res.Records), err)
		}
		if got := readAll(t, l, 0); len(got) != 20 {
			t.Fatalf("readAll: %d batches", len(got))
		}
	})
}

func TestAppendRejectsBadBatches(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string) {
		s := openStore(t, fsys, dir)
		l, _ := s.CreateLog(tp0, LogConfig{})
		mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 10}))
		good := makeBatch(t, batchSpec{n: 3, valueSize: 10})
		mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
		cases := []struct {
			name string
			b    []byte
			want error
		}{
			{"short", good[:40], ErrCorruptBatch},
			{"crc", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrCorruptBatch},
			{"length too big", mutate(func(b []byte) []byte { b[11]++; return b }), ErrCorruptBatch},
			{"two batches", append(bytes.Clone(good), good...), ErrCorruptBatch},
			{"magic", mutate(func(b []byte) []byte { b[16] = 1; return b }), ErrInvalidRecord},
			{"zero records", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[57:], 0); return fixCRC(b) }), ErrInvalidRecord},
			{"delta mismatch", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[23:], 5); return fixCRC(b) }), ErrInvalidRecord},
		}
		for _, c := range cases {
			_, err := l.Append(context.Background(), c.b, AppendOptions{})
			if !errors.Is(err, c.want) {
				t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			}
		}
		if l.LogEndOffset() != 2 || l.Size() != int64(len(makeBatch(t, batchSpec{n: 2, valueSize: 10}))) {
			t.Fatalf("a refused batch changed the log: LEO %d size %d", l.LogEndOffset(), l.Size())
		}
		// A refusal by Check leaves nothing behind either.
		errDup := errors.New("duplicate")
		_, err := l.Append(context.Background(), bytes.Clone(good), AppendOptions{Check: func(h BatchHeader, base int64) error {
			if base != 2 || h.NumRecords != 3 {
				t.Errorf("Check(%+v, %d)", h, base)
			}
			return errDup
		}})
		if err != errDup || l.LogEndOffset() != 2 {
			t.Fatalf("Check refusal: err %v LEO %d", err, l.LogEndOffset())
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := l.Append(ctx, bytes.Clone(good), AppendOptions{}); !errors.Is(err, context.Canceled) || l.LogEndOffset() != 2 {
			t.Fatalf("canceled ctx: err %v LEO %d", err, l.LogEndOffset())
		}
	})
}

func fixCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[batchCRCOff:], crc32.Checksum(b[batchAttrsOff:], castagnoli))
	return b
}

func TestLogAppendTime(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string) {
		s := openStore(t, fsys, dir)
		l, _ := s.CreateLog(tp0, LogConfig{})
		at := time.UnixMilli(1_700_000_000_000)
		b := makeBatch(t, batchSpec{n: 3, valueSize: 10, firstTS: 5})
		if _, err := l.Append(context.Background(), b, AppendOptions{LogAppendTime: at}); err != nil {
			t.Fatal(err)
		}
		res, err := l.Read(0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ValidateBatch(res.Records)
		if err != nil {
			t.Fatalf("stamped batch invalid: %v", err)
		}
		if h.TimestampType() != 1 || h.MaxTimestamp != at.UnixMilli() {
			t.Fatalf("header %+v not stamped", h)
		}
		if o, ts, err := l.OffsetForTimestamp(at.UnixMilli()); err != nil || o != 0 || ts != at.UnixMilli() {
			t.Fatalf("OffsetForTimestamp = %d %d %v", o, ts, err)
		}
	})
}

// TestSegmentsRollAndReopen writes many small batches across several
// segments, checks that every offset reads back (index lookups), and that the
// same holds after a clean reopen and after a crash-style reopen.
func TestSegmentsRollAndReopen(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string) {
		cfg := LogConfig{SegmentBytes: 16 << 10, IndexIntervalBytes: 512}
		s := openStore(t, fsys, dir)
		l, _ := s.CreateLog(tp0, cfg)
		var want [][]byte
		for i := 0; i < 300; i++ {
			b := makeBatch(t, batchSpec{n: 1 + i%3, valueSize: 20 + i%50, firstTS: int64(1000 + 10*i)})
			mustAppend(t, l, b)
			want = append(want, bytes.Clone(b))
		}
		if n := len(l.segments()); n < 4 {
			t.Fatalf("%d segments, want several", n)
		}
		for _, seg := range l.segments()[:len(l.segments())-1] {
			if seg.size.Load() > cfg.SegmentBytes {
				t.Fatalf("segment %d is %d bytes > %d", seg.base, seg.size.Load(), cfg.SegmentBytes)
			}
			if seg.offIdx.view().n == 0 {
				t.Fatalf("segment %d has no index entries", seg.base)
			}
		}
		check := func(l *Log) {
			t.Helper()
			for _, b := range want {
				h := mustHeader(t, b)
				for _, o := range []int64{h.BaseOffset, h.LastOffset()} {
					res, err := l.Read(o, 1)
					if err != nil || !bytes.Equal(res.Records, b) {
						t.Fatalf("Read(%d): %d bytes, %v; want the batch at %d", o, len(res.Records), err, h.BaseOffset)
					}
				}
			}
		}
		check(l)
		leo, size := l.LogEndOffset(), l.Size()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2 := openStore(t, fsys, dir)
		l2, ok := s2.Log(tp0)
		if !ok {
			t.Fatal("log not found after reopen")
		}
		l2.SetConfig(cfg)
		if l2.LogEndOffset() != leo || l2.HighWatermark() != leo || l2.Size() != size {
			t.Fatalf("after reopen LEO %d HWM %d size %d, want %d %d", l2.LogEndOffset(), l2.HighWatermark(), l2.Size(), leo, size)
		}
		check(l2)
		// Appends continue at the right offset and index correctly.
		b := makeBatch(t, batchSpec{n: 2, valueSize: 10})
		if res := mustAppend(t, l2, b); res.BaseOffset != leo {
			t.Fatalf("append after reopen at %d, want %d", res.BaseOffset, leo)
		}
		want = append(want, bytes.Clone(b))
		check(l2)
	})
}

func TestSegmentMsRoll(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string) {
		now := time.Unix(1_700_000_000, 0)
		s := openStore(t, fsys, dir, func(o *Options) { o.Now = func() time.Time { return now } })
		l, _ := s.CreateLog(tp0, LogConfig{SegmentMs: time.Hour})
		mustAppend(t, l, makeBatch(t, batchSpec{n: 1, valueSize: 10}))
		now = now.Add(59 * time.Minute)
		mustAppend(t, l, makeBatch(t, batchSpec{n: 1, valueSize: 10}))
		if n := len(l.segments()); n != 1 {
			t.Fatalf("%d segments before segment.ms, want 1", n)
		}
		now = now.Add(2 * time.Minute)
		res := mustAppend(t, l, makeBatch(t, batchSpec{n: 1, valueSize: 10}))
		segs := l.segments()
		if len(segs) != 2 || segs[1].base != res.BaseOffset {
			t.Fatalf("after segment.ms: %d segments, want a new one at %d", len(segs), res.BaseOffset)
		}
	})
}

func TestOffsetForTimestampAndMax(t *testing.T) {
	for _, codec := range []int8{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd} {
		t.Run(fmt.Sprintf("codec=%d", codec), func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys FS, dir string) {
				s := openStore(t, fsys, dir)
				l, _ := s.CreateLog(tp0, LogConfig{SegmentBytes: 4 << 10, IndexIntervalBytes: 256})
				if o, ts, err := l.MaxTimestamp(); o != -1 || ts != -1 || err != nil {
					t.Fatalf("empty MaxTimestamp = %d %d %v", o, ts, err)
				}
				// Batch i holds 4 records with timestamps 1000*i + {0, 30, 10, 20}:
				// not monotonic inside a batch, so record-level answers differ from batch-level ones.
				for i := int64(0); i < 60; i++ {
					mustAppend(t, l, makeBatch(t, batchSpec{n: 4, valueSize: 30, firstTS: 1000 * i, tsDeltas: []int64{0, 30, 10, 20}, codec: codec}))
				}
				if len(l.segments()) < 3 {
					t.Fatalf("want several segments")
				}
				cases := []struct{ ts, off, gotTS int64 }{
					{-5, 0, 0}, {0, 0, 0}, {1, 1, 30}, {25, 1, 30}, {30, 1, 30}, {31, 4, 1000},
					{7005, 29, 7030}, {7011, 29, 7030}, {59000, 236, 59000}, {59030, 237, 59030}, {59031, -1, -1},
				}
				for _, c := range cases {
					o, ts, err := l.OffsetForTimestamp(c.ts)
					if err != nil || o != c.off || ts != c.gotTS {
						t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d", c.ts, o, ts, err, c.off, c.gotTS)
					}
				}
				// Max: a later batch with a smaller max doesn't change it; ties keep the earliest.
				mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 30, firstTS: 100, codec: codec}))
				mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 30, firstTS: 59030, tsDeltas: []int64{0, 0}, codec: codec}))
				if o, ts, err := l.MaxTimestamp(); o != 237 || ts != 59030 || err != nil {
					t.Fatalf("MaxTimestamp = %d %d %v, want 237 59030", o, ts, err)
				}
				mustAppend(t, l, makeBatch(t, batchSpec{n: 3, valueSize: 30, firstTS: 70000, tsDeltas: []int64{0, 5, 1}, codec: codec}))
				if o, ts, err := l.MaxTimestamp(); o != 245 || ts != 70005 || err != nil {
					t.Fatalf("MaxTimestamp = %d %d %v, want 245 70005", o, ts, err)
				}
				// Below the log start offset nothing is found.
				if _, err := l.DeleteRecordsBefore(2); err != nil {
					t.Fatal(err)
				}
				if o, ts, err := l.OffsetForTimestamp(0); o != 2 || ts != 10 || err != nil {
					t.Fatalf("OffsetForTimestamp after DeleteRecords = %d %d %v, want 2 10", o, ts, err)
				}
			})
		})
	}
}

func TestRetention(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string) {
		s := openStore(t, fsys, dir)
		cfg := LogConfig{SegmentBytes: 2 << 10, RetentionMs: -1, RetentionBytes: -1}
		l, _ := s.CreateLog(tp0, cfg)
		for i := int64(0); i < 40; i++ {
			mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 200, firstTS: 1000 * i}))
		}
		segs := l.segments()
		if len(segs) < 6 {
			t.Fatalf("%d segments, want >= 6", len(segs))
		}
		now := time.UnixMilli(40_000)
		if n, err := l.EnforceRetention(now); n != 0 || err != nil {
			t.Fatalf("retention with no limits deleted %d (%v)", n, err)
		}
		// retention.bytes: delete the oldest closed segments while the rest is still >= the limit.
		limit := l.Size() - segs[0].size.Load() - segs[1].size.Load()
		cfg.RetentionBytes = limit
		l.SetConfig(cfg)
		if n, err := l.EnforceRetention(now); n != 2 || err != nil {
			t.Fatalf("retention.bytes deleted %d segments (%v), want 2", n, err)
		}
		if l.LogStartOffset() != segs[2].base || l.Size() != limit {
			t.Fatalf("log start %d size %d, want %d %d", l.LogStartOffset(), l.Size(), segs[2].base, limit)
		}
		if _, err := l.Read(segs[2].base-1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read of deleted offset: %v", err)
		}
		if _, err := fsys.Open(segs[0].path + logSuffix); !isNotExist(err) {
			t.Fatalf("deleted segment file still there: %v", err)
		}
		// retention.ms: segments whose newest timestamp is older than now - retention.ms.
		cfg.RetentionBytes, cfg.RetentionMs = -1, 20*time.Second
		l.SetConfig(cfg)
		n, err := l.EnforceRetention(now)
		if err != nil || n == 0 {
			t.Fatalf("retention.ms deleted %d (%v)", n, err)
		}
		for _, seg := range l.segments()[:len(l.segments())-1] {
			if ts, _ := seg.maxTimestamp(); now.UnixMilli()-ts > 20_000 {
				t.Fatalf("segment %d with max ts %d kept", seg.base, ts)
			}
		}
		// The active segment is never deleted, whatever the limits.
		cfg.RetentionBytes, cfg.RetentionMs = 1, time.Millisecond
		l.SetConfig(cfg)
		l.EnforceRetention(now.Add(time.Hour))
		if len(l.segments()) != 1 || l.LogStartOffset() != l.segments()[0].base {
			t.Fatalf("%d segments left, log start %d", len(l.segments()), l.LogStartOffset())
		}
		if got := readAll(t, l, l.LogStartOffset()); len(got) == 0 {
			t.Fatal("active segment unreadable after retention")
		}
		// The start survives a reopen.
		start := l.LogStartOffset()
		s.Close()
		l2, _ := openStore(t, fsys, dir).Log(tp0)
		if l2.LogStartOffset() != start {
			t.Fatalf("log start after reopen %d, want %d", l2.LogStartOffset(), start)
		}
	})
}

func TestDeleteRecordsBefore(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string) {
		s := openStore(t, fsys, dir)
		l, _ := s.CreateLog(tp0, LogConfig{SegmentBytes: 2 << 10})
		for i := 0; i < 30; i++ {
			mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 200}))
		}
		if _, err := l.DeleteRecordsBefore(61); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("beyond HWM: %v", err)
		}
		nsegs := len(l.segments())
		start, err := l.DeleteRecordsBefore(25)
		if err != nil || start != 25 || l.LogStartOffset() != 25 {
			t.Fatalf("DeleteRecordsBefore(25) = %d, %v", start, err)
		}
		if len(l.segments()) >= nsegs {
			t.Fatal("segments below the new start not deleted")
		}
		if _, err := l.Read(24, 100); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("Read(24) = %v", err)
		}
		if res, err := l.Read(25, 1); err != nil || len(res.Records) == 0 || res.LogStartOffset != 25 {
			t.Fatalf("Read(25) = %v", err)
		}
		if start, _ := l.DeleteRecordsBefore(10); start != 25 {
			t.Fatalf("moving backwards returned %d", start)
		}
		// Durable: survives a crash-style reopen too (no Close).
		if m, ok := fsys.(*MemFS); ok {
			m.Crash()
		} else {
			s.Close()
		}
		l2, _ := openStore(t, fsys, dir).Log(tp0)
		if l2.LogStartOffset() != 25 {
			t.Fatalf("log start after reopen = %d, want 25", l2.LogStartOffset())
		}
		if start, err := l2.DeleteRecordsBefore(-1); err != nil || start != 60 {
			t.Fatalf("DeleteRecordsBefore(-1) = %d %v, want 60", start, err)
		}
	})
}

func TestWaitAndModes(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys FS, dir string) {
				s := openStore(t, fsys, dir, func(o *Options) { o.Fsync = mode })
				l, _ := s.CreateLog(tp0, LogConfig{})
				w := l.Wait()
				select {
				case <-w:
					t.Fatal("Wait fired without an append")
				default:
				}
				mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 10}))
				<-w // closed by the HWM advance; a missing close hangs until the test timeout
				if l.HighWatermark() != 2 {
					t.Fatalf("HWM %d after acknowledged append", l.HighWatermark())
				}
				w = l.Wait()
				s.Close()
				<-w
				if _, err := l.Append(context.Background(), makeBatch(t, batchSpec{n: 1}), AppendOptions{}); !errors.Is(err, ErrClosed) {
					t.Fatalf("append after Close: %v", err)
				}
			})
		})
	}
}

// TestWaiterWatchesManyLogs: one Waiter is woken by an advance of any log it
// watches (the broker's fetch of many partitions), advances before the
// receive coalesce, Unwatch stops the wake-ups, and deleting a watched log
// wakes it.
func TestWaiterWatchesManyLogs(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncAlways, FsyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys FS, dir string) {
				s := openStore(t, fsys, dir, func(o *Options) { o.Fsync = mode })
				a, _ := s.CreateLog(TopicPartition{"a", 0}, LogConfig{})
				b, _ := s.CreateLog(TopicPartition{"b", 0}, LogConfig{})
				w := NewWaiter()
				a.Watch(w)
				b.Watch(w)
				signalled := func() bool {
					select {
					case <-w.C():
						return true
					default:
						return false
					}
				}
				if signalled() {
					t.Fatal("woken without an append")
				}
				mustAppend(t, b, makeBatch(t, batchSpec{n: 1, valueSize: 10})) // acknowledged: its advance has woken w
				mustAppend(t, a, makeBatch(t, batchSpec{n: 1, valueSize: 10}))
				if !signalled() {
					t.Fatal("not woken by the advances of the logs it watches")
				}
				if signalled() {
					t.Fatal("two advances before the receive left two wake-ups, want one")
				}
				b.Unwatch(w)
				b.Unwatch(w) // a second Unwatch does nothing
				mustAppend(t, b, makeBatch(t, batchSpec{n: 1, valueSize: 10}))
				if signalled() {
					t.Fatal("woken by a log it no longer watches")
				}
				if err := s.DeleteLog(a.TopicPartition()); err != nil {
					t.Fatal(err)
				}
				if !signalled() {
					t.Fatal("not woken by the deletion of a watched log")
				}
			})
		})
	}
}

func TestCreateDeleteLogs(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string) {
		s := openStore(t, fsys, dir)
		for _, tp := range []TopicPartition{{"b", 1}, {"a-b", 10}, {"a", 2}, {"b", 0}} {
			if _, err := s.CreateLog(tp, LogConfig{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.CreateLog(TopicPartition{"a", 2}, LogConfig{}); !errors.Is(err, ErrLogExists) {
			t.Fatalf("duplicate CreateLog: %v", err)
		}
		if _, err := s.CreateLog(TopicPartition{"../x", 0}, LogConfig{}); err == nil {
			t.Fatal("path topic accepted")
		}
		l, _ := s.Log(TopicPartition{"a-b", 10})
		mustAppend(t, l, makeBatch(t, batchSpec{n: 1, valueSize: 5}))
		var names []string
		for _, l := range s.Logs() {
			names = append(names, l.TopicPartition().String())
		}
		if fmt.Sprint(names) != "[a-2 a-b-10 b-0 b-1]" {
			t.Fatalf("Logs() = %v", names)
		}
		deleted, _ := s.Log(TopicPartition{"b", 0})
		mustAppend(t, deleted, makeBatch(t, batchSpec{n: 1, valueSize: 5}))
		if err := s.DeleteLog(TopicPartition{"b", 0}); err != nil {
			t.Fatal(err)
		}
		if _, err := deleted.Read(0, 100); !errors.Is(err, ErrClosed) {
			t.Fatalf("Read of a deleted log: %v", err)
		}
		if _, err := deleted.Append(context.Background(), makeBatch(t, batchSpec{n: 1}), AppendOptions{}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Append to a deleted log: %v", err)
		}
		if err := s.DeleteLog(TopicPartition{"b", 0}); !errors.Is(err, ErrLogNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if m, ok := fsys.(*MemFS); ok {
			m.Crash() // creates and deletes were durable when they returned
		} else {
			s.Close()
		}
		s2 := openStore(t, fsys, dir)
		names = nil
		for _, l := range s2.Logs() {
			names = append(names, l.TopicPartition().String())
		}
		if fmt.Sprint(names) != "[a-2 a-b-10 b-1]" {
			t.Fatalf("Logs() after reopen = %v", names)
		}
		l, _ = s2.Log(TopicPartition{"a-b", 10})
		if l.LogEndOffset() != 1 {
			t.Fatalf("LEO after reopen %d", l.LogEndOffset())
		}
	})
}

func TestScanBatches(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string) {
		s := openStore(t, fsys, dir)
		l, _ := s.CreateLog(tp0, LogConfig{SegmentBytes: 2 << 10, IndexIntervalBytes: 300})
		for i := 0; i < 40; i++ {
			mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 100, producerID: 7, seq: int32(2 * i)}))
		}
		var seqs []int32
		err := l.ScanBatches(51, func(h BatchHeader) error {
			seqs = append(seqs, h.BaseSequence)
			return nil
		})
		if err != nil || len(seqs) != 15 || seqs[0] != 50 || seqs[14] != 78 {
			t.Fatalf("ScanBatches(51) = %v, %v", seqs, err)
		}
		stop := errors.New("stop")
		if err := l.ScanBatches(0, func(BatchHeader) error { return stop }); err != stop {
			t.Fatalf("ScanBatches error = %v", err)
		}
	})
}

func TestOptions(t *testing.T) {
	if _, err := Open(Options{}); err == nil {
		t.Fatal("Open without Dir succeeded")
	}
	for _, s := range []string{"always", "interval", "never"} {
		m, err := ParseFsyncMode(s)
		if err != nil || m.String() != s {
			t.Fatalf("ParseFsyncMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseFsyncMode("sometimes"); err == nil {
		t.Fatal("bad fsync mode accepted")
	}
	d := DefaultLogConfig()
	if d.SegmentBytes != 1<<30 || d.IndexIntervalBytes != 4096 || d.RetentionBytes != -1 {
		t.Fatalf("defaults %+v", d)
	}
}

// TestConcurrentReadAppendRetention: readers walk the log while appenders
// add to it and retention deletes from its front; every read must be either
// ErrOffsetOutOfRange (deleted under it) or valid batches starting at the
// requested batch, never below the HWM it reports.
func TestConcurrentReadAppendRetention(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string) {
		s := openStore(t, fsys, dir)
		l, _ := s.CreateLog(tp0, LogConfig{SegmentBytes: 4 << 10, RetentionBytes: 16 << 10, RetentionMs: -1, IndexIntervalBytes: 512})
		done := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < 3; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 150; i++ {
					if _, err := l.Append(context.Background(), makeBatch(t, batchSpec{n: 1 + i%3, valueSize: 100 + g*10}), AppendOptions{}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		var readers sync.WaitGroup
		for r := 0; r < 2; r++ {
			readers.Add(1)
			go func() {
				defer readers.Done()
				off := int64(0)
				for {
					select {
					case <-done:
						return
					default:
					}
					res, err := l.Read(off, 2000)
					if errors.Is(err, ErrOffsetOutOfRange) {
						off = l.LogStartOffset()
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					for b := res.Records; len(b) > 0; {
						h, err := ParseBatchHeader(b)
						if err != nil || h.Size() > int64(len(b)) {
							t.Errorf("bad framing at %d", off)
							return
						}
						if _, err := ValidateBatch(b[:h.Size()]); err != nil || h.LastOffset() < off || h.BaseOffset > off || h.LastOffset() >= res.HighWatermark {
							t.Errorf("Read(%d) served batch %d..%d (HWM %d): %v", off, h.BaseOffset, h.LastOffset(), res.HighWatermark, err)
							return
						}
						off = h.LastOffset() + 1
						b = b[h.Size():]
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if _, err := l.EnforceRetention(time.Now()); err != nil {
					t.Error(err)
				}
				if i%10 == 0 {
					if _, err := l.DeleteRecordsBefore(l.HighWatermark() / 2); err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
						t.Error(err)
					}
				}
			}
		}()
		wg.Wait()
		close(done)
		readers.Wait()
		if _, err := l.EnforceRetention(time.Now()); err != nil {
			t.Fatal(err)
		}
		if l.Size() > 16<<10+4<<10 {
			t.Fatalf("size %d after retention.bytes 16 KiB", l.Size())
		}
		readAll(t, l, l.LogStartOffset())
	})
}
