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

// A panic in a goroutine that a handler starts (a produce writes its
// partitions' batches on goroutines of its own) closes that connection and
// is logged and counted like a panic in the handler itself; the broker keeps
// serving. Before, it crashed the whole process (and this test binary).
func TestPanicInHandlerGoroutineClosesOnlyItsConnection(t *testing.T) {
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
	// Partition 0 is written on the handler's goroutine, partition 1 on
	// one the handler starts: the panic happens there.
	rc := dialRaw(t, srv.Addr())
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 7, -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "boom"
	for p := range int32(2) {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, makeBatch(1, "v")
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
