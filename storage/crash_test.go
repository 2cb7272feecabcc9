package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCrashDuringConcurrentAppends crashes the MemFS at a random operation
// while 8 appenders write to 4 partitions with FsyncAlways (and small
// segments, so crashes also land inside rolls), keeping a random part of the
// unsynced bytes as a torn tail. After recovery every acknowledged batch must
// be present and intact at its offset, and everything served must be a whole,
// valid batch that some appender sent, at contiguous offsets.
func TestCrashDuringConcurrentAppends(t *testing.T) {
	iterations := 20
	if testing.Short() {
		iterations = 4
	}
	for _, path := range []struct {
		name      string
		opt       func(*Options)
		bothPaths bool // some of the iterations' appends took each path
	}{
		// Small commit log files: crashes also land in rotations and checkpoints.
		{"commitlog", func(o *Options) { commitLogPath(o); o.CommitLogFileBytes = 64 << 10 }, false},
		// Up to 8 rounds in flight (default 2): crashes land between a later
		// round's fsync and an earlier one's.
		{"commitlog-8rounds", func(o *Options) {
			commitLogPath(o)
			o.CommitLogFileBytes, o.CommitLogRoundsInFlight = 64<<10, 8
		}, false},
		{"segment", segmentPath, false},
		// Both paths in one log: batches over 1,000 bytes take the segment's fsync.
		{"mixed", func(o *Options) { commitLogPath(o); o.CommitLogFileBytes, o.CommitLogMaxBatch = 64<<10, 1000 }, true},
		// Both paths by who appends (the default rule, with a share window
		// of 1 ns): an append right after one of another log takes the
		// commit log, the next of the same log its own segment's fsync, so
		// each log switches paths all the time.
		{"switching", func(o *Options) { o.CommitLogFileBytes, o.CommitLogShareWindow = 64<<10, time.Nanosecond }, true},
	} {
		var segment, commitLog int64 // appends by path, over the iterations
		for iter := 0; iter < iterations; iter++ {
			t.Run(fmt.Sprint(path.name, "/seed=", iter), func(t *testing.T) {
				st := crashIteration(t, uint64(iter), path.opt)
				segment, commitLog = segment+st.SegmentAppends, commitLog+st.CommitLog.Appends
			})
		}
		if path.bothPaths && (segment == 0 || commitLog == 0) {
			t.Errorf("%s: %d appends took the segment path and %d the commit log: want both paths", path.name, segment, commitLog)
		}
	}
}

type ack struct {
	tp   TopicPartition
	base int64
	data []byte // batch bytes after the base offset
}

