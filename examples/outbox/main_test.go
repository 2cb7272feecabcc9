package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// TestPlaceOrder runs the example against Spool and kfake: a placed order's
// event reaches the topic through the outbox and the consumer ships it
// once; a bad order is refused with problem+json and queues nothing.
func TestPlaceOrder(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, topic, 4)
		s, err := Start(context.Background(), Config{DB: filepath.Join(t.TempDir(), "orders.db"), Brokers: addrs,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		h := httptest.NewServer(s.Handler())
		defer h.Close()

		resp, err := http.Post(h.URL+"/orders", "application/json", strings.NewReader(`{"customer":"c-1","item":"book"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), "quantity") {
			t.Fatalf("bad order: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}

		resp, err = http.Post(h.URL+"/orders", "application/json", strings.NewReader(`{"customer":"c-1","item":"book","quantity":2}`))
		if err != nil {
			t.Fatal(err)
		}
		var o Order
		json.NewDecoder(resp.Body).Decode(&o)
		resp.Body.Close()
		if resp.StatusCode != 201 || o.ID == "" {
			t.Fatalf("place order: %d %+v", resp.StatusCode, o)
		}
		kafkatest.Eventually(t, 30*time.Second, "the order shipped", func() bool {
			resp, err := http.Get(h.URL + "/orders/" + o.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got Order
			json.NewDecoder(resp.Body).Decode(&got)
			return got.Shipped
		})
		recs := kafkatest.ReadAll(t, addrs, topic)
		if len(recs) != 1 || string(recs[0].Key) != "c-1" {
			t.Fatalf("topic holds %d records, want the one order.placed of key c-1", len(recs))
		}
		ev, err := event.FromRecord(recs[0])
		if err != nil || ev.Type != "order.placed" || ev.Subject != o.ID {
			t.Fatalf("event %+v, %v", ev, err)
		}
	})
}
