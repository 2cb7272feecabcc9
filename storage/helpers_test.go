package storage

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchSpec describes a test batch.
type batchSpec struct {
	n          int     // records
	valueSize  int     // bytes per value
	firstTS    int64   // timestamp of the first record
	tsDeltas   []int64 // per-record timestamp deltas (default 0..n-1)
	codec      int8
	producerID int64
	seq        int32
}

// makeBatch builds a magic v2 record batch with kmsg and a correct CRC-32C.
func makeBatch(tb testing.TB, s batchSpec) []byte {
	tb.Helper()
	if s.producerID == 0 {
		s.producerID = -1
	}
	var recs []byte
	maxTS := s.firstTS
	for i := 0; i < s.n; i++ {
		d := int64(i)
		if s.tsDeltas != nil {
			d = s.tsDeltas[i]
		}
		maxTS = max(maxTS, s.firstTS+d)
		val := make([]byte, s.valueSize)
		x := uint32(i*7919 + s.valueSize + int(s.firstTS))
		for j := range val { // incompressible enough that compressed batches keep their size
			x = x*1664525 + 1013904223
			val[j] = byte(x >> 24)
		}
		r := kmsg.Record{TimestampDelta64: d, OffsetDelta: int32(i), Key: []byte("k"), Value: val}
		body := r.AppendTo(nil)[1:] // drop the placeholder length varint (0 encodes as one byte)
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	recs = compress(tb, s.codec, recs)
	rb := kmsg.RecordBatch{
		Magic:           2,
		Attributes:      int16(s.codec),
		LastOffsetDelta: int32(s.n - 1),
		FirstTimestamp:  s.firstTS,
		MaxTimestamp:    maxTS,
		ProducerID:      s.producerID,
		ProducerEpoch:   -1,
		FirstSequence:   s.seq,
		NumRecords:      int32(s.n),
		Records:         recs,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func compress(tb testing.TB, codec int8, in []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	switch codec {
	case codecNone:
		return in
	case codecGzip:
		w := gzip.NewWriter(&buf)
		w.Write(in)
		w.Close()
	case codecSnappy:
		return xerial.Encode(nil, in)
	case codecLZ4:
		w := lz4.NewWriter(&buf)
		w.Write(in)
		w.Close()
	case codecZstd:
		e, err := zstd.NewWriter(nil)
		if err != nil {
			tb.Fatal(err)
		}
		return e.EncodeAll(in, nil)
	}
	return buf.Bytes()
}
