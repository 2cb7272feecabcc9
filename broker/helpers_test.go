package broker_test

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/spooltest"
)

// testTimeout bounds every wait in these tests; reaching it is a failure,
// never a synchronisation point.
const testTimeout = 20 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t testing.TB, srv *spooltest.Server, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(srv.Addr()), kgo.MetadataMinAge(10 * time.Millisecond), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newAdmin(t testing.TB, srv *spooltest.Server) (*kadm.Client, *kgo.Client) {
	cl := newClient(t, srv)
	return kadm.NewClient(cl), cl
}

func createTopic(t testing.TB, adm *kadm.Client, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := adm.CreateTopic(testCtx(t), partitions, -1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

// produceSync produces records and fails the test on any error.
func produceSync(t testing.TB, cl *kgo.Client, rs ...*kgo.Record) []*kgo.Record {
	t.Helper()
	res := cl.ProduceSync(testCtx(t), rs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return rs
}

// consumeN reads n records from a topic from the start.
func consumeN(t testing.TB, srv *spooltest.Server, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, srv, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := testCtx(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records from %s: %v", len(out), n, topic, err)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// rawConn speaks the Kafka protocol over one TCP connection with kmsg, for
// tests that need control over versions and bytes.
type rawConn struct {
	t    testing.TB
	c    net.Conn
	corr int32
	f    *kmsg.RequestFormatter
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw-test"))}
}

// send writes one request at its set version and returns its correlation ID.
func (r *rawConn) send(req kmsg.Request) int32 {
	r.t.Helper()
	r.corr++
	r.write(r.f.AppendRequest(nil, req, r.corr))
	return r.corr
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// recv reads one response into resp (whose version must be set) and checks
// the correlation ID.
func (r *rawConn) recv(corr int32, resp kmsg.Response) {
	r.t.Helper()
	body, err := r.readFrame()
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		r.t.Fatalf("response correlation ID %d, want %d", got, corr)
	}
	body = body[4:]
	if resp.IsFlexible() && resp.Key() != 18 {
		body = body[1:] // empty header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatalf("decode response key %d v%d: %v", resp.Key(), resp.GetVersion(), err)
	}
}

func (r *rawConn) readFrame() ([]byte, error) {
	r.c.SetReadDeadline(time.Now().Add(testTimeout))
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(r.c, body)
	return body, err
}

// roundTrip sends req and reads its response.
func (r *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	corr := r.send(req)
	resp := req.ResponseKind()
	r.recv(corr, resp)
	return resp
}

// expectClosed asserts that the broker closes the connection (EOF or reset)
// without sending a response.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	body, err := r.readFrame()
	if err == nil {
		r.t.Fatalf("broker answered (%d bytes) instead of closing the connection", len(body))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("broker neither answered nor closed the connection within %v", testTimeout)
	}
}

// checkServing asserts that a fresh connection is served (ApiVersions and
// Metadata), i.e. the broker survived whatever the test did.
func checkServing(t testing.TB, addr string) {
	t.Helper()
	rc := dialRaw(t, addr)
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "raw", "1"
	if resp := rc.roundTrip(av).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("ApiVersions on a fresh connection: error %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 9
	if resp := rc.roundTrip(md).(*kmsg.MetadataResponse); len(resp.Brokers) != 1 {
		t.Fatalf("Metadata on a fresh connection: %d brokers", len(resp.Brokers))
	}
}

// makeBatch encodes records as one RecordBatch (magic 2) with a correct CRC.
func makeBatch(firstTimestamp int64, values ...string) []byte {
	batch := kmsg.NewRecordBatch()
	batch.Magic = 2
	batch.ProducerID, batch.ProducerEpoch, batch.FirstSequence = -1, -1, -1
	batch.FirstTimestamp, batch.MaxTimestamp = firstTimestamp, firstTimestamp+int64(len(values)-1)
	batch.LastOffsetDelta = int32(len(values) - 1)
	batch.NumRecords = int32(len(values))
	for i, v := range values {
		rec := kmsg.NewRecord()
		rec.OffsetDelta = int32(i)
		rec.TimestampDelta64 = int64(i)
		rec.Value = []byte(v)
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		batch.Records = rec.AppendTo(batch.Records)
	}
	b := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:12], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:21], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// produceRaw sends a Produce v7 with one batch for topic/partition and
// returns the partition's response.
func produceRaw(t testing.TB, rc *rawConn, topic string, partition int32, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := rc.roundTrip(req).(*kmsg.ProduceResponse)
	return resp.Topics[0].Partitions[0]
}

func errName(code int16) string {
	if code == 0 {
		return "none"
	}
	return kerr.ErrorForCode(code).Error()
}

// rawTopics lists every topic with its partition count through an uncached
// Metadata request (kadm caches metadata for MetadataMinAge).
func rawTopics(t testing.TB, addr string) map[string]int {
	t.Helper()
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	r := dialRaw(t, addr).roundTrip(md).(*kmsg.MetadataResponse)
	out := map[string]int{}
	for _, tp := range r.Topics {
		out[*tp.Topic] = len(tp.Partitions)
	}
	return out
}
