package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/spoolmq/spool/agent"
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

// BenchmarkAsyncRoundTrip: POST /api/commands -> agent.Reply -> GET with
// Prefer: wait, one op per round trip, against an in-process Spool broker.
func BenchmarkAsyncRoundTrip(b *testing.B) {
	srv := spooltest.Start(b, spooltest.WithPartitions(8))
	addrs := []string{srv.Addr()}
	kafkatest.CreateTopic(b, addrs, "rt", 8)
	g := startGateway(b, addrs)
	service(b, addrs, "rt", func(ctx context.Context, m *agent.Message) error {
		return agent.Reply(ctx, m, json.RawMessage(`{"ok":true}`))
	})
	tr := &http.Transport{MaxIdleConnsPerHost: 1024}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	once := func() error {
		resp, err := cl.Post(g.URL+"/api/commands/rt", "application/json", strings.NewReader(`{}`))
		if err != nil {
			return err
		}
		var st status
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		req, _ := http.NewRequest("GET", g.URL+"/api/requests/"+st.ID, nil)
		req.Header.Set("Prefer", "wait=10")
		resp, err = cl.Do(req)
		if err != nil {
			return err
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.State != "succeeded" {
			return fmt.Errorf("state %s", st.State)
		}
		return nil
	}
	if err := once(); err != nil { // warm: the service has joined
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := once(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roundtrips/s")
}
