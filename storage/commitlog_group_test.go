package storage

import (
	"context"
	"testing"
	"time"
)

// Append groups (Store.GroupAppends): one produce request's batches of
// several partitions share one commit log round.

// groupLogs opens a store with the commit log and logs grp-0..grp-(n-1).
func groupLogs(t *testing.T, n int) (*Store, []*Log) {
	t.Helper()
	s := openStore(t, NewMemFS(), "/data")
	if s.clog == nil {
		t.Fatal("the store has no commit log")
	}
	return s, createLogs(t, s, "grp", n)
}

// createLogs creates the logs topic-0..topic-(n-1) with the default config.
func createLogs(t *testing.T, s *Store, topic string, n int) []*Log {
	t.Helper()
	var logs []*Log
	for p := range n {
		l, err := s.CreateLog(TopicPartition{Topic: topic, Partition: int32(p)}, LogConfig{})
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	return logs
}

// eventually polls cond until it holds, failing the test after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitDraining polls until the round loop waits for open groups to close.
func waitDraining(t *testing.T, c *commitLog) {
	t.Helper()
	eventually(t, "the round loop to wait for the open group", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.mu.draining
	})
}

func appendSmall(t *testing.T, l *Log) *PendingAppend {
	t.Helper()
	p, err := l.AppendAsync(context.Background(), makeBatch(t, batchSpec{n: 1, valueSize: 10}), AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGroupAppendsShareOneRound: the round loop, started by the group's
// first append, waits for the group to close, so the second partition's
// append joins the same round; neither is acknowledged before that.
func TestGroupAppendsShareOneRound(t *testing.T) {
	s, logs := groupLogs(t, 2)
	done := s.GroupAppends()
	a := appendSmall(t, logs[0])
	waitDraining(t, s.clog)
	if h := logs[0].HighWatermark(); h != 0 {
		t.Fatalf("grp-0's HWM is %d while its group is open", h)
	}
	b := appendSmall(t, logs[1])
	if a.sync != b.sync {
		t.Fatal("the two appends of one group were queued for different rounds")
	}
	done()
	for _, p := range []*PendingAppend{a, b} {
		if _, err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats().CommitLog; st.Rounds != 1 || st.Appends != 2 {
		t.Fatalf("commit log stats %+v: want 2 appends in 1 round", st)
	}
}

// TestGroupAppendsDoNotStarveRounds: while the round loop waits for an open
// group, a group opened after that does not hold it back: once the first
// group closes, the round is taken although the second is still open.
func TestGroupAppendsDoNotStarveRounds(t *testing.T) {
	s, logs := groupLogs(t, 2)
	first := s.GroupAppends()
	a := appendSmall(t, logs[0])
	waitDraining(t, s.clog)
	second := s.GroupAppends() // opened while the round waits: holds nothing
	defer second()
	b := appendSmall(t, logs[1])
	first()
	first() // a second call is a no-op, not a second close
	for _, p := range []*PendingAppend{a, b} {
		if _, err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	s.clog.mu.Lock()
	groups := s.clog.mu.groups
	s.clog.mu.Unlock()
	if groups != 0 {
		t.Fatalf("%d groups open after the only counted one closed twice", groups)
	}
	// A group opened once no round waits holds the next round back again.
	third := s.GroupAppends()
	c := appendSmall(t, logs[0])
	waitDraining(t, s.clog)
	third()
	if _, err := c.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestGroupAppendsWithoutCommitLog: with the per-partition path only, a
// group does nothing and appends are acknowledged while it is open.
func TestGroupAppendsWithoutCommitLog(t *testing.T) {
	s := openStore(t, NewMemFS(), "/data", func(o *Options) { o.CommitLogMaxBatch = -1 })
	l, err := s.CreateLog(TopicPartition{Topic: "grp", Partition: 0}, LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	done := s.GroupAppends()
	defer done()
	if _, err := appendSmall(t, l).Wait(); err != nil {
		t.Fatal(err)
	}
}
