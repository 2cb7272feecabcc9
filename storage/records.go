package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
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

// DefaultMaxDecompressedBytes is the default bound on what the records of
// one batch may decompress to (RecordRules.MaxDecompressedBytes, and every
// decompression storage does itself, such as a ListOffsets lookup by time).
const DefaultMaxDecompressedBytes = 64 << 20

// zstdMaxWindow bounds the window a zstd frame may ask for. Kafka clients
// write windows of 2^21-2^23 bytes (zstd-jni and librdkafka at their default
// levels); a frame asking for more is refused instead of allocated.
const zstdMaxWindow = 32 << 20

// decompressSlots bounds how many batches are decompressed at once, so that
// the memory that decompression may hold is slots × the bound, whatever the
// number of connections and partitions producing compressed batches. The
// work is CPU-bound, so more slots than cores would not be faster.
var decompressSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxWindow(zstdMaxWindow),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		panic(err) // only on invalid options
	}
	return d
})

// errTooLarge is wrapped by decompression errors of batches whose records
// would decompress to more than the bound.
var errTooLarge = errors.New("records decompress to more than the limit")

// decompressed is the records section of a batch, decompressed; release it
// when done (it may hold a decompression slot).
type decompressed struct {
	data []byte
	slot bool
}

func (d *decompressed) release() {
	if d.slot {
		d.slot = false
		<-decompressSlots
	}
}

// recordsData returns the batch's records section, decompressed to at most
// limit bytes (limit <= 0: DefaultMaxDecompressedBytes). No codec allocates
// more than limit bytes for its output, whatever the batch claims: snappy's
// claimed lengths are checked before anything is allocated, zstd decodes
// into a capped buffer, gzip and lz4 stream into a bounded one.
func recordsData(b []byte, h BatchHeader, limit int) (decompressed, error) {
	raw := b[batchHeaderSize:]
	if h.Compression() == codecNone {
		return decompressed{data: raw}, nil
	}
	if limit <= 0 {
		limit = DefaultMaxDecompressedBytes
	}
	decompressSlots <- struct{}{}
	d := decompressed{slot: true}
	var err error
	switch h.Compression() {
	case codecGzip:
		var r *gzip.Reader
		if r, err = gzip.NewReader(bytes.NewReader(raw)); err == nil {
			d.data, err = readBounded(r, limit)
		}
	case codecSnappy:
		d.data, err = decodeSnappy(raw, limit)
	case codecLZ4:
		d.data, err = readBounded(lz4.NewReader(bytes.NewReader(raw)), limit)
	case codecZstd:
		d.data, err = decodeZstd(raw, limit)
	default:
		d.release()
		return decompressed{}, fmt.Errorf("%w: unknown compression codec %d", ErrInvalidRecord, h.Compression())
	}
	if err != nil {
		d.release()
		return decompressed{}, fmt.Errorf("%w: decompress: %w", ErrCorruptBatch, err)
	}
	return d, nil
}

// zstdStreams are streaming decoders for frames that do not state their
// content size, which are decoded into a buffer that grows with the output.
var zstdStreams = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderLowmem(true))
	if err != nil {
		panic(err) // only on invalid options
	}
	return d
}}

// decodeZstd decodes src into at most limit bytes. A frame that states its
// content size is decoded at once into a buffer of that size (capped: a
// frame whose content is larger than it said fails); one that does not is
// streamed.
func decodeZstd(src []byte, limit int) ([]byte, error) {
	var fh zstd.Header
	if err := fh.Decode(src); err != nil {
		return nil, err
	}
	if fh.HasFCS {
		if fh.FrameContentSize > uint64(limit) {
			return nil, fmt.Errorf("%w (%d bytes, the frame claims %d)", errTooLarge, limit, fh.FrameContentSize)
		}
		out, err := zstdDecoder().DecodeAll(src, make([]byte, 0, fh.FrameContentSize))
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			err = fmt.Errorf("%w: content larger than the frame header says", err)
		}
		return out, err
	}
	d := zstdStreams.Get().(*zstd.Decoder)
	defer zstdStreams.Put(d)
	if err := d.Reset(bytes.NewReader(src)); err != nil {
		return nil, err
	}
	out, err := readBounded(d, limit)
	d.Reset(nil) // drop the reference to src
	return out, err
}

// readBounded reads r to its end into a buffer that grows with what r
// actually returns, up to limit bytes; more is errTooLarge.
func readBounded(r io.Reader, limit int) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if n > int64(limit) {
		return nil, fmt.Errorf("%w (%d bytes)", errTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// xerialMagic starts a snappy stream in the xerial framing the Java client
// writes (then a 4-byte version, a 4-byte compatible version, and chunks of
// a 4-byte big-endian length and a raw snappy block).
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderLen = 16

// decodeSnappy decodes raw snappy or xerial-framed snappy into a buffer of
// exactly the decoded size, after checking that the sizes the blocks claim
// add up to at most limit (xerial.Decode would allocate whatever a block
// header claims, up to 4 GiB, before finding out it lies).
func decodeSnappy(src []byte, limit int) ([]byte, error) {
	total := 0
	if len(src) < xerialHeaderLen || !bytes.Equal(src[:len(xerialMagic)], xerialMagic) {
		n, err := s2.DecodedLen(src)
		if err != nil {
			return nil, err
		}
		total = n
	} else {
		for pos := xerialHeaderLen; pos < len(src); {
			if len(src)-pos < 4 {
				return nil, xerial.ErrMalformed
			}
			size := int(binary.BigEndian.Uint32(src[pos:]))
			pos += 4
			if size > len(src)-pos {
				return nil, xerial.ErrMalformed
			}
			n, err := s2.DecodedLen(src[pos : pos+size])
			if err != nil {
				return nil, err
			}
			total += n
			if total > limit {
				break
			}
			pos += size
		}
	}
	if total > limit {
		return nil, fmt.Errorf("%w (%d bytes, the blocks claim %d or more)", errTooLarge, limit, total)
	}
	return xerial.DecodeCapped(make([]byte, 0, total), src)
}

// forEachRecord calls fn with the offset and timestamp of each record of the
// batch, stopping when fn returns false. With LogAppendTime every record's
// timestamp is the batch's MaxTimestamp.
func forEachRecord(b []byte, h BatchHeader, fn func(offset, ts int64) bool) error {
	d, err := recordsData(b, h, 0)
	if err != nil {
		return err
	}
	defer d.release()
	data := d.data
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
