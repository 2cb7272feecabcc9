package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/kafkatest"
)

// TestServeGateway: `spool serve` mounts the gateway on its HTTP listener as
// a Kafka client of the embedded broker, and shuts down cleanly with an SSE
// stream open.
func TestServeGateway(t *testing.T) {
	dir := t.TempDir()
	addr, out := runServeCmd(t, dir)
	defer out.cancel() // on an early failure; the end of the test stops it and waits
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "web", Value: []byte(`"first"`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	base := "http://" + out.httpAddr
	resp, err := http.Post(base+"/api/topics/web/records", "application/json", strings.NewReader(`{"records":[{"value":{"n":2}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"offset":1`) {
		t.Fatalf("produce over HTTP: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `spool_gateway_produced_records_total{kind="record"} 1`) {
		t.Fatalf("/metrics lacks the gateway's produced records:\n%.3000s", body)
	}
	// The request listing, and the console's pages on the in-process
	// gateway and lookback.
	for path, want := range map[string]string{"/api/requests": `{"requests":[]}`, "/ui/requests": "0 requests shown",
		"/ui/lookback": "events archived"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s: %d, want %q in:\n%.2000s", path, resp.StatusCode, want, body)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/topics/web/events?from=earliest", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var seen []string
	for len(seen) < 2 && sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			seen = append(seen, v)
		}
	}
	if len(seen) != 2 || !strings.Contains(seen[0], `"value":"first"`) || !strings.Contains(seen[1], `"value":{"n":2}`) {
		t.Fatalf("SSE records: %v", seen)
	}
	start := time.Now()
	if err := out.stop(); err != nil {
		t.Fatalf("serve with an open stream: %v", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("shutdown took %v with an SSE stream open; it should end streams at once", d)
	}
}

func TestServeGatewayNeedsTokensOffLoopback(t *testing.T) {
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--http", "0.0.0.0:0", "--log-level", "error"})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "needs tokens") {
		t.Fatalf("serve on 0.0.0.0 without tokens: %v, want a refusal naming tokens", err)
	}
}

// TestGatewayCommand: `spool gateway --brokers` serves the gateway against
// another cluster (kfake here), with /metrics and /healthz.
func TestGatewayCommand(t *testing.T) {
	addrs := kafkatest.StartKfake(t)
	kafkatest.CreateTopic(t, addrs, "alone", 1)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	root := newRootCmd()
	root.SetOut(pw)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"gateway", "--brokers", strings.Join(addrs, ","), "--http", "127.0.0.1:0",
		"--store", filepath.Join(t.TempDir(), "gw.db"), "--log-level", "error"})
	go func() {
		err := root.ExecuteContext(ctx)
		pw.Close()
		done <- err
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("spool gateway: %v", err)
		}
	}()
	sc := bufio.NewScanner(pr)
	var base string
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), "gateway on "); ok {
			base, _, _ = strings.Cut(rest, " ")
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if base == "" {
		t.Fatal("spool gateway did not print its address")
	}
	resp, err := http.Post(base+"/api/topics/alone/records", "application/json", strings.NewReader(`{"records":[{"value":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("produce: %d", resp.StatusCode)
	}
	if n := len(kafkatest.ReadAll(t, addrs, "alone")); n != 1 {
		t.Fatalf("%d records, want 1", n)
	}
	for _, p := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(base + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
}
