package storage

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// durableLEO is the log end offset tp would have after a crash now.
func durableLEO(t *testing.T, fsys *MemFS) int64 {
	t.Helper()
	clone := fsys.CrashClone(CrashOptions{})
	s, err := Open(Options{Dir: "/data", FS: clone, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, ok := s.Log(tp0)
	if !ok {
		t.Fatal("log lost in crash")
	}
	return l.LogEndOffset()
}

// TestFsyncModesDurability checks exactly what each mode promises.
func TestFsyncModesDurability(t *testing.T) {
	t.Run("always", func(t *testing.T) {
		fsys := NewMemFS()
		s := openStore(t, fsys, "/data")
		l, _ := s.CreateLog(tp0, LogConfig{})
		for i := 0; i < 5; i++ {
			mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 10}))
			if got := durableLEO(t, fsys); got != l.LogEndOffset() {
				t.Fatalf("acknowledged end %d, durable end %d", l.LogEndOffset(), got)
			}
		}
	})
	t.Run("interval", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fsys := NewMemFS()
			s := openStore(t, fsys, "/data", func(o *Options) {
				o.Fsync, o.FsyncInterval = FsyncInterval, 50*time.Millisecond
			})
			l, _ := s.CreateLog(tp0, LogConfig{})
			mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 10}))
			if l.HighWatermark() != 2 {
				t.Fatalf("HWM %d: interval mode shows writes at once", l.HighWatermark())
			}
			if got := durableLEO(t, fsys); got != 0 {
				t.Fatalf("durable end %d before the interval", got)
			}
			time.Sleep(60 * time.Millisecond)
			synctest.Wait()
			if got := durableLEO(t, fsys); got != 2 {
				t.Fatalf("durable end %d after the interval, want 2", got)
			}
			s.Close()
		})
	})
	t.Run("never", func(t *testing.T) {
		fsys := NewMemFS()
		s := openStore(t, fsys, "/data", func(o *Options) { o.Fsync = FsyncNever })
		l, _ := s.CreateLog(tp0, LogConfig{SegmentBytes: 1024})
		mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 10}))
		if got := durableLEO(t, fsys); got != 0 {
			t.Fatalf("durable end %d without any sync", got)
		}
		// A roll syncs the closed segment, whatever the mode.
		for len(l.segments()) < 2 {
			mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 100}))
		}
		if got, want := durableLEO(t, fsys), l.segments()[1].base; got != want {
			t.Fatalf("durable end %d after a roll, want %d", got, want)
		}
		s.Close()
		if got := durableLEO(t, fsys); got != l.LogEndOffset() {
			t.Fatalf("durable end %d after Close, want %d", got, l.LogEndOffset())
		}
	})
}

// TestRetentionLoop: the store's background loop enforces retention.ms on
// its own (fake time in a synctest bubble).
func TestRetentionLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fsys := NewMemFS()
		s := openStore(t, fsys, "/data", func(o *Options) { o.RetentionCheckInterval = time.Minute })
		l, _ := s.CreateLog(tp0, LogConfig{SegmentBytes: 1024, RetentionMs: time.Hour})
		for i := 0; i < 20; i++ {
			mustAppend(t, l, makeBatch(t, batchSpec{n: 1, valueSize: 200, firstTS: time.Now().UnixMilli()}))
		}
		n := len(l.segments())
		time.Sleep(59 * time.Minute)
		synctest.Wait()
		if len(l.segments()) != n {
			t.Fatal("segments deleted before retention.ms")
		}
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if len(l.segments()) != 1 || l.LogStartOffset() != l.segments()[0].base {
			t.Fatalf("%d segments after retention.ms, log start %d", len(l.segments()), l.LogStartOffset())
		}
		s.Close()
	})
}

func TestReadInto(t *testing.T) {
	fsys := NewMemFS()
	s := openStore(t, fsys, "/data")
	l, _ := s.CreateLog(tp0, LogConfig{})
	b := makeBatch(t, batchSpec{n: 2, valueSize: 10})
	mustAppend(t, l, b)
	buf := make([]byte, 0, 4096)
	res, err := l.ReadInto(buf, 0, 4096)
	if err != nil || string(res.Records) != string(b) || &res.Records[0] != &buf[:1][0] {
		t.Fatalf("ReadInto did not read into the buffer: %v", err)
	}
	res, err = l.ReadInto(make([]byte, 0, 10), 0, 4096)
	if err != nil || string(res.Records) != string(b) {
		t.Fatalf("ReadInto with a small buffer: %v", err)
	}
}

