package gateway_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// countingStore counts the reads of each request.
type countingStore struct {
	gateway.Store
	mu    sync.Mutex
	gets  map[string]int
	first map[string]time.Time
}

func (s *countingStore) Get(ctx context.Context, id string) (*gateway.Request, error) {
	s.mu.Lock()
	if s.gets[id]++; s.gets[id] == 1 {
		s.first[id] = time.Now()
	}
	s.mu.Unlock()
	return s.Store.Get(ctx, id)
}

func (s *countingStore) reads(id string) (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[id], s.first[id]
}

// TestWaitWokenWithReply: a long poll (Prefer: wait) on the instance that
// applies the reply answers with the request the reply left, without
// reading it from the store again: one read, the poll's own, before the
// reply (more only if the wait outlasts the once-a-second store poll).
func TestWaitWokenWithReply(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "cmd", 1)
		inner, err := gateway.OpenStore(context.Background(), filepath.Join(t.TempDir(), "gw.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { inner.Close() })
		cs := &countingStore{Store: inner, gets: map[string]int{}, first: map[string]time.Time{}}
		g := startGateway(t, addrs, func(c *gateway.Config) { c.Store = cs })
		st := submit(t, g, "cmd", "", `{}`)
		type answer struct {
			code int
			body []byte
			err  error
		}
		done := make(chan answer, 1)
		go func() { // not poll: t.Fatal only on the test's goroutine
			req, _ := http.NewRequest("GET", g.URL+"/api/requests/"+st.ID, nil)
			req.Header.Set("Prefer", "wait=30")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			done <- answer{resp.StatusCode, b, err}
		}()
		deadline := time.Now().Add(30 * time.Second)
		for n, _ := cs.reads(st.ID); n == 0; n, _ = cs.reads(st.ID) { // the poll has read the request: it is waiting
			if time.Now().After(deadline) {
				t.Fatal("the poll did not read the request")
			}
			time.Sleep(time.Millisecond) // polling a condition with a deadline
		}
		rawReply(t, addrs, "spool.gateway.replies", st.ID, "ok", []byte(`{"ok":true}`))
		a := <-done
		if a.err != nil || a.code != 200 {
			t.Fatalf("poll: %d %s %v", a.code, a.body, a.err)
		}
		got := decode[status](t, a.body)
		if got.State != "succeeded" || compact(string(got.Result)) != `{"ok":true}` {
			t.Fatalf("poll answered %+v", got)
		}
		n, first := cs.reads(st.ID)
		if allowed := 1 + int(time.Since(first)/time.Second); n > allowed {
			t.Fatalf("the woken poll read the request %d times; want 1 (%d allowed after %v of store polls)", n, allowed, time.Since(first))
		}
	})
}
