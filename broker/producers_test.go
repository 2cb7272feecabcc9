package broker_test

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/spooltest"
	"github.com/spoolmq/spool/storage"
)

// idemBatch is a RecordBatch from producer id/epoch starting at sequence seq.
func idemBatch(id int64, epoch int16, seq int32, values ...string) []byte {
	batch := kmsg.NewRecordBatch()
	batch.Magic = 2
	batch.ProducerID, batch.ProducerEpoch, batch.FirstSequence = id, epoch, seq
	batch.LastOffsetDelta = int32(len(values) - 1)
	batch.NumRecords = int32(len(values))
	for i, v := range values {
		rec := kmsg.NewRecord()
		rec.OffsetDelta = int32(i)
		rec.Value = []byte(v)
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		batch.Records = rec.AppendTo(batch.Records)
	}
	b := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:12], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:21], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func initProducerID(t *testing.T, rc *rawConn) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	resp := rc.roundTrip(req).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 || resp.ProducerID < 0 {
		t.Fatalf("InitProducerId: %s id %d", errName(resp.ErrorCode), resp.ProducerID)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

// TestIdempotentProduce: a retried batch is acknowledged with its original
// offset and not written again (also after a restart); a gap is
// OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch INVALID_PRODUCER_EPOCH;
// producer IDs are never handed out twice, across restarts.
func TestIdempotentProduce(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "idem", 1, nil)
	rc := dialRaw(t, srv.Addr())
	id, epoch := initProducerID(t, rc)
	id2, _ := initProducerID(t, rc)
	if id2 == id {
		t.Fatalf("InitProducerId handed out %d twice", id)
	}
	expect := func(batch []byte, code int16, base int64) {
		t.Helper()
		p := produceRaw(t, rc, "idem", 0, batch)
		if p.ErrorCode != code || (code == 0 && p.BaseOffset != base) {
			t.Fatalf("produce: %s base %d, want %s base %d", errName(p.ErrorCode), p.BaseOffset, errName(code), base)
		}
	}
	expect(idemBatch(id, epoch, 0, "a", "b"), 0, 0)
	expect(idemBatch(id, epoch, 2, "c"), 0, 2)
	expect(idemBatch(id, epoch, 0, "a", "b"), 0, 0) // retry of the first: original offset
	expect(idemBatch(id, epoch, 2, "c"), 0, 2)
	expect(idemBatch(id, epoch, 5, "gap"), kerr.OutOfOrderSequenceNumber.Code, 0)
	expect(idemBatch(id, epoch+1, 3, "d"), kerr.OutOfOrderSequenceNumber.Code, 0) // new epoch must start at 0
	expect(idemBatch(id, epoch+1, 0, "d"), 0, 3)
	expect(idemBatch(id, epoch, 3, "old"), kerr.InvalidProducerEpoch.Code, 0)
	if leo := srv.Broker().Store(); leo != nil {
		l, _ := leo.Log(storageTP("idem", 0))
		if got := l.LogEndOffset(); got != 4 {
			t.Fatalf("log end offset %d, want 4: duplicates were written", got)
		}
	}

	// Clean restart: state comes from the snapshot.
	srv.Restart(t)
	rc = dialRaw(t, srv.Addr())
	expect(idemBatch(id, epoch+1, 0, "d"), 0, 3)
	expect(idemBatch(id, epoch+1, 1, "e"), 0, 4)
	id3, _ := initProducerID(t, rc)
	if id3 == id || id3 == id2 {
		t.Fatalf("producer ID %d reused after restart", id3)
	}
	// No snapshot (as after a crash): state is rebuilt from the log.
	srv.Broker().Close()
	removeProducerSnapshot(t, srv.DataDir())
	srv.Restart(t)
	rc = dialRaw(t, srv.Addr())
	expect(idemBatch(id, epoch+1, 1, "e"), 0, 4)
	expect(idemBatch(id, epoch+1, 2, "f"), 0, 5)

	// A transactional ID is refused: Spool has no transactions.
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.TransactionalID = 4, kmsg.StringPtr("tx")
	if resp := rc.roundTrip(req).(*kmsg.InitProducerIDResponse); resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("transactional InitProducerId: %s", errName(resp.ErrorCode))
	}
}

// TestIdempotentFranzGo: franz-go's idempotent producer (its default) across
// a restart: every record once, in order.
func TestIdempotentFranzGo(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "fi", 1, nil)
	cl := newClient(t, srv)
	for i := range 100 {
		produceSync(t, cl, &kgo.Record{Topic: "fi", Value: fmt.Appendf(nil, "%d", i)})
		if i == 50 {
			srv.Restart(t)
		}
	}
	recs := consumeN(t, srv, "fi", 100)
	for i, r := range recs {
		if string(r.Value) != fmt.Sprint(i) || r.Offset != int64(i) {
			t.Fatalf("record %d: offset %d value %q", i, r.Offset, r.Value)
		}
	}
}

func storageTP(topic string, p int32) storage.TopicPartition {
	return storage.TopicPartition{Topic: topic, Partition: p}
}

func removeProducerSnapshot(t *testing.T, dataDir string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dataDir, "__state", "producers", "snapshot")); err != nil {
		t.Fatal(err)
	}
}
