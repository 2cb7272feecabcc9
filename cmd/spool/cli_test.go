package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/spooltest"
)

// cluster starts a Kafka-compatible broker for a test and returns its
// address. Every client command is tested against Spool and against franz-go's
// kfake, an independent Kafka implementation, so the CLI stays a plain Kafka
// client. Auto-creation of topics is off in both.
type cluster struct {
	name  string
	start func(t *testing.T) string
	// strict is set for brokers that validate topic names and config
	// values on create (kfake accepts any).
	strict bool
}

var clusters = []cluster{
	{"spool", func(t *testing.T) string {
		return spooltest.Start(t, spooltest.WithoutAutoCreate()).Addr()
	}, true},
	{"kfake", func(t *testing.T) string {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatalf("kfake: %v", err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs()[0]
	}, false},
}

// eachCluster runs fn as a subtest against every cluster.
func eachCluster(t *testing.T, fn func(t *testing.T, addr string)) {
	eachClusterC(t, func(t *testing.T, _ cluster, addr string) { fn(t, addr) })
}

// eachClusterC is eachCluster for tests that depend on the cluster kind.
func eachClusterC(t *testing.T, fn func(t *testing.T, c cluster, addr string)) {
	for _, c := range clusters {
		t.Run(c.name, func(t *testing.T) { fn(t, c, c.start(t)) })
	}
}

// result is what one in-process CLI run printed and returned.
type result struct {
	out, errOut string
	err         error
}

// run executes the spool command line in-process against addr.
func run(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	args = append(args, "--brokers", addr)
	if !slices.Contains(args, "--timeout") {
		args = append(args, "--timeout", "15s")
	}
	root.SetArgs(args)
	err := root.Execute()
	return result{out.String(), errOut.String(), err}
}

// mustRun runs the command and fails the test on error.
func mustRun(t *testing.T, addr, stdin string, args ...string) string {
	t.Helper()
	r := run(t, addr, stdin, args...)
	if r.err != nil {
		t.Fatalf("spool %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.out, r.errOut)
	}
	return r.out
}

// mustFail runs the command, wants an error mentioning each of want.
func mustFail(t *testing.T, addr, stdin string, args []string, want ...string) {
	t.Helper()
	r := run(t, addr, stdin, args...)
	if r.err == nil {
		t.Fatalf("spool %s: succeeded, want an error\nstdout:\n%s", strings.Join(args, " "), r.out)
	}
	for _, w := range want {
		if !strings.Contains(r.err.Error(), w) {
			t.Fatalf("spool %s: error %q does not mention %q", strings.Join(args, " "), r.err, w)
		}
	}
}

func wantContains(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("%s: output does not contain %q:\n%s", what, w, got)
		}
	}
}

// fields returns the whitespace-separated fields of the output line whose
// first fields equal prefix, or nil.
func fields(out string, prefix ...string) []string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < len(prefix) {
			continue
		}
		match := true
		for i, p := range prefix {
			if f[i] != p {
				match = false
				break
			}
		}
		if match {
			return f
		}
	}
	return nil
}

func TestTopicLifecycle(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string) {
		out := mustRun(t, addr, "", "topic", "create", "orders", "-p", "3", "-c", "retention.ms=3600000")
		wantContains(t, "create", out, `created topic "orders" with 3 partitions`)

		out = mustRun(t, addr, "", "topic", "list")
		if f := fields(out, "orders"); len(f) != 2 || f[1] != "3" {
			t.Fatalf("topic list: orders row = %q, want [orders 3]:\n%s", f, out)
		}

		mustRun(t, addr, "a\nb\nc\n", "produce", "orders", "--partition", "1")
		out = mustRun(t, addr, "", "topic", "describe", "orders")
		wantContains(t, "describe", out, "Partitions: 3")
		if f := fields(out, "1"); len(f) != 5 || f[2] != "0" || f[3] != "3" || f[4] != "3" {
			t.Fatalf("describe: partition 1 row = %q, want start 0, end 3, 3 records:\n%s", f, out)
		}
		if f := fields(out, "retention.ms"); len(f) < 2 || f[1] != "3600000" {
			t.Fatalf("describe: retention.ms row = %q:\n%s", f, out)
		}

		mustRun(t, addr, "", "topic", "alter", "orders", "-c", "retention.ms=7200000", "--partitions", "4")
		out = mustRun(t, addr, "", "topic", "describe", "orders")
		wantContains(t, "describe after alter", out, "Partitions: 4")
		if f := fields(out, "retention.ms"); len(f) < 2 || f[1] != "7200000" {
			t.Fatalf("describe after alter: retention.ms row = %q:\n%s", f, out)
		}
		mustRun(t, addr, "", "topic", "alter", "orders", "--delete-config", "retention.ms")
		out = mustRun(t, addr, "", "topic", "describe", "orders")
		if f := fields(out, "retention.ms"); f != nil {
			t.Fatalf("describe after --delete-config: retention.ms still overridden: %q", f)
		}

		mustFail(t, addr, "", []string{"topic", "create", "orders"}, "TOPIC_ALREADY_EXISTS")
		wantContains(t, "create --if-not-exists", mustRun(t, addr, "", "topic", "create", "orders", "--if-not-exists"), "already exists")

		wantContains(t, "delete", mustRun(t, addr, "", "topic", "delete", "orders"), `deleted topic "orders"`)
		if f := fields(mustRun(t, addr, "", "topic", "list"), "orders"); f != nil {
			t.Fatalf("topic list after delete still shows orders")
		}
		mustFail(t, addr, "", []string{"topic", "delete", "orders"}, "UNKNOWN_TOPIC_OR_PARTITION")
	})
}

