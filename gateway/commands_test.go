package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// TestCommandLifecycle: submit -> 202 + Location, poll -> 202 pending, the
// service replies through agent.Reply, poll with Prefer: wait -> 200 with the
// result; the command record carries the reply contract headers.
func TestCommandLifecycle(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "cmd", 2)
		g := startGateway(t, addrs)
		release := make(chan struct{})
		service(t, addrs, "cmd", func(ctx context.Context, m *agent.Message) error {
			<-release
			var in map[string]any
			if err := json.Unmarshal(m.Data, &in); err != nil {
				return agent.DeadLetter(err)
			}
			return agent.Reply(ctx, m, map[string]any{"order": in["order"], "status": "placed"})
		})
		tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		st := submit(t, g, "cmd", "type=order.place&key=cust-1", `{"order": 42}`, "traceparent", tp)
		if st.State != "pending" || st.Partition == nil {
			t.Fatalf("after submit: %+v", st)
		}
		code, st2 := poll(t, g, st.ID, 0)
		if code != 202 || st2.State != "pending" {
			t.Fatalf("poll before the reply: %d %+v", code, st2)
		}
		close(release)
		code, st3 := poll(t, g, st.ID, 10)
		if code != 200 || st3.State != "succeeded" || compact(string(st3.Result)) != `{"order":42,"status":"placed"}` {
			t.Fatalf("poll with wait: %d %+v %s", code, st3, st3.Result)
		}
		resp, b := call(t, "GET", g.URL+"/api/requests/"+st.ID+"/result", "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || compact(string(b)) != `{"order":42,"status":"placed"}` {
			t.Fatalf("result: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		recs := kafkatest.ReadAll(t, addrs, "cmd")
		if len(recs) != 1 {
			t.Fatalf("%d command records, want 1", len(recs))
		}
		r := recs[0]
		if headerOf(r, "correlation_id") != st.ID || headerOf(r, "spool_reply_to") != "spool.gateway.replies" ||
			headerOf(r, "ce_type") != "order.place" || headerOf(r, "ce_id") != st.ID || string(r.Key) != "cust-1" ||
			headerOf(r, "spool_expires_at") == "" || headerOf(r, "traceparent") != tp {
			t.Fatalf("command record: key %q headers %v", r.Key, r.Headers)
		}
		if r.Partition != *st.Partition || r.Offset != *st.Offset {
			t.Fatalf("status names %d/%d, record is at %d/%d", *st.Partition, *st.Offset, r.Partition, r.Offset)
		}
	})
}

// TestCommandFailures: a reply with spool_status error (from kcat-like raw
// records) and a dead-lettered command both fail the request with the
// reason; a late reply after that changes nothing.
func TestCommandFailures(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "raw", 1)
		kafkatest.CreateTopic(t, addrs, "dl", 1)
		g := startGateway(t, addrs)

		st := submit(t, g, "raw", "", `{}`)
		rawReply(t, addrs, "spool.gateway.replies", st.ID, "error", []byte("card declined"))
		code, got := poll(t, g, st.ID, 10)
		if code != 200 || got.State != "failed" || got.Error != "card declined" {
			t.Fatalf("error reply: %d %+v", code, got)
		}
		rawReply(t, addrs, "spool.gateway.replies", st.ID, "", []byte(`"late"`))
		st2 := submit(t, g, "raw", "", `{}`)
		rawReply(t, addrs, "spool.gateway.replies", st2.ID, "", []byte(`"ok"`))
		if _, s := poll(t, g, st2.ID, 10); s.State != "succeeded" {
			t.Fatalf("second request: %+v", s)
		}
		// The late reply was read before st2's: st is still failed.
		if _, s := poll(t, g, st.ID, 0); s.State != "failed" || s.Error != "card declined" {
			t.Fatalf("late reply changed a final request: %+v", s)
		}
		resp, b := call(t, "GET", g.URL+"/api/requests/"+st.ID+"/result", "")
		wantProblem(t, resp, b, 409, "failed")

		service(t, addrs, "dl", func(ctx context.Context, m *agent.Message) error {
			return agent.DeadLetter(errors.New("unknown product"))
		})
		st3 := submit(t, g, "dl", "", `{}`)
		code, got = poll(t, g, st3.ID, 15)
		if code != 200 || got.State != "failed" || !strings.Contains(got.Error, "unknown product") || !strings.Contains(got.Error, "dead-letter") {
			t.Fatalf("dead-lettered command: %d %+v", code, got)
		}
	})
}

