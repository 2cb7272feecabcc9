package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

// benchArchive fills an embedded archive with n 1 KiB order events: 8
// partitions, 10,000 customer keys, 3 events per correlation id (an
// order, a payment caused by it, a receipt caused by the payment).
// CONSOLE_BENCH_DIR keeps it between runs.
func benchArchive(b *testing.B, addrs []string, n int64) (lookback.Store, *lookback.Service) {
	b.Helper()
	ctx := context.Background()
	dir := os.Getenv("CONSOLE_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	st, err := lookback.OpenSQLite(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	have, err := st.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	pad := strings.Repeat("x", 800)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	types := []string{"order.placed", "payment.requested", "payment.completed"}
	for off := have.Events; off < n; {
		rs := make([]lookback.Record, 0, 5000)
		for range 5000 {
			flow := off / 3
			step := off % 3
			id := fmt.Sprintf("ev-%d", off)
			hs := []lookback.Header{{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte(id)},
				{Key: "ce_type", Value: []byte(types[step])}, {Key: "ce_source", Value: []byte("/shop")},
				{Key: "content-type", Value: []byte("application/json")},
				{Key: "correlation_id", Value: []byte(fmt.Sprintf("flow-%d", flow))}}
			if step > 0 {
				hs = append(hs, lookback.Header{Key: "causation_id", Value: []byte(fmt.Sprintf("ev-%d", off-1))})
			}
			rs = append(rs, lookback.Record{Topic: "orders", Partition: int32(flow % 8), Offset: off,
				Timestamp: t0.Add(time.Duration(off) * time.Millisecond), Key: []byte(fmt.Sprintf("customer-%05d", flow%10000)),
				Headers: hs, Value: []byte(fmt.Sprintf(`{"order":%d,"step":%d,"total":%d.50,"pad":"%s"}`, flow, step, off%500, pad))})
			off++
		}
		if err := st.Append(ctx, rs); err != nil {
			b.Fatal(err)
		}
	}
	svc, err := lookback.New(lookback.Config{Brokers: addrs, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	return st, svc
}

// BenchmarkLookbackPages measures the lookback pages on an archive of
// CONSOLE_BENCH_EVENTS events (default 200,000): each page against the
// lookback API call it makes (the baseline, in the same run), so the
// difference is the console's own cost (ACL filter, decoding, rendering).
// It reports p50 and p99.
func BenchmarkLookbackPages(b *testing.B) {
	n := int64(200_000)
	if v := os.Getenv("CONSOLE_BENCH_EVENTS"); v != "" {
		fmt.Sscan(v, &n)
	}
	addrs := kafkatest.StartKfake(b)
	_, svc := benchArchive(b, addrs, n)
	c, _ := startConsole(b, addrs, console.Config{Lookback: svc.Handler()})
	api, ui := svc.Handler(), c.Handler()
	flows := n / 3
	for _, bc := range []struct {
		name string
		h    http.Handler
		path func(i int) string
	}{
		{"stats/api", api, func(int) string { return "/api/lookback/stats" }},
		{"search-type/api", api, func(int) string { return "/api/lookback/events?type=payment.completed&limit=50" }},
		{"search-type/page", ui, func(int) string { return "/ui/lookback?type=payment.completed" }},
		{"search-key/api", api, func(i int) string {
			return fmt.Sprintf("/api/lookback/events?key=customer-%05d&limit=50", i*7919%10000)
		}},
		{"search-key/page", ui, func(i int) string { return fmt.Sprintf("/ui/lookback?key=customer-%05d", i*7919%10000) }},
		{"flow/api", api, func(i int) string { return fmt.Sprintf("/api/lookback/flows/flow-%d", int64(i)*7919%flows) }},
		{"flow/page", ui, func(i int) string { return fmt.Sprintf("/ui/lookback/flows/flow-%d", int64(i)*7919%flows) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				rec := httptest.NewRecorder()
				bc.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, bc.path(i), nil))
				lat = append(lat, time.Since(start))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", bc.path(i), rec.Code, rec.Body)
				}
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
