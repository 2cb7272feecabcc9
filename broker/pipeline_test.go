package broker_test

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
	"github.com/spoolmq/spool/storage"
)

// heldFS is a MemFS whose fsyncs of .log files under dir hold, once armed,
// until release is closed (outside the MemFS lock, so writes go on).
type heldFS struct {
	*storage.MemFS
	mu      sync.Mutex
	dir     string        // "" until armed
	entered chan struct{} // closed when the first held fsync starts
	release chan struct{}
	once    sync.Once
}

type heldFile struct {
	storage.File
	fs   *heldFS
	name string
}

func (h *heldFS) arm(dir string) {
	h.mu.Lock()
	h.dir = dir
	h.mu.Unlock()
}

func (h *heldFS) wrap(name string, f storage.File, err error) (storage.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return heldFile{File: f, fs: h, name: name}, nil
}

func (h *heldFS) Create(name string) (storage.File, error) {
	f, err := h.MemFS.Create(name)
	return h.wrap(name, f, err)
}

func (h *heldFS) OpenReadWrite(name string) (storage.File, error) {
	f, err := h.MemFS.OpenReadWrite(name)
	return h.wrap(name, f, err)
}

func (f heldFile) Sync() error {
	f.fs.mu.Lock()
	dir := f.fs.dir
	f.fs.mu.Unlock()
	if dir != "" && strings.Contains(f.name, "/"+dir+"/") {
		f.fs.once.Do(func() { close(f.fs.entered) })
		<-f.fs.release
	}
	return f.File.Sync()
}

// idempotentBatch is makeBatch with a producer ID, epoch 0 and a first sequence.
func idempotentBatch(pid int64, seq int32, value string) []byte {
	batch := kmsg.NewRecordBatch()
	batch.Magic = 2
	batch.ProducerID, batch.ProducerEpoch, batch.FirstSequence = pid, 0, seq
	batch.NumRecords = 1
	rec := kmsg.NewRecord()
	rec.Value = []byte(value)
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	batch.Records = rec.AppendTo(nil)
	b := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:12], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:21], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func produceReq(topic string, partition int32, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// Produce requests pipelined on one connection: while partition 0's fsync is
// held, a later request's append to partition 1 is written AND made durable,
// yet no response goes out (not the first's: not durable; not the second's:
// responses are in request order; not a retried duplicate's: its original
// is not durable). Close, meanwhile, waits. Once the fsync is released, all
// three are answered in request order with the right offsets, and Close
// returns.
func TestProducePipelinedResponsesWaitForDurabilityInOrder(t *testing.T) {
	hfs := &heldFS{MemFS: storage.NewMemFS(), entered: make(chan struct{}), release: make(chan struct{})}
	released := false
	defer func() {
		if !released {
			close(hfs.release) // let the broker shut down after a failure
		}
	}()
	reg := prometheus.NewRegistry()
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) {
		c.FS = hfs
		c.Fsync = storage.FsyncAlways
		c.CommitLogMaxBatch = -1 // partitions fsync on their own: one can be held while the other proceeds
		c.Registerer = reg
	}))
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "pipe", 2, nil)
	rc := dialRaw(t, srv.Addr())
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version = 2
	ipr := rc.roundTrip(ip).(*kmsg.InitProducerIDResponse)
	if ipr.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %s", errName(ipr.ErrorCode))
	}
	store := srv.Broker().Store()
	p0, _ := store.Log(storage.TopicPartition{Topic: "pipe", Partition: 0})
	p1, _ := store.Log(storage.TopicPartition{Topic: "pipe", Partition: 1})
	hfs.arm("pipe-0")
	produces := make(chan struct{}, 3)
	listenersClosed := make(chan struct{})
	broker.SetTestHooks(srv.Broker(), func(key int16) {
		if key == int16(kmsg.Produce) {
			select {
			case produces <- struct{}{}:
			default: // a fourth is none of this test's: not waited for
			}
		}
	}, func() { close(listenersClosed) })

	first := idempotentBatch(ipr.ProducerID, 0, "a")
	retry := append([]byte(nil), first...) // the broker rewrites the batch it stores
	c1 := rc.send(produceReq("pipe", 0, first))
	<-hfs.entered // the first request's fsync has started and is held
	c2 := rc.send(produceReq("pipe", 1, makeBatch(0, "b")))
	c3 := rc.send(produceReq("pipe", 0, retry))

	// The second request was handled while the first waits: its batch is
	// written and durable (partition 1's fsync is not held).
	timeout := time.After(testTimeout)
	for {
		advanced := p1.Wait() // before the check: an advance in between closes it
		if p1.HighWatermark() == 1 {
			break
		}
		select {
		case <-advanced:
		case <-timeout:
			t.Fatalf("partition 1 HWM %d: the second request's append did not proceed while the first waited", p1.HighWatermark())
		}
	}
	if p0.LogEndOffset() != 1 || p0.HighWatermark() != 0 {
		t.Fatalf("partition 0: end %d, HWM %d; want 1, 0 (written, fsync held)", p0.LogEndOffset(), p0.HighWatermark())
	}
	// The third request (the retried duplicate) is handled too, and waits
	// for its original: all three handlers have started (the broker's
	// signal). Close must not begin before that, or it stops reading with
	// the third still unread.
	for i := range 3 {
		select {
		case <-produces:
		case <-timeout:
			t.Fatalf("%d of 3 produce handlers started", i)
		}
	}

	// Close answers queued requests: start it now, while the fsync is held,
	// and go on once it has closed the listeners (it is then under way).
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	select {
	case <-listenersClosed:
	case <-timeout:
		t.Fatal("Close did not close the listener")
	}

	// Nothing may be answered yet. A correct broker never sends here, so
	// this bounded read can't fail spuriously; an early ack, or the second
	// response overtaking the first, is written as soon as the broker can,
	// long before the deadline.
	rc.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var one [1]byte
	if n, err := rc.c.Read(one[:]); n > 0 || !isTimeout(err) {
		t.Fatalf("a response arrived while the first request's fsync was held (n=%d, err=%v)", n, err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) before the queued requests were answered", err)
	default:
	}

	released = true
	close(hfs.release)
	for _, want := range []struct {
		corr int32
		base int64
	}{{c1, 0}, {c2, 0}, {c3, 0}} {
		resp := kmsg.NewPtrProduceResponse()
		resp.Version = 9
		rc.recv(want.corr, resp) // fails on a correlation ID out of order
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.BaseOffset != want.base {
			t.Fatalf("response %d: error %s, base offset %d; want none, %d", want.corr, errName(p.ErrorCode), p.BaseOffset, want.base)
		}
	}
	if p0.LogEndOffset() != 1 {
		t.Fatalf("partition 0 end %d: the retried duplicate was written again", p0.LogEndOffset())
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Close did not return")
	}
	// Where the time went: the fsync was held for at least the 100 ms read
	// above, so all three requests took longer than 5 ms; the first waited
	// for its fsync (durable), the other two behind its response (in_order).
	slow, phases := slowProducePhases(t, reg)
	if slow != 3 || phases["durable"] < 0.1 || phases["in_order"] < 0.2 {
		t.Fatalf("slow produce requests %v, seconds by phase %v; want 3, durable >= 0.1, in_order >= 0.2", slow, phases)
	}
}