// TestCancel: DELETE an open request produces a cancellation event after
// the command (same partition) and marks it cancelled; a second DELETE and
// DELETE of a finished request are 409; a later reply is ignored.
func TestCancel(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "c", 3)
		g := startGateway(t, addrs)
		st := submit(t, g, "c", "key=k", `{"x":1}`)
		waiting := make(chan int, 1)
		go func() {
			code, s := poll(t, g, st.ID, 10)
			if s.State != "cancelled" {
				code = -1
			}
			waiting <- code
		}()
		resp, b := call(t, "DELETE", g.URL+"/api/requests/"+st.ID, "")
		if resp.StatusCode != 200 || decode[status](t, b).State != "cancelled" {
			t.Fatalf("cancel: %d %s", resp.StatusCode, b)
		}
		if c := <-waiting; c != 200 {
			t.Fatalf("a waiting poll answered %d, want 200 cancelled", c)
		}
		resp, b = call(t, "DELETE", g.URL+"/api/requests/"+st.ID, "")
		wantProblem(t, resp, b, 409, "already cancelled")
		rawReply(t, addrs, "spool.gateway.replies", st.ID, "", []byte(`1`))
		recs := kafkatest.ReadAll(t, addrs, "c")
		if len(recs) != 2 {
			t.Fatalf("%d records, want the command and its cancellation", len(recs))
		}
		cmd, cancel := recs[0], recs[1]
		if headerOf(cancel, "ce_type") != gateway.CancelType || headerOf(cancel, "correlation_id") != st.ID ||
			headerOf(cancel, "spool_cancel") != "true" || cancel.Partition != cmd.Partition || cancel.Offset <= cmd.Offset {
			t.Fatalf("cancellation event %v at %d/%d, command at %d/%d", cancel.Headers, cancel.Partition, cancel.Offset, cmd.Partition, cmd.Offset)
		}
		// A reply produced after the cancel does not revive it (wait for a
		// later request's reply to be sure it was read).
		st2 := submit(t, g, "c", "", `{}`)
		rawReply(t, addrs, "spool.gateway.replies", st2.ID, "", []byte(`2`))
		poll(t, g, st2.ID, 10)
		if _, s := poll(t, g, st.ID, 0); s.State != "cancelled" {
			t.Fatalf("after a late reply: %+v", s)
		}
		resp, b = call(t, "DELETE", g.URL+"/api/requests/"+st2.ID, "")
		wantProblem(t, resp, b, 409, "already succeeded")
		resp, b = call(t, "DELETE", g.URL+"/api/requests/nope", "")
		wantProblem(t, resp, b, 404, "no request")
	})
}

// TestIdempotentSubmit: concurrent submits with one Idempotency-Key, before
// any reply exists, get one request and produce exactly one command.
func TestIdempotentSubmit(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "once", 1)
		g := startGateway(t, addrs)
		const n = 16
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[i] = submit(t, g, "once", "", `{"pay": 10}`, "Idempotency-Key", "pay-7").ID
			}()
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("ids %v: want one request", ids)
			}
		}
		// And later, also before the reply.
		if id := submit(t, g, "once", "", `{"pay": 10}`, "Idempotency-Key", "pay-7").ID; id != ids[0] {
			t.Fatalf("later retry got %s, want %s", id, ids[0])
		}
		other := submit(t, g, "once", "", `{"pay": 10}`, "Idempotency-Key", "pay-8")
		if other.ID == ids[0] {
			t.Fatal("another key got the same request")
		}
		if recs := kafkatest.ReadAll(t, addrs, "once"); len(recs) != 2 {
			t.Fatalf("%d command records, want 2 (one per key)", len(recs))
		}
	})
}

