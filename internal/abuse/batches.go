// Package abuse sends a Kafka broker the input a hostile or broken client
// would: floods of connections, frames that announce more than they send,
// garbage, record batches that lie about their content, compression bombs,
// huge fetches, JoinGroup floods and made-up producer IDs. It is a Kafka
// client (raw frames encoded with kmsg) and works against any broker; the
// broker's abuse test (TestAbuse in this package) runs it against a Spool
// broker in a child process and checks that a well-behaved client is served
// after each attack and that the broker's memory stays bounded.
package abuse

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Codecs are the record batch compression codecs, by attribute value.
var Codecs = map[string]int16{"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Batch is a magic-2 record batch header and its (already encoded, maybe
// compressed) records section; Encode frames it with a correct CRC, so
// that a broker must look inside to find any lie.
type Batch struct {
	Attributes      int16
	LastOffsetDelta int32
	FirstTimestamp  int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
	Records         []byte
}

// Encode returns the batch's bytes: header, records, length and CRC-32C.
func (b Batch) Encode() []byte {
	rb := kmsg.NewRecordBatch()
	rb.Magic = 2
	rb.Attributes = b.Attributes
	rb.LastOffsetDelta = b.LastOffsetDelta
	rb.FirstTimestamp, rb.MaxTimestamp = b.FirstTimestamp, b.FirstTimestamp
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = b.ProducerID, b.ProducerEpoch, b.BaseSequence
	rb.NumRecords = b.NumRecords
	rb.Records = b.Records
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:12], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:21], crc32.Checksum(out[21:], castagnoli))
	return out
}

// Record encodes one record (with its length prefix) with the given offset
// and timestamp deltas and value.
func Record(offsetDelta int32, timestampDelta int64, value []byte) []byte {
	rec := kmsg.NewRecord()
	rec.OffsetDelta = offsetDelta
	rec.TimestampDelta64 = timestampDelta
	rec.Value = value
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	return rec.AppendTo(nil)
}

// Records encodes n records with values of size bytes, offset deltas 0..n-1.
func Records(n, size int) []byte {
	var out []byte
	v := make([]byte, size)
	for i := range n {
		out = append(out, Record(int32(i), int64(i), v)...)
	}
	return out
}

// Plain returns a valid uncompressed batch of n records of size bytes, with
// no producer ID, stamped firstTimestamp.
func Plain(firstTimestamp int64, n, size int) Batch {
	return Batch{FirstTimestamp: firstTimestamp, NumRecords: int32(n), LastOffsetDelta: int32(n - 1),
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: Records(n, size)}
}

// LyingCount is the 61-byte batch with no records at all that claims
// 2^31-1 of them (a broker that trusts the header gives it 2^31-1 offsets).
func LyingCount(firstTimestamp int64) Batch {
	return Batch{FirstTimestamp: firstTimestamp, NumRecords: 1<<31 - 1, LastOffsetDelta: 1<<31 - 2,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
}

// Compress compresses records with the codec (attribute value 1-4) as Kafka
// clients do: gzip, raw snappy (as franz-go and librdkafka write it), an lz4
// frame, a zstd frame.
func Compress(codec int16, records []byte) []byte {
	var buf bytes.Buffer
	switch codec {
	case 1:
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		w.Write(records)
		w.Close()
	case 2:
		return s2.EncodeSnappy(nil, records)
	case 3:
		w := lz4.NewWriter(&buf)
		w.Write(records)
		w.Close()
	case 4:
		w, _ := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
		w.Write(records)
		w.Close()
	}
	return buf.Bytes()
}

// Bomb returns a batch whose one record, a value of size zero bytes,
// compresses with the codec to a few kilobytes (snappy, whose ratio is
// bounded near 20:1 in its own format, to about size/20).
func Bomb(codec int16, firstTimestamp int64, size int) Batch {
	return Batch{Attributes: codec, FirstTimestamp: firstTimestamp, NumRecords: 1, LastOffsetDelta: 0,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: Compress(codec, Record(0, 0, make([]byte, size)))}
}

// SnappyLiar is a snappy batch of a few bytes whose block header claims
// 4 GiB - 1 of output (xerial.Decode allocates that before finding out).
func SnappyLiar(firstTimestamp int64, xerial bool) Batch {
	block := binary.AppendUvarint(nil, 1<<32-1)
	block = append(block, 0, 0, 0, 0) // a literal tag and garbage
	recs := block
	if xerial {
		recs = append([]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}, binary.BigEndian.AppendUint32(nil, uint32(len(block)))...)
		recs = append(recs, block...)
	}
	return Batch{Attributes: 2, FirstTimestamp: firstTimestamp, NumRecords: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs}
}
