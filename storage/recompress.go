package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is a record batch compression codec, as the low three bits of the
// batch attributes carry it (Kafka's format).
type Codec int8

// The codecs Kafka defines.
const (
	CodecNone   Codec = codecNone
	CodecGzip   Codec = codecGzip
	CodecSnappy Codec = codecSnappy
	CodecLZ4    Codec = codecLZ4
	CodecZstd   Codec = codecZstd
)

var zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
	// Kafka's default zstd level is 3, klauspost's SpeedDefault.
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		panic(err) // only on invalid options
	}
	return e
})

// Writers are pooled: a new gzip writer allocates about 800 KiB and an lz4
// one its block buffers, which would cost more than compressing a batch.
var (
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	lz4Writers  = sync.Pool{New: func() any {
		w := lz4.NewWriter(nil)
		// 64 KiB blocks, as the Java client writes them.
		if err := w.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			panic(err) // only on invalid options
		}
		return w
	}}
)

// Recompress returns batch with its records compressed with codec instead
// of the codec the producer used, as Kafka does on append when a topic's
// compression.type names a codec: the records, header fields and
// producer-id/sequence are kept, and the length, attributes and CRC are
// rewritten. A batch already in codec, or a control batch, is returned
// unchanged. The batch must be valid (ValidateBatch); its records may
// decompress to at most limit bytes (<= 0: DefaultMaxDecompressedBytes), as
// on every other path.
func Recompress(batch []byte, codec Codec, limit int) ([]byte, error) {
	h, err := validateBatch(batch)
	if err != nil {
		return nil, err
	}
	if Codec(h.Compression()) == codec || h.IsControl() {
		return batch, nil
	}
	d, err := recordsData(batch, h, limit)
	if err != nil {
		return nil, err
	}
	defer d.release()
	records, err := d.all() // recompressing needs them whole
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(batchHeaderSize + len(records)/2)
	out.Write(batch[:batchHeaderSize])
	switch codec {
	case CodecNone:
		out.Write(records)
	case CodecGzip:
		w := gzipWriters.Get().(*gzip.Writer)
		w.Reset(&out)
		w.Write(records)
		err = w.Close()
		w.Reset(nil)
		gzipWriters.Put(w)
	case CodecSnappy:
		// The xerial framing, which the Java client writes and every
		// client reads.
		out.Write(xerial.Encode(nil, records))
	case CodecLZ4:
		w := lz4Writers.Get().(*lz4.Writer)
		w.Reset(&out)
		w.Write(records)
		err = w.Close()
		w.Reset(nil)
		lz4Writers.Put(w)
	case CodecZstd:
		out.Write(zstdEncoder().EncodeAll(records, nil))
	default:
		return nil, fmt.Errorf("storage: recompress: unknown codec %d", codec)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: recompress: %w", err)
	}
	b := out.Bytes()
	if len(b)-batchLengthEnd > 1<<31-1 {
		return nil, fmt.Errorf("%w: recompressed batch too large", ErrInvalidRecord)
	}
	binary.BigEndian.PutUint32(b[batchLengthOff:], uint32(len(b)-batchLengthEnd))
	attrs := binary.BigEndian.Uint16(b[batchAttrsOff:])&^attrCompression | uint16(codec)
	binary.BigEndian.PutUint16(b[batchAttrsOff:], attrs)
	binary.BigEndian.PutUint32(b[batchCRCOff:], crc32.Checksum(b[batchAttrsOff:], castagnoli))
	return b, nil
}