// crashIteration runs one crash and recovery; it returns the stats of the
// store that crashed.
func crashIteration(t *testing.T, seed uint64, opt func(*Options)) Stats {
	rng := rand.New(rand.NewPCG(seed, 42))
	fsys := NewMemFS()
	opts := Options{Dir: "/data", FS: fsys, RetentionCheckInterval: -1}
	opt(&opts)
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	var tps []TopicPartition
	for p := int32(0); p < 4; p++ {
		tp := TopicPartition{Topic: "crash", Partition: p}
		if _, err := s.CreateLog(tp, LogConfig{SegmentBytes: 4 << 10, IndexIntervalBytes: 512}); err != nil {
			t.Fatal(err)
		}
		tps = append(tps, tp)
	}
	fsys.ScheduleCrash(rng.Int64N(1500), CrashOptions{Rand: rand.New(rand.NewPCG(seed, 7))})

	var (
		mu   sync.Mutex
		acks []ack
		sent = map[string]bool{} // every batch any appender tried, by content
		wg   sync.WaitGroup
	)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, _ := s.Log(tps[g%len(tps)])
			for i := 0; i < 300; i++ {
				b := makeBatch(t, batchSpec{n: 1 + i%4, valueSize: 50 + (g*31+i*17)%400, producerID: int64(g), seq: int32(i)})
				mu.Lock()
				sent[string(b[8:])] = true
				mu.Unlock()
				res, err := l.Append(context.Background(), b, AppendOptions{})
				if err != nil {
					if !errors.Is(err, ErrLogFailed) {
						t.Errorf("append failed with %v, want ErrLogFailed", err)
					}
					return
				}
				mu.Lock()
				acks = append(acks, ack{l.TopicPartition(), res.BaseOffset, bytes.Clone(b[8:])})
				mu.Unlock()
			}
		}()
	}
	// Readers tail every log while it is written: whatever they are served
	// must survive the crash (HWM = durable end), or offsets would be reused.
	served := make([][]ack, len(tps))
	stopReaders := make(chan struct{})
	var readers sync.WaitGroup
	for i, tp := range tps {
		readers.Add(1)
		go func() {
			defer readers.Done()
			l, _ := s.Log(tp)
			off := int64(0)
			for {
				select {
				case <-stopReaders:
					return
				case <-l.Wait():
				}
				for off < l.HighWatermark() {
					res, err := l.Read(off, 64<<10)
					if errors.Is(err, ErrCrashed) {
						return // the file system crashed under the read
					}
					if err != nil {
						t.Errorf("%s: Read(%d) failed with %v, which is not the crash", tp, off, err)
						return
					}
					for b := res.Records; len(b) > 0; {
						h := mustHeader(t, b)
						served[i] = append(served[i], ack{tp, h.BaseOffset, bytes.Clone(b[8:h.Size()])})
						off = h.LastOffset() + 1
						b = b[h.Size():]
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stopReaders)
	readers.Wait()
	crashed := fsys.Crashed()
	if crashed == nil { // the appenders finished first: crash now
		crashed = fsys.CrashClone(CrashOptions{Rand: rand.New(rand.NewPCG(seed, 8))})
	}
	st := s.Stats()
	t.Logf("%d acks, crashed during appends: %v; stats %+v", len(acks), fsys.Crashed() != nil, st)
	if opts.CommitLogMaxBatch >= 0 && opts.CommitLogShareWindow < 0 && len(acks) > 0 && st.CommitLog.Appends == 0 {
		t.Fatal("no append went through the commit log")
	}
	if opts.CommitLogMaxBatch > 0 {
		// Every acknowledged batch over the limit took the segment path (how
		// many there are before the crash depends on the interleaving).
		large := 0
		for _, a := range acks {
			if 8+len(a.data) > opts.CommitLogMaxBatch {
				large++
			}
		}
		if int64(large) > st.SegmentAppends {
			t.Fatalf("%d acknowledged batches over %d bytes, but %d appends took the segment path", large, opts.CommitLogMaxBatch, st.SegmentAppends)
		}
	}
	s.Close() // fails: its FS is dead; it must not matter

	opts.FS = crashed
	s2, err := Open(opts)
	if err != nil {
		t.Fatalf("recovery: %v", err)
	}
	defer s2.Close()
	stored := map[TopicPartition]map[int64][]byte{}
	for _, tp := range tps {
		l, ok := s2.Log(tp)
		if !ok {
			t.Fatalf("%s lost", tp) // CreateLog returned: it must survive
		}
		if l.HighWatermark() != l.LogEndOffset() {
			t.Fatalf("%s: HWM %d != LEO %d after recovery", tp, l.HighWatermark(), l.LogEndOffset())
		}
		stored[tp] = map[int64][]byte{}
		next := int64(0)
		for next < l.HighWatermark() {
			res, err := l.Read(next, 64<<10)
			if err != nil || len(res.Records) == 0 {
				t.Fatalf("%s: Read(%d) = %d bytes, %v", tp, next, len(res.Records), err)
			}
			for b := res.Records; len(b) > 0; {
				h := mustHeader(t, b)
				one := b[:h.Size()]
				if _, err := ValidateBatch(one); err != nil || h.BaseOffset != next {
					t.Fatalf("%s: served a bad batch at %d (base %d): %v", tp, next, h.BaseOffset, err)
				}
				if !sent[string(one[8:])] {
					t.Fatalf("%s: served a batch at %d that nobody sent", tp, next)
				}
				stored[tp][h.BaseOffset] = one[8:]
				next = h.LastOffset() + 1
				b = b[h.Size():]
			}
		}
	}
	for _, a := range acks {
		got, ok := stored[a.tp][a.base]
		if !ok || !bytes.Equal(got, a.data) {
			t.Fatalf("acknowledged batch %s@%d lost or changed after crash (%d acks)", a.tp, a.base, len(acks))
		}
	}
	for _, reads := range served {
		for _, a := range reads {
			if got, ok := stored[a.tp][a.base]; !ok || !bytes.Equal(got, a.data) {
				t.Fatalf("batch %s@%d was served before the crash but is lost or changed after it", a.tp, a.base)
			}
		}
	}
	// The recovered logs take appends at their end.
	for _, tp := range tps {
		l, _ := s2.Log(tp)
		leo := l.LogEndOffset()
		if res := mustAppend(t, l, makeBatch(t, batchSpec{n: 1, valueSize: 10})); res.BaseOffset != leo {
			t.Fatalf("%s: append after recovery at %d, want %d", tp, res.BaseOffset, leo)
		}
	}
	return st
}

// activeSegmentFile returns the path of the last .log file of a log dir.
func lastLogFile(t *testing.T, fsys FS, dir string) string {
	t.Helper()
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	last := ""
	for _, e := range ents {
		if strings.HasSuffix(e.Name, logSuffix) {
			last = filepath.Join(dir, e.Name)
		}
	}
	return last
}

func patchFile(t *testing.T, fsys FS, path string, fn func(f File, size int64)) {
	t.Helper()
	f, err := fsys.OpenReadWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	size, _ := f.Size()
	fn(f, size)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestRecoveryTruncatesTornTail: after an unclean stop, a torn batch at the
// end of the active segment, or a corrupt one in its middle, is cut off
// together with everything after it, and appends continue from there.
func TestRecoveryTruncatesTornTail(t *testing.T) {
	for _, mode := range []string{"torn", "garbage", "corrupt-middle"} {
		t.Run(mode, func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys FS, dir string) {
				s := openStore(t, fsys, dir)
				l, _ := s.CreateLog(tp0, LogConfig{IndexIntervalBytes: 200})
				var sizes []int64
				for i := 0; i < 10; i++ {
					mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 100}))
					sizes = append(sizes, l.Size())
				}
				s.Close()
				path := lastLogFile(t, fsys, filepath.Join(dir, "t-0"))
				wantLEO := int64(20)
				patchFile(t, fsys, path, func(f File, size int64) {
					switch mode {
					case "torn":
						b := makeBatch(t, batchSpec{n: 3, valueSize: 100})
						f.WriteAt(b[:len(b)-7], size)
					case "garbage":
						f.WriteAt(bytes.Repeat([]byte{0xff}, 100), size)
					case "corrupt-middle": // a flipped bit in batch 6: batches 6..9 go
						f.WriteAt([]byte{0x55}, sizes[5]+80)
						wantLEO = 12
					}
				})
				if err := fsys.Remove(filepath.Join(dir, cleanShutdownFile)); err != nil {
					t.Fatal(err)
				}
				s2 := openStore(t, fsys, dir)
				l2, _ := s2.Log(tp0)
				if l2.LogEndOffset() != wantLEO || l2.Size() != sizes[wantLEO/2-1] {
					t.Fatalf("after recovery LEO %d size %d, want %d %d", l2.LogEndOffset(), l2.Size(), wantLEO, sizes[wantLEO/2-1])
				}
				if got := readAll(t, l2, 0); len(got) != int(wantLEO/2) {
					t.Fatalf("%d batches readable, want %d", len(got), wantLEO/2)
				}
				if res := mustAppend(t, l2, makeBatch(t, batchSpec{n: 1, valueSize: 5})); res.BaseOffset != wantLEO {
					t.Fatalf("append after truncation at %d", res.BaseOffset)
				}
				readAll(t, l2, 0)
			})
		})
	}
}

