package storage

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// The commit log's overlapping rounds (CommitLogRoundsInFlight, default 2).

// heldRound opens a store on a gatedFS holding the first commit log round's
// fsync, with logs cl-0..cl-(n-1), and appends one batch to cl-0, whose round
// is then held. It returns the store, the logs and the outcome of that first
// append.
func heldRound(t *testing.T, g *gatedFS, n int, mut ...func(*Options)) (*Store, []*Log, chan error) {
	t.Helper()
	s := openStore(t, g, "/data", append([]func(*Options){commitLogPath}, mut...)...)
	t.Cleanup(g.open) // before the store's Close, which waits for the held fsync
	logs := createLogs(t, s, "cl", n)
	first := make(chan error, 1)
	go func() {
		_, err := logs[0].Append(context.Background(), makeBatch(t, batchSpec{n: 1, valueSize: 10}), AppendOptions{})
		first <- err
	}()
	<-g.entered
	return s, logs, first
}

// waitRounds polls until the store counted at least n commit log fsyncs.
func waitRounds(t *testing.T, s *Store, n int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d commit log fsyncs", n), func() bool { return s.Stats().CommitLog.Rounds >= n })
}

// TestCommitLogRoundsOverlap: while the first round's fsync is held, an
// append to another partition is written as a second round whose fsync runs
// and finishes at once (rounds overlap), but it is neither visible nor
// acknowledged before the first round is: rounds are acknowledged in order,
// so when it returns the first round's append is durable and visible too.
func TestCommitLogRoundsOverlap(t *testing.T) {
	g := &gatedFS{MemFS: NewMemFS(), gate: make(chan struct{}), entered: make(chan struct{}), clog: true}
	s, logs, first := heldRound(t, g, 2)
	type ack struct {
		err      error
		firstHWM int64 // cl-0's HWM when cl-1's append returned
	}
	second := make(chan ack, 1)
	go func() {
		_, err := logs[1].Append(context.Background(), makeBatch(t, batchSpec{n: 1, valueSize: 10}), AppendOptions{})
		second <- ack{err, logs[0].HighWatermark()}
	}()
	waitRounds(t, s, 1) // the second round's fsync finished while the first is held
	if h := logs[1].HighWatermark(); h != 0 {
		t.Fatalf("cl-1's HWM is %d while the round before its own is not durable", h)
	}
	select {
	case a := <-second:
		t.Fatalf("cl-1's append returned (%v) before the round before its own was durable", a.err)
	case err := <-first:
		t.Fatalf("cl-0's append returned (%v) while its fsync is held", err)
	default:
	}
	g.open()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	a := <-second
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.firstHWM != 1 {
		t.Fatalf("cl-1's append returned while cl-0's HWM was %d: its round was acknowledged before the one before it", a.firstHWM)
	}
	if st := s.Stats(); st.CommitLog.Rounds != 2 || st.SegmentFsyncs != 0 {
		t.Fatalf("stats %+v: want 2 commit log fsyncs and no segment fsync", st)
	}
	// Both rounds' appends survive a crash (replayed from the commit log).
	s2 := openStore(t, g.CrashClone(CrashOptions{}), "/data")
	for p := range 2 {
		l, _ := s2.Log(TopicPartition{Topic: "cl", Partition: int32(p)})
		if l.LogEndOffset() != 1 {
			t.Fatalf("after a crash cl-%d ends at %d, want 1", p, l.LogEndOffset())
		}
	}
}

// TestCommitLogRoundsOneAtATime: with CommitLogRoundsInFlight 1 the second
// round is not even written while the first round's fsync is held.
func TestCommitLogRoundsOneAtATime(t *testing.T) {
	g := &gatedFS{MemFS: NewMemFS(), gate: make(chan struct{}), entered: make(chan struct{}), clog: true}
	s, logs, first := heldRound(t, g, 2, func(o *Options) { o.CommitLogRoundsInFlight = 1 })
	second := make(chan error, 1)
	go func() {
		_, err := logs[1].Append(context.Background(), makeBatch(t, batchSpec{n: 1, valueSize: 10}), AppendOptions{})
		second <- err
	}()
	eventually(t, "cl-1's append to be written and queued", func() bool { return logs[1].LogEndOffset() == 1 })
	s.clog.mu.Lock()
	inflight, queued := s.clog.mu.inflight, len(s.clog.mu.spans)
	s.clog.mu.Unlock()
	if inflight != 1 || queued != 1 {
		t.Fatalf("%d rounds in flight and %d appends queued, want 1 and 1", inflight, queued)
	}
	g.open()
	if err := errors.Join(<-first, <-second); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.CommitLog.Rounds != 2 {
		t.Fatalf("stats %+v: want 2 commit log fsyncs", st)
	}
}

