package producer_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/producer"
	"github.com/spoolmq/spool/storage"
)

// TestSpoolCrashFS crashes the spool's file system (storage.MemFS) at a
// random operation while four publishers spool events with the broker
// down, recovers the spool from what a crash leaves on disk, and drains it
// into a broker: every event acknowledged as spooled is delivered, in
// order per key; at most the one event in progress when the crash hit
// comes after them.
func TestSpoolCrashFS(t *testing.T) {
	addrs := kafkatest.StartKfake(t)
	down := kafkatest.FreeAddr(t)
	for seed := range uint64(12) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			fsys := storage.NewMemFS()
			p, err := producer.New(producer.WithBrokers(down), producer.WithSource("/crash"),
				producer.WithSpool("/spool", 1<<20), producer.WithSpoolDeadline(time.Second), producer.WithSpoolFS(fsys))
			if err != nil {
				t.Fatal(err)
			}
			p.MarkDown()
			fsys.ScheduleCrash(rng.Int64N(500), storage.CrashOptions{Rand: rand.New(rand.NewPCG(seed, 2))})
			topic := fmt.Sprint("crash-", seed)
			kafkatest.CreateTopic(t, addrs, topic, 4)
			acked := make([][]string, 4)
			var wg sync.WaitGroup
			for g := range acked {
				wg.Go(func() {
					for i := range 60 {
						ev := keyed(t, fmt.Sprint("k", g), i)
						res, err := p.Publish(context.Background(), topic, ev)
						if err != nil {
							return // the crash: nothing from here on is acknowledged
						}
						if !res.Spooled {
							t.Errorf("publish with the broker down not spooled")
						}
						acked[g] = append(acked[g], ev.ID)
					}
				})
			}
			wg.Wait()
			p.Close()
			crashed := fsys.Crashed()
			if crashed == nil { // every publish finished before the crash point
				crashed = fsys.CrashClone(storage.CrashOptions{Rand: rand.New(rand.NewPCG(seed, 3))})
			}

			p2, err := producer.New(producer.WithBrokers(addrs...), producer.WithSource("/crash"),
				producer.WithSpool("/spool", 1<<20), producer.WithSpoolDeadline(time.Second), producer.WithSpoolFS(crashed))
			if err != nil {
				t.Fatalf("reopen after the crash: %v", err)
			}
			defer p2.Close()
			waitEmpty(t, p2)
			got := idsByKey(t, kafkatest.ReadAll(t, addrs, topic))
			total := 0
			for g, ids := range acked {
				total += len(ids)
				d := got[fmt.Sprint("k", g)]
				if len(d) < len(ids) || !slices.Equal(d[:len(ids)], ids) || len(d) > len(ids)+1 {
					t.Errorf("key k%d: delivered %d events %v, acknowledged %d %v", g, len(d), d, len(ids), ids)
				}
			}
			t.Logf("%d events acknowledged before the crash", total)
		})
	}
}

// Helper modes for TestSpoolCrashKill.
const (
	crashEnvMode   = "SPOOL_CRASH_HELPER"
	crashEnvBroker = "SPOOL_CRASH_BROKER"
	crashEnvDir    = "SPOOL_CRASH_DIR"
	crashTopic     = "spool-crash"
	crashKeys      = 8
)

