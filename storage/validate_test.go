package storage_test

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/spoolmq/spool/internal/abuse"
	"github.com/spoolmq/spool/storage"
)

// No codec allocates more than the bound for a batch's records, whatever
// the batch claims: before the bound, xerial.Decode allocated the 4 GiB a
// snappy block header claims, and gzip, lz4 and zstd output was limited
// only at 256 MiB.
func TestDecompressionIsBounded(t *testing.T) {
	const limit = 1 << 20
	now := time.Now()
	cases := map[string]abuse.Batch{
		"snappy claiming 4 GiB":        abuse.SnappyLiar(now.UnixMilli(), false),
		"xerial snappy claiming 4 GiB": abuse.SnappyLiar(now.UnixMilli(), true),
	}
	for name, codec := range abuse.Codecs {
		cases[name+" bomb"] = abuse.Bomb(codec, now.UnixMilli(), 64*limit)
	}
	for name, b := range cases {
		enc := b.Encode()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := storage.ValidateRecords(enc, storage.RecordRules{MaxDecompressedBytes: limit, Now: now}, false)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, storage.ErrCorruptBatch) {
			t.Errorf("%s: %v, want ErrCorruptBatch", name, err)
		}
		// The bound (twice: the output buffer grows by doubling) plus the
		// decoders' own state, which does not depend on the input's
		// claims (lz4 blocks of up to 4 MiB, a zstd window of up to 8 MiB
		// here).
		if got := after.TotalAlloc - before.TotalAlloc; got > 2*limit+16<<20 {
			t.Errorf("%s: allocated %d bytes to refuse it, bound %d", name, got, limit)
		}
	}
}

// ValidateRecords accepts what it should: every codec's output under the
// bound, timestamps inside the bounds.
func TestValidateRecordsAccepts(t *testing.T) {
	now := time.Now()
	rules := storage.RecordRules{MaxDecompressedBytes: 1 << 20, Now: now, TimestampBeforeMax: time.Minute, TimestampAfterMax: time.Minute}
	for name, codec := range abuse.Codecs {
		b := abuse.Plain(now.UnixMilli(), 100, 1000)
		b.Attributes, b.Records = codec, abuse.Compress(codec, b.Records)
		if _, err := storage.ValidateRecords(b.Encode(), rules, false); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Larger than what is decompressed into one buffer (4 MiB): the rest
	// is parsed as a stream, with the same result.
	for name, codec := range abuse.Codecs {
		b := abuse.Plain(now.UnixMilli(), 6, 1<<20)
		b.Attributes, b.Records = codec, abuse.Compress(codec, b.Records)
		if _, err := storage.ValidateRecords(b.Encode(), storage.RecordRules{Now: now}, false); err != nil {
			t.Errorf("%s, 6 MiB of records: %v", name, err)
		}
		bad := abuse.Plain(now.UnixMilli(), 7, 1<<20)
		bad.NumRecords, bad.LastOffsetDelta = 8, 7
		bad.Attributes, bad.Records = codec, abuse.Compress(codec, bad.Records)
		if _, err := storage.ValidateRecords(bad.Encode(), storage.RecordRules{Now: now}, false); !errors.Is(err, storage.ErrInvalidRecord) {
			t.Errorf("%s, 7 MiB of records claimed as 8: %v", name, err)
		}
	}
	if _, err := storage.ValidateRecords(abuse.Plain(now.Add(-2*time.Minute).UnixMilli(), 1, 1).Encode(), rules, false); !errors.Is(err, storage.ErrInvalidTimestamp) {
		t.Errorf("timestamp two minutes old with a one-minute bound: %v", err)
	}
	if _, err := storage.ValidateRecords(abuse.Plain(now.Add(-2*time.Minute).UnixMilli(), 1, 1).Encode(), rules, true); err != nil {
		t.Errorf("same with LogAppendTime: %v", err)
	}
}

// BenchmarkValidateRecords is the cost of record validation per batch of
// 100 records of 1 KiB (what a produce of a default franz-go batch pays).
func BenchmarkValidateRecords(b *testing.B) {
	now := time.Now()
	rules := storage.RecordRules{Now: now, TimestampAfterMax: time.Hour}
	for _, name := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		batch := abuse.Plain(now.UnixMilli(), 100, 1024)
		raw := len(batch.Records)
		if c := abuse.Codecs[name]; c != 0 {
			batch.Attributes, batch.Records = c, abuse.Compress(c, batch.Records)
		}
		enc := batch.Encode()
		b.Run("codec="+name, func(b *testing.B) {
			b.SetBytes(int64(raw))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := storage.ValidateRecords(enc, rules, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The records of a compressed batch are held to the same rules as an
// uncompressed one's (the stream parser and the slice parser agree).
func TestValidateRecordsCompressedLies(t *testing.T) {
	now := time.Now()
	rules := storage.RecordRules{Now: now}
	rec := func(off int32) []byte { return abuse.Record(off, 0, []byte("v")) }
	badLength := rec(0)
	badLength[0] = 2
	cat := func(rs ...[]byte) (out []byte) {
		for _, r := range rs {
			out = append(out, r...)
		}
		return out
	}
	for name, c := range map[string]struct {
		n    int32
		recs []byte
	}{
		"fewer records than claimed": {3, cat(rec(0), rec(1))},
		"more records than claimed":  {1, cat(rec(0), rec(1))},
		"offset deltas out of order": {2, cat(rec(1), rec(0))},
		"record length too short":    {1, badLength},
		"trailing garbage":           {1, cat(rec(0), []byte{1, 2, 3, 4, 5, 6, 7, 8})},
		"no records":                 {5, nil},
	} {
		for codecName, codec := range abuse.Codecs {
			b := abuse.Batch{Attributes: codec, FirstTimestamp: now.UnixMilli(), NumRecords: c.n, LastOffsetDelta: c.n - 1,
				ProducerID: -1, Records: abuse.Compress(codec, c.recs)}
			if _, err := storage.ValidateRecords(b.Encode(), rules, false); !errors.Is(err, storage.ErrInvalidRecord) {
				t.Errorf("%s, %s: %v, want ErrInvalidRecord", name, codecName, err)
			}
		}
	}
}
