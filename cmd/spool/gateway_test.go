package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
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
