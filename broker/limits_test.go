package broker_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/internal/abuse"
	"github.com/spoolmq/spool/spooltest"
)

// eventually polls cond until it holds or the test deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
}

// gauge returns the value of a gauge or counter from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
			return m.Counter.GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// Connections beyond MaxConnectionsPerIP (and MaxConnections) are closed
// at accept; once one closes, a new one is served. Before the limits, every
// connection was served.
func TestConnectionLimits(t *testing.T) {
	for _, perIP := range []bool{true, false} {
		reg := prometheus.NewRegistry()
		srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) {
			c.Registerer = reg
			if perIP {
				c.MaxConnectionsPerIP = 3
			} else {
				c.MaxConnections = 3
			}
		}))
		var open []*rawConn
		for range 3 {
			rc := dialRaw(t, srv.Addr())
			rc.roundTrip(kmsg.NewPtrApiVersionsRequest())
			open = append(open, rc)
		}
		dialRaw(t, srv.Addr()).expectClosed()
		if got := gauge(t, reg, "spool_broker_connections_refused_total"); got != 1 {
			t.Fatalf("refused connections: %v, want 1", got)
		}
		open[0].c.Close()
		eventually(t, "the closed connection to be counted out", func() bool { return gauge(t, reg, "spool_broker_connections") == 2 })
		checkServing(t, srv.Addr())
	}
}

// A frame announced and never completed closes its connection after
// FrameTimeout, a connection sending nothing with nothing in flight after
// IdleTimeout; a connection waiting for a long poll is not idle. Before
// these deadlines, a client announcing 100 MiB and stalling held its
// connection (and a 100 MiB buffer) forever.
func TestStalledAndIdleConnectionsClosed(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) {
		c.Registerer = reg
		c.FrameTimeout = 100 * time.Millisecond
		c.IdleTimeout = 300 * time.Millisecond
	}))
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "t", 1, nil)

	stalled := dialRaw(t, srv.Addr())
	stalled.write(append(binary.BigEndian.AppendUint32(nil, 100<<20), 0, 18, 0, 0))
	stalled.expectClosed()

	idle := dialRaw(t, srv.Addr())
	idle.roundTrip(kmsg.NewPtrApiVersionsRequest())
	idle.expectClosed()

	// A long poll of 1s (more than the idle timeout) is answered.
	poll := dialRaw(t, srv.Addr())
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxBytes, req.MinBytes, req.MaxWaitMillis, req.SessionEpoch = 12, 1<<20, 1, 1000, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	if r := poll.roundTrip(req).(*kmsg.FetchResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("long poll: %s", errName(r.Topics[0].Partitions[0].ErrorCode))
	}
	// Released just after each response is written: poll.
	eventually(t, "queued request bytes to return to 0", func() bool { return gauge(t, reg, "spool_broker_queued_request_bytes") == 0 })
}

// The bytes of requests read but not answered are bounded: while one
// connection holds the whole budget with a frame it does not finish,
// another connection's request waits; it is served once the staller's
// frame times out. The staller's frame is read incrementally, so what it
// holds is what it sent, not what it announced.
func TestQueuedRequestBytesBound(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) {
		c.Registerer = reg
		c.MaxFrameBytes = 1 << 20
		c.QueuedMaxRequestBytes = 1 << 20
		c.FrameTimeout = 500 * time.Millisecond
	}))
	// Announces exactly the budget, sends 900 KiB of it and stalls. The
	// clock starts before the write: the broker cannot time the frame out
	// earlier than FrameTimeout after its last byte arrived, whatever the
	// machine's load delays after it (measured from after the wait below,
	// a loaded machine could spend the whole timeout there).
	stalled := dialRaw(t, srv.Addr())
	start := time.Now()
	stalled.write(append(binary.BigEndian.AppendUint32(nil, 1<<20), make([]byte, 900<<10)...))
	eventually(t, "the stalled frame to reserve the budget", func() bool {
		return gauge(t, reg, "spool_broker_queued_request_bytes") == 1<<20
	})
	other := dialRaw(t, srv.Addr())
	other.roundTrip(kmsg.NewPtrApiVersionsRequest())
	waited := time.Since(start) // before expectClosed, which waits for the timeout itself
	stalled.expectClosed()      // already closed: the answer above waited for it
	if waited < 500*time.Millisecond {
		t.Errorf("request answered %v after the staller's frame began; want it to wait for the staller's frame timeout (500ms)", waited)
	}
}

