package gateway_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/spooltest"
)

// BenchmarkHTTPProduce: POST /api/topics/{topic}/records through keep-alive
// connections against an in-process Spool broker (fsync=always), one op per
// request. scripts/bench-gateway.sh measures the same against `spool serve`
// next to `spool bench`.
func BenchmarkHTTPProduce(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run("records="+itoa(batch), func(b *testing.B) {
			srv := spooltest.Start(b, spooltest.WithPartitions(8))
			addrs := []string{srv.Addr()}
			kafkatest.CreateTopic(b, addrs, "bench", 8)
			g := startGateway(b, addrs)
			recs := make([]string, batch)
			for i := range recs {
				recs[i] = `{"value":"` + strings.Repeat("x", 98) + `"}`
			}
			body := []byte(`{"records":[` + strings.Join(recs, ",") + `]}`)
			url := g.URL + "/api/topics/bench/records"
			tr := &http.Transport{MaxIdleConnsPerHost: 1024}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr}
			b.SetBytes(int64(100 * batch))
			b.ReportAllocs()
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := cl.Post(url, "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