func TestTopicErrors(t *testing.T) {
	eachClusterC(t, func(t *testing.T, c cluster, addr string) {
		if c.strict {
			mustFail(t, addr, "", []string{"topic", "create", "bad", "-c", "retention.ms=soon"}, "INVALID_CONFIG")
			mustFail(t, addr, "", []string{"topic", "create", "bad/name"}, "INVALID_TOPIC_EXCEPTION")
		}
		mustFail(t, addr, "", []string{"topic", "create", "bad", "-c", "retention.ms"}, "want key=value")
		mustFail(t, addr, "", []string{"topic", "create", "bad", "-p", "0"}, "INVALID_PARTITIONS")
		mustFail(t, addr, "", []string{"topic", "describe", "missing"}, "missing")
		mustFail(t, addr, "", []string{"topic", "alter", "missing", "-c", "retention.ms=1"}, "UNKNOWN_TOPIC_OR_PARTITION")
		mustFail(t, addr, "", []string{"topic", "alter", "missing"}, "nothing to do")
		mustFail(t, addr, "", []string{"topic", "create"}, "arg")
		mustFail(t, addr, "", []string{"topic", "create", "x", "--partitions", "many"}, "invalid argument")
	})
}

func TestProduceConsume(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string) {
		mustRun(t, addr, "", "topic", "create", "events", "-p", "2")
		r := run(t, addr, "k1:v1\nk2:v2\nnokey\n", "produce", "events", "-K", ":", "-H", "src=cli", "-H", "n=1", "-p", "0")
		if r.err != nil {
			t.Fatalf("produce: %v", r.err)
		}
		wantContains(t, "produce stderr", r.errOut, `produced 3 records to "events"`)
		mustRun(t, addr, "x:on-one\n", "produce", "events", "-K", ":", "-p", "1", "--acks", "1", "-z", "zstd")

		out := mustRun(t, addr, "", "consume", "events", "-e", "-p", "0", "-f", `%t %p %o [%k] %s %h %K %S\n`)
		want := "events 0 0 [k1] v1 src=cli,n=1 2 2\nevents 0 1 [k2] v2 src=cli,n=1 2 2\nevents 0 2 [] nokey src=cli,n=1 0 5\n"
		if out != want {
			t.Fatalf("consume partition 0:\n got %q\nwant %q", out, want)
		}
		out = mustRun(t, addr, "", "consume", "events", "-e")
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 {
			t.Fatalf("consume -e from beginning: %d lines, want 4:\n%s", len(lines), out)
		}
		if out := mustRun(t, addr, "", "consume", "events", "-e", "--from", "-1", "-p", "0"); out != "nokey\n" {
			t.Fatalf("consume --from -1: %q, want %q", out, "nokey\n")
		}
		if out := mustRun(t, addr, "", "consume", "events", "-e", "--from", "1", "-p", "0", "-n", "1"); out != "v2\n" {
			t.Fatalf("consume --from 1 -n 1: %q, want %q", out, "v2\n")
		}
		if out := mustRun(t, addr, "", "consume", "events", "-e", "--from", "end"); out != "" {
			t.Fatalf("consume --from end -e: %q, want nothing", out)
		}
		if out := mustRun(t, addr, "", "consume", "events", "-e", "--from", "@32503680000000"); out != "" {
			t.Fatalf("consume --from year 3000: %q, want nothing", out)
		}
		if out := mustRun(t, addr, "", "consume", "events", "-e", "--from", "2000-01-01T00:00:00Z", "-p", "1"); out != "on-one\n" {
			t.Fatalf("consume --from 2000-01-01: %q, want %q", out, "on-one\n")
		}
	})
}