// TestCorruptClosedSegmentNotServed damages a closed segment (a record byte,
// or a base offset, which the CRC does not cover): recovery does not scan
// closed segments, so reads must catch it.
func TestCorruptClosedSegmentNotServed(t *testing.T) {
	for _, where := range []int64{0, 100} { // offset into the 5th batch of segment 0
		t.Run(fmt.Sprint("at=", where), func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys FS, dir string) {
				s := openStore(t, fsys, dir)
				l, _ := s.CreateLog(tp0, LogConfig{SegmentBytes: 4 << 10, IndexIntervalBytes: 1000})
				var starts []int64
				for i := 0; i < 60; i++ {
					starts = append(starts, l.segments()[len(l.segments())-1].size.Load())
					mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 200}))
				}
				seg := l.segments()[0]
				if len(l.segments()) < 3 || seg.size.Load() < starts[5] {
					t.Fatal("want several segments of more than 5 batches")
				}
				victim := starts[4] + where
				s.Close()
				patchFile(t, fsys, seg.path+logSuffix, func(f File, size int64) {
					b := make([]byte, 1)
					f.ReadAt(b, victim)
					b[0] ^= 0x10
					f.WriteAt(b, victim)
				})
				s2 := openStore(t, fsys, dir)
				l2, _ := s2.Log(tp0)
				var bad []int64
				for o := int64(0); o < l2.HighWatermark(); o += 2 {
					res, err := l2.Read(o, 1)
					if errors.Is(err, ErrCorruptBatch) {
						bad = append(bad, o)
						continue
					}
					if err != nil {
						t.Fatalf("Read(%d): %v", o, err)
					}
					h, err := ValidateBatch(res.Records)
					if err != nil || h.BaseOffset != o {
						t.Fatalf("Read(%d) served a bad batch (base %d): %v", o, h.BaseOffset, err)
					}
				}
				// Batch 4 (offsets 8, 9) is damaged; with a damaged base offset, the
				// header walk cannot get past it either, up to the next index entry.
				if len(bad) == 0 || bad[0] != 8 || (where != 0 && len(bad) != 1) {
					t.Fatalf("reads reporting corruption: %v, want the damaged batch at 8", bad)
				}
				if res, err := l2.Read(0, 1<<20); err == nil {
					t.Fatalf("Read(0, 1 MiB) returned %d bytes across a corrupt batch", len(res.Records))
				}
			})
		})
	}
}

