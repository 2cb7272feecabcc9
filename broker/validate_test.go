package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/internal/abuse"
	"github.com/spoolmq/spool/spooltest"
)

// Produced batches are checked record by record, as Kafka's LogValidator
// does: a batch whose header disagrees with its records is refused and
// takes no offsets. Before record validation, the 61-byte batch claiming
// 2^31-1 records was accepted and moved the log end by 2^31-1.
func TestProduceValidatesRecords(t *testing.T) {
	const limit = 1 << 20
	srv := spooltest.Start(t, spooltest.WithoutAutoCreate(), spooltest.WithConfig(func(c *broker.Config) { c.MaxDecompressedBytes = limit }))
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "t", 1, nil)
	rc := dialRaw(t, srv.Addr())
	now := time.Now().UnixMilli()

	withRecords := func(n int32, recs ...[]byte) abuse.Batch {
		b := abuse.Plain(now, int(n), 0)
		b.Records = nil
		for _, r := range recs {
			b.Records = append(b.Records, r...)
		}
		return b
	}
	rec := func(off int32) []byte { return abuse.Record(off, 0, []byte("v")) }
	badLength := rec(0)
	badLength[0] = 2 // length varint 1: shorter than the record's fields
	control := abuse.Plain(now, 1, 1)
	control.Attributes = 0x20
	txn := abuse.Plain(now, 1, 1)
	txn.Attributes = 0x10
	nullHeaderKey := kmsg.NewRecord()
	nullHeaderKey.Headers = []kmsg.Header{{Key: "k"}}
	hdr := nullHeaderKey.AppendTo(nil)

	cases := []struct {
		name  string
		batch abuse.Batch
		code  int16
	}{
		{"2^31-1 records claimed, none sent", abuse.LyingCount(now), kerr.InvalidRecord.Code},
		{"fewer records than claimed", withRecords(3, rec(0), rec(1)), kerr.InvalidRecord.Code},
		{"more records than claimed", withRecords(1, rec(0), rec(1)), kerr.InvalidRecord.Code},
		{"offset deltas out of order", withRecords(2, rec(1), rec(0)), kerr.InvalidRecord.Code},
		{"offset deltas with a gap", withRecords(2, rec(0), rec(2)), kerr.InvalidRecord.Code},
		{"record length shorter than its fields", withRecords(1, badLength), kerr.InvalidRecord.Code},
		{"trailing garbage", withRecords(1, rec(0), []byte{1, 2, 3, 4, 5, 6, 7, 8}), kerr.InvalidRecord.Code},
		{"control batch", control, kerr.InvalidRecord.Code},
		{"transactional batch", txn, kerr.InvalidRecord.Code},
		{"header with a negative key length", withRecords(1, append([]byte{byte(len(hdr) - 1)}, append(hdr[1:len(hdr)-3], 3, 0, 0)...)), kerr.InvalidRecord.Code},
		{"timestamp two hours ahead", abuse.Plain(now+2*3600*1000, 1, 1), kerr.InvalidTimestamp.Code},
		{"gzip bomb", abuse.Bomb(1, now, 4*limit), kerr.CorruptMessage.Code},
		{"snappy bomb", abuse.Bomb(2, now, 2*limit), kerr.CorruptMessage.Code},
		{"snappy claiming 4 GiB", abuse.SnappyLiar(now, false), kerr.CorruptMessage.Code},
		{"xerial snappy claiming 4 GiB", abuse.SnappyLiar(now, true), kerr.CorruptMessage.Code},
		{"lz4 bomb", abuse.Bomb(3, now, 4*limit), kerr.CorruptMessage.Code},
		{"zstd bomb", abuse.Bomb(4, now, 4*limit), kerr.CorruptMessage.Code},
		{"zstd frame of garbage", abuse.Batch{Attributes: 4, FirstTimestamp: now, NumRecords: 1, ProducerID: -1, Records: []byte{0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff}}, kerr.CorruptMessage.Code},
		{"unknown codec", abuse.Batch{Attributes: 5, FirstTimestamp: now, NumRecords: 1, ProducerID: -1, Records: rec(0)}, kerr.InvalidRecord.Code},
	}
	for _, c := range cases {
		sp := produceRaw(t, rc, "t", 0, c.batch.Encode())
		if sp.ErrorCode != c.code {
			t.Errorf("%s: %s, want %s", c.name, errName(sp.ErrorCode), errName(c.code))
		}
	}
	// Nothing was written: the first good batch gets offset 0, and a
	// compressed batch just under the bound of each codec is accepted.
	if sp := produceRaw(t, rc, "t", 0, abuse.Plain(now, 2, 10).Encode()); sp.ErrorCode != 0 || sp.BaseOffset != 0 {
		t.Fatalf("good batch after the refused ones: %s at offset %d, want offset 0", errName(sp.ErrorCode), sp.BaseOffset)
	}
	next := int64(2)
	for name, codec := range abuse.Codecs {
		b := abuse.Bomb(codec, now, limit-100)
		if sp := produceRaw(t, rc, "t", 0, b.Encode()); sp.ErrorCode != 0 || sp.BaseOffset != next {
			t.Errorf("%s batch under the bound: %s at offset %d, want %d", name, errName(sp.ErrorCode), sp.BaseOffset, next)
		}
		next++
	}
}

// message.timestamp.before.max.ms and after.max.ms bound CreateTime
// timestamps per topic; LogAppendTime topics are not checked.
func TestProduceTimestampBounds(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithoutAutoCreate())
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "strict", 1, map[string]*string{"message.timestamp.before.max.ms": kmsg.StringPtr("60000"), "message.timestamp.after.max.ms": kmsg.StringPtr("60000")})
	createTopic(t, adm, "lax", 1, map[string]*string{"message.timestamp.after.max.ms": kmsg.StringPtr("86400000")})
	createTopic(t, adm, "append", 1, map[string]*string{"message.timestamp.type": kmsg.StringPtr("LogAppendTime")})
	rc := dialRaw(t, srv.Addr())
	now := time.Now().UnixMilli()
	hour := int64(3600 * 1000)
	for _, c := range []struct {
		topic string
		ts    int64
		code  int16
	}{
		{"strict", now - hour, kerr.InvalidTimestamp.Code},
		{"strict", now + hour, kerr.InvalidTimestamp.Code},
		{"strict", now, 0},
		{"lax", now + 2*hour, 0},
		{"lax", 1, 0}, // no bound into the past by default
		{"append", now + 48*hour, 0},
	} {
		if sp := produceRaw(t, rc, c.topic, 0, abuse.Plain(c.ts, 1, 1).Encode()); sp.ErrorCode != c.code {
			t.Errorf("%s, timestamp now%+dms: %s, want %s", c.topic, c.ts-now, errName(sp.ErrorCode), errName(c.code))
		}
	}
}

// Batches compressed with every codec by a real client pass validation
// and come back as sent.
func TestProduceCompressedValidates(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	for name, codec := range map[string]kgo.CompressionCodec{"gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()} {
		createTopic(t, adm, name, 1, nil)
		cl := newClient(t, srv, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(name))
		var rs []*kgo.Record
		for i := range 50 {
			rs = append(rs, &kgo.Record{Key: []byte{byte(i)}, Value: make([]byte, 100+i), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(name)}}})
		}
		produceSync(t, cl, rs...)
		if got := consumeN(t, srv, name, 50); len(got) != 50 || len(got[49].Value) != 149 {
			t.Fatalf("%s: consumed %d records", name, len(got))
		}
	}
}
