package lookback_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
	"github.com/spoolmq/spool/spooltest"
)

// TestMain runs the archiver child of TestCrashArchiver when asked to.
func TestMain(m *testing.M) {
	if dir := os.Getenv("LOOKBACK_CRASH_STORE"); dir != "" {
		crashChild(dir, os.Getenv("LOOKBACK_CRASH_BROKERS"))
		return
	}
	os.Exit(m.Run())
}

// crashChild archives until it is killed, into the store spec names.
func crashChild(spec, brokers string) {
	ctx := context.Background()
	st, err := lookback.Open(ctx, spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	svc, err := lookback.New(lookback.Config{Brokers: strings.Split(brokers, ","), Store: st,
		ClientOptions:    []kgo.Opt{kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(200 * time.Millisecond)},
		Exclude:          []string{"^dst$"},
		ReplayCheckpoint: 500})
	if err == nil {
		err = svc.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	// The HTTP API on a free port, announced on stdout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Println(ln.Addr())
	http.Serve(ln, svc.Handler())
}

// crashStores are the embedded stores the crash tests run on. A Pebble
// store is open in one process at a time, so while a child runs the test
// watches it through its HTTP API, and opens the store itself only once
// the child is dead.
var crashStores = []string{"sqlite", "pebble"}

// childJSON GETs a child's API; false if it does not answer (yet).
func childJSON(base, path string, v any) bool {
	resp, err := http.Get(base + path)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
}

// startChild starts an archiver process on the store spec and returns it
// with the base URL of its API.
func startChild(t *testing.T, spec string, addrs []string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOOKBACK_CRASH_STORE="+spec, "LOOKBACK_CRASH_BROKERS="+strings.Join(addrs, ","))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var addr string
	if _, err := fmt.Fscanln(out, &addr); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not announce its address: %v", err)
	}
	return cmd, "http://" + addr
}

func kill(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}

// The archiver process is killed with SIGKILL again and again while events
// are produced; afterwards every produced event is in the archive exactly
// once.
func TestCrashArchiver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills child processes")
	}
	for _, kind := range crashStores {
		t.Run("store="+kind, func(t *testing.T) { testCrashArchiver(t, kind) })
	}
}

