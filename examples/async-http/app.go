package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
)

//go:embed index.html
var indexHTML []byte

// Order is the command the page and the client submit.
type Order struct {
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

// Placed is the service's reply.
type Placed struct {
	OrderID string `json:"order_id"`
	Item    string `json:"item"`
	Status  string `json:"status"`
}

// Service runs the order service until ctx ends: an agent that handles
// order.place commands from topic and replies through the gateway's reply
// contract (agent.Reply). A quantity below 1 is a poison command: the agent
// dead-letters it and replies with the failure.
func Service(ctx context.Context, brokers []string, topic string, opts ...kgo.Opt) error {
	a, err := agent.New("order-service", []string{topic},
		agent.WithBrokers(brokers...),
		agent.WithClientOptions(opts...),
		// The page submits commands without a key: order them by request
		// id (their correlation_id), so they run in parallel, not one at a
		// time per partition.
		agent.WithCorrelationOrder(),
		agent.WithHandler("order.place", func(ctx context.Context, m *agent.Message) error {
			var o Order
			if err := json.Unmarshal(m.Data, &o); err != nil {
				return agent.DeadLetter(fmt.Errorf("not an order: %w", err))
			}
			if o.Quantity < 1 {
				return agent.DeadLetter(errors.New("quantity must be at least 1"))
			}
			return agent.Reply(ctx, m, Placed{OrderID: "ord-" + m.ID[:8], Item: o.Item, Status: "placed"})
		}))
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// Handler serves the browser page and passes /api/ to the gateway, so the
// page talks to the gateway from its own origin (no CORS).
func Handler(gateway *url.URL) http.Handler {
	mux := http.NewServeMux()
	proxy := httputil.NewSingleHostReverseProxy(gateway)
	proxy.FlushInterval = -1 // SSE: pass every event on at once
	mux.Handle("/api/", proxy)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(indexHTML)
	})
	return mux
}

// Status is the part of the gateway's request status the client reads.
type Status struct {
	ID     string          `json:"id"`
	State  string          `json:"state"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

// PlaceOrder submits an order as an async command (202 + Location) and polls
// its status with Prefer: wait until the service replied. The
// Idempotency-Key makes a retried submit return the same request.
func PlaceOrder(ctx context.Context, gatewayURL string, o Order, idempotencyKey string) (*Status, error) {
	body, _ := json.Marshal(o)
	req, _ := http.NewRequestWithContext(ctx, "POST", gatewayURL+"/api/commands/orders?type=order.place", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idempotencyKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("submit: %s", resp.Status)
	}
	loc := resp.Header.Get("Content-Location")
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", gatewayURL+loc, nil)
		req.Header.Set("Prefer", "wait=20")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		var st Status
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusOK { // final: succeeded, failed, cancelled or expired
			return &st, nil
		}
		if resp.StatusCode != http.StatusAccepted {
			return nil, fmt.Errorf("poll: %s", resp.Status)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
