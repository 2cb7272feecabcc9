package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/spooltest"
)

func tokenGateway(t testing.TB, addrs []string, mod ...func(*gateway.Config)) *gw {
	t.Helper()
	ts, err := gateway.ReadTokens(strings.NewReader(`
# name:secret:scopes
shop:shop-secret:produce:orders,read:orders
reader:read-secret:read:orders*
admin:admin-secret:produce:*,read:*
`))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := gateway.NewTokens(ts)
	if err != nil {
		t.Fatal(err)
	}
	return startGateway(t, addrs, append([]func(*gateway.Config){func(c *gateway.Config) { c.Auth = auth }}, mod...)...)
}

// TestTokens: a missing or unknown token is 401 (with WWW-Authenticate), a
// token without the scope is 403, and nothing is produced by either; the
// submitter may read its own request, another token needs read on the
// topic.
func TestTokens(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 1)
		kafkatest.CreateTopic(t, addrs, "payments", 1)
		g := tokenGateway(t, addrs)
		rec := `{"records":[{"value":1}]}`
		resp, b := call(t, "POST", g.URL+"/api/topics/orders/records", rec)
		wantProblem(t, resp, b, 401, "missing bearer token")
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatal("401 without WWW-Authenticate")
		}
		resp, b = call(t, "POST", g.URL+"/api/topics/orders/records", rec, "Authorization", "Bearer nope")
		wantProblem(t, resp, b, 401, "unknown bearer token")
		resp, b = call(t, "POST", g.URL+"/api/topics/payments/records", rec, "Authorization", "Bearer shop-secret")
		wantProblem(t, resp, b, 403, `no produce scope for topic "payments"`)
		resp, b = call(t, "POST", g.URL+"/api/topics/orders/records", rec, "Authorization", "Bearer read-secret")
		wantProblem(t, resp, b, 403, "no produce scope")
		resp, b = call(t, "POST", g.URL+"/api/commands/payments", `{}`, "Authorization", "Bearer shop-secret")
		wantProblem(t, resp, b, 403, "no produce scope")
		resp, b = call(t, "GET", g.URL+"/api/topics/payments/events", "", "Authorization", "Bearer shop-secret")
		wantProblem(t, resp, b, 403, "no read scope")
		if n := len(kafkatest.ReadAll(t, addrs, "orders")) + len(kafkatest.ReadAll(t, addrs, "payments")); n != 0 {
			t.Fatalf("%d records produced by refused requests", n)
		}
		if resp, b := call(t, "POST", g.URL+"/api/topics/orders/records", rec, "Authorization", "Bearer shop-secret"); resp.StatusCode != 200 {
			t.Fatalf("allowed produce: %d %s", resp.StatusCode, b)
		}
		// Requests: admin submits to payments; shop (no read on payments)
		// may not read it, admin may; reader may read orders requests.
		st := submit(t, g, "payments", "", `{}`, "Authorization", "Bearer admin-secret")
		resp, b = call(t, "GET", g.URL+"/api/requests/"+st.ID, "", "Authorization", "Bearer shop-secret")
		wantProblem(t, resp, b, 403, "no read scope")
		if code, _ := poll(t, g, st.ID, 0, "Authorization", "Bearer admin-secret"); code != 202 {
			t.Fatalf("submitter reads its request: %d", code)
		}
		resp, b = call(t, "DELETE", g.URL+"/api/requests/"+st.ID, "", "Authorization", "Bearer shop-secret")
		wantProblem(t, resp, b, 403, "no produce scope")
		st2 := submit(t, g, "orders", "", `{}`, "Authorization", "Bearer shop-secret")
		if code, _ := poll(t, g, st2.ID, 0, "Authorization", "Bearer read-secret"); code != 202 {
			t.Fatalf("reader on an orders request: %d", code)
		}
		// EventSource cannot send headers: access_token in the query.
		ch, stop := sseStream(t, g.URL+"/api/requests/"+st2.ID+"/events?access_token=read-secret")
		defer stop()
		if ev, _ := next(t, ch); ev.typ != "status" {
			t.Fatalf("SSE with access_token: %+v", ev)
		}
	})
}

