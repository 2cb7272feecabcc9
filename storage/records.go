package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Compression codecs (attributes bits 0-2; Kafka format).
const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLZ4    = 3
	codecZstd   = 4
)

// maxDecompressed bounds what one batch may decompress to, so a hostile
// batch cannot exhaust memory in a ListOffsets lookup.
const maxDecompressed = 256 << 20

var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxDecompressed))
	if err != nil {
		panic(err) // only on invalid options
	}
	return d
})

// recordsData returns the batch's records section, decompressed.
func recordsData(b []byte, h BatchHeader) ([]byte, error) {
	raw := b[batchHeaderSize:]
	var (
		out []byte
		err error
	)
	switch h.Compression() {
	case codecNone:
		return raw, nil
	case codecGzip:
		var r *gzip.Reader
		if r, err = gzip.NewReader(bytes.NewReader(raw)); err == nil {
			out, err = io.ReadAll(io.LimitReader(r, maxDecompressed))
		}
	case codecSnappy:
		// xerial.Decode handles both raw snappy and the xerial framing the Java client writes.
		out, err = xerial.Decode(raw)
	case codecLZ4:
		out, err = io.ReadAll(io.LimitReader(lz4.NewReader(bytes.NewReader(raw)), maxDecompressed))
	case codecZstd:
		out, err = zstdDecoder().DecodeAll(raw, nil)
	default:
		return nil, fmt.Errorf("%w: unknown compression codec %d", ErrInvalidRecord, h.Compression())
	}
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %w", ErrCorruptBatch, err)
	}
	return out, nil
}

// forEachRecord calls fn with the offset and timestamp of each record of the
// batch, stopping when fn returns false. With LogAppendTime every record's
// timestamp is the batch's MaxTimestamp.
func forEachRecord(b []byte, h BatchHeader, fn func(offset, ts int64) bool) error {
	data, err := recordsData(b, h)
	if err != nil {
		return err
	}
	var rec kmsg.Record
	for i := int32(0); i < h.NumRecords; i++ {
		length, n := binary.Varint(data)
		if n <= 0 || length < 0 || int64(len(data)-n) < length {
			return fmt.Errorf("%w: record %d: bad length", ErrCorruptBatch, i)
		}
		if err := rec.UnsafeReadFrom(data[:n+int(length)]); err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrCorruptBatch, i, err)
		}
		data = data[n+int(length):]
		ts := h.FirstTimestamp + rec.TimestampDelta64
		if h.TimestampType() == 1 {
			ts = h.MaxTimestamp
		}
		if !fn(h.BaseOffset+int64(rec.OffsetDelta), ts) {
			return nil
		}
	}
	return nil
}