// TestCommitLogRoundFailsLater: when a round's fsync fails, the round after
// it fails too although its own fsync succeeded: nothing after a hole in the
// commit log is acknowledged or made visible.
func TestCommitLogRoundFailsLater(t *testing.T) {
	g := &gatedFS{MemFS: NewMemFS(), gate: make(chan struct{}), entered: make(chan struct{}), clog: true,
		failHeld: errors.New("injected fsync failure")}
	s, logs, first := heldRound(t, g, 2)
	second := make(chan error, 1)
	go func() {
		_, err := logs[1].Append(context.Background(), makeBatch(t, batchSpec{n: 1, valueSize: 10}), AppendOptions{})
		second <- err
	}()
	waitRounds(t, s, 1) // the second round's fsync succeeded
	g.open()
	if err := <-first; !errors.Is(err, ErrLogFailed) {
		t.Fatalf("cl-0's append after its failed fsync: %v, want ErrLogFailed", err)
	}
	if err := <-second; !errors.Is(err, ErrLogFailed) {
		t.Fatalf("cl-1's append, in the round after a failed one: %v, want ErrLogFailed", err)
	}
	for _, l := range logs {
		if h := l.HighWatermark(); h != 0 {
			t.Fatalf("%s: HWM %d after the failed round", l.TopicPartition(), h)
		}
	}
	// Every later round fails as well, until the store is reopened.
	if _, err := logs[1].Append(context.Background(), makeBatch(t, batchSpec{n: 1, valueSize: 10}), AppendOptions{}); err == nil {
		t.Fatal("an append after a failed commit log round succeeded")
	}
}

// TestCommitLogRotateWithRoundInFlight: a round that does not fit in the
// current file starts the next one while the previous round's fsync is still
// held; the full file's checkpoint waits for that fsync before it closes and
// deletes the file, so both appends succeed and survive a crash.
func TestCommitLogRotateWithRoundInFlight(t *testing.T) {
	g := &gatedFS{MemFS: NewMemFS(), gate: make(chan struct{}), entered: make(chan struct{}), clog: true}
	s := openStore(t, g, "/data", commitLogPath, func(o *Options) { o.CommitLogFileBytes = 64 << 10; o.CommitLogMaxBatch = 1 << 20 })
	t.Cleanup(g.open)
	a, _ := s.CreateLog(TopicPartition{Topic: "cl", Partition: 0}, LogConfig{})
	b, _ := s.CreateLog(TopicPartition{Topic: "cl", Partition: 1}, LogConfig{})
	errs := make(chan error, 2)
	appendTo := func(l *Log, size int) {
		_, err := l.Append(context.Background(), makeBatch(t, batchSpec{n: 1, valueSize: size}), AppendOptions{})
		errs <- err
	}
	go appendTo(a, 30<<10)
	<-g.entered // the first round, 30 KiB into the first file, is held
	go appendTo(b, 40<<10)
	eventually(t, "the second round to go into a new file", func() bool {
		return s.Stats().CommitLog.Rounds >= 1 && s.commitFileSeq() >= 2
	})
	g.open()
	if err := errors.Join(<-errs, <-errs); err != nil {
		t.Fatalf("appends across a commit log rotation with a round in flight: %v", err)
	}
	eventually(t, "the full commit log file to be checkpointed", func() bool {
		return !hasFile(t, g.MemFS, "/data/"+commitLogDir, segmentName(1)+commitLogSuffix)
	})
	s2 := openStore(t, g.CrashClone(CrashOptions{}), "/data")
	for p := range 2 {
		l, _ := s2.Log(TopicPartition{Topic: "cl", Partition: int32(p)})
		if l.LogEndOffset() != 1 {
			t.Fatalf("after a crash cl-%d ends at %d, want 1", p, l.LogEndOffset())
		}
		readAll(t, l, 0)
	}
}

// commitFileSeq returns the sequence number of the commit log file rounds go
// to now (0: none yet).
func (s *Store) commitFileSeq() int64 {
	s.clog.rmu.Lock()
	defer s.clog.rmu.Unlock()
	if s.clog.cur == nil {
		return 0
	}
	return s.clog.cur.seq
}

func hasFile(t *testing.T, fsys FS, dir, name string) bool {
	t.Helper()
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name == name {
			return true
		}
	}
	return false
}
