package lookback

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

// benchEvent builds a 1 KiB CloudEvent like an order service's: a JSON
// payload with ids, amounts, line items and an address, and the envelope
// headers with fresh UUIDs.
func benchEvent(rng *rand.Rand, topic string, p int32, off int64, ts time.Time) Record {
	id := uuid.New().String()
	corr := fmt.Sprintf("flow-%d", off/4)
	cust := fmt.Sprintf("customer-%06d", rng.IntN(100000))
	items := ""
	for i := range 6 {
		if i > 0 {
			items += ","
		}
		items += fmt.Sprintf(`{"sku":"SKU-%05d","name":"Product %d","qty":%d,"unit_price":%d.%02d}`,
			rng.IntN(50000), rng.IntN(1000), 1+rng.IntN(5), rng.IntN(500), rng.IntN(100))
	}
	v := fmt.Sprintf(`{"order_id":"%s","customer":{"id":"%s","email":"%s@example.com","tier":"gold"},`+
		`"items":[%s],"total":%d.%02d,"currency":"EUR","shipping":{"street":"%d Main Street","city":"Springfield",`+
		`"postcode":"%05d","country":"DE"},"placed_at":"%s","channel":"web","notes":"leave at the door, ring twice"}`,
		uuid.New().String(), cust, cust, items, rng.IntN(5000), rng.IntN(100), rng.IntN(999), rng.IntN(99999), ts.Format(time.RFC3339Nano))
	for len(v) < 1024-150 {
		v = v[:len(v)-1] + `,"x":"` + fmt.Sprint(rng.Uint64()) + `"}`
	}
	return Record{Topic: topic, Partition: p, Offset: off, Timestamp: ts, Key: []byte(cust), Value: []byte(v),
		Headers: []Header{
			{"ce_specversion", []byte("1.0")}, {"ce_id", []byte(id)}, {"ce_type", []byte("order.placed")},
			{"ce_source", []byte("/orders")}, {"ce_time", []byte(ts.Format(time.RFC3339Nano))},
			{"content-type", []byte("application/json")}, {"correlation_id", []byte(corr)},
		}}
}

