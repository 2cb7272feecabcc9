package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// TestReply: handlers answer commands (spool_reply_to + correlation_id) with
// agent.Reply: a value as JSON, an error as spool_status: error; a
// dead-lettered command is answered with the failure; a message without
// the headers gets ErrNoReplyTo.
func TestReply(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "cmds", 1)
		kafkatest.CreateTopic(t, addrs, "replies", 1)
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		send := func(id, typ string, withReply bool) {
			ev, _ := event.New(typ, event.JSON, map[string]int{"n": 1})
			ev.Source = "/test"
			rec, _ := ev.Record("cmds")
			if withReply {
				rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "correlation_id", Value: []byte(id)},
					kgo.RecordHeader{Key: "spool_reply_to", Value: []byte("replies")})
			}
			if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		noReply := make(chan error, 1)
		start(t, "replier", []string{"cmds"}, append(fastOpts(addrs),
			agent.WithHandler("ok", func(ctx context.Context, m *agent.Message) error {
				return agent.Reply(ctx, m, map[string]string{"result": "done"})
			}),
			agent.WithHandler("fail", func(ctx context.Context, m *agent.Message) error {
				return agent.Reply(ctx, m, errors.New("out of stock"))
			}),
			agent.WithHandler("poison", func(ctx context.Context, m *agent.Message) error {
				return agent.DeadLetter(errors.New("cannot parse"))
			}),
			agent.WithHandler("plain", func(ctx context.Context, m *agent.Message) error {
				noReply <- agent.Reply(ctx, m, "x")
				return nil
			}),
		)...)
		send("r1", "ok", true)
		send("r2", "fail", true)
		send("r3", "poison", true)
		send("", "plain", false)
		select {
		case err := <-noReply:
			if !errors.Is(err, agent.ErrNoReplyTo) {
				t.Fatalf("Reply without headers: %v, want ErrNoReplyTo", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("plain handler not called")
		}
		var got map[string]*kgo.Record
		kafkatest.Eventually(t, 30*time.Second, "three replies", func() bool {
			got = map[string]*kgo.Record{}
			for _, r := range kafkatest.ReadAll(t, addrs, "replies") {
				got[header(r, "correlation_id")] = r
			}
			return len(got) == 3
		})
		var v map[string]string
		if r := got["r1"]; header(r, "spool_status") != "ok" || header(r, "content-type") != "application/json" ||
			json.Unmarshal(r.Value, &v) != nil || v["result"] != "done" {
			t.Errorf("ok reply: %q %v", r.Value, r.Headers)
		}
		if r := got["r2"]; header(r, "spool_status") != "error" || string(r.Value) != "out of stock" {
			t.Errorf("error reply: %q %v", r.Value, r.Headers)
		}
		if r := got["r3"]; header(r, "spool_status") != "error" || string(r.Value) != "dead-lettered (dead-letter): cannot parse" {
			t.Errorf("dead-letter reply: %q %v", r.Value, r.Headers)
		}
		if n := len(kafkatest.ReadAll(t, addrs, "cmds.dlq")); n != 1 {
			t.Errorf("%d dead letters, want 1", n)
		}
	})
}
