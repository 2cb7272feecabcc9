package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// claimCounter is a Store that counts ClaimCallbacks calls, so a test
// knows an instance looked for due callbacks.
type claimCounter struct {
	gateway.Store
	claims atomic.Int64
}

func (s *claimCounter) ClaimCallbacks(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*gateway.Request, error) {
	rs, err := s.Store.ClaimCallbacks(ctx, now, lease, limit)
	s.claims.Add(1)
	return rs, err
}

// TestCallbackLeaseTwoInstances: two gateways share one store and both
// deliver callbacks. While deliveries are in flight (the target holds
// them), both instances keep looking for due callbacks, and still each
// callback is delivered exactly once: the lease keeps the other out.
func TestCallbackLeaseTwoInstances(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "lease", 2)
		const n = 5
		var (
			mu      sync.Mutex
			got     = map[string]int{} // webhook-id -> deliveries
			started = make(chan struct{}, 2*n)
			release = make(chan struct{})
		)
		hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			verify(t, r.Header, body)
			mu.Lock()
			got[r.Header.Get("webhook-id")]++
			mu.Unlock()
			select {
			case started <- struct{}{}:
			default: // more deliveries than requests: the test fails on got
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(hooks.Close)
		path := filepath.Join(t.TempDir(), "gw.db")
		var stores [2]*claimCounter
		var gws [2]*gw
		for i := range stores {
			s, err := gateway.OpenStore(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() }) // after the gateway's Close (cleanups run last-in first-out)
			stores[i] = &claimCounter{Store: s}
			gws[i] = startGateway(t, addrs, func(c *gateway.Config) {
				c.Store = stores[i]
				c.Callback.Allow = []string{hooks.URL + "/hooks/"}
				c.Callback.Secret = testSecret
			})
		}
		// Registered last, so it runs first: if the test fails while
		// deliveries are held, they end before the gateways and the target
		// are closed (both wait for them).
		t.Cleanup(func() { closeOnce(release) })
		ids := make([]string, n)
		for i := range ids {
			st := submit(t, gws[i%2], "lease", "callback="+url.QueryEscape(hooks.URL+"/hooks/x"), `{}`)
			ids[i] = st.ID
			rawReply(t, addrs, "spool.gateway.replies", st.ID, "", []byte(`1`))
		}
		for range n {
			select {
			case <-started:
			case <-time.After(30 * time.Second):
				t.Fatal("not every callback was attempted")
			}
		}
		// Every callback is being delivered; let both instances look for
		// due callbacks a few more times before the target answers.
		before := [2]int64{stores[0].claims.Load(), stores[1].claims.Load()}
		kafkatest.Eventually(t, 30*time.Second, "both instances to poll for callbacks during the deliveries", func() bool {
			mu.Lock()
			defer mu.Unlock()
			for id, k := range got {
				if k > 1 {
					t.Fatalf("%s delivered %d times while its first delivery was in flight", id, k)
				}
			}
			return stores[0].claims.Load() >= before[0]+3 && stores[1].claims.Load() >= before[1]+3
		})
		closeOnce(release)
		for _, id := range ids {
			st := waitCallback(t, gws[0], id, gateway.CallbackDelivered)
			if len(st.Callback.Attempts) != 1 {
				t.Fatalf("request %s: attempts %+v, want one", id, st.Callback.Attempts)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if got["msg_"+id] != 1 {
				t.Fatalf("deliveries by webhook-id %v: want exactly one per request", got)
			}
		}
		if len(got) != n {
			t.Fatalf("deliveries by webhook-id %v: want %d requests", got, n)
		}
	})
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// TestCallbackTimeoutRetried: an attempt the target does not answer within
// Callback.Timeout is recorded as failed (no status, an error) and retried.
func TestCallbackTimeoutRetried(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "cbt", 1)
		var calls atomic.Int32
		stop := make(chan struct{})
		hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Read the body, so the server notices the client hanging up.
			_, _ = io.ReadAll(r.Body)
			if calls.Add(1) == 1 {
				select { // hold until the gateway gives up
				case <-r.Context().Done():
				case <-stop:
				}
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		t.Cleanup(hooks.Close)
		t.Cleanup(func() { close(stop) }) // before hooks.Close, which waits for the handlers
		g := startGateway(t, addrs, func(c *gateway.Config) {
			c.Callback.Allow = []string{hooks.URL + "/"}
			c.Callback.Secret = testSecret
			c.Callback.Timeout = 300 * time.Millisecond
			c.Callback.Schedule = []time.Duration{0, time.Millisecond, time.Millisecond}
		})
		st := submit(t, g, "cbt", "callback="+url.QueryEscape(hooks.URL+"/x"), `{}`)
		rawReply(t, addrs, "spool.gateway.replies", st.ID, "", []byte(`1`))
		s := waitCallback(t, g, st.ID, gateway.CallbackDelivered)
		a := s.Callback.Attempts
		if len(a) != 2 || a[0].Status != 0 || a[0].Error == "" || a[1].Status != http.StatusNoContent || a[1].Error != "" {
			t.Fatalf("attempts %+v: want a timed-out attempt (no status, an error), then 204", a)
		}
		if calls.Load() != 2 {
			t.Fatalf("%d deliveries, want 2", calls.Load())
		}
	})
}

// TestCallbackRetryAfterDate: a Retry-After given as an HTTP date delays
// the next attempt until that date, past the schedule's 1ms.
func TestCallbackRetryAfterDate(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "cbd", 1)
		var calls atomic.Int32
		hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				// At least 2s ahead: the date has whole seconds.
				w.Header().Set("Retry-After", time.Now().Truncate(time.Second).Add(3*time.Second).UTC().Format(http.TimeFormat))
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		}))
		t.Cleanup(hooks.Close)
		g := startGateway(t, addrs, func(c *gateway.Config) {
			c.Callback.Allow = []string{hooks.URL + "/"}
			c.Callback.Secret = testSecret
			c.Callback.Schedule = []time.Duration{0, time.Millisecond, time.Millisecond}
		})
		st := submit(t, g, "cbd", "callback="+url.QueryEscape(hooks.URL+"/x"), `{}`)
		rawReply(t, addrs, "spool.gateway.replies", st.ID, "", []byte(`1`))
		s := waitCallback(t, g, st.ID, gateway.CallbackDelivered)
		a := s.Callback.Attempts
		if len(a) != 2 || a[0].Status != http.StatusServiceUnavailable || a[1].Status != http.StatusOK {
			t.Fatalf("attempts %+v: want 503 then 200", a)
		}
		if gap := a[1].At.Sub(a[0].At); gap < 2*time.Second {
			t.Fatalf("second attempt %v after the first, want at least 2s (the Retry-After date)", gap)
		}
	})
}
