// Package kafkatest runs toolkit integration tests against every Kafka
// implementation Spool must work with: franz-go's kfake (an independent
// Kafka) and the Spool broker (spooltest). Tests range over Clusters and run
// each as a subtest; a Spool broker that does not serve an API the toolkit
// needs fails the test, naming what is missing (it never skips).
package kafkatest

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/freeport"
)

// Cluster starts one Kafka implementation for a test.
type Cluster struct {
	Name string
	// Start starts a cluster (stopped by t.Cleanup) and returns its seed
	// addresses, or skips t.
	Start func(t testing.TB) []string
	// StartAt is Start with the (first) broker listening on addr, an
	// address from FreeAddr: for clients started before their broker, or
	// a broker started again where its clients knew it.
	StartAt func(t testing.TB, addr string) []string
}

// Clusters returns kfake and Spool.
func Clusters() []Cluster {
	return []Cluster{
		{Name: "kfake", Start: StartKfake, StartAt: startKfakeAt},
		{Name: "spool", Start: startSpool, StartAt: startSpoolAt},
	}
}

// FreeAddr returns a loopback address that nothing listens on, reserved
// for t (internal/freeport) so that nothing else takes its port before a
// StartAt binds it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return freeport.Addr(t)
}

func startKfakeAt(t testing.TB, addr string) []string {
	t.Helper()
	ports := make([]int, 3)
	for i, a := range []string{addr, FreeAddr(t), FreeAddr(t)} {
		_, p, err := net.SplitHostPort(a)
		if err == nil {
			ports[i], err = strconv.Atoi(p)
		}
		if err != nil {
			t.Fatalf("kafkatest: address %q: %v", a, err)
		}
	}
	c, err := kfake.NewCluster(
		kfake.Ports(ports...),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(4),
		kfake.GroupMinSessionTimeout(100*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("kafkatest: kfake at %s: %v", addr, err)
	}
	t.Cleanup(c.Close)
	sessionTimeouts.Store(c.ListenAddrs()[0], time.Second)
	return c.ListenAddrs()
}

// Run runs f as a subtest per cluster.
func Run(t *testing.T, f func(t *testing.T, addrs []string)) {
	for _, c := range Clusters() {
		t.Run(c.Name, func(t *testing.T) { f(t, c.Start(t)) })
	}
}

// StartKfake starts an in-process kfake cluster with three brokers,
// auto-created topics of 4 partitions and a 100ms minimum session timeout
// (so tests can detect a crashed member quickly).
func StartKfake(t testing.TB) []string {
	c, err := kfake.NewCluster(
		kfake.NumBrokers(3),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(4),
		kfake.GroupMinSessionTimeout(100*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("kafkatest: kfake: %v", err)
	}
	t.Cleanup(c.Close)
	sessionTimeouts.Store(c.ListenAddrs()[0], time.Second)
	return c.ListenAddrs()
}

var sessionTimeouts sync.Map // first seed address -> time.Duration

// SessionTimeout returns the shortest group session timeout worth using
// against the cluster at addrs: 1s on the clusters started here (kfake and
// Spool, both with a 100ms minimum), 6s (Kafka's default minimum) elsewhere,
// e.g. in a child process that did not start the cluster (pass the value
// on). A crashed member is noticed after this long.
func SessionTimeout(addrs []string) time.Duration {
	if d, ok := sessionTimeouts.Load(addrs[0]); ok {
		return d.(time.Duration)
	}
	return 6 * time.Second
}

// Needed lists the API keys the toolkit needs from a broker, with names for
// skip messages.
var Needed = map[int16]string{
	8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup",
	12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup", 22: "InitProducerId",
}

// Missing returns the names of the Needed APIs the broker at addrs does not
// advertise.
func Missing(addrs []string) ([]string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vs, err := kadm.NewClient(cl).ApiVersions(ctx)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, v := range vs.Sorted() {
		if v.Err != nil {
			return nil, v.Err
		}
		for key, name := range Needed {
			if _, _, ok := v.KeyVersions(key); !ok {
				missing = append(missing, name)
			}
		}
		break
	}
	return missing, nil
}

// CreateTopic creates topic with n partitions (ignoring "already exists").
func CreateTopic(t testing.TB, addrs []string, topic string, n int32) {
	t.Helper()
	CreateTopicWithConfigs(t, addrs, topic, n, nil)
}

// CreateTopicWithConfigs creates topic with n partitions and the given
// topic configs (ignoring "already exists").
func CreateTopicWithConfigs(t testing.TB, addrs []string, topic string, n int32, configs map[string]*string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, n, 1, configs, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("kafkatest: create topic %s: %v", topic, err)
	}
}

// Committed returns the committed offsets of group for topic by partition.
func Committed(t testing.TB, addrs []string, group, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	os, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{}
	}
	if err != nil {
		t.Fatalf("kafkatest: fetch offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	for p, o := range os[topic] {
		out[p] = o.At
	}
	return out
}

// ReadAll reads every record of topic from the start up to its current end.
func ReadAll(t testing.TB, addrs []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("kafkatest: end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	starts := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			starts[topic][o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl.AddConsumePartitions(starts)
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("kafkatest: read %s: %v (still waiting for %v)", topic, err, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok {
				out = append(out, r)
				if r.Offset+1 >= end {
					delete(want, r.Partition)
				}
			}
		})
	}
	return out
}

// Eventually polls cond every few milliseconds until it holds or d passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
