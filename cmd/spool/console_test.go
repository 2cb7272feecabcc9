package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestConsoleMetricsProxy: --metrics-url names the metrics endpoint
// itself; the console's scrape of /metrics reaches exactly that URL.
func TestConsoleMetricsProxy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prom/metrics" || r.URL.RawQuery != "x=1" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "spool_broker_requests_total{api_key=\"0\"} 7\n")
	}))
	defer srv.Close()
	h, err := metricsProxy(srv.URL + "/prom/metrics?x=1")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `api_key="0"} 7`) {
		t.Fatalf("proxied scrape: %d %s", rec.Code, rec.Body)
	}
	if h, err := metricsProxy(""); h != nil || err != nil {
		t.Fatalf("no URL: %v %v", h, err)
	}
	for _, bad := range []string{"127.0.0.1:8080/metrics", "ftp://host/metrics", "http:///metrics"} {
		_, err := metricsProxy(bad)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "--metrics-url") {
			t.Errorf("%q: %v (exit %d)", bad, err, exitCode(err))
		}
	}
}
