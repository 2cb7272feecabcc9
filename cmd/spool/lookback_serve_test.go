package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// `spool lookback serve` runs standalone against a Kafka cluster (kfake and
// Spool): it archives the topics --include selects and answers `spool
// lookback search` on its --http listener; cancelling it (SIGINT/SIGTERM)
// returns cleanly.
func TestLookbackServeStandalone(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 2)
		kafkatest.CreateTopic(t, addrs, "other", 1)
		pr, pw := io.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		root := newRootCmd()
		root.SetOut(pw)
		root.SetErr(io.Discard)
		root.SetArgs([]string{"lookback", "serve", "--brokers", strings.Join(addrs, ","), "--http", "127.0.0.1:0",
			"--store", t.TempDir(), "--include", "^orders$", "--max-age", "24h"})
		go func() {
			err := root.ExecuteContext(ctx)
			pw.Close()
			done <- err
		}()
		httpRe := regexp.MustCompile(`http on (\S+)`)
		sc := bufio.NewScanner(pr)
		var httpAddr string
		for httpAddr == "" && sc.Scan() {
			if m := httpRe.FindStringSubmatch(sc.Text()); m != nil {
				httpAddr = m[1]
			}
		}
		go io.Copy(io.Discard, pr)
		if httpAddr == "" {
			cancel()
			t.Fatalf("lookback serve did not print its http address: %v", <-done)
		}
		server := "http://" + httpAddr

		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var recs []*kgo.Record
		for _, topic := range []string{"other", "orders"} {
			ev, _ := event.New("order.placed", event.JSON, map[string]any{"topic": topic})
			ev.Source, ev.Key, ev.CorrelationID = "/shop", []byte("customer-7"), "flow-"+topic
			r, _ := ev.Record(topic)
			recs = append(recs, r)
		}
		pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
		defer pcancel()
		if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		var out string
		kafkatest.Eventually(t, 30*time.Second, "the event to be searchable", func() bool {
			r := runCLI("lookback", "search", "--server", server, "--key", "customer-7", "--json")
			if r.err != nil {
				t.Fatalf("search: %v %s", r.err, r.errOut)
			}
			out = r.out
			return strings.TrimSpace(out) != ""
		})
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 1 {
			t.Fatalf("search printed %d events, want the one of the included topic:\n%s", len(lines), out)
		}
		var e struct {
			Topic         string `json:"topic"`
			Key           string `json:"key"`
			Type          string `json:"type"`
			CorrelationID string `json:"correlation_id"`
		}
		if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
			t.Fatalf("search --json line %q: %v", lines[0], err)
		}
		if e.Topic != "orders" || e.Key != "customer-7" || e.Type != "order.placed" || e.CorrelationID != "flow-orders" {
			t.Fatalf("search found %+v", e)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("lookback serve returned %v after cancel", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("lookback serve did not return within 20s of cancel")
		}
	})
}
