package storage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
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
const zstdMaxWindow = 16 << 20

// decompressSlots bounds how many batches are decompressed at once, so that
// the memory that decompression may hold is slots × the bound, whatever the
// number of connections and partitions producing compressed batches. The
// work is CPU-bound, so more slots than cores would not be faster.
var decompressSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// errTooLarge is wrapped by decompression errors of batches whose records
// would decompress to more than the bound.
var errTooLarge = errors.New("records decompress to more than the limit")

// decompressed is the records section of a batch: for an uncompressed
// batch (and snappy, whose block format cannot be streamed) data, else r,
// a stream of the decompressed records that ends with errTooLarge past the
// bound. release it when done: it holds a decompression slot and pooled
// decoders.
type decompressed struct {
	data []byte
	r    *bufio.Reader
	done func()
}

func (d *decompressed) release() {
	if d.done != nil {
		d.done()
		d.done = nil
	}
}

// all returns the records whole: data, or the stream read to its end
// (within the bound, which the stream enforces).
func (d *decompressed) all() ([]byte, error) {
	if d.r == nil {
		return d.data, nil
	}
	b, err := io.ReadAll(d.r)
	if err != nil {
		return nil, streamErr(err, fmt.Errorf("%w: decompress: %w", ErrCorruptBatch, err))
	}
	return b, nil
}

// recordsReaders are the buffered readers that streamed records are parsed
// from.
var recordsReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}

// recordsData returns the batch's records section, decompressed to at most
// limit bytes (limit <= 0: DefaultMaxDecompressedBytes). Nothing allocates
// memory by what the batch claims: gzip, lz4 and zstd are streamed (the
// caller parses records as they come, holding only the decoder's state);
// snappy's claimed block lengths are checked against limit before the
// blocks are decoded into one buffer.
func recordsData(b []byte, h BatchHeader, limit int) (decompressed, error) {
	raw := b[batchHeaderSize:]
	if h.Compression() == codecNone {
		return decompressed{data: raw}, nil
	}
	if limit <= 0 {
		limit = DefaultMaxDecompressedBytes
	}
	var (
		src     io.Reader
		cleanup func()
		d       decompressed
		err     error
	)
	decompressSlots <- struct{}{}
	switch h.Compression() {
	case codecGzip:
		var r *gzip.Reader
		if r, err = gzip.NewReader(bytes.NewReader(raw)); err == nil {
			src = r
		}
	case codecSnappy:
		sbuf := inlineBufs.Get().(*[]byte)
		d.data, err = decodeSnappy((*sbuf)[:0], raw, limit)
		cleanup = func() {
			if cap(d.data) <= inlineMax && cap(d.data) >= cap(*sbuf) {
				*sbuf = d.data[:0]
			}
			if cap(*sbuf) <= inlineMax {
				inlineBufs.Put(sbuf)
			}
		}
	case codecLZ4:
		r := lz4Readers.Get().(*lz4.Reader)
		r.Reset(bytes.NewReader(raw))
		src, cleanup = r, func() { r.Reset(nil); lz4Readers.Put(r) }
	case codecZstd:
		zf := &zstdFrame{raw: raw}
		src, cleanup = zf, zf.close
	default:
		err = fmt.Errorf("%w: unknown compression codec %d", ErrInvalidRecord, h.Compression())
	}
	if err != nil {
		if cleanup != nil {
			cleanup()
		}
		<-decompressSlots
		if errors.Is(err, ErrInvalidRecord) {
			return decompressed{}, err
		}
		return decompressed{}, fmt.Errorf("%w: decompress: %w", ErrCorruptBatch, err)
	}
	if src == nil { // snappy: decoded at once
		d.done = func() {
			cleanup()
			<-decompressSlots
		}
		return d, nil
	}
	// Up to inlineMax bytes are decompressed into a pooled buffer and
	// parsed as a slice (fast); a batch that decompresses to more is
	// parsed as a stream from there on, the buffer holding its first part.
	bounded := &boundedReader{r: src, left: int64(limit)}
	buf := inlineBufs.Get().(*[]byte)
	var data []byte
	var full bool
	if zd, ok := src.(*zstdFrame); ok {
		data, full, err = zd.decodeAll((*buf)[:0], min(limit, inlineMax))
		if full {
			// Larger than inline: stream it from the start.
			if err = zd.stream(); err == nil {
				data, full, err = readUpTo(bounded, (*buf)[:0], min(limit, inlineMax))
			}
		}
	} else {
		data, full, err = readUpTo(bounded, (*buf)[:0], min(limit, inlineMax))
	}
	putBuf := func() {
		if cap(data) <= inlineMax {
			*buf = data[:0]
			inlineBufs.Put(buf)
		}
	}
	if err != nil {
		putBuf()
		if cleanup != nil {
			cleanup()
		}
		<-decompressSlots
		return decompressed{}, fmt.Errorf("%w: decompress: %w", ErrCorruptBatch, err)
	}
	if !full {
		d.data = data
		d.done = func() {
			putBuf()
			if cleanup != nil {
				cleanup()
			}
			<-decompressSlots
		}
		return d, nil
	}
	br := recordsReaders.Get().(*bufio.Reader)
	br.Reset(io.MultiReader(bytes.NewReader(data), bounded))
	d.r = br
	d.done = func() {
		br.Reset(nil)
		recordsReaders.Put(br)
		putBuf()
		if cleanup != nil {
			cleanup()
		}
		<-decompressSlots
	}
	return d, nil
}