func testCrashArchiver(t *testing.T, kind string) {
	b := spooltest.Start(t, spooltest.WithPartitions(4))
	addrs := []string{b.Addr()}
	kafkatest.CreateTopic(t, addrs, "crash", 4)
	dir := t.TempDir()

	const total = 20000
	var produced atomic.Int64
	done := make(chan error, 1)
	go func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
		if err != nil {
			done <- err
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := 0; i < total; i += 100 {
			var rs []*kgo.Record
			for j := i; j < i+100; j++ {
				rs = append(rs, &kgo.Record{Topic: "crash", Key: []byte(fmt.Sprintf("k-%d", j%37)), Value: []byte(fmt.Sprintf(`{"n":%d}`, j))})
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				done <- err
				return
			}
			produced.Add(100)
		}
		done <- nil
	}()

	spec := kind + ":" + dir
	// archived is what the child's API says, -1 while it does not answer.
	archived := func(base string) int64 {
		var st lookback.StatsResponse
		if !childJSON(base, "/api/lookback/stats", &st) {
			return -1
		}
		return st.Events
	}
	kills := 0
	var before int64
	for produced.Load() < total || kills < 8 {
		cmd, base := startChild(t, spec, addrs)
		// Kill once it has archived something more than the last child
		// was seen to have (or everything). What a child reported is
		// durable, so a child that loses it never gets past this.
		kafkatest.Eventually(t, 30*time.Second, "the archiver to make progress", func() bool {
			n := archived(base)
			if n > before || n == total {
				before = n
				return true
			}
			return false
		})
		kill(cmd)
		kills++
		if kills > 50 {
			t.Fatal("too many rounds")
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cmd, base := startChild(t, spec, addrs)
	kafkatest.Eventually(t, 60*time.Second, fmt.Sprintf("all %d events archived", total), func() bool { return archived(base) >= total })
	kill(cmd)
	st, err := lookback.Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stats, err := st.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Events != total {
		t.Fatalf("after %d kills: %d events archived, want %d", kills, stats.Events, total)
	}
	// Every produced (partition, offset) once, with its own value.
	seen := map[string]bool{}
	q := lookback.Query{Topic: "crash", Limit: 1000, Oldest: true}
	for {
		p, err := st.Search(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			k := fmt.Sprintf("%d/%d", e.Partition, e.Offset)
			if seen[k] {
				t.Fatalf("%s archived twice", k)
			}
			seen[k] = true
		}
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	values := map[string]bool{}
	for _, r := range kafkatest.ReadAll(t, addrs, "crash") {
		if !seen[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] {
			t.Fatalf("produced %d/%d is not in the archive", r.Partition, r.Offset)
		}
		values[string(r.Value)] = true
	}
	if len(seen) != total || len(values) != total {
		t.Fatalf("%d archived, %d distinct produced values, want %d", len(seen), len(values), total)
	}
	t.Logf("%d events archived exactly once across %d SIGKILLs", total, kills)
}

// A replay whose service process is killed with SIGKILL mid-way resumes
// from its checkpoint when the service starts again: every selected event
// is replayed, and at most the events since the last checkpoint twice.
func TestCrashReplayResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills child processes")
	}
	for _, kind := range crashStores {
		t.Run("store="+kind, func(t *testing.T) { testCrashReplayResumes(t, kind) })
	}
}

func testCrashReplayResumes(t *testing.T, kind string) {
	b := spooltest.Start(t, spooltest.WithPartitions(2))
	addrs := []string{b.Addr()}
	kafkatest.CreateTopic(t, addrs, "src", 2)
	kafkatest.CreateTopic(t, addrs, "dst", 2)
	const total = 4000
	var rs []*kgo.Record
	for i := range total {
		rs = append(rs, &kgo.Record{Topic: "src", Key: []byte(fmt.Sprintf("k-%d", i%13)), Value: []byte(fmt.Sprint(i))})
	}
	produce(t, addrs, rs...)
	spec := kind + ":" + t.TempDir()
	replay := func(base, id string) (lookback.ReplayState, bool) {
		var s lookback.ReplayState
		ok := childJSON(base, "/api/lookback/replays/"+id, &s)
		return s, ok
	}
	cmd, base := startChild(t, spec, addrs)
	kafkatest.Eventually(t, 30*time.Second, "every event archived", func() bool {
		var st lookback.StatsResponse
		return childJSON(base, "/api/lookback/stats", &st) && st.Events >= total
	})
	var rp lookback.ReplayState
	postJSON(t, base+"/api/lookback/replays", lookback.ReplaySpec{Filter: lookback.Filter{Topic: "src"}, ToTopic: "dst", Rate: 2000}, http.StatusAccepted, &rp)
	kafkatest.Eventually(t, 30*time.Second, "a checkpoint", func() bool {
		s, ok := replay(base, rp.ID)
		return ok && s.Done >= 1000
	})
	// Kill between checkpoints: with records past the checkpoint produced.
	adm := kadmClient(t, addrs)
	kafkatest.Eventually(t, 30*time.Second, "records past the checkpoint", func() bool {
		s, ok := replay(base, rp.ID)
		ends, err := adm.ListEndOffsets(context.Background(), "dst")
		if !ok || err != nil {
			return false
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n > s.Done+200 && n < total
	})
	kill(cmd)
	func() {
		st, err := lookback.Open(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if s, err := st.Replay(context.Background(), rp.ID); err != nil || s.Status != "running" || s.Done >= total {
			t.Fatalf("after SIGKILL: %+v %v", s, err)
		}
	}()
	cmd, base = startChild(t, spec, addrs)
	kafkatest.Eventually(t, 60*time.Second, "the resumed replay", func() bool {
		s, ok := replay(base, rp.ID)
		return ok && s.Status != "running"
	})
	kill(cmd)
	st, err := lookback.Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := st.Replay(context.Background(), rp.ID)
	if err != nil || s.Status != "done" || s.Done != total {
		t.Fatalf("resumed replay: %+v %v", s, err)
	}
	seen := map[string]int{}
	got := kafkatest.ReadAll(t, addrs, "dst")
	for _, r := range got {
		seen[header(r, lookback.HeaderReplayOf)]++
	}
	if len(seen) != total || len(got) > total+1000 {
		t.Fatalf("dst: %d records, %d distinct originals; want all %d, at most 1000 again", len(got), len(seen), total)
	}
	t.Logf("%d records for %d events after a SIGKILL at checkpoint %d", len(got), total, s.Done)
}

func kadmClient(t *testing.T, addrs []string) *kadm.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}