func TestTokenParsing(t *testing.T) {
	for _, bad := range []string{"", "name", "name:secret", "name:secret:write:orders", ":s:produce:x", "n:s:produce:"} {
		tok, err := gateway.ParseToken(bad)
		if err == nil {
			_, err = gateway.NewTokens([]gateway.Token{tok})
		}
		if err == nil {
			t.Errorf("token %q accepted", bad)
		}
		if err != nil && strings.Contains(err.Error(), "secret:") && strings.Contains(bad, "secret") {
			t.Errorf("error %q shows the secret", err)
		}
	}
	if _, err := gateway.NewTokens([]gateway.Token{{Name: "a", Secret: "s", Scopes: []string{"read:x"}}, {Name: "b", Secret: "s", Scopes: []string{"read:y"}}}); err == nil {
		t.Error("two tokens with one secret accepted")
	}
}

// TestRateLimit: past the burst a token gets 429 with Retry-After; another
// token is not affected.
func TestRateLimit(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 1)
		g := tokenGateway(t, addrs, func(c *gateway.Config) { c.RateLimit, c.RateBurst = 1, 3 })
		rec := `{"records":[{"value":1}]}`
		var codes []int
		for range 5 {
			resp, b := call(t, "POST", g.URL+"/api/topics/orders/records", rec, "Authorization", "Bearer shop-secret")
			codes = append(codes, resp.StatusCode)
			if resp.StatusCode == 429 {
				wantProblem(t, resp, b, 429, "rate limit")
				if resp.Header.Get("Retry-After") == "" {
					t.Fatal("429 without Retry-After")
				}
			}
		}
		if codes[0] != 200 || codes[2] != 200 || codes[4] != 429 {
			t.Fatalf("codes %v: want the burst of 3 to pass and the rest refused", codes)
		}
		if resp, _ := call(t, "POST", g.URL+"/api/topics/orders/records", rec, "Authorization", "Bearer admin-secret"); resp.StatusCode != 200 {
			t.Fatalf("another token: %d", resp.StatusCode)
		}
	})
}

// TestBrokerOutage: with the broker down, produce and submit answer 503
// with Retry-After. A record is never half-written: once the broker is
// back, retries with the same Idempotency-Key leave exactly one copy of each
// refused record and command in the log, whether or not the first attempt
// reached it.
func TestBrokerOutage(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithPartitions(1))
	addrs := []string{srv.Addr()}
	kafkatest.CreateTopic(t, addrs, "out", 1)
	g := startGateway(t, addrs, func(c *gateway.Config) {
		c.ProduceTimeout = 2 * time.Second
		c.ClientOptions = []kgo.Opt{kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond })}
	})
	if resp, b := call(t, "POST", g.URL+"/api/topics/out/records", `{"records":[{"value":"before"}]}`); resp.StatusCode != 200 {
		t.Fatalf("before: %d %s", resp.StatusCode, b)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	resp, b := call(t, "POST", g.URL+"/api/topics/out/records", `{"records":[{"value":"during"}]}`, "Idempotency-Key", "d")
	wantProblem(t, resp, b, 503, "retry")
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	resp, b = call(t, "POST", g.URL+"/api/commands/out", `"command"`, "Idempotency-Key", "c")
	wantProblem(t, resp, b, 503, "retry")
	srv.Restart(t)
	if srv.Addr() != addrs[0] {
		t.Fatalf("the broker came back on %s, not its reserved address (spooltest.Restart)", srv.Addr())
	}
	kafkatest.Eventually(t, 30*time.Second, "the retried produce to succeed", func() bool {
		resp, _ := call(t, "POST", g.URL+"/api/topics/out/records", `{"records":[{"value":"during"}]}`, "Idempotency-Key", "d")
		return resp.StatusCode == 200
	})
	kafkatest.Eventually(t, 30*time.Second, "the retried submit to be accepted", func() bool {
		resp, b := call(t, "POST", g.URL+"/api/commands/out", `"command"`, "Idempotency-Key", "c")
		return resp.StatusCode == 202 && decode[status](t, b).State != "accepted"
	})
	if resp, b := call(t, "POST", g.URL+"/api/topics/out/records", `{"records":[{"value":"after"}]}`); resp.StatusCode != 200 {
		t.Fatalf("after: %d %s", resp.StatusCode, b)
	}
	count := map[string]int{}
	var order []string
	for _, r := range kafkatest.ReadAll(t, addrs, "out") {
		count[string(r.Value)]++
		order = append(order, string(r.Value))
	}
	if count[`"before"`] != 1 || count[`"during"`] != 1 || count[`"command"`] != 1 || count[`"after"`] != 1 ||
		order[0] != `"before"` || order[len(order)-1] != `"after"` {
		t.Fatalf("log after the outage: %v", order)
	}
}