// inlineMax is the most a batch's records are decompressed to in one
// buffer; larger ones are parsed as a stream beyond it.
const inlineMax = 4 << 20

var inlineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// readUpTo reads r into buf, growing it, until r ends (full false) or buf
// holds max bytes (full true: r may have more).
func readUpTo(r io.Reader, buf []byte, max int) (data []byte, full bool, err error) {
	for {
		if len(buf) >= max {
			return buf, true, nil
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(max, 2*cap(buf)+64<<10)-len(buf))
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), max)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, false, nil
		case err != nil:
			return buf, false, err
		}
	}
}

// boundedReader reads r and fails with errTooLarge once more than left bytes
// came out of it.
type boundedReader struct {
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errTooLarge
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errTooLarge
	}
	return n, err
}

// zstdFrame decodes a zstd batch: at once (DecodeAll, the fast way) when
// the frame states a content size that fits inline, else as a stream.
type zstdFrame struct {
	raw []byte
	dec *zstd.Decoder // the streaming decoder, once stream was called
}

// decodeAll decodes into dst if the frame states a content size of at most
// max (full is true when it does not: stream instead).
func (z *zstdFrame) decodeAll(dst []byte, max int) ([]byte, bool, error) {
	var fh zstd.Header
	if err := fh.Decode(z.raw); err != nil {
		return dst, false, err
	}
	if !fh.HasFCS || fh.FrameContentSize > uint64(max) {
		return dst, true, nil
	}
	dst = slices.Grow(dst, int(fh.FrameContentSize))
	out, err := zstdDecoder().DecodeAll(z.raw, dst[:0:fh.FrameContentSize])
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		err = fmt.Errorf("content larger than the frame header says: %w", err)
	}
	return out, false, err
}

// stream switches to streaming decoding; Read then returns the content.
func (z *zstdFrame) stream() error {
	z.dec = zstdStreams.Get().(*zstd.Decoder)
	return z.dec.Reset(bytes.NewReader(z.raw))
}

func (z *zstdFrame) Read(p []byte) (int, error) { return z.dec.Read(p) }

func (z *zstdFrame) close() {
	if z.dec != nil {
		z.dec.Reset(nil)
		zstdStreams.Put(z.dec)
		z.dec = nil
	}
}

// zstdDecoder decodes whole frames (DecodeAll) into capped buffers.
var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		panic(err) // only on invalid options
	}
	return d
})

var lz4Readers = sync.Pool{New: func() any { return lz4.NewReader(nil) }}

// zstdStreams are pooled streaming zstd decoders (one goroutine each, a
// bounded window).
var zstdStreams = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderLowmem(true))
	if err != nil {
		panic(err) // only on invalid options
	}
	return d
}}

// xerialMagic starts a snappy stream in the xerial framing the Java client
// writes (then a 4-byte version, a 4-byte compatible version, and chunks of
// a 4-byte big-endian length and a raw snappy block).
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderLen = 16

// decodeSnappy decodes raw snappy or xerial-framed snappy into dst (grown to
// the decoded size), after checking that the sizes the blocks claim
// add up to at most limit (xerial.Decode would allocate whatever a block
// header claims, up to 4 GiB, before finding out it lies).
func decodeSnappy(dst, src []byte, limit int) ([]byte, error) {
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
	return xerial.DecodeCapped(slices.Grow(dst[:0], total)[:0], src)
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
	visit := func(_ int32, tsDelta, offDelta int64) bool {
		ts := h.FirstTimestamp + tsDelta
		if h.TimestampType() == 1 {
			ts = h.MaxTimestamp
		}
		return fn(h.BaseOffset+offDelta, ts)
	}
	if d.r != nil {
		err = streamRecords(d.r, h.NumRecords, visit)
	} else {
		_, err = sliceRecords(d.data, h.NumRecords, visit)
	}
	if errors.Is(err, ErrInvalidRecord) {
		err = fmt.Errorf("%w: %w", ErrCorruptBatch, err) // stored batches were valid: corrupt since
	}
	return err
}

// WithRecords calls fn with the records section of batch b (the records,
// decompressed within limit bytes; limit <= 0: DefaultMaxDecompressedBytes),
// for callers that read records themselves, such as the broker's trace
// spans. b must have passed ValidateBatch. records is valid only until fn
// returns.
func WithRecords(b []byte, limit int, fn func(numRecords int32, records []byte)) error {
	h, err := parseBatchHeader(b)
	if err != nil {
		return err
	}
	d, err := recordsData(b, h, limit)
	if err != nil {
		return err
	}
	defer d.release()
	data, err := d.all()
	if err != nil {
		return err
	}
	fn(h.NumRecords, data)
	return nil
}
