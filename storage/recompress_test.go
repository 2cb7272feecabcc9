package storage

import (
	"bytes"
	"testing"
)

// Recompress turns a batch of any codec into any other: the result is a
// valid batch (length, CRC) in the target codec whose records and header
// fields are the original's, and that storage appends and reads back.
func TestRecompress(t *testing.T) {
	codecs := []int8{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd}
	for _, from := range codecs {
		orig := makeBatch(t, batchSpec{n: 5, valueSize: 300, firstTS: 1000, codec: from, producerID: 7, seq: 3})
		oh := mustHeader(t, orig)
		od, err := recordsData(orig, oh, 0)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := od.all()
		if err != nil {
			t.Fatal(err)
		}
		origRecs := bytes.Clone(recs)
		od.release()
		for _, to := range codecs {
			out, err := Recompress(bytes.Clone(orig), Codec(to), 0)
			if err != nil {
				t.Fatalf("%d -> %d: %v", from, to, err)
			}
			h, err := ValidateBatch(out)
			if err != nil {
				t.Fatalf("%d -> %d: result invalid: %v", from, to, err)
			}
			if h.Compression() != to {
				t.Fatalf("%d -> %d: codec %d", from, to, h.Compression())
			}
			if h.NumRecords != oh.NumRecords || h.ProducerID != 7 || h.BaseSequence != 3 || h.FirstTimestamp != oh.FirstTimestamp || h.MaxTimestamp != oh.MaxTimestamp || h.LastOffsetDelta != oh.LastOffsetDelta {
				t.Fatalf("%d -> %d: header %+v, was %+v", from, to, h, oh)
			}
			d, err := recordsData(out, h, 0)
			var got []byte
			if err == nil {
				got, err = d.all()
			}
			if err != nil || !bytes.Equal(got, origRecs) {
				t.Fatalf("%d -> %d: records differ (%v)", from, to, err)
			}
			d.release()
			if from == to && !bytes.Equal(out, orig) {
				t.Fatalf("%d -> %d: same codec rewrote the batch", from, to)
			}
		}
	}
	if _, err := Recompress([]byte("short"), CodecZstd, 0); err == nil {
		t.Fatal("recompressed an invalid batch")
	}
	// The decompression bound holds: a batch whose records decompress past
	// the limit is refused, not recompressed.
	big := makeBatch(t, batchSpec{n: 4, valueSize: 4000, firstTS: 1, codec: codecGzip})
	if _, err := Recompress(big, CodecZstd, 1000); err == nil {
		t.Fatal("recompressed past the decompression limit")
	}
}

// retention.ms=0 and retention.bytes=0 (RetentionZero) delete every closed
// segment; the zero value of the fields keeps meaning the default.
func TestRetentionZero(t *testing.T) {
	for _, cfg := range []LogConfig{
		{SegmentBytes: 1024, RetentionMs: RetentionZero, RetentionBytes: -1},
		{SegmentBytes: 1024, RetentionMs: -1, RetentionBytes: RetentionZero},
		{SegmentBytes: 1024}, // defaults: 7 days, no size limit
	} {
		s := openStore(t, NewMemFS(), "/data")
		l, err := s.CreateLog(tp0, cfg)
		if err != nil {
			t.Fatal(err)
		}
		now := s.opts.Now()
		for i := range 3 {
			mustAppend(t, l, makeBatch(t, batchSpec{n: 1, valueSize: 700, firstTS: now.UnixMilli() - 10 + int64(i)}))
		}
		want := 2
		if cfg.RetentionMs == 0 {
			want = 0
		}
		if n, err := l.EnforceRetention(now); n != want || err != nil {
			t.Fatalf("%+v: deleted %d segments (%v), want %d", cfg, n, err, want)
		}
	}
}

// BenchmarkRecompress: the CPU a compression.type costs per batch, for a
// 64-record batch of 1 KiB values produced with snappy. "none->none" is the
// baseline: validation only, the batch is kept.
func BenchmarkRecompress(b *testing.B) {
	src := makeBatch(b, batchSpec{n: 64, valueSize: 1024, firstTS: 1, codec: codecSnappy})
	for _, c := range []struct {
		name string
		to   Codec
	}{{"snappy->snappy(kept)", CodecSnappy}, {"snappy->none", CodecNone}, {"snappy->gzip", CodecGzip}, {"snappy->lz4", CodecLZ4}, {"snappy->zstd", CodecZstd}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(64 * 1024)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Recompress(src, c.to, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
