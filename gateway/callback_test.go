package gateway_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/internal/kafkatest"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// verify checks a delivery the way a Standard Webhooks receiver does:
// HMAC-SHA256 over "id.timestamp.body" with the base64-decoded secret, and a
// timestamp within five minutes.
func verify(t testing.TB, h http.Header, body []byte) {
	t.Helper()
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(testSecret, "whsec_"))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		t.Errorf("webhook-timestamp %q is not a recent Unix time", ts)
	}
	for _, s := range strings.Fields(sigs) {
		if v, ok := strings.CutPrefix(s, "v1,"); ok && hmac.Equal([]byte(v), []byte(want)) {
			return
		}
	}
	t.Errorf("webhook-signature %q does not verify (want v1,%s)", sigs, want)
}

// hookServer answers deliveries with the scripted statuses (the last one
// repeats) and records them.
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	got    []http.Header
	bodies []string
}

func newHookServer(t testing.TB, statuses ...int) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		verify(t, r.Header, body)
		h.mu.Lock()
		n := len(h.got)
		h.got = append(h.got, r.Header.Clone())
		h.bodies = append(h.bodies, string(body))
		h.mu.Unlock()
		st := statuses[min(n, len(statuses)-1)]
		if st == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(st)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

func callbackGateway(t testing.TB, addrs []string, hooks *hookServer, schedule ...time.Duration) *gw {
	return startGateway(t, addrs, func(c *gateway.Config) {
		c.Callback.Allow = []string{hooks.URL + "/hooks/"}
		c.Callback.Secret = testSecret
		c.Callback.Schedule = schedule
	})
}

func waitCallback(t testing.TB, g *gw, id, state string) status {
	t.Helper()
	var st status
	kafkatest.Eventually(t, 30*time.Second, "callback "+state, func() bool {
		_, st = poll(t, g, id, 0)
		return st.Callback != nil && st.Callback.State == state
	})
	return st
}

// TestCallbackRetries: 500, 500, then 200: three signed attempts with one
// webhook-id, visible on the status.
func TestCallbackRetries(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "cb", 1)
		hooks := newHookServer(t, 500, 500, 200)
		g := callbackGateway(t, addrs, hooks, 0, 20*time.Millisecond, 40*time.Millisecond, time.Hour)
		st := submit(t, g, "cb", "callback="+url.QueryEscape(hooks.URL+"/hooks/orders"), `{}`)
		if _, s := poll(t, g, st.ID, 0); s.Callback == nil || s.Callback.URL != hooks.URL+"/hooks/orders" || len(s.Callback.Attempts) != 0 {
			t.Fatalf("callback before completion: %+v", s.Callback)
		}
		rawReply(t, addrs, "spool.gateway.replies", st.ID, "", []byte(`{"ok":1}`))
		s := waitCallback(t, g, st.ID, gateway.CallbackDelivered)
		a := s.Callback.Attempts
		if len(a) != 3 || a[0].Status != 500 || a[1].Status != 500 || a[2].Status != 200 || a[2].Error != "" {
			t.Fatalf("attempts %+v", a)
		}
		// Backoff: each wait at least the schedule's.
		if a[1].At.Sub(a[0].At) < 20*time.Millisecond || a[2].At.Sub(a[1].At) < 40*time.Millisecond {
			t.Fatalf("attempts not spaced by the schedule: %+v", a)
		}
		if hooks.count() != 3 {
			t.Fatalf("%d deliveries, want 3", hooks.count())
		}
		for _, h := range hooks.got {
			if h.Get("webhook-id") != "msg_"+st.ID {
				t.Fatalf("webhook-id %q, want msg_%s on every attempt", h.Get("webhook-id"), st.ID)
			}
		}
		body := decode[status](t, []byte(hooks.bodies[2]))
		if body.ID != st.ID || body.State != "succeeded" || compact(string(body.Result)) != `{"ok":1}` {
			t.Fatalf("callback body %s", hooks.bodies[2])
		}
	})
}