// TestCleanOpenReadsNoData: after a clean shutdown, Open reads no byte of a
// closed segment and only a bounded tail of the active one.
func TestCleanOpenReadsNoData(t *testing.T) {
	fsys := NewMemFS()
	s := openStore(t, fsys, "/data")
	l, _ := s.CreateLog(tp0, LogConfig{SegmentBytes: 8 << 10})
	for i := 0; i < 1500; i++ {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 1, valueSize: 100}))
	}
	leo := l.LogEndOffset()
	s.Close()
	var mu sync.Mutex
	reads := map[string]int{}
	fsys.SetInjector(func(op Op, path string) error {
		if op == OpRead || op == OpOpen {
			mu.Lock()
			reads[filepath.Ext(path)+"/"+op.String()]++
			mu.Unlock()
		}
		return nil
	})
	s2 := openStore(t, fsys, "/data")
	fsys.SetInjector(nil)
	l2, _ := s2.Log(tp0)
	if l2.LogEndOffset() != leo {
		t.Fatalf("LEO %d, want %d", l2.LogEndOffset(), leo)
	}
	// One .log open per segment, index files of the active segment only, and
	// at most one index interval of headers read.
	nsegs := len(l2.segments())
	if reads[".log/open"] != nsegs || reads[".index/open"] != 1 || reads[".timeindex/open"] != 1 || reads[".log/read"] > 4096/150+2 {
		t.Fatalf("clean open of %d segments did %v", nsegs, reads)
	}
}

// TestSyncFailure: a failed fsync fails the waiting appends, freezes the
// high watermark (nothing unsynced is ever served) and refuses later appends;
// after a crash and recovery the log continues from its durable end.
func TestSyncFailure(t *testing.T) {
	t.Run("commitlog", func(t *testing.T) { syncFailure(t, commitLogSuffix, commitLogPath) })
	t.Run("segment", func(t *testing.T) { syncFailure(t, logSuffix, segmentPath) })
}

func syncFailure(t *testing.T, suffix string, opts ...func(*Options)) {
	fsys := NewMemFS()
	s := openStore(t, fsys, "/data", opts...)
	l, _ := s.CreateLog(tp0, LogConfig{})
	mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 10}))
	errDisk := errors.New("disk on fire")
	fsys.SetInjector(func(op Op, path string) error {
		if op == OpSync && strings.HasSuffix(path, suffix) {
			return errDisk
		}
		return nil
	})
	_, err := l.Append(context.Background(), makeBatch(t, batchSpec{n: 3, valueSize: 10}), AppendOptions{})
	if !errors.Is(err, ErrLogFailed) || !errors.Is(err, errDisk) {
		t.Fatalf("append with failing fsync: %v", err)
	}
	if l.HighWatermark() != 2 {
		t.Fatalf("HWM %d after failed fsync, want 2", l.HighWatermark())
	}
	if res, err := l.Read(2, 1000); err != nil || len(res.Records) != 0 {
		t.Fatalf("unsynced batch served: %d bytes, %v", len(res.Records), err)
	}
	fsys.SetInjector(nil)
	if _, err := l.Append(context.Background(), makeBatch(t, batchSpec{n: 1}), AppendOptions{}); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append to failed log: %v", err)
	}
	fsys.Crash()
	l2, _ := openStore(t, fsys, "/data", opts...).Log(tp0)
	if l2.LogEndOffset() != 2 {
		t.Fatalf("LEO after crash %d, want 2", l2.LogEndOffset())
	}
	mustAppend(t, l2, makeBatch(t, batchSpec{n: 1}))
}

// TestWriteFailure: a failed write stores nothing and the log goes on.
func TestWriteFailure(t *testing.T) {
	fsys := NewMemFS()
	s := openStore(t, fsys, "/data")
	l, _ := s.CreateLog(tp0, LogConfig{})
	mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 10}))
	fsys.SetInjector(func(op Op, path string) error {
		if op == OpWrite {
			return errors.New("no space")
		}
		return nil
	})
	if _, err := l.Append(context.Background(), makeBatch(t, batchSpec{n: 3}), AppendOptions{}); err == nil {
		t.Fatal("append with failing write succeeded")
	}
	fsys.SetInjector(nil)
	if l.LogEndOffset() != 2 {
		t.Fatalf("LEO %d after failed write", l.LogEndOffset())
	}
	if res := mustAppend(t, l, makeBatch(t, batchSpec{n: 1})); res.BaseOffset != 2 {
		t.Fatalf("next append at %d, want 2", res.BaseOffset)
	}
	readAll(t, l, 0)
}
