package abuse_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/internal/abuse"
)

// childEnv, when set, makes the test binary run a broker with its data in
// that directory instead of the tests: TestAbuse measures the memory of a
// broker process of its own, not of the test's.
const childEnv = "SPOOL_ABUSE_BROKER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(m.Run())
}

// runChild runs a broker with the default configuration, prints its
// address and serves until stdin closes.
func runChild(dir string) int {
	b, err := broker.New(broker.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err == nil {
		err = b.Start(context.Background())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("ADDR %s\n", b.Addr())
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	if err := b.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// rssBound is the most resident memory the broker may use at its peak
// during the whole run (VmHWM), with every limit at its default. Measured
// peaks are about 45 MiB before the 2 GiB fetch and 130 MiB after it (its
// answer is capped at 55 MiB, which is encoded once and written).
const rssBound = 256 << 20

// TestAbuse runs every attack of package abuse in turn against one broker
// with the default configuration. After each: the broker's process is
// alive, a well-behaved client (franz-go, from 127.0.0.2 so that the
// attacks' per-IP limit is not its own) produces and consumes, and the
// broker's peak resident memory is under rssBound. SPOOL_ABUSE_LONG=1
// multiplies the attack sizes by five.
func TestAbuse(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to measure the broker's memory")
	}
	scale := 1
	if os.Getenv("SPOOL_ABUSE_LONG") == "1" {
		scale = 5
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	addr, pid := startChild(t)

	var step int
	check := func(after string) {
		t.Helper()
		step++
		wellBehaved(t, ctx, addr, fmt.Sprintf("good-%d", step))
		rss, hwm := memory(t, pid)
		t.Logf("after %-40s broker RSS %4d MiB, peak %4d MiB", after, rss>>20, hwm>>20)
		if hwm > rssBound && !raceEnabled {
			t.Fatalf("after %s: broker peak RSS %d MiB, bound %d MiB", after, hwm>>20, rssBound>>20)
		}
	}
	check("start")

	// Thousands of connections: the per-IP limit (1000) keeps most out.
	kept, release, err := abuse.Connections(ctx, addr, 2500*scale)
	if err != nil {
		t.Fatal(err)
	}
	if kept > 1000 {
		t.Errorf("%d of %d connections from one IP kept, limit 1000", kept, 2500*scale)
	}
	check(fmt.Sprintf("%d connections (%d kept)", 2500*scale, kept))
	release()

	// Frames announcing 100 MiB and stalling: each holds what it sent.
	release, err = abuse.StalledFrames(ctx, addr, 100*scale, 100<<20, 4096)
	if err != nil {
		t.Fatal(err)
	}
	check(fmt.Sprintf("%d stalled 100 MiB frames", 100*scale))
	release()

	// Truncated and garbage frames: every one closes its connection.
	if answered, err := abuse.GarbageFrames(ctx, addr, 400*scale, 1); err != nil || answered > 0 {
		t.Errorf("garbage frames: %d answered, err %v", answered, err)
	}
	check(fmt.Sprintf("%d truncated and garbage frames", 400*scale))

	// A lying batch, compression bombs of each codec, a 2 GiB fetch.
	c, err := abuse.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	now := time.Now().UnixMilli()
	wellBehaved(t, ctx, addr, "target") // creates the topic
	expect := func(what string, b abuse.Batch, want int16) {
		t.Helper()
		code, _, err := c.Produce("target", 0, b.Encode())
		if err != nil || code != want {
			t.Errorf("%s: %s (err %v), want %s", what, abuse.ErrName(code), err, abuse.ErrName(want))
		}
	}
	expect("lying batch (2^31-1 records claimed)", abuse.LyingCount(now), kerr.InvalidRecord.Code)
	check("lying batch")
	for _, codec := range []int16{1, 3, 4} {
		expect(fmt.Sprintf("codec %d bomb", codec), abuse.StreamBomb(codec, now, 192<<20), kerr.CorruptMessage.Code)
	}
	expect("snappy claiming 4 GiB", abuse.SnappyLiar(now, false), kerr.CorruptMessage.Code)
	expect("xerial snappy claiming 4 GiB", abuse.SnappyLiar(now, true), kerr.CorruptMessage.Code)
	check("compression bombs (192 MiB each, snappy 4 GiB claimed)")
	for range 64 { // 64 MiB: more than a fetch may answer
		expect("filler", abuse.Plain(now, 1000, 1000), 0)
	}
	n, code, err := abuse.HugeFetch(ctx, addr, "target")
	if err != nil || code != 0 || n < 50<<20 || n > 57671680 {
		t.Errorf("2 GiB fetch: %d bytes, %s, err %v", n, abuse.ErrName(code), err)
	}
	check(fmt.Sprintf("2 GiB fetch (%d bytes answered)", n))

	// Tens of thousands of JoinGroup calls with new member IDs.
	codes, err := abuse.JoinFlood(ctx, addr, "flood", 5, 10000*scale)
	if err != nil {
		t.Fatal(err)
	}
	// group.max.size (1000) holds per group: 5 groups take 5000 members
	// (waiting to come back with their ID); the rest are refused.
	if codes[kerr.MemberIDRequired.Code] != 5000 || codes[kerr.GroupMaxSizeReached.Code] != 10000*scale-5000 || codes[kerr.UnknownMemberID.Code] != 10000*scale {
		t.Errorf("join flood answers: %v", codes)
	}
	check(fmt.Sprintf("%d JoinGroup calls", 2*10000*scale))

	// Produce with made-up producer IDs: refused, no state kept.
	codes, err = abuse.MadeUpProducerIDs(ctx, addr, "target", 2000*scale, 2)
	if err != nil {
		t.Fatal(err)
	}
	if codes[kerr.UnknownProducerID.Code] != 2000*scale {
		t.Errorf("made-up producer IDs: %v, want all UNKNOWN_PRODUCER_ID", codes)
	}
	check(fmt.Sprintf("%d made-up producer IDs", 2000*scale))
}

// startChild starts the broker process and returns its address and pid.
func startChild(t *testing.T) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+t.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("broker process: %v", err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	if err != nil || !ok {
		t.Fatalf("broker process did not start: %q %v", line, err)
	}
	return addr, cmd.Process.Pid
}

// memory returns the broker process's resident and peak resident bytes.
func memory(t *testing.T, pid int) (rss, hwm int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("broker process gone: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// wellBehaved produces 100 records to topic with franz-go from 127.0.0.2
// (127.0.0.1 if that cannot be bound) and consumes them back.
func wellBehaved(t *testing.T, ctx context.Context, addr, topic string) {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		d.LocalAddr = nil
	} else {
		ln.Close()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.Dialer(d.DialContext), kgo.AllowAutoTopicCreation(),
		kgo.DefaultProduceTopic(topic), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i := range 100 {
		rs = append(rs, &kgo.Record{Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("well-behaved produce to %s: %v", topic, err)
	}
	got := 0
	for got < 100 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("well-behaved consume of %s: %v", topic, err)
		}
		got += fs.NumRecords()
	}
}
