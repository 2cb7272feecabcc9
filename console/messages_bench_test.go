package console_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
	"github.com/spoolmq/spool/spooltest"
)

// msgBenchRecord is record i of the benchmark's topic: a ~1 KiB JSON
// order of one of 100,000 customers (the key), as a CloudEvent.
func msgBenchRecord(rng *rand.Rand, i int64, ts time.Time) lookback.Record {
	cust := fmt.Sprintf("customer-%06d", rng.IntN(100_000))
	typ := []string{"order.placed", "order.paid", "order.shipped", "order.cancelled"}[i%4]
	var items strings.Builder
	for j := range 6 {
		if j > 0 {
			items.WriteByte(',')
		}
		fmt.Fprintf(&items, `{"sku":"SKU-%05d","qty":%d,"unit_price":%d.%02d}`, rng.IntN(50_000), 1+rng.IntN(5), rng.IntN(500), rng.IntN(100))
	}
	v := fmt.Sprintf(`{"order_id":"ord-%09d","customer":{"id":"%s","email":"%s@example.com"},"items":[%s],`+
		`"total":%d.%02d,"currency":"EUR","shipping":{"street":"%d Main Street","city":"Springfield","postcode":"%05d"},"notes":"ring twice %d"}`,
		i, cust, cust, items.String(), rng.IntN(5000), rng.IntN(100), rng.IntN(999), rng.IntN(99_999), rng.Uint64())
	return lookback.Record{Topic: "orders", Partition: int32(i % 8), Offset: i / 8, Timestamp: ts, Key: []byte(cust), Value: []byte(v),
		Headers: []lookback.Header{{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte(fmt.Sprintf("evt-%d", i))},
			{Key: "ce_type", Value: []byte(typ)}, {Key: "ce_source", Value: []byte("/orders")},
			{Key: "content-type", Value: []byte("application/json")}, {Key: "correlation_id", Value: []byte(fmt.Sprintf("flow-%d", i/4))}}}
}

