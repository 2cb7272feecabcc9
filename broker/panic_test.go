package broker_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
	"github.com/spoolmq/spool/storage"
)

// A panic while a produce request writes its partitions' batches closes
// that connection and is logged and counted like any handler panic; the
// broker keeps serving, and small batches are still acknowledged through the
// commit log. Two paths: a small request writes its batches one after the
// other on the handler's goroutine inside a commit log group (which the
// panic must close, or no round would ever be taken again); a large one
// writes them on goroutines the handler starts (before, a panic there
// crashed the whole process, and this test binary).
func TestPanicWritingProduceClosesOnlyItsConnection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value string
	}{
		{"grouped", "v"}, // 2 small batches: one commit log group
		{"concurrent", strings.Repeat("v", 40<<10)}, // 2 x 40 KiB: over groupedWriteMax
	} {
		t.Run(tc.name, func(t *testing.T) { checkPanicWritingProduce(t, tc.value) })
	}
}

func checkPanicWritingProduce(t *testing.T, value string) {
	fsys := storage.NewMemFS()
	reg := prometheus.NewRegistry()
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) {
		c.DataDir, c.FS, c.Registerer = "/data", fsys, reg
	}))
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "boom", 2, nil)
	createTopic(t, adm, "fine", 1, nil)
	fsys.SetInjector(func(op storage.Op, path string) error {
		if op == storage.OpWrite && strings.Contains(path, "boom-1/") && strings.HasSuffix(path, ".log") {
			panic("injected: disk driver bug")
		}
		return nil
	})
	rc := dialRaw(t, srv.Addr())
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 7, -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "boom"
	for p := range int32(2) {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, makeBatch(1, value)
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	rc.send(req)
	rc.expectClosed()
	if n := metricSum(t, reg, "spool_broker_request_panics_total"); n != 1 {
		t.Fatalf("spool_broker_request_panics_total = %v, want 1", n)
	}
	checkServing(t, srv.Addr())
	cl := newClient(t, srv)
	produceSync(t, cl, &kgo.Record{Topic: "fine", Value: []byte("still here")})
	if got := consumeN(t, srv, "fine", 1); string(got[0].Value) != "still here" {
		t.Fatalf("consumed %q", got[0].Value)
	}
}