// A fetch asking for 2 GiB gets at most MaxFetchBytes (the first batch
// whole). Before the cap, it got every batch there was.
func TestFetchResponseCapped(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.MaxFetchBytes = 4096 }))
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "t", 1, nil)
	rc := dialRaw(t, srv.Addr())
	now := time.Now().UnixMilli()
	for range 10 {
		if sp := produceRaw(t, rc, "t", 0, abuse.Plain(now, 1, 1500).Encode()); sp.ErrorCode != 0 {
			t.Fatalf("produce: %s", errName(sp.ErrorCode))
		}
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxBytes, req.SessionEpoch = 12, 1<<31-1, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1<<31 - 1
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	p := rc.roundTrip(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) == 0 || len(p.RecordBatches) > 4096 {
		t.Fatalf("2 GiB fetch: %s, %d bytes of batches, want 1..4096", errName(p.ErrorCode), len(p.RecordBatches))
	}
}

// group.max.size bounds the members of a group, counting the ones handed a
// member ID and not yet back (KIP-394): a JoinGroup flood with new member
// IDs gets GROUP_MAX_SIZE_REACHED instead of growing the group without end.
func TestGroupMaxSize(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.GroupMaxSize = 3 }))
	rc := dialRaw(t, srv.Addr())
	join := func() int16 {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version, req.Group, req.ProtocolType = 5, "g", "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30000, 30000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 0}
		req.Protocols = append(req.Protocols, p)
		return rc.roundTrip(req).(*kmsg.JoinGroupResponse).ErrorCode
	}
	code := join()
	eventually(t, "the coordinator to load", func() bool {
		if code == kerr.CoordinatorLoadInProgress.Code {
			code = join()
		}
		return code != kerr.CoordinatorLoadInProgress.Code
	})
	if code != kerr.MemberIDRequired.Code {
		t.Fatalf("first join: %s, want MEMBER_ID_REQUIRED", errName(code))
	}
	for i := range 2 {
		if code := join(); code != kerr.MemberIDRequired.Code {
			t.Fatalf("join %d: %s, want MEMBER_ID_REQUIRED", i, errName(code))
		}
	}
	if code := join(); code != kerr.GroupMaxSizeReached.Code {
		t.Fatalf("join beyond group.max.size: %s, want GROUP_MAX_SIZE_REACHED", errName(code))
	}
}

// Producer state is kept only for producer IDs the broker handed out: a
// made-up ID is refused with UNKNOWN_PRODUCER_ID and nothing is written.
// Before, every made-up ID created producer state (and was written).
func TestMadeUpProducerIDRefused(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "t", 1, nil)
	rc := dialRaw(t, srv.Addr())
	now := time.Now().UnixMilli()
	b := abuse.Plain(now, 1, 1)
	b.ProducerID, b.ProducerEpoch, b.BaseSequence = 1<<40, 0, 0
	if sp := produceRaw(t, rc, "t", 0, b.Encode()); sp.ErrorCode != kerr.UnknownProducerID.Code {
		t.Fatalf("made-up producer ID: %s, want UNKNOWN_PRODUCER_ID", errName(sp.ErrorCode))
	}
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version = 4
	r := rc.roundTrip(ip).(*kmsg.InitProducerIDResponse)
	b.ProducerID, b.ProducerEpoch = r.ProducerID, r.ProducerEpoch
	if sp := produceRaw(t, rc, "t", 0, b.Encode()); sp.ErrorCode != 0 || sp.BaseOffset != 0 {
		t.Fatalf("allocated producer ID: %s at offset %d, want offset 0", errName(sp.ErrorCode), sp.BaseOffset)
	}
}