// msgBenchArchive opens the benchmark's archive: MESSAGES_BENCH_DIR when
// set (built once, reused by later runs), else a temporary directory,
// filled to MESSAGES_BENCH_EVENTS records (default 1,000,000) of topic
// orders, one a millisecond ending now.
func msgBenchArchive(b *testing.B) (lookback.Store, int64, time.Time) {
	ctx := context.Background()
	dir := os.Getenv("MESSAGES_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	want := int64(1_000_000)
	if v := os.Getenv("MESSAGES_BENCH_EVENTS"); v != "" {
		fmt.Sscan(v, &want)
	}
	st, err := lookback.OpenSQLite(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	stats, err := st.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	first := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(uint64(stats.Events), 11))
	began := time.Now()
	for i := stats.Events; i < want; {
		rs := make([]lookback.Record, 0, 5000)
		for ; len(rs) < cap(rs) && i < want; i++ {
			rs = append(rs, msgBenchRecord(rng, i, first.Add(time.Duration(i)*time.Millisecond)))
		}
		if err := st.Append(ctx, rs); err != nil {
			b.Fatal(err)
		}
		if i%200_000 == 0 {
			b.Logf("archive: %d records (%.0f/s)", i, float64(i-stats.Events)/time.Since(began).Seconds())
		}
	}
	return st, want, first
}

// BenchmarkMessagesSearchArchive measures a search of the messages page
// with the lookback archive on, over a 1,000,000-record topic: the page's
// GET through the console (HTTP, the archive's API in process, the
// rendering of 50 records), p50 and p99 per search. The baseline, in the
// same run, is the archive's own API answering the same query (what the
// console adds is the difference). Benchmarks only: building the archive
// takes minutes (MESSAGES_BENCH_DIR keeps it for the next run).
func BenchmarkMessagesSearchArchive(b *testing.B) {
	st, n, first := msgBenchArchive(b)
	defer st.Close()
	addrs := kafkatest.StartKfake(b)
	kafkatest.CreateTopic(b, addrs, "orders", 8)
	svc, err := lookback.New(lookback.Config{Brokers: addrs, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	_, u := startConsole(b, addrs, console.Config{Lookback: svc.Handler()})
	rng := rand.New(rand.NewPCG(5, 6))
	cases := []struct {
		name  string
		query func() url.Values
	}{
		{"key", func() url.Values { return url.Values{"key": {fmt.Sprintf("customer-%06d", rng.IntN(100_000))}} }},
		{"type+hour", func() url.Values {
			from := first.Add(time.Duration(rng.Int64N(max(n-3_600_000, n/2))) * time.Millisecond)
			return url.Values{"type": {"order.paid"}, "from": {from.Format(time.RFC3339Nano)}, "to": {from.Add(time.Hour).Format(time.RFC3339Nano)}}
		}},
		{"key+text", func() url.Values {
			return url.Values{"key": {fmt.Sprintf("customer-%06d", rng.IntN(100_000))}, "q": {"Springfield"}}
		}},
		{"text-newest", func() url.Values { return url.Values{"q": {"ring twice"}} }},
	}
	for _, c := range cases {
		for _, via := range []string{"console", "api"} {
			b.Run(c.name+"/"+via, func(b *testing.B) {
				lat := make([]time.Duration, 0, b.N)
				found := 0
				for b.Loop() {
					q := c.query()
					var target string
					if via == "console" {
						target = u + "/ui/topics/orders/messages?" + q.Encode()
					} else {
						q.Set("topic", "orders")
						q.Set("limit", "50")
						target = "/api/lookback/events?" + q.Encode()
					}
					t0 := time.Now()
					body := benchGet(b, svc.Handler(), target)
					lat = append(lat, time.Since(t0))
					if via == "console" {
						if !strings.Contains(body, `data-source="lookback"`) {
							b.Fatalf("%s: not answered by the archive", target)
						}
						found += strings.Count(body, `class="msg-row"`)
					} else {
						found += strings.Count(body, `"offset":`)
					}
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(found)/float64(len(lat)), "records/search")
				b.ReportMetric(float64(n), "topic-records")
			})
		}
	}
}

// benchGet GETs target: a URL over HTTP, or an /api/ path served by h.
func benchGet(b *testing.B, h http.Handler, target string) string {
	if strings.HasPrefix(target, "/api/") {
		rec := httptestGet(h, target)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	resp, err := http.Get(target)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %s", target, resp.StatusCode, body)
	}
	return string(body)
}

// BenchmarkMessagesScan measures the broker scan the messages page runs
// for a filter without the archive: the scan stream of a payload filter
// that matches nothing, over a 200,000-record topic (8 partitions, 200-byte
// values) on the in-process Spool broker, read to its done event. The
// baseline, in the same run, is a plain franz-go consumer reading the same
// records from the start (what a scan cannot beat: it is that consumer
// plus the filter and the progress events).
func BenchmarkMessagesScan(b *testing.B) {
	const n = 200_000
	srv := spooltest.Start(b, spooltest.WithPartitions(8))
	addrs := []string{srv.Addr()}
	kafkatest.CreateTopic(b, addrs, "scan", 8)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("scan"))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; {
		rs := make([]*kgo.Record, 0, 10_000)
		for ; len(rs) < cap(rs); i++ {
			rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprintf("k-%d", i)),
				Value: []byte(fmt.Sprintf(`{"n":%d,"pad":"%0180d"}`, i, rng.Uint64()))})
		}
		if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	_, u := startConsole(b, addrs, console.Config{})
	b.Run("console-scan", func(b *testing.B) {
		for b.Loop() {
			resp, err := http.Get(u + "/ui/topics/scan/messages/scan?q=no-such-text")
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), "event: done") || !strings.Contains(string(body), "200,000</span> of 200,000 records read") {
				b.Fatalf("the scan did not read the topic: %.300s", body)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("kgo-consume-baseline", func(b *testing.B) {
		for b.Loop() {
			if got := len(kafkatest.ReadAll(b, addrs, "scan")); got != n {
				b.Fatalf("read %d records", got)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
