package gateway_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/spooltest"
)

// TestAcceptedSettlesAfterLateAck: with the broker down a submit is not
// acknowledged in time (503) and its request stays accepted, which a retry
// with the same Idempotency-Key and a poll both show. When the broker is
// back its late answer settles the request: acknowledged -> pending (with
// where the command landed, exactly one record), refused (the command is
// over the topic's max.message.bytes) -> failed, with nothing written.
func TestAcceptedSettlesAfterLateAck(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithPartitions(1))
	addrs := []string{srv.Addr()}
	kafkatest.CreateTopic(t, addrs, "late", 1)
	createSmallTopic(t, addrs, "small", 1, 1000)
	g := startGateway(t, addrs, func(c *gateway.Config) {
		c.ProduceTimeout = time.Second
		// Keep the unsent commands buffered for the whole outage, so the
		// broker's answer (not the client's delivery timeout) settles them.
		c.ClientOptions = []kgo.Opt{kgo.RecordDeliveryTimeout(2 * time.Minute),
			kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond })}
	})
	for _, topic := range []string{"late", "small"} {
		if resp, b := call(t, "POST", g.URL+"/api/topics/"+topic+"/records", `{"records":[{"value":"before"}]}`); resp.StatusCode != 200 {
			t.Fatalf("produce to %s before the outage: %d %s", topic, resp.StatusCode, b)
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	// Random bytes, so the producer's compression cannot bring it under 1000.
	big := incompressible(3000)
	accepted := map[string]status{}
	for topic, body := range map[string]string{"late": `"command"`, "small": big} {
		resp, b := call(t, "POST", g.URL+"/api/commands/"+topic, body, "Idempotency-Key", "k-"+topic)
		wantProblem(t, resp, b, http.StatusServiceUnavailable, "not acknowledged")
		if resp.Header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
		resp, b = call(t, "POST", g.URL+"/api/commands/"+topic, body, "Idempotency-Key", "k-"+topic)
		st := decode[status](t, b)
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Idempotent-Replayed") != "true" ||
			st.State != "accepted" || st.Partition != nil || resp.Header.Get("Location") != "/api/requests/"+st.ID {
			t.Fatalf("retry during the outage: %d %v %s; want the accepted request, replayed", resp.StatusCode, resp.Header, b)
		}
		if code, p := poll(t, g, st.ID, 0); code != http.StatusAccepted || p.State != "accepted" {
			t.Fatalf("poll during the outage: %d %+v", code, p)
		}
		accepted[topic] = st
	}
	srv.Restart(t)
	if srv.Addr() != addrs[0] {
		t.Fatalf("the broker came back on %s, not its reserved address (spooltest.Restart)", srv.Addr())
	}
	done := waitState(t, g, accepted["late"].ID, "pending")
	if done.Partition == nil || done.Offset == nil {
		t.Fatalf("pending after the late ack without the command's position: %+v", done)
	}
	var cmds []*kgo.Record
	for _, r := range kafkatest.ReadAll(t, addrs, "late") {
		if headerOf(r, "correlation_id") == done.ID {
			cmds = append(cmds, r)
		}
	}
	if len(cmds) != 1 || cmds[0].Partition != *done.Partition || cmds[0].Offset != *done.Offset {
		t.Fatalf("%d command records for %s (status at %d/%d), want exactly one there", len(cmds), done.ID, *done.Partition, *done.Offset)
	}
	failed := waitState(t, g, accepted["small"].ID, "failed")
	if !strings.Contains(failed.Error, "could not be produced") {
		t.Fatalf("refused command: error %q, want why it could not be produced", failed.Error)
	}
	if n := len(kafkatest.ReadAll(t, addrs, "small")); n != 1 {
		t.Fatalf("%d records on small, want only the one from before the outage", n)
	}
	rawReply(t, addrs, "spool.gateway.replies", done.ID, "", []byte(`"ok"`))
	if code, st := poll(t, g, done.ID, 10); code != 200 || st.State != "succeeded" {
		t.Fatalf("reply to the late-acknowledged command: %d %+v", code, st)
	}
}

// createSmallTopic creates a topic of n partitions whose max.message.bytes
// is limit.
func createSmallTopic(t testing.TB, addrs []string, topic string, n int32, limit int) {
	t.Helper()
	v := itoa(limit)
	kafkatest.CreateTopicWithConfigs(t, addrs, topic, n, map[string]*string{"max.message.bytes": &v})
}

// incompressible returns a JSON string of about 4n/3 random characters, so
// the producer's compression cannot shrink it much.
func incompressible(n int) string {
	raw := make([]byte, n)
	rand.Read(raw)
	return `"` + base64.StdEncoding.EncodeToString(raw) + `"`
}

// TestPreferWaitTimeout: a poll with Prefer: wait=N on a request nobody
// answers is held about N seconds, then answers 202 with the current
// (pending) status and Retry-After; N is capped at MaxWait.
func TestPreferWaitTimeout(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "quiet", 1)
		g := startGateway(t, addrs, func(c *gateway.Config) { c.MaxWait = 2 * time.Second })
		st := submit(t, g, "quiet", "", `{}`)
		for _, c := range []struct {
			path, prefer string
			atLeast      time.Duration
		}{
			{"/api/requests/" + st.ID, "wait=1", time.Second},
			{"/api/requests/" + st.ID + "/result", "wait=1", time.Second},
			// Capped at MaxWait (2s), not held for 60s.
			{"/api/requests/" + st.ID, "wait=60", 2 * time.Second},
		} {
			start := time.Now()
			resp, b := call(t, "GET", g.URL+c.path, "", "Prefer", c.prefer)
			took := time.Since(start)
			got := decode[status](t, b)
			if resp.StatusCode != http.StatusAccepted || got.State != "pending" || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("GET %s Prefer: %s: %d %v %s; want 202 pending with Retry-After", c.path, c.prefer, resp.StatusCode, resp.Header, b)
			}
			if took < c.atLeast-50*time.Millisecond {
				t.Fatalf("GET %s Prefer: %s answered after %v, before the wait ran out", c.path, c.prefer, took)
			}
			if took > 30*time.Second {
				t.Fatalf("GET %s Prefer: %s held %v, far past %v", c.path, c.prefer, took, c.atLeast)
			}
		}
	})
}
