package lookback_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

func agentOpts(addrs []string) []agent.Option {
	return []agent.Option{
		agent.WithBrokers(addrs...),
		agent.WithClientOptions(kgo.SessionTimeout(kafkatest.SessionTimeout(addrs)), kgo.HeartbeatInterval(100*time.Millisecond),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond)),
		agent.WithBackoff(time.Millisecond, 5*time.Millisecond),
		agent.WithCommitInterval(50 * time.Millisecond),
	}
}

// runAgent runs an agent until the test ends.
func runAgent(t *testing.T, group string, topics []string, opts ...agent.Option) {
	t.Helper()
	a, err := agent.New(group, topics, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent %s: %v", group, err)
		}
	})
}

// Every verdict that finishes an event leaves a receipt, which lookback
// shows in the event's flow: success, warning, dead-letter, skipped, and a
// success after a retry (two attempts).
func TestReceipts(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "shop", 2)
		kafkatest.CreateTopic(t, addrs, "shop.dlq", 2)
		kafkatest.CreateTopic(t, addrs, agent.DefaultReceiptsTopic, 2)
		svc, st := startService(t, addrs, nil)
		failedOnce := make(chan struct{})
		opts := append(agentOpts(addrs), agent.WithReceipts(),
			agent.WithHandler("ok", func(context.Context, *agent.Message) error { return nil }),
			agent.WithHandler("warn", func(context.Context, *agent.Message) error { return agent.Warn(errors.New("odd")) }),
			agent.WithHandler("poison", func(context.Context, *agent.Message) error { return agent.DeadLetter(errors.New("bad")) }),
			agent.WithHandler("flaky", func(_ context.Context, m *agent.Message) error {
				if m.Attempt == 1 {
					close(failedOnce)
					return agent.Retry(errors.New("try again"))
				}
				return nil
			}),
		)
		runAgent(t, "billing", []string{"shop"}, opts...)
		types := []string{"ok", "warn", "poison", "unhandled", "flaky"}
		var recs []*kgo.Record
		for _, typ := range types {
			recs = append(recs, ceRec(t, "shop", "k-"+typ, typ, "order-1", nil))
		}
		produce(t, addrs, recs...)
		// 5 events, their 5 receipts and one dead letter.
		waitEvents(t, st, 11)

		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()
		var f lookback.Flow
		getJSON(t, srv.URL+"/api/lookback/flows/order-1", http.StatusOK, &f)
		want := map[string]struct {
			outcome  string
			attempts int
		}{"ok": {"success", 1}, "warn": {"warning", 1}, "poison": {"dead-letter", 1}, "unhandled": {"skipped", 1}, "flaky": {"success", 2}}
		got := map[string]bool{}
		for _, fe := range f.Events {
			if fe.Event.Topic != "shop" {
				continue // the dead letter carries the correlation id too
			}
			w, ok := want[fe.Event.Type]
			if !ok || len(fe.Receipts) != 1 {
				t.Fatalf("flow event %s: receipts %+v", fe.Event.Type, fe.Receipts)
			}
			r := fe.Receipts[0]
			if r.Group != "billing" || r.Outcome != w.outcome || r.Attempts != w.attempts || r.EventID != fe.Event.ID ||
				r.Topic != "shop" || r.Offset != fe.Event.Offset || r.Partition != fe.Event.Partition {
				t.Fatalf("receipt of %s: %+v, want %s after %d attempts", fe.Event.Type, r, w.outcome, w.attempts)
			}
			got[fe.Event.Type] = true
		}
		if len(got) != len(want) {
			t.Fatalf("receipts for %v, want all of %v", got, types)
		}
		var missing struct{ Detail string }
		getJSON(t, srv.URL+"/api/lookback/flows/no-such-flow", http.StatusNotFound, &missing)
		if missing.Detail == "" {
			t.Fatal("404 without a message")
		}
	})
}
