package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

// runCLI runs a spool command line in-process (no --brokers appended).
func runCLI(args ...string) result {
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return result{out.String(), errOut.String(), err}
}

// `spool serve` archives by default; the lookback CLI searches, shows and
// erases through its HTTP API, and bad input exits 2 with the server's or
// the flag's message.
func TestServeLookback(t *testing.T) {
	addr, srv := runServeCmd(t, t.TempDir())
	defer srv.stop()
	server := "http://" + srv.httpAddr

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i, typ := range []string{"order.placed", "payment.completed", "order.placed"} {
		ev, _ := event.New(typ, event.JSON, map[string]any{"data": map[string]any{"customer": map[string]any{"id": "c-42"}}, "n": i})
		ev.Source, ev.Key, ev.CorrelationID = "/shop", []byte("customer-42"), "flow-1"
		r, _ := ev.Record("orders")
		recs = append(recs, r)
	}
	recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte("other"), Value: []byte("not a cloudevent")})
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var lines []string
	kafkatest.Eventually(t, 30*time.Second, "the events in the archive", func() bool {
		r := runCLI("lookback", "search", "--server", server, "--key", "customer-42", "--json")
		if r.err != nil {
			t.Fatalf("search: %v", r.err)
		}
		lines = strings.Split(strings.TrimSpace(r.out), "\n")
		return len(lines) == 3
	})
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"topic", "partition", "offset", "timestamp", "key", "headers", "id", "type", "source", "correlation_id"} {
		if _, ok := first[k]; !ok {
			t.Fatalf("--json line lacks %q: %s", k, lines[0])
		}
	}
	if first["key"] != "customer-42" || first["type"] != "order.placed" || first["offset"] != float64(2) {
		t.Fatalf("newest first: %s", lines[0])
	}

	r := runCLI("lookback", "search", "--server", server, "--type", "payment.completed", "--since", "1h")
	if r.err != nil || !strings.Contains(r.out, "orders/0/1") || strings.Count(r.out, "\n") != 2 {
		t.Fatalf("table search: %v\n%s", r.err, r.out)
	}
	r = runCLI("lookback", "search", "--server", server, "--where", "data.customer.id=c-42", "--json", "--limit", "2")
	if r.err != nil || strings.Count(r.out, "\n") != 2 {
		t.Fatalf("search --where --limit 2: %v\n%s", r.err, r.out)
	}
	r = runCLI("lookback", "show", "--server", server, "orders/0/3")
	var shown lookback.Event
	if r.err != nil || json.Unmarshal([]byte(r.out), &shown) != nil || string(shown.Value) != "not a cloudevent" {
		t.Fatalf("show: %v\n%s", r.err, r.out)
	}
	r = runCLI("lookback", "flow", "--server", server, "flow-1")
	if r.err != nil || !strings.Contains(r.out, "flow flow-1: 3 events") || strings.Count(r.out, "order.placed") != 2 {
		t.Fatalf("flow: %v\n%s", r.err, r.out)
	}

	// Bad input: exit 2 with a message, from the flags or from the server.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"search", "--from", "yesterday"}, "RFC 3339"},
		{[]string{"search", "--from", "2026-12-02T00:00:00Z", "--to", "2026-12-01T00:00:00Z"}, "empty"},
		{[]string{"search", "--since", "soon"}, "positive duration"},
		{[]string{"search", "--where", "nonsense"}, "PATH=VALUE"},
		{[]string{"search", "--limit", "0"}, "--limit"},
		{[]string{"search", "--bogus"}, "unknown flag"},
		{[]string{"show", "orders-3"}, "TOPIC/PARTITION/OFFSET"},
		{[]string{"show", "orders/x/3"}, "TOPIC/PARTITION/OFFSET"},
		{[]string{"erase"}, "--key is required"},
	} {
		r := runCLI(append([]string{"lookback", "--server", server}, c.args...)...)
		if exitCode(r.err) != 2 || !strings.Contains(r.err.Error(), c.want) {
			t.Fatalf("lookback %v: exit %d, %v; want exit 2 mentioning %q", c.args, exitCode(r.err), r.err, c.want)
		}
	}
	// The server's 400 (a cursor it never issued) is exit 2 too.
	if err := (&serverFlags{server: server, timeout: 5 * time.Second}).do(ctx, http.MethodGet, "/api/lookback/events",
		map[string][]string{"cursor": {"forged"}}, nil, nil); exitCode(err) != 2 || !strings.Contains(err.Error(), "cursor") {
		t.Fatalf("forged cursor: %v", err)
	}
	r = runCLI("lookback", "show", "--server", server, "orders/0/99")
	if exitCode(r.err) != 1 || !strings.Contains(r.err.Error(), "404") {
		t.Fatalf("show missing: %v", r.err)
	}

	r = runCLI("lookback", "replay", "--server", server, "--key", "customer-42", "--to-topic", "copies", "--dry-run")
	if r.err != nil || !strings.Contains(r.out, "dry run: 3 events would be replayed") || !strings.Contains(r.out, "orders: 3") {
		t.Fatalf("replay --dry-run: %v\n%s", r.err, r.out)
	}
	r = runCLI("lookback", "replay", "--server", server, "--key", "customer-42", "--to-topic", "copies", "--rate", "1000")
	if r.err != nil || !strings.Contains(r.out, "done, 3 events replayed") {
		t.Fatalf("replay: %v\n%s", r.err, r.out)
	}
	for _, bad := range [][]string{{"--to-topic", "a", "--to-group", "b"}, {"--rate", "-2"}, {"--to-topic", "no spaces"}} {
		if r := runCLI(append([]string{"lookback", "replay", "--server", server}, bad...)...); exitCode(r.err) != 2 {
			t.Fatalf("replay %v: exit %d %v, want 2", bad, exitCode(r.err), r.err)
		}
	}

	// The originals and, once archived, the replayed copies.
	kafkatest.Eventually(t, 30*time.Second, "the copies archived", func() bool {
		r := runCLI("lookback", "search", "--server", server, "--topic", "copies", "--json")
		return r.err == nil && strings.Count(r.out, "\n") == 3
	})
	r = runCLI("lookback", "erase", "--server", server, "--key", "customer-42")
	if r.err != nil || !strings.Contains(r.out, "erased 6 events") {
		t.Fatalf("erase: %v %s", r.err, r.out)
	}
	r = runCLI("lookback", "search", "--server", server, "--topic", "orders", "--json")
	if r.err != nil || strings.Count(r.out, "\n") != 1 {
		t.Fatalf("after erase: %v\n%s", r.err, r.out)
	}
}