// TestExpiry: a request without a reply expires after its timeout, and a
// waiting poll is answered with the expired state. The timeout is longer
// than a submit takes on a loaded machine: one that expires while the
// submit still waits for the broker's acknowledgement is answered expired
// (and without Retry-After) by the submit itself, and the waiting poll
// would go untested.
func TestExpiry(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "slow", 1)
		g := startGateway(t, addrs)
		st := submit(t, g, "slow", "timeout=3s", `{}`)
		code, got := poll(t, g, st.ID, 10)
		if code != 200 || got.State != "expired" || !strings.Contains(got.Error, "expired") {
			t.Fatalf("after the timeout: %d %+v", code, got)
		}
		rawReply(t, addrs, "spool.gateway.replies", st.ID, "", []byte(`1`))
		st2 := submit(t, g, "slow", "", `{}`)
		rawReply(t, addrs, "spool.gateway.replies", st2.ID, "", []byte(`2`))
		poll(t, g, st2.ID, 10)
		if _, s := poll(t, g, st.ID, 0); s.State != "expired" {
			t.Fatalf("a late reply changed an expired request: %+v", s)
		}
		resp, b := call(t, "POST", g.URL+"/api/commands/slow?timeout=soon", `{}`)
		wantProblem(t, resp, b, 400, "timeout")
	})
}

// TestRestartMidRequest: the gateway stops after the submit, the reply
// arrives while it is down, and the restarted gateway (same store) answers
// the request with the result.
func TestRestartMidRequest(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "rs", 1)
		g1 := startGateway(t, addrs)
		st := submit(t, g1, "rs", "", `{}`)
		st0 := submit(t, g1, "rs", "", `{}`)
		if err := g1.Close(); err != nil {
			t.Fatal(err)
		}
		rawReply(t, addrs, "spool.gateway.replies", st.ID, "", []byte(`{"done":true}`))
		g2 := startGateway(t, addrs, func(c *gateway.Config) { c.StorePath = g1.store })
		code, got := poll(t, g2, st.ID, 10)
		if code != 200 || got.State != "succeeded" || compact(string(got.Result)) != `{"done":true}` {
			t.Fatalf("after restart: %d %+v", code, got)
		}
		// Still open and answerable after the restart.
		if code, s := poll(t, g2, st0.ID, 0); code != 202 || s.State != "pending" {
			t.Fatalf("other request after restart: %d %+v", code, s)
		}
		rawReply(t, addrs, "spool.gateway.replies", st0.ID, "", []byte(`2`))
		if _, s := poll(t, g2, st0.ID, 10); s.State != "succeeded" {
			t.Fatalf("reply after restart: %+v", s)
		}
	})
}

// TestTwoInstances: two gateways sharing one store answer each other's
// requests: submitted on A, a waiting poll on B returns the result; a
// cancel on B is seen by A.
func TestTwoInstances(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "two", 2)
		a := startGateway(t, addrs)
		b := startGateway(t, addrs, func(c *gateway.Config) { c.StorePath = a.store })
		service(t, addrs, "two", func(ctx context.Context, m *agent.Message) error {
			if string(m.Data) == `"hold"` {
				return nil // never replies
			}
			return agent.Reply(ctx, m, "done")
		})
		st := submit(t, a, "two", "", `"go"`)
		code, got := poll(t, b, st.ID, 10)
		if code != 200 || got.State != "succeeded" || string(got.Result) != `"done"` {
			t.Fatalf("B on A's request: %d %+v", code, got)
		}
		st2 := submit(t, b, "two", "", `"hold"`)
		waiting := make(chan status, 1)
		go func() { _, s := poll(t, a, st2.ID, 10); waiting <- s }()
		if resp, body := call(t, "DELETE", b.URL+"/api/requests/"+st2.ID, ""); resp.StatusCode != 200 {
			t.Fatalf("cancel on B: %d %s", resp.StatusCode, body)
		}
		select {
		case s := <-waiting:
			if s.State != "cancelled" {
				t.Fatalf("A saw %+v, want cancelled", s)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("A's waiting poll did not see B's cancel")
		}
		_ = http.StatusOK
	})
}
