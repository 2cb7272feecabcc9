package gatewayprom_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/gateway/gatewayprom"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// TestMetrics drives a gateway on kfake and reads the collectors.
func TestMetrics(t *testing.T) {
	addrs := kafkatest.StartKfake(t)
	kafkatest.CreateTopic(t, addrs, "m", 1)
	reg := prometheus.NewRegistry()
	h, err := gatewayprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Brokers: addrs, StorePath: filepath.Join(t.TempDir(), "g.db"), Hooks: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	post := func(path, body string) int {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	post("/api/topics/m/records", `{"records":[{"value":1},{"value":2}]}`)
	post("/api/topics/m/records", `{"records":[`)
	if code := post("/api/commands/m", `{}`); code != 202 {
		t.Fatalf("submit %d", code)
	}
	// Find the request id from the command record and reply to it.
	recs := kafkatest.ReadAll(t, addrs, "m")
	var id string
	for _, r := range recs {
		for _, hd := range r.Headers {
			if hd.Key == "correlation_id" {
				id = string(hd.Value)
			}
		}
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(addrs...))
	defer cl.Close()
	cl.ProduceSync(context.Background(), &kgo.Record{Topic: "spool.gateway.replies", Value: []byte(`1`),
		Headers: []kgo.RecordHeader{{Key: "correlation_id", Value: []byte(id)}}})
	req, _ := http.NewRequest("GET", srv.URL+"/api/requests/"+id, nil)
	req.Header.Set("Prefer", "wait=10")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("poll: %v %v", resp, err)
	}
	resp.Body.Close()

	want := `
# HELP spool_gateway_produced_records_total Records the broker acknowledged, by kind: record, event, command.
# TYPE spool_gateway_produced_records_total counter
spool_gateway_produced_records_total{kind="command"} 1
spool_gateway_produced_records_total{kind="record"} 2
# HELP spool_gateway_requests_finished_total Async requests this instance moved to a final state, by state.
# TYPE spool_gateway_requests_finished_total counter
spool_gateway_requests_finished_total{state="succeeded"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "spool_gateway_produced_records_total", "spool_gateway_requests_finished_total"); err != nil {
		t.Fatal(err)
	}
	for route, code := range map[string]string{"/api/topics/{topic}/records": "200", "/api/commands/{topic}": "202", "/api/requests/{id}": "200"} {
		if v := testutil.ToFloat64(mustCounter(t, reg, route, code)); v < 1 {
			t.Errorf("requests_total{route=%q,code=%s} = %v", route, code, v)
		}
	}
	if v := testutil.ToFloat64(mustCounter(t, reg, "/api/topics/{topic}/records", "400")); v != 1 {
		t.Errorf("400s: %v", v)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, route, code string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "spool_gateway_http_requests_total" {
			continue
		}
		for _, m := range mf.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["code"] == code {
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
				c.Add(m.GetCounter().GetValue())
				return c
			}
		}
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	return c
}