func TestServeLookbackOff(t *testing.T) {
	_, srv := runServeCmd(t, t.TempDir(), "--lookback=false")
	defer srv.stop()
	resp, err := http.Get("http://" + srv.httpAddr + "/api/lookback/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("--lookback=false: /api/lookback/events answered %d, want 404", resp.StatusCode)
	}
}

// Rules given to spool serve are evaluated as events arrive and exported
// on /metrics; `spool lookback verify` reports the same hole over a past
// range and exits 3; a bad rules file is refused with exit 2.
func TestServeLookbackRules(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(`rules:
  - name: payment-follows-order
    when: {type: order.placed}
    expect: {type: payment.completed}
    within: 1m
`), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("rules: [{name: x, when: {type: a}}]\n"), 0o644)
	if r := runCLI("lookback", "verify", "--server", "http://127.0.0.1:1", "--rules", bad, "--since", "1h"); exitCode(r.err) != 2 ||
		!strings.Contains(r.err.Error(), "exactly one of expect and handled_by") {
		t.Fatalf("verify with a bad rules file: %v", r.err)
	}

	addr, srv := runServeCmd(t, filepath.Join(dir, "data"), "--lookback-rules", rules)
	defer srv.stop()
	server := "http://" + srv.httpAddr
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for _, c := range []struct{ typ, corr string }{{"order.placed", "paid"}, {"payment.completed", "paid"}, {"order.placed", "unpaid"}} {
		ev, _ := event.New(c.typ, event.JSON, nil)
		ev.Source, ev.CorrelationID = "/shop", c.corr
		r, _ := ev.Record("orders")
		r.Timestamp = time.Now().Add(-10 * time.Minute) // already due
		recs = append(recs, r)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	kafkatest.Eventually(t, 30*time.Second, "the violation on /metrics", func() bool {
		resp, err := http.Get(server + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `spool_lookback_rule_violations{rule="payment-follows-order"} 1`) &&
			strings.Contains(string(b), `spool_lookback_rule_checked_total{rule="payment-follows-order"} 2`)
	})
	r := runCLI("lookback", "verify", "--server", server, "--since", "1h")
	if exitCode(r.err) != 3 || !strings.Contains(r.out, "HOLE  correlation unpaid") || !strings.Contains(r.out, "2 checked, 1 violations") {
		t.Fatalf("verify: exit %d %v\n%s", exitCode(r.err), r.err, r.out)
	}
	var rep lookback.Report
	if err := (&serverFlags{server: server, timeout: 5 * time.Second}).do(ctx, http.MethodGet, "/api/lookback/rules", nil, nil, &rep); err != nil ||
		len(rep.Rules) != 1 || len(rep.Rules[0].Holes) != 1 || rep.Rules[0].Holes[0].CorrelationID != "unpaid" {
		t.Fatalf("live report: %+v %v", rep, err)
	}
}
