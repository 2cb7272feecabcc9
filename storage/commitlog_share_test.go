package storage

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCommitLogOnlyWhileShared: small batches take the commit log only while
// appends of more than one log arrive (Options.CommitLogShareWindow), on a
// clock the test moves: a log appending alone fsyncs its own segment; an
// append of another log, and for the window after it every small append,
// takes the commit log; then the lone log is back on its segment, and an
// append group brings it back to the commit log. Every append is durable and
// the logs read back whole after a crash, whichever path each took.
func TestCommitLogOnlyWhileShared(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC).UnixNano())
	fsys := NewMemFS()
	s := openStore(t, fsys, "/data", func(o *Options) {
		o.Now = func() time.Time { return time.Unix(0, now.Load()) }
		o.CommitLogShareWindow = 50 * time.Millisecond
	})
	logs := createLogs(t, s, "share", 2)
	a, b := logs[0], logs[1]
	step := func(what string, l *Log, wantCommitLog bool) {
		t.Helper()
		before := s.Stats()
		done := func() {}
		if strings.Contains(what, "in a group") {
			done = s.GroupAppends()
		}
		p := appendSmall(t, l)
		done() // as the broker does: the group closes after its writes, before the wait
		if _, err := p.Wait(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		after := s.Stats()
		gotCommitLog := after.CommitLog.Appends == before.CommitLog.Appends+1
		gotSegment := after.SegmentAppends == before.SegmentAppends+1
		if gotCommitLog != wantCommitLog || gotSegment == wantCommitLog {
			t.Fatalf("%s: commit log appends %d -> %d, segment appends %d -> %d; want the commit log: %v",
				what, before.CommitLog.Appends, after.CommitLog.Appends, before.SegmentAppends, after.SegmentAppends, wantCommitLog)
		}
	}

	for range 3 {
		step("a alone", a, false)
	}
	now.Add(int64(time.Hour)) // a lone log stays on its segment however long it appends
	step("a alone, an hour later", a, false)
	step("b after a", b, true)
	step("a after b", a, true)
	now.Add(int64(49 * time.Millisecond))
	step("a again, inside the window", a, true)
	now.Add(int64(time.Millisecond))
	step("a again, the window over", a, false)
	step("a in a group", a, true)
	now.Add(int64(50 * time.Millisecond))
	step("a after the group's window", a, false)

	crashed := fsys.CrashClone(CrashOptions{})
	s2 := openStore(t, crashed, "/data")
	for _, want := range []struct {
		tp  TopicPartition
		leo int64
	}{{a.TopicPartition(), 9}, {b.TopicPartition(), 1}} {
		l, _ := s2.Log(want.tp)
		if l.LogEndOffset() != want.leo {
			t.Fatalf("after a crash %s ends at %d, want %d", want.tp, l.LogEndOffset(), want.leo)
		}
		readAll(t, l, 0)
	}
}

// TestCommitLogShareWindowAlways: a negative window sends every small batch
// to the commit log, a lone log's too.
func TestCommitLogShareWindowAlways(t *testing.T) {
	s := openStore(t, NewMemFS(), "/data", commitLogPath)
	l := createLogs(t, s, "always", 1)[0]
	for range 5 {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 1, valueSize: 10}))
	}
	if st := s.Stats(); st.CommitLog.Appends != 5 || st.SegmentAppends != 0 {
		t.Fatalf("stats %+v: want all 5 appends through the commit log", st)
	}
}