func TestProduceConsumeErrors(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string) {
		mustFail(t, addr, "x\n", []string{"produce", "nosuch", "--timeout", "3s"}, "UNKNOWN_TOPIC_OR_PARTITION")
		mustFail(t, addr, "", []string{"consume", "nosuch", "-e"}, "UNKNOWN_TOPIC_OR_PARTITION")
		mustRun(t, addr, "", "topic", "create", "t", "-p", "1", "-c", "max.message.bytes=1000")
		mustFail(t, addr, strings.Repeat("x", 5000)+"\n", []string{"produce", "t"}, "MESSAGE_TOO_LARGE")
		mustFail(t, addr, "x\n", []string{"produce", "t", "--acks", "2"}, "bad acks")
		mustFail(t, addr, "x\n", []string{"produce", "t", "-z", "brotli"}, "unknown compression")
		mustFail(t, addr, "x\n", []string{"produce", "t", "-H", "novalue"}, "want key=value")
		mustFail(t, addr, "", []string{"consume", "t", "-f", "%q"}, "unknown directive %q")
		mustFail(t, addr, "", []string{"consume", "t", "--from", "yesterday"}, "bad --from")
		mustFail(t, addr, "", []string{"consume", "t", "-p", "7", "-e"}, "partition 7 does not exist")
		mustFail(t, addr, "", []string{"consume", "t", "-p", "0", "-g", "g"}, "cannot be combined")
	})
}

func TestBrokerUnreachable(t *testing.T) {
	// A port nobody listens on: the command must give up after --timeout
	// with an error that names the address, not hang.
	r := run(t, "127.0.0.1:1", "", "topic", "list", "--timeout", "1s")
	if r.err == nil || !strings.Contains(r.err.Error(), "127.0.0.1:1") {
		t.Fatalf("topic list against a closed port: err = %v, want one naming 127.0.0.1:1", r.err)
	}
}

func TestGroupCommands(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string) {
		mustRun(t, addr, "", "topic", "create", "jobs", "-p", "2")
		mustRun(t, addr, "a\nb\nc\n", "produce", "jobs", "-p", "0")
		mustRun(t, addr, "d\n", "produce", "jobs", "-p", "1")

		// -n 1 commits only the record it printed; the next run prints
		// the other three.
		first := mustRun(t, addr, "", "consume", "jobs", "-g", "workers", "-n", "1", "-f", `%p%s\n`)
		rest := mustRun(t, addr, "", "consume", "jobs", "-g", "workers", "-e", "-f", `%p%s\n`)
		got := strings.Fields(first + rest)
		sort.Strings(got)
		if strings.Join(got, " ") != "0a 0b 0c 1d" {
			t.Fatalf("group consume -n 1 then -e: got %q then %q, want 0a 0b 0c 1d once each", first, rest)
		}
		// A second run resumes from the commits: nothing left to read.
		if out := mustRun(t, addr, "", "consume", "jobs", "-g", "workers", "-e"); out != "" {
			t.Fatalf("group consume again: %q, want nothing (resumed from commits)", out)
		}
		out := mustRun(t, addr, "", "group", "list")
		if fields(out, "workers") == nil {
			t.Fatalf("group list: no workers row:\n%s", out)
		}
		mustRun(t, addr, "e\nf\n", "produce", "jobs", "-p", "0")
		out = mustRun(t, addr, "", "group", "describe", "workers")
		if f := fields(out, "jobs", "0"); len(f) < 5 || f[2] != "3" || f[3] != "5" || f[4] != "2" {
			t.Fatalf("group describe: jobs/0 row = %q, want committed 3, end 5, lag 2:\n%s", f, out)
		}
		wantContains(t, "group describe", out, "Total lag: 2")

		out = mustRun(t, addr, "", "group", "reset-offsets", "workers", "--topic", "jobs", "--to-earliest")
		wantContains(t, "reset dry run", out, "Dry run")
		if f := fields(out, "jobs", "0"); len(f) != 4 || f[2] != "3" || f[3] != "0" {
			t.Fatalf("reset plan: jobs/0 row = %q, want current 3 new 0:\n%s", f, out)
		}
		out = mustRun(t, addr, "", "group", "describe", "workers")
		wantContains(t, "describe after dry run", out, "Total lag: 2")

		mustRun(t, addr, "", "group", "reset-offsets", "workers", "--topic", "jobs:0", "--to-earliest", "--execute")
		wantContains(t, "describe after reset", mustRun(t, addr, "", "group", "describe", "workers"), "Total lag: 5")
		mustRun(t, addr, "", "group", "reset-offsets", "workers", "--topic", "jobs:0", "--shift-by", "2", "--execute")
		wantContains(t, "describe after shift", mustRun(t, addr, "", "group", "describe", "workers"), "Total lag: 3")
		mustRun(t, addr, "", "group", "reset-offsets", "workers", "--topic", "jobs", "--to-offset", "99", "--execute")
		wantContains(t, "describe after to-offset (clamped)", mustRun(t, addr, "", "group", "describe", "workers"), "Total lag: 0")
		mustRun(t, addr, "", "group", "reset-offsets", "workers", "--topic", "jobs", "--to-datetime", "2000-01-01T00:00:00Z", "--execute")
		wantContains(t, "describe after to-datetime", mustRun(t, addr, "", "group", "describe", "workers"), "Total lag: 6")
		// A consumer of the group now re-reads everything.
		if out := mustRun(t, addr, "", "consume", "jobs", "-g", "workers", "-e"); len(strings.Fields(out)) != 6 {
			t.Fatalf("group consume after reset: want 6 records, got:\n%s", out)
		}

		mustFail(t, addr, "", []string{"group", "reset-offsets", "workers", "--topic", "jobs"}, "exactly one")
		mustFail(t, addr, "", []string{"group", "reset-offsets", "workers", "--topic", "jobs", "--to-earliest", "--to-latest"}, "exactly one")
		mustFail(t, addr, "", []string{"group", "reset-offsets", "workers", "--to-earliest"}, "--topic")
		mustFail(t, addr, "", []string{"group", "reset-offsets", "workers", "--topic", "jobs", "--to-datetime", "soon"}, "bad --to-datetime")
		mustFail(t, addr, "", []string{"group", "reset-offsets", "workers", "--topic", "jobs:9", "--to-earliest"}, "no partition 9")
		mustFail(t, addr, "", []string{"group", "reset-offsets", "fresh", "--topic", "jobs", "--shift-by", "1"}, "no committed offset")
		mustFail(t, addr, "", []string{"group", "describe", "nobody"}, "not found")

		// A live member: reset must refuse, dry run included, and delete fails.
		stop := joinGroup(t, addr, "workers", "jobs")
		mustFail(t, addr, "", []string{"group", "reset-offsets", "workers", "--topic", "jobs", "--to-earliest"}, "live members")
		mustFail(t, addr, "", []string{"group", "reset-offsets", "workers", "--topic", "jobs", "--to-earliest", "--execute"}, "live members")
		out = mustRun(t, addr, "", "group", "describe", "workers")
		wantContains(t, "describe with a member", out, "Members:  1", "jobs:0,1")
		mustFail(t, addr, "", []string{"group", "delete", "workers"}, "NON_EMPTY_GROUP")
		stop()

		wantContains(t, "group delete", mustRun(t, addr, "", "group", "delete", "workers"), `deleted group "workers"`)
		mustFail(t, addr, "", []string{"group", "describe", "workers"}, "not found")
	})
}

