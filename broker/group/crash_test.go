package group

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/storage"
)

// TestCrashKeepsCommittedOffsets crashes the in-memory file system at a
// random operation while concurrent committers move offsets forward (with a
// small CompactBytes, so the crash also lands in snapshot writes and journal
// truncations, and in the creation of the directories and the journal). After
// recovery every acknowledged commit is there: an offset never goes back
// behind its last acknowledged value, never vanishes, and is never one that
// was not committed. Before the journal went through storage.FS, this test
// could not reach its files at all; without the directory sync after
// creating the journal, a crash soon after start loses every commit.
func TestCrashKeepsCommittedOffsets(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 15
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { crashCommits(t, seed) })
	}
}

type gtp struct {
	group     string
	partition int32
}

func crashCommits(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	fsys := storage.NewMemFS()
	cfg := Config{Dir: "/data/__state/groups", FS: fsys, CompactBytes: 700}
	fsys.ScheduleCrash(rng.Int64N(300), storage.CrashOptions{Rand: rand.New(rand.NewPCG(seed, 2))})

	var (
		mu    sync.Mutex
		acked = map[gtp]int64{}
		tried = map[gtp]map[int64]bool{}
	)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-c.Start(); err == nil {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				k := gtp{group: fmt.Sprint("g", w%2), partition: int32(w)}
				for off := int64(1); ; off++ {
					mu.Lock()
					if tried[k] == nil {
						tried[k] = map[int64]bool{}
					}
					tried[k][off] = true
					mu.Unlock()
					if code := commitOffset(c, k, off); code != 0 {
						return // the crash: every later write fails
					}
					mu.Lock()
					acked[k] = off
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	c.Close() // fails after the crash; nothing more reaches the durable state
	crashed := fsys.Crashed()
	if crashed == nil {
		t.Fatal("the scheduled crash never happened")
	}

	c2, err := New(Config{Dir: cfg.Dir, FS: crashed})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-c2.Start(); err != nil {
		t.Fatalf("start after the crash: %v", err)
	}
	defer c2.Close()
	for k, offs := range tried {
		got := fetchOffset(t, c2, k)
		if a, ok := acked[k]; ok && got < a {
			t.Errorf("%v: offset %d after the crash, but %d was acknowledged", k, got, acked[k])
		}
		if got != -1 && !offs[got] {
			t.Errorf("%v: offset %d after the crash was never committed", k, got)
		}
	}
	// The recovered state is writable and durable again.
	k := gtp{group: "g0", partition: 9}
	if code := commitOffset(c2, k, 42); code != 0 {
		t.Fatalf("commit after recovery: error %d", code)
	}
	c2.Close()
	c3, _ := New(Config{Dir: cfg.Dir, FS: crashed.CrashClone(storage.CrashOptions{})})
	if err := <-c3.Start(); err != nil {
		t.Fatalf("second start: %v", err)
	}
	defer c3.Close()
	if got := fetchOffset(t, c3, k); got != 42 {
		t.Fatalf("commit after recovery: %d after a second crash, want 42", got)
	}
}

// commitOffset commits partition k.partition of topic "t" for k.group as a
// standalone (generation -1) consumer.
func commitOffset(c *Coordinator, k gtp, off int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation = 7, k.group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = k.partition, off
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return c.OffsetCommit(context.Background(), req).Topics[0].Partitions[0].ErrorCode
}

// fetchOffset returns k's committed offset, -1 if none.
func fetchOffset(t *testing.T, c *Coordinator, k gtp) int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group = 7, k.group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = "t", []int32{k.partition}
	req.Topics = append(req.Topics, rt)
	resp := c.OffsetFetch(context.Background(), req)
	if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("OffsetFetch %v: %d %d", k, resp.ErrorCode, resp.Topics[0].Partitions[0].ErrorCode)
	}
	return resp.Topics[0].Partitions[0].Offset
}
