package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// gw is a gateway under test behind an httptest server.
type gw struct {
	*gateway.Gateway
	URL   string
	addrs []string
	store string
}

// startGateway starts a gateway on addrs with its SQLite store in a temp
// dir (or cfg.StorePath when set), and fast loops for tests.
func startGateway(t testing.TB, addrs []string, mod ...func(*gateway.Config)) *gw {
	t.Helper()
	cfg := gateway.Config{
		Brokers:        addrs,
		StorePath:      filepath.Join(t.TempDir(), "gw.db"),
		ExpireInterval: 20 * time.Millisecond,
		ProduceTimeout: 5 * time.Second,
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	cfg.Callback.Poll = 20 * time.Millisecond
	for _, m := range mod {
		m(&cfg)
	}
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		g.Close()
		srv.Close()
	})
	return &gw{Gateway: g, URL: srv.URL, addrs: addrs, store: cfg.StorePath}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// call sends a request and returns the response with its body read.
func call(t testing.TB, method, url string, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// wantProblem checks a problem+json answer with status and a detail
// containing substr.
func wantProblem(t testing.TB, resp *http.Response, body []byte, status int, substr string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json; body %s", ct, body)
	}
	var p struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Status != status || !strings.Contains(p.Detail, substr) {
		t.Fatalf("problem %s: want status %d and detail containing %q", body, status, substr)
	}
}

// status is the part of the request status document tests read.
type status struct {
	ID           string          `json:"id"`
	Topic        string          `json:"topic"`
	State        string          `json:"state"`
	Result       json.RawMessage `json:"result"`
	ResultBase64 []byte          `json:"result_base64"`
	ContentType  string          `json:"content_type"`
	Error        string          `json:"error"`
	Partition    *int32          `json:"partition"`
	Offset       *int64          `json:"offset"`
	Callback     *struct {
		URL      string            `json:"url"`
		State    string            `json:"state"`
		Attempts []gateway.Attempt `json:"attempts"`
	} `json:"callback"`
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// submit posts a command and returns its status after the 202.
func submit(t testing.TB, g *gw, topic, query, body string, hdr ...string) status {
	t.Helper()
	u := g.URL + "/api/commands/" + topic
	if query != "" {
		u += "?" + query
	}
	resp, b := call(t, "POST", u, body, hdr...)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: status %d, body %s", resp.StatusCode, b)
	}
	st := decode[status](t, b)
	if loc := resp.Header.Get("Location"); loc != "/api/requests/"+st.ID {
		t.Fatalf("Location %q, want /api/requests/%s", loc, st.ID)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Fatalf("202 without Retry-After")
	}
	return st
}

// poll GETs a request, with Prefer: wait=secs when secs > 0.
func poll(t testing.TB, g *gw, id string, secs int, hdr ...string) (int, status) {
	t.Helper()
	if secs > 0 {
		hdr = append(hdr, "Prefer", "wait="+itoa(secs))
	}
	resp, b := call(t, "GET", g.URL+"/api/requests/"+id, "", hdr...)
	if resp.StatusCode != 200 && resp.StatusCode != 202 {
		t.Fatalf("poll: status %d, body %s", resp.StatusCode, b)
	}
	return resp.StatusCode, decode[status](t, b)
}

func itoa(n int) string { return strconv.Itoa(n) }

// waitState polls until the request is in state.
func waitState(t testing.TB, g *gw, id, state string) status {
	t.Helper()
	var st status
	kafkatest.Eventually(t, 30*time.Second, "request "+id+" in state "+state, func() bool {
		_, st = poll(t, g, id, 0)
		return st.State == state
	})
	return st
}

// service runs an agent on topic that answers commands with reply(m).
func service(t testing.TB, addrs []string, topic string, h agent.Handler) {
	t.Helper()
	a, err := agent.New("svc-"+topic, []string{topic},
		agent.WithBrokers(addrs...),
		agent.WithClientOptions(
			kgo.SessionTimeout(kafkatest.SessionTimeout(addrs)), kgo.HeartbeatInterval(100*time.Millisecond),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
		),
		agent.WithBackoff(time.Millisecond, 5*time.Millisecond),
		agent.WithMaxAttempts(2),
		agent.WithCommitInterval(50*time.Millisecond),
		agent.WithDefaultHandler(h),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service agent: %v", err)
		}
	})
}

// rawReply produces a reply record by hand (as a non-Go service would).
func rawReply(t testing.TB, addrs []string, topic, id, st string, value []byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	hs := []kgo.RecordHeader{{Key: "correlation_id", Value: []byte(id)}}
	if st != "" {
		hs = append(hs, kgo.RecordHeader{Key: "spool_status", Value: []byte(st)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: value, Headers: hs}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func headerOf(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func compact(s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return s
	}
	return b.String()
}