// joinGroup starts a franz-go group member on topic and waits until it has
// its assignment; the returned func makes it leave.
func joinGroup(t *testing.T, addr, group, topic string) func() {
	t.Helper()
	assigned := make(chan struct{})
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			select {
			case <-assigned:
			default:
				close(assigned)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	select {
	case <-assigned:
	case <-time.After(30 * time.Second):
		cancel()
		cl.Close()
		t.Fatal("group member got no assignment within 30s")
	}
	var stopped bool
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		cl.Close() // leaves the group
	}
	t.Cleanup(stop)
	return stop
}

func TestBenchCommand(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string) {
		out := mustRun(t, addr, "", "bench", "-n", "500", "-s", "64", "-k", "5", "-p", "2", "--json", "-q")
		var res struct {
			Produce  struct{ Records, Bytes int64 }
			Consume  struct{ Records int64 }
			EndToEnd struct {
				Count int64
				P99   float64 `json:"p99_ms"`
			} `json:"end_to_end_latency"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("bench --json: %v\n%s", err, out)
		}
		if res.Produce.Records != 500 || res.Produce.Bytes != 500*64 || res.Consume.Records != 500 || res.EndToEnd.Count != 500 || res.EndToEnd.P99 <= 0 {
			t.Fatalf("bench --json = %+v, want 500 records of 64 bytes each way and 500 latency samples", res)
		}
		out = mustRun(t, addr, "", "bench", "-n", "100", "-s", "16", "-q", "--acks", "1")
		wantContains(t, "bench text", out, "produce ", "consume ", "records/s", "MB/s", "end-to-end latency", "p99.9")
		mustFail(t, addr, "", []string{"bench", "-s", "4"}, "minimum 8")
		mustFail(t, addr, "", []string{"bench", "--mode", "consume", "-t", "nosuch", "-q"}, "UNKNOWN_TOPIC_OR_PARTITION")
	})
}

func TestBrokerSilent(t *testing.T) {
	// A listener that accepts and never answers: the command gives up
	// after --timeout and says which broker it waited for.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	r := run(t, ln.Addr().String(), "", "topic", "list", "--timeout", "1s")
	if r.err == nil || !strings.Contains(r.err.Error(), "is a broker running at "+ln.Addr().String()) {
		t.Fatalf("topic list against a silent listener: err = %v, want the timeout hint", r.err)
	}
}