// TestSpoolCrashHelper is the producer process TestSpoolCrashKill kills.
// It publishes events round-robin over crashKeys keys, one at a time,
// printing "ACK <key> <ce_id> <spooled>" once Publish returned; in drain
// mode it then waits for the spool to empty and prints "EMPTY".
func TestSpoolCrashHelper(t *testing.T) {
	mode := os.Getenv(crashEnvMode)
	if mode == "" {
		t.Skip("helper process for TestSpoolCrashKill")
	}
	p, err := producer.New(producer.WithBrokers(os.Getenv(crashEnvBroker)), producer.WithSource("/crash"),
		producer.WithSpool(os.Getenv(crashEnvDir), 64<<20), producer.WithSpoolDeadline(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := 1 << 30
	if mode == "drain" {
		n = 100
	}
	for i := range n {
		key := fmt.Sprint("k", i%crashKeys)
		ev := keyed(t, key, i)
		res, err := p.Publish(ctx, crashTopic, ev)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ACK %s %s %v\n", key, ev.ID, res.Spooled)
	}
	if err := p.WaitSpoolEmpty(ctx); err != nil {
		t.Fatal(err)
	}
	fmt.Println("EMPTY")
	p.Close()
}

// crashRun starts the helper in mode and returns its acknowledgements; it
// kills the process (SIGKILL) once kill says so, or returns when it exits.
func crashRun(t *testing.T, mode, broker, dir string, kill func(line string, acks int) bool) (acks [][2]string, empty bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvMode+"="+mode, crashEnvBroker+"="+broker, crashEnvDir+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() }) // a hung helper fails the test, not the suite
	defer timer.Stop()
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 4 && f[0] == "ACK" {
			acks = append(acks, [2]string{f[1], f[2]})
		} else if line == "EMPTY" {
			empty = true
		}
		if !killed && kill(line, len(acks)) {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed && err != nil {
		t.Fatalf("helper %s: %v", mode, err)
	}
	return acks, empty
}

// TestSpoolCrashKill: a producer process spools events with the broker
// down and is killed (SIGKILL); the broker comes up; a new process drains
// the spool while publishing more and is killed at a random point; a third
// drains the rest. Every event any of them acknowledged (spooled or
// published) is in the topic, in order per key, and the only duplicates
// are resends of one event, sharing its ce_id, which dedupe drops.
func TestSpoolCrashKill(t *testing.T) {
	if os.Getenv(crashEnvMode) != "" {
		t.Skip("in helper process")
	}
	runDown(t, func(t *testing.T, addr string, start func() []string) {
		dir := t.TempDir()
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		spoolN := 150 + rng.IntN(100)
		var acked [][2]string
		a, _ := crashRun(t, "publish", addr, dir, func(_ string, n int) bool { return n >= spoolN })
		acked = append(acked, a...)

		addrs := start()
		kafkatest.CreateTopic(t, addrs, crashTopic, 4)
		killAt := rng.IntN(60)
		b, _ := crashRun(t, "drain", addr, dir, func(_ string, n int) bool { return n >= killAt })
		acked = append(acked, b...)
		c, empty := crashRun(t, "drain", addr, dir, func(string, int) bool { return false })
		acked = append(acked, c...)
		if !empty {
			t.Fatal("the last helper did not drain the spool")
		}
		t.Logf("acknowledged: %d with the broker down, %d by the killed drainer, %d by the last", len(a), len(b), len(c))

		got := kafkatest.ReadAll(t, addrs, crashTopic)
		want := map[string][]string{}
		for _, ak := range acked {
			want[ak[0]] = append(want[ak[0]], ak[1])
		}
		dups := 0
		for key, ids := range idsByKey(t, got) {
			seen := map[string]bool{}
			var first []string // first delivery of each ce_id, in topic order
			for _, id := range ids {
				if seen[id] {
					dups++
					continue
				}
				seen[id] = true
				first = append(first, id)
			}
			// Everything acknowledged is there, in acknowledgement order;
			// at most the events in progress at a kill come on top.
			i := 0
			for _, id := range first {
				if i < len(want[key]) && id == want[key][i] {
					i++
				}
			}
			if i != len(want[key]) {
				t.Errorf("key %s: %d of %d acknowledged events delivered in order", key, i, len(want[key]))
			}
			if extra := len(first) - len(want[key]); extra < 0 || extra > 2 {
				t.Errorf("key %s: %d events delivered, %d acknowledged", key, len(first), len(want[key]))
			}
			delete(want, key)
		}
		for key, ids := range want {
			t.Errorf("key %s: none of its %d acknowledged events delivered", key, len(ids))
		}
		t.Logf("%d records, %d duplicates of a ce_id (dedupe drops them)", len(got), dups)
		_ = event.IDOf
	})
}
