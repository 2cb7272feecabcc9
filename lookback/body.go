package lookback

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// Bodies. An event's headers and value are stored as its body; the bodies
// of one Append are concatenated into blocks of about blockTarget raw bytes
// and each block is compressed as one zstd frame. Events that arrive
// together look alike (same topics, types, JSON shapes), so a block
// compresses far better than each body alone would. An event row names its
// block and the byte range of its body inside the decompressed block.
//
// Body layout (part of the on-disk format):
//
//	uvarint  header count
//	repeated: uvarint key length, key, uvarint value length, value
//	byte     1 if the value is null (a tombstone), else 0
//	rest     the value
const blockTarget = 64 << 10

var (
	encOnce sync.Once
	enc     *zstd.Encoder
	dec     *zstd.Decoder
)

func codecs() (*zstd.Encoder, *zstd.Decoder) {
	encOnce.Do(func() {
		var err error
		// EncodeAll runs on the caller's goroutine; the concurrency is
		// how many calls may run at once (compressAll runs one per core).
		// SpeedFastest: on these blocks it compresses as well as
		// SpeedDefault (0.190x against 0.192x of raw, benchEvent) at less
		// than half the CPU, and compression is most of an append's CPU.
		enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
		if err != nil {
			panic(err)
		}
		dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
		if err != nil {
			panic(err)
		}
	})
	return enc, dec
}

func compress(raw []byte) []byte {
	e, _ := codecs()
	return e.EncodeAll(raw, make([]byte, 0, len(raw)/3))
}

// compressAll compresses each of raws, in parallel on up to GOMAXPROCS
// goroutines: compression is most of an append's CPU, and the blocks of
// one append are independent.
func compressAll(raws [][]byte) [][]byte {
	out := make([][]byte, len(raws))
	workers := min(len(raws), runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i, r := range raws {
			out[i] = compress(r)
		}
		return out
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := int(next.Add(1) - 1); j < len(raws); j = int(next.Add(1) - 1) {
				out[j] = compress(raws[j])
			}
		})
	}
	wg.Wait()
	return out
}

// splitBlocks cuts rs into runs of about blockTarget raw bytes (at most
// 1<<16 records each, the seq layout's limit).
func splitBlocks(rs []Record) [][]Record {
	var out [][]Record
	for len(rs) > 0 {
		n, raw := 0, 0
		for n < len(rs) && n < 1<<16 && (n == 0 || raw < blockTarget) {
			raw += len(rs[n].Value) + len(rs[n].Key) + 64
			for _, h := range rs[n].Headers {
				raw += len(h.Key) + len(h.Value)
			}
			n++
		}
		out = append(out, rs[:n])
		rs = rs[n:]
	}
	return out
}

func decompress(data []byte) ([]byte, error) {
	_, d := codecs()
	out, err := d.DecodeAll(data, nil)
	if err != nil {
		return nil, fmt.Errorf("lookback: corrupt block: %w", err)
	}
	return out, nil
}

// appendBody appends r's body to b.
func appendBody(b []byte, hs []Header, value []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(hs)))
	for _, h := range hs {
		b = binary.AppendUvarint(b, uint64(len(h.Key)))
		b = append(b, h.Key...)
		b = binary.AppendUvarint(b, uint64(len(h.Value)))
		b = append(b, h.Value...)
	}
	if value == nil {
		return append(b, 1)
	}
	b = append(b, 0)
	return append(b, value...)
}

var errBody = errors.New("lookback: corrupt event body")

// parseBody decodes a body; the returned slices are copies.
func parseBody(b []byte) ([]Header, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, nil, errBody
	}
	b = b[k:]
	hs := make([]Header, 0, n)
	next := func() ([]byte, bool) {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, false
		}
		v := b[k : k+int(l)]
		b = b[k+int(l):]
		return v, true
	}
	for range n {
		key, ok := next()
		if !ok {
			return nil, nil, errBody
		}
		val, ok := next()
		if !ok {
			return nil, nil, errBody
		}
		hs = append(hs, Header{Key: string(key), Value: clone(val)})
	}
	if len(b) < 1 {
		return nil, nil, errBody
	}
	if b[0] == 1 {
		return hs, nil, nil
	}
	return hs, clone(b[1:]), nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