// TestGroupCommitManyPartitions: more dirty logs in a round than fsync
// workers; every append is acknowledged only once durable.
func TestGroupCommitManyPartitions(t *testing.T) {
	fsys := NewMemFS()
	s := openStore(t, fsys, "/data")
	const parts = 40
	var wg sync.WaitGroup
	for p := int32(0); p < parts; p++ {
		l, err := s.CreateLog(TopicPartition{Topic: "many", Partition: p}, LogConfig{})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				if _, err := l.Append(context.Background(), makeBatch(t, batchSpec{n: 1, valueSize: 20}), AppendOptions{}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	clone := fsys.CrashClone(CrashOptions{})
	s2 := openStore(t, clone, "/data")
	for _, l := range s2.Logs() {
		if l.LogEndOffset() != 5 {
			t.Fatalf("%s: durable end %d, want 5", l.TopicPartition(), l.LogEndOffset())
		}
	}
	if len(s2.Logs()) != parts {
		t.Fatalf("%d logs after crash", len(s2.Logs()))
	}
}

// gatedFS holds the first fsync of a .log file (or, with clog set, the
// first fsync of a commit log round) until gate is closed; with failHeld set
// that fsync then fails with it instead.
type gatedFS struct {
	*MemFS
	gate     chan struct{}
	entered  chan struct{}
	first    atomic.Bool
	clog     bool
	failHeld error
	release  sync.Once
}

// open lets the held fsync go on (once; also safe from a cleanup after the
// test failed with the gate still closed).
func (g *gatedFS) open() { g.release.Do(func() { close(g.gate) }) }

type gatedFile struct {
	File
	fs *gatedFS
}

func (g *gatedFS) Create(name string) (File, error) {
	f, err := g.MemFS.Create(name)
	suffix := logSuffix
	if g.clog {
		suffix = commitLogSuffix
	}
	if err != nil || !strings.HasSuffix(name, suffix) {
		return f, err
	}
	return gatedFile{f, g}, nil
}

func (f gatedFile) Sync() error {
	if f.fs.clog {
		// A commit log file is synced once full of zeros before use: hold
		// only the syncs of rounds (a record at the start).
		var b [4]byte
		if _, err := f.ReadAt(b[:], 0); err != nil || b == [4]byte{} {
			return f.File.Sync()
		}
	}
	if f.fs.first.CompareAndSwap(false, true) { // sync.Once would hold the other files' syncs too
		close(f.fs.entered)
		<-f.fs.gate
		if f.fs.failHeld != nil {
			return f.fs.failHeld
		}
	}
	return f.File.Sync()
}

// segmentPath turns the commit log off: every FsyncAlways append is made
// durable by an fsync of its own partition's segment.
func segmentPath(o *Options) { o.CommitLogMaxBatch = -1 }

// commitLogPath sends every small FsyncAlways append to the commit log, also
// while a single log appends (by default such a log fsyncs its own segment).
func commitLogPath(o *Options) { o.CommitLogShareWindow = -1 }

// TestGroupCommitSharesFsyncs: while log 0's fsync is held, 10 more appends
// to log 0 write and queue up, and appends to 10 other partitions complete on
// their own (partitions don't wait for each other). When the fsync is
// released, one more fsync covers all 10 queued appends, and none of them was
// acknowledged before it.
func TestGroupCommitSharesFsyncs(t *testing.T) {
	g := &gatedFS{MemFS: NewMemFS(), gate: make(chan struct{}), entered: make(chan struct{})}
	s := openStore(t, g, "/data", segmentPath)
	var logs []*Log
	for p := int32(0); p < 11; p++ {
		l, err := s.CreateLog(TopicPartition{Topic: "gc", Partition: p}, LogConfig{})
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	acked := make(chan int, 32)
	appendTo := func(i int) {
		if _, err := logs[i].Append(context.Background(), makeBatch(t, batchSpec{n: 1, valueSize: 10}), AppendOptions{}); err != nil {
			t.Error(err)
		}
		acked <- i
	}
	go appendTo(0)
	<-g.entered // log 0's first fsync is in flight (and held)
	for i := 1; i < 11; i++ {
		go appendTo(0)
		go appendTo(i)
	}
	for range 10 {
		if i := <-acked; i == 0 {
			t.Fatal("an append to log 0 was acknowledged before its fsync finished")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for logs[0].LogEndOffset() != 11 { // all written, so all queued for the next fsync
		if time.Now().After(deadline) {
			t.Fatal("appends did not reach log 0")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-acked:
		t.Fatal("an append to log 0 was acknowledged before its fsync finished")
	default:
	}
	close(g.gate)
	for range 11 {
		if i := <-acked; i != 0 {
			t.Fatalf("unexpected ack from log %d", i)
		}
	}
	// log 0: 2 fsyncs for 11 appends; logs 1-10: one each.
	if st := s.Stats(); st.Fsyncs != 12 || st.SyncedAppends != 21 {
		t.Fatalf("stats %+v: want 12 fsyncs for 21 appends", st)
	}
	if logs[0].HighWatermark() != 11 {
		t.Fatalf("log 0 HWM %d, want 11", logs[0].HighWatermark())
	}
}

// TestOnFsync: the hook sees every fsync that acknowledges appends, with
// its error, on both paths.
func TestOnFsync(t *testing.T) {
	for _, path := range []struct {
		name, suffix string
		opt          func(*Options)
	}{{"commitlog", commitLogSuffix, commitLogPath}, {"segment", logSuffix, segmentPath}} {
		t.Run(path.name, func(t *testing.T) {
			var mu sync.Mutex
			var calls, failed int
			fsys := NewMemFS()
			s := openStore(t, fsys, "/data", path.opt, func(o *Options) {
				o.OnFsync = func(d time.Duration, err error) {
					mu.Lock()
					defer mu.Unlock()
					calls++
					if err != nil {
						failed++
					}
					if d < 0 {
						t.Errorf("negative fsync duration %v", d)
					}
				}
			})
			l, _ := s.CreateLog(tp0, LogConfig{})
			for range 3 {
				mustAppend(t, l, makeBatch(t, batchSpec{n: 1, valueSize: 10}))
			}
			mu.Lock()
			if st := s.Stats(); calls != 3 || int64(calls) != st.Fsyncs || failed != 0 {
				t.Fatalf("hook saw %d fsyncs (%d failed), stats %+v: want 3, none failed", calls, failed, st)
			}
			mu.Unlock()
			fsys.SetInjector(func(op Op, p string) error {
				if op == OpSync && strings.HasSuffix(p, path.suffix) {
					return errDiskFull
				}
				return nil
			})
			if _, err := l.Append(context.Background(), makeBatch(t, batchSpec{n: 1}), AppendOptions{}); err == nil {
				t.Fatal("append with a failing fsync succeeded")
			}
			mu.Lock()
			defer mu.Unlock()
			if calls != 4 || failed != 1 {
				t.Fatalf("after a failed fsync the hook saw %d calls, %d failed; want 4, 1", calls, failed)
			}
		})
	}
}

var errDiskFull = errors.New("disk full")

// TestCommitLogSharesFsyncs: with the commit log, one fsync acknowledges the
// small appends of every partition. With one round in flight at a time
// (CommitLogRoundsInFlight 1), while the first round's fsync is held,
// appends to 11 partitions write and queue; none is acknowledged before its
// round, and when the fsync is released exactly one more round covers all of
// them. The acknowledged batches survive a crash (replayed from the commit
// log, since no segment was fsynced).
func TestCommitLogSharesFsyncs(t *testing.T) {
	g := &gatedFS{MemFS: NewMemFS(), gate: make(chan struct{}), entered: make(chan struct{}), clog: true}
	s := openStore(t, g, "/data", commitLogPath, func(o *Options) { o.CommitLogRoundsInFlight = 1 })
	var logs []*Log
	for p := int32(0); p < 11; p++ {
		l, err := s.CreateLog(TopicPartition{Topic: "cl", Partition: p}, LogConfig{})
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	acked := make(chan int, 32)
	appendTo := func(i int) {
		if _, err := logs[i].Append(context.Background(), makeBatch(t, batchSpec{n: 1, valueSize: 10}), AppendOptions{}); err != nil {
			t.Error(err)
		}
		acked <- i
	}
	go appendTo(0)
	<-g.entered // the first round's fsync is in flight (and held)
	for i := 0; i < 11; i++ {
		go appendTo(i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var written int64
		for _, l := range logs {
			written += l.LogEndOffset()
		}
		// An append publishes its log end before it joins the commit log:
		// wait for both, or the last one may join only after the gate
		// opens, in a third round.
		if written == 12 && s.Stats().CommitLog.Appends == 12 {
			break // all written and queued for the next round
		}
		if time.Now().After(deadline) {
			t.Fatal("appends were not written and queued")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case i := <-acked:
		t.Fatalf("an append to log %d was acknowledged before its round's fsync", i)
	default:
	}
	for _, l := range logs {
		if l.HighWatermark() != 0 {
			t.Fatalf("%s: HWM %d before any fsync finished", l.TopicPartition(), l.HighWatermark())
		}
	}
	close(g.gate)
	for range 12 {
		<-acked
	}
	st := s.Stats()
	if st.CommitLog.Rounds != 2 || st.CommitLog.Appends != 12 || st.SegmentFsyncs != 0 {
		t.Fatalf("stats %+v: want 2 commit log fsyncs for 12 appends and no segment fsync", st)
	}
	crashed := g.CrashClone(CrashOptions{})
	s2 := openStore(t, crashed, "/data")
	for i := range logs {
		l, _ := s2.Log(TopicPartition{Topic: "cl", Partition: int32(i)})
		want := int64(1)
		if i == 0 {
			want = 2
		}
		if l.LogEndOffset() != want {
			t.Fatalf("after a crash %s ends at %d, want %d", l.TopicPartition(), l.LogEndOffset(), want)
		}
		readAll(t, l, 0)
	}
}

// TestCommitLogCheckpoint: full commit log files are checkpointed (their
// segments fsynced) and set aside for reuse or deleted, so the commit log
// stays small; a clean Close leaves no commit log file and the next Open
// reads no log data.
func TestCommitLogCheckpoint(t *testing.T) {
	fsys := NewMemFS()
	s := openStore(t, fsys, "/data", commitLogPath, func(o *Options) { o.CommitLogFileBytes = 64 << 10 })
	l, _ := s.CreateLog(tp0, LogConfig{})
	for l.Size() < 1<<20 {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 4, valueSize: 1000}))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ents, err := fsys.ReadDir("/data/" + commitLogDir)
		if err != nil {
			t.Fatal(err)
		}
		// The current file, the prepared next one, the free ones, at most
		// one being checkpointed.
		if len(ents) <= 3+maxFreeCommitFiles && s.Stats().CommitLog.CheckpointSyncs >= 10 && s.Stats().CommitLog.RecycledFiles > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d commit log files after 1 MiB in 64 KiB files; stats %+v", len(ents), s.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	// Everything acknowledged that was checkpointed is in the segment itself:
	// a crash of a copy without the commit log keeps it.
	clone := fsys.CrashClone(CrashOptions{})
	if err := removeCommitLog(clone, "/data/"+commitLogDir); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := fsys.ReadDir("/data/" + commitLogDir); len(ents) != 0 {
		t.Fatalf("%d commit log files after a clean Close", len(ents))
	}
	s2 := openStore(t, clone, "/data")
	l2, _ := s2.Log(tp0)
	if l2.LogEndOffset() < l.LogEndOffset()/2 {
		t.Fatalf("without the commit log %d of %d offsets survive: checkpoints did not sync the segment", l2.LogEndOffset(), l.LogEndOffset())
	}
}

// TestCommitLogDeleteRecreate: a deleted log's commit log records are never
// replayed into a new log of the same name.
func TestCommitLogDeleteRecreate(t *testing.T) {
	fsys := NewMemFS()
	s := openStore(t, fsys, "/data", commitLogPath)
	l, _ := s.CreateLog(tp0, LogConfig{})
	for range 20 {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 100}))
	}
	if err := s.DeleteLog(tp0); err != nil {
		t.Fatal(err)
	}
	l, _ = s.CreateLog(tp0, LogConfig{})
	mustAppend(t, l, makeBatch(t, batchSpec{n: 1, valueSize: 7}))
	crashed := fsys.CrashClone(CrashOptions{})
	l2, _ := openStore(t, crashed, "/data").Log(tp0)
	if l2.LogEndOffset() != 1 {
		t.Fatalf("recreated log ends at %d after a crash, want 1 (old records replayed into it?)", l2.LogEndOffset())
	}
	res, err := l2.Read(0, 1<<20)
	if err != nil || len(res.Records) == 0 {
		t.Fatal(err)
	}
	if h := mustHeader(t, res.Records); h.Size() != int64(len(res.Records)) {
		t.Fatalf("recreated log holds %d bytes, its one batch is %d", len(res.Records), h.Size())
	}
}
