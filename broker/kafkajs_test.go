package broker_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/testenv"
	"github.com/spoolmq/spool/spooltest"
)

// kafkajsModules is where the test looks for KafkaJS: $SPOOL_NODE_MODULES,
// or the node_modules .ci/run installs it into.
func kafkajsModules() string {
	if d := os.Getenv("SPOOL_NODE_MODULES"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "spool-test", "node_modules")
}

// kafkajs runs testdata/kafkajs_client.js with args and returns its stdout.
func kafkajs(t *testing.T, node, modules string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"testdata/kafkajs_client.js"}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "KAFKAJS_NO_PARTITIONER_WARNING=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kafkajs_client.js %s: %v\nstdout:\n%s\nstderr:\n%s", args[0], err, out, stderr.String())
	}
	return out
}

// TestKafkaJS: KafkaJS (pure JavaScript, its own protocol code) creates a
// topic with a config, reads metadata, configs and offsets back, produces
// keyed records with headers through its idempotent producer (gzip and
// uncompressed), and consumes them in a group committing every record; a
// second group run after more records reads only the new ones.
func TestKafkaJS(t *testing.T) {
	node := testenv.LookPath(t, "node", "Debian package nodejs; .ci/run installs it")
	modules := kafkajsModules()
	probe := exec.Command(node, "-e", "require('kafkajs')")
	probe.Env = append(os.Environ(), "NODE_PATH="+modules)
	if probe.Run() != nil {
		testenv.Missing(t, fmt.Sprintf("KafkaJS not found in %s (npm install --prefix %s kafkajs@2; .ci/run does)", modules, filepath.Dir(modules)))
	}
	srv := spooltest.Start(t, spooltest.WithoutAutoCreate())
	const n = 20
	if out := kafkajs(t, node, modules, "produce", srv.Addr(), "kjs", fmt.Sprint(n)); strings.TrimSpace(string(out)) != "OK" {
		t.Fatalf("produce: %s", out)
	}

	// What KafkaJS wrote, as franz-go reads it: every record once, with its
	// header, in key order, in the partition Kafka's default (murmur2)
	// partitioner picks, from an idempotent producer.
	part := kgo.StickyKeyPartitioner(nil).ForTopic("kjs")
	last := map[string]int{}
	recs := consumeN(t, srv, "kjs", n)
	if len(recs) != n {
		t.Fatalf("read %d records, want %d", len(recs), n)
	}
	for _, r := range recs {
		var i int
		fmt.Sscan(string(r.Value), &i)
		if want := part.Partition(r, 3); r.Partition != int32(want) {
			t.Errorf("key %s in partition %d, Kafka's partitioner says %d", r.Key, r.Partition, want)
		}
		if len(r.Headers) != 1 || r.Headers[0].Key != "seq" || string(r.Headers[0].Value) != fmt.Sprintf("h%d", i) {
			t.Errorf("record %d headers %v", i, r.Headers)
		}
		if r.ProducerID < 0 {
			t.Errorf("record %d has no producer ID: not from an idempotent producer", i)
		}
		if prev, ok := last[string(r.Key)]; ok && prev >= i {
			t.Errorf("key %s: record %d after %d", r.Key, i, prev)
		}
		last[string(r.Key)] = i
	}

	consume := func(want int) []int {
		var vals []int
		offsets := map[string]int64{}
		for _, l := range lines(kafkajs(t, node, modules, "consume", srv.Addr(), "kjs", "kjs-group", fmt.Sprint(want))) {
			var p, off, v int
			var key, hdr string
			if _, err := fmt.Sscan(l, &p, &off, &key, &v, &hdr); err != nil {
				t.Fatalf("consume output %q: %v", l, err)
			}
			if prev, ok := offsets[fmt.Sprint(p)]; ok && int64(off) <= prev {
				t.Fatalf("partition %d: offset %d after %d", p, off, prev)
			}
			offsets[fmt.Sprint(p)] = int64(off)
			if hdr != fmt.Sprintf("h%d", v) {
				t.Fatalf("record %d arrived with header %q", v, hdr)
			}
			vals = append(vals, v)
		}
		return vals
	}
	got := consume(n)
	seen := map[int]bool{}
	for _, v := range got {
		seen[v] = true
	}
	if len(got) != n || len(seen) != n {
		t.Fatalf("group consume: %v, want each of 0..%d once", got, n-1)
	}

	// The commits are on the broker: they equal the end offsets.
	adm, _ := newAdmin(t, srv)
	committed, err := adm.FetchOffsets(testCtx(t), "kjs-group")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(testCtx(t), "kjs")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup("kjs", o.Partition)
		if !ok || c.At != o.Offset {
			t.Errorf("partition %d: committed %v, end offset %d", o.Partition, c.At, o.Offset)
		}
	})

	cl := newClient(t, srv, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	for i := n; i < n+5; i++ {
		produceSync(t, cl, &kgo.Record{Topic: "kjs", Value: fmt.Appendf(nil, "%d", i), Headers: []kgo.RecordHeader{{Key: "seq", Value: fmt.Appendf(nil, "h%d", i)}}})
	}
	for _, v := range consume(5) {
		if v < n {
			t.Fatalf("second group run re-read committed record %d", v)
		}
	}
}