// TestCallbackGoneStops: 410 stops the deliveries after one attempt.
func TestCallbackGoneStops(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "cb", 1)
		hooks := newHookServer(t, 410, 200)
		g := callbackGateway(t, addrs, hooks, 0, time.Millisecond, time.Millisecond)
		st := submit(t, g, "cb", "callback="+url.QueryEscape(hooks.URL+"/hooks/x"), `{}`)
		rawReply(t, addrs, "spool.gateway.replies", st.ID, "error", []byte("boom"))
		s := waitCallback(t, g, st.ID, gateway.CallbackGone)
		if len(s.Callback.Attempts) != 1 || s.Callback.Attempts[0].Status != 410 || hooks.count() != 1 {
			t.Fatalf("attempts %+v, deliveries %d", s.Callback.Attempts, hooks.count())
		}
	})
}

// TestCallbackDeadLetter: a target that always fails gets every attempt of
// the schedule, then the callback is dead-lettered to a topic.
func TestCallbackDeadLetter(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "cb", 1)
		hooks := newHookServer(t, 503)
		g := callbackGateway(t, addrs, hooks, 0, time.Millisecond, time.Millisecond)
		st := submit(t, g, "cb", "callback="+url.QueryEscape(hooks.URL+"/hooks/x"), `{}`)
		rawReply(t, addrs, "spool.gateway.replies", st.ID, "", []byte(`1`))
		s := waitCallback(t, g, st.ID, gateway.CallbackDead)
		if len(s.Callback.Attempts) != 3 || hooks.count() != 3 {
			t.Fatalf("attempts %+v, deliveries %d, want 3", s.Callback.Attempts, hooks.count())
		}
		recs := kafkatest.ReadAll(t, addrs, "spool.gateway.callbacks.dlq")
		if len(recs) != 1 {
			t.Fatalf("%d dead letters, want 1", len(recs))
		}
		r := recs[0]
		if headerOf(r, "correlation_id") != st.ID || headerOf(r, "dlq_reason") != "callback-undelivered" ||
			headerOf(r, "spool_callback_url") != hooks.URL+"/hooks/x" || headerOf(r, "dlq_attempts") != "3" ||
			!strings.Contains(headerOf(r, "dlq_error"), "503") || decode[status](t, r.Value).ID != st.ID {
			t.Fatalf("dead letter %v %s", r.Headers, r.Value)
		}
	})
}

// TestCallbackRetryAfter: a 429 with Retry-After: 1 delays the next attempt
// by at least a second, past the schedule's 1ms.
func TestCallbackRetryAfter(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "cb", 1)
		hooks := newHookServer(t, 429, 200)
		g := callbackGateway(t, addrs, hooks, 0, time.Millisecond, time.Millisecond)
		st := submit(t, g, "cb", "callback="+url.QueryEscape(hooks.URL+"/hooks/x"), `{}`)
		rawReply(t, addrs, "spool.gateway.replies", st.ID, "", []byte(`1`))
		s := waitCallback(t, g, st.ID, gateway.CallbackDelivered)
		a := s.Callback.Attempts
		if len(a) != 2 || a[0].Status != 429 || a[1].At.Sub(a[0].At) < time.Second {
			t.Fatalf("attempts %+v: want the second at least 1s after the 429", a)
		}
	})
}

// TestCallbackAllowList: a callback outside the allow-list is refused with
// 400 and no command is produced; without an allow-list callbacks are off.
func TestCallbackAllowList(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "cb", 1)
		hooks := newHookServer(t, 200)
		g := callbackGateway(t, addrs, hooks)
		for _, target := range []string{
			"http://169.254.169.254/latest/meta-data/",                          // cloud metadata
			hooks.URL + "/other/",                                               // right host, wrong path
			strings.Replace(hooks.URL, "127.0.0.1", "localhost", 1) + "/hooks/", // another host name
			"file:///etc/passwd",
		} {
			resp, b := call(t, "POST", g.URL+"/api/commands/cb?callback="+url.QueryEscape(target), `{}`)
			wantProblem(t, resp, b, 400, "callback")
		}
		off := startGateway(t, addrs)
		resp, b := call(t, "POST", off.URL+"/api/commands/cb?callback="+url.QueryEscape(hooks.URL+"/hooks/"), `{}`)
		wantProblem(t, resp, b, 400, "callbacks are off")
		if recs := kafkatest.ReadAll(t, addrs, "cb"); len(recs) != 0 {
			t.Fatalf("%d commands produced by refused submits", len(recs))
		}
		if _, err := gateway.New(gateway.Config{Callback: gateway.CallbackConfig{Allow: []string{"https://x/"}, Secret: "short"}}); err == nil {
			t.Fatal("a weak callback secret was accepted")
		}
	})
}