func rawSize(r Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// benchStores are the embedded stores the benchmarks compare.
var benchStores = []struct {
	name string
	open func(ctx context.Context, dir string) (Store, error)
}{
	{"sqlite", OpenSQLite},
	{"pebble", func(ctx context.Context, dir string) (Store, error) { return OpenPebble(ctx, dir) }},
}

// BenchmarkAppend measures archive ingest: batches of 1000 1 KiB
// CloudEvents, each Append durable (fsynced) before it returns, as the
// archiver does before committing. It reports events/s and the size on
// disk relative to the raw bytes.
func BenchmarkAppend(b *testing.B) {
	for _, st := range benchStores {
		b.Run("store="+st.name, func(b *testing.B) { benchAppend(b, st.open) })
	}
}

func benchAppend(b *testing.B, open func(context.Context, string) (Store, error)) {
	ctx := context.Background()
	dir := b.TempDir()
	s, err := open(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	const batch = 1000
	batches := make([][]Record, 20)
	ts := time.Now()
	var off int64
	for i := range batches {
		for range batch {
			r := benchEvent(rng, "orders", int32(off%8), off, ts.Add(time.Duration(off)*time.Millisecond))

			batches[i] = append(batches[i], r)
			off++
		}
	}
	b.ResetTimer()
	cpu0 := cpuTime(b)
	var total int64
	var rawTotal int64
	for i := range b.N {
		src := batches[i%len(batches)]
		rs := make([]Record, len(src))
		for j, r := range src {
			r.Offset = int64(i*batch + j)
			rs[j] = r
			rawTotal += int64(rawSize(r))
		}
		if err := s.Append(ctx, rs); err != nil {
			b.Fatal(err)
		}
		total += batch
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(total), "cpu-ns/event")
	b.ReportMetric(float64(dirSize(dir))/float64(rawTotal), "disk/raw")
}

// cpuTime is the process's user and system CPU time in nanoseconds: on a
// shared machine, CPU per event is a steadier measure than wall time
// (it includes Pebble's background flushes and compactions).
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchArchive opens the archive of BenchmarkSearch: LOOKBACK_BENCH_DIR/
// <store> if set (built once and reused), else a temporary directory,
// filled to LOOKBACK_BENCH_EVENTS events (default 200,000) of benchEvent
// over 100,000 customer keys, four events per correlation id.
func benchArchive(b *testing.B, name string, open func(context.Context, string) (Store, error)) (Store, int64) {
	ctx := context.Background()
	dir := os.Getenv("LOOKBACK_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		dir = filepath.Join(dir, name)
	}
	want := int64(200_000)
	if v := os.Getenv("LOOKBACK_BENCH_EVENTS"); v != "" {
		fmt.Sscan(v, &want)
	}
	s, err := open(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(st.Events), 7))
	ts := time.Now().Add(-time.Duration(want) * time.Millisecond)
	start := time.Now()
	for off := st.Events; off < want; {
		var rs []Record
		for range 5000 {
			rs = append(rs, benchEvent(rng, "orders", int32(off%8), off, ts.Add(time.Duration(off)*time.Millisecond)))
			off++
		}
		if err := s.Append(ctx, rs); err != nil {
			b.Fatal(err)
		}
		if off%500_000 == 0 {
			b.Logf("archive: %d events (%.0f/s)", off, float64(off-st.Events)/time.Since(start).Seconds())
		}
	}
	return s, want
}

// BenchmarkSearch measures searches by key and by correlation id (newest
// first, limit 100) in a large archive, reporting p50 and p99 latency.
func BenchmarkSearch(b *testing.B) {
	for _, st := range benchStores {
		if only := os.Getenv("LOOKBACK_BENCH_STORE"); only != "" && only != st.name {
			continue
		}
		b.Run("store="+st.name, func(b *testing.B) { benchSearch(b, st.name, st.open) })
	}
}

func benchSearch(b *testing.B, name string, open func(context.Context, string) (Store, error)) {
	s, n := benchArchive(b, name, open)
	defer s.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		name string
		q    func() Query
	}{
		{"key", func() Query {
			return Query{Key: []byte(fmt.Sprintf("customer-%06d", rng.IntN(100000))), HasKey: true, Limit: 100}
		}},
		{"correlation", func() Query { return Query{CorrelationID: fmt.Sprintf("flow-%d", rng.Int64N(n/4)), Limit: 100} }},
	} {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			found := 0
			ps, _ := s.(*pebbleStore)
			var dec0 int64
			if ps != nil {
				dec0 = ps.decompressed.Load()
			}
			cpu0 := cpuTime(b)
			for b.Loop() {
				q := c.q()
				t := time.Now()
				p, err := s.Search(ctx, q)
				lat = append(lat, time.Since(t))
				if err != nil {
					b.Fatal(err)
				}
				found += len(p.Events)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(found)/float64(len(lat)), "events/search")
			b.ReportMetric(float64(n), "archive-events")
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(len(lat)), "cpu-ns/search")
			if ps != nil {
				b.ReportMetric(float64(ps.decompressed.Load()-dec0)/float64(len(lat)), "decompressed-B/search")
			}
		})
	}
}

// BenchmarkAppendLogBaseline is the baseline for BenchmarkAppend: the same
// batches encoded and compressed into blocks the same way, appended to a
// plain file and fsynced once per batch, with no index at all (the cost
// floor of an append-only body log). Blocks are compressed in parallel,
// as the stores do.
func BenchmarkAppendLogBaseline(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	const batch = 1000
	var rs []Record
	for off := range int64(batch) {
		rs = append(rs, benchEvent(rng, "orders", int32(off%8), off, time.Now()))
	}
	b.ResetTimer()
	cpu0 := cpuTime(b)
	var raw, stored int64
	for range b.N {
		var raws [][]byte
		var blk []byte
		for i, r := range rs {
			blk = appendBody(blk, r.Headers, r.Value)
			if len(blk) >= blockTarget || i == len(rs)-1 {
				raws = append(raws, blk)
				blk = nil
			}
		}
		for i, c := range compressAll(raws) {
			raw, stored = raw+int64(len(raws[i])), stored+int64(len(c))
			if _, err := f.Write(c); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N*batch), "cpu-ns/event")
	b.ReportMetric(float64(stored)/float64(raw), "disk/raw")
}