// slowProducePhases reads spool_broker_produce_slow_requests_total and the
// seconds by phase of spool_broker_produce_slow_phase_seconds_total.
func slowProducePhases(t *testing.T, reg *prometheus.Registry) (float64, map[string]float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var slow float64
	phases := map[string]float64{}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "spool_broker_produce_slow_requests_total":
			slow = mf.GetMetric()[0].GetCounter().GetValue()
		case "spool_broker_produce_slow_phase_seconds_total":
			for _, m := range mf.GetMetric() {
				phases[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	return slow, phases
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// One produce request's small batches for several partitions are made
// durable by one commit log round (storage.Store.GroupAppends), not split
// over two: requests sent one at a time make exactly one round each.
func TestProduceOneCommitLogRoundPerRequest(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) {
		c.FS = storage.NewMemFS()
		c.Fsync = storage.FsyncAlways
	}))
	adm, _ := newAdmin(t, srv)
	const partitions, requests = 8, 20
	createTopic(t, adm, "grouped", partitions, nil)
	rc := dialRaw(t, srv.Addr())
	store := srv.Broker().Store()
	before := store.Stats().CommitLog
	for i := range requests {
		req := produceReq("grouped", 0, makeBatch(0, "v"))
		for p := int32(1); p < partitions; p++ {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = p
			rp.Records = makeBatch(0, "v")
			req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
		}
		resp := rc.roundTrip(req).(*kmsg.ProduceResponse)
		for _, sp := range resp.Topics[0].Partitions {
			if sp.ErrorCode != 0 || sp.BaseOffset != int64(i) {
				t.Fatalf("request %d, partition %d: %s, base offset %d", i, sp.Partition, errName(sp.ErrorCode), sp.BaseOffset)
			}
		}
	}
	after := store.Stats().CommitLog
	if rounds, appends := after.Rounds-before.Rounds, after.Appends-before.Appends; rounds != requests || appends != requests*partitions {
		t.Fatalf("%d commit log rounds for %d appends; want %d rounds (one per request) for %d", rounds, appends, requests, requests*partitions)
	}
}
