package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/testenv"
	"github.com/spoolmq/spool/spooltest"
)

// groupFixture starts a broker with topic (2 partitions) holding n records
// "0".."n-1".
func groupFixture(t *testing.T, topic string, n int) *spooltest.Server {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, topic, 2, nil)
	cl := newClient(t, srv, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%d", i)})
	}
	produceSync(t, cl, rs...)
	return srv
}

func addMore(t *testing.T, srv *spooltest.Server, topic string, from, to int) {
	cl := newClient(t, srv, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var rs []*kgo.Record
	for i := from; i < to; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%d", i)})
	}
	produceSync(t, cl, rs...)
}

func lines(out []byte) []string {
	var ls []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			ls = append(ls, l)
		}
	}
	return ls
}

// TestKcatGroup: kcat -G consumes in a group; a second run resumes from the
// committed offsets and sees only the new records.
func TestKcatGroup(t *testing.T) {
	kcat := needKcat(t)
	srv := groupFixture(t, "kc", 10)
	// kcat reads until told to stop: it commits on a clean exit (SIGINT).
	// -u: unbuffered output, so lines arrive as records are consumed.
	run := func(n int) []string {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, "-b", srv.Addr(), "-G", "kcat-group", "-q", "-f", "%s\n",
			"-u", "-X", "auto.offset.reset=earliest", "kc")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var got []string
		sc := bufio.NewScanner(out)
		for len(got) < n && sc.Scan() {
			got = append(got, sc.Text())
		}
		cmd.Process.Signal(os.Interrupt)
		for sc.Scan() {
			got = append(got, sc.Text())
		}
		if err := cmd.Wait(); err != nil && ctx.Err() != nil {
			t.Fatalf("kcat -G: %v (read %v)", err, got)
		}
		return got
	}
	if got := run(10); len(got) != 10 {
		t.Fatalf("first kcat -G run: %d records %v, want 10", len(got), got)
	}
	addMore(t, srv, "kc", 10, 15)
	got := run(5)
	if len(got) != 5 {
		t.Fatalf("second kcat -G run: %v, want only the 5 new records", got)
	}
	for _, v := range got {
		var i int
		fmt.Sscan(v, &i)
		if i < 10 {
			t.Fatalf("second kcat -G run re-read committed record %s: %v", v, got)
		}
	}
}

// pythonGroupScript consumes in a group with manual commits, printing
// values, until it has read want records.
const confluentScript = `
import sys
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "py-ck", "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe(["py"])
want, n = int(sys.argv[2]), 0
while n < want:
    m = c.poll(1.0)
    if m is None or m.error():
        continue
    print(m.value().decode(), flush=True)
    c.commit(message=m, asynchronous=False)
    n += 1
c.close()
`

const kafkaPythonScript = `
import sys
from kafka import KafkaConsumer
c = KafkaConsumer("py", bootstrap_servers=sys.argv[1], group_id="py-kp", auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=15000)
want, n = int(sys.argv[2]), 0
for m in c:
    print(m.value.decode(), flush=True)
    c.commit()
    n += 1
    if n >= want:
        break
c.close()
`

// TestPythonGroups: confluent-kafka-python and kafka-python consume in a
// group with commits; a second run resumes after the committed records.
func TestPythonGroups(t *testing.T) {
	for _, tc := range []struct{ name, module, script string }{
		{"confluent-kafka", "confluent_kafka", confluentScript},
		{"kafka-python", "kafka", kafkaPythonScript},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := exec.Command("/usr/bin/python3", "-c", "import "+tc.module).Run(); err != nil {
				testenv.Missing(t, fmt.Sprintf("/usr/bin/python3 cannot import %s (Debian python3-%s; .ci/run installs it)", tc.module, strings.ReplaceAll(tc.name, "-python", "")))
			}
			srv := groupFixture(t, "py", 10)
			script := filepath.Join(t.TempDir(), "consume.py")
			if err := os.WriteFile(script, []byte(tc.script), 0o644); err != nil {
				t.Fatal(err)
			}
			run := func(want int) []string {
				ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
				defer cancel()
				out, err := exec.CommandContext(ctx, "/usr/bin/python3", script, srv.Addr(), fmt.Sprint(want)).Output()
				if err != nil {
					t.Fatalf("%s: %v\n%s", tc.name, err, out)
				}
				return lines(out)
			}
			if got := run(10); len(got) != 10 {
				t.Fatalf("first run: %v", got)
			}
			addMore(t, srv, "py", 10, 13)
			got := run(3)
			for _, v := range got {
				var i int
				fmt.Sscan(v, &i)
				if i < 10 {
					t.Fatalf("second run re-read committed record %s: %v", v, got)
				}
			}
		})
	}
}
