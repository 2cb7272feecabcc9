package agent

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/event"
)

// TestIdleKeysBounded: queues of keys with nothing left to do are kept for
// reuse, but no more than twice the window of them per partition, however
// many distinct keys go through; and the handler's context carries its
// event (event.FromContext) and the agent's own values.
func TestIdleKeysBounded(t *testing.T) {
	const n, window = 1000, 4
	type ctxKey struct{}
	var handled, badCtx atomic.Int64
	a, err := New("g", []string{"t"}, WithConcurrency(2), WithWindow(window),
		WithHandler("t", func(ctx context.Context, m *Message) error {
			if ev, ok := event.FromContext(ctx); !ok || ev != m.Event || ctx.Value(ctxKey{}) != "v" {
				badCtx.Add(1) // the handler's context must carry its event and the agent's values
			}
			handled.Add(1)
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	a.handlerCtx = context.WithValue(context.Background(), ctxKey{}, "v")
	var workers sync.WaitGroup
	for range 2 {
		workers.Go(a.worker)
	}
	defer func() {
		a.mu.Lock()
		a.mu.stopping = true
		a.halting.Store(true)
		a.mu.work.Broadcast()
		a.mu.Unlock()
		workers.Wait()
	}()
	for i := range n {
		ev, err := event.New("t", event.Raw, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		ev.Source = "/test"
		r, err := ev.Record("t")
		if err != nil {
			t.Fatal(err)
		}
		r.Key, r.Offset = fmt.Appendf(nil, "key-%d", i), int64(i)
		a.add(kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "t", Partitions: []kgo.FetchPartition{{Records: []*kgo.Record{r}}}}}}})
	}
	// Wait on the agent's idle signal: a worker broadcasts a.mu.idle when
	// the last running handler returns, after the n-th call counted; a
	// timer broadcasts it too, as the deadline.
	a.mu.Lock()
	timedOut := false
	deadline := time.AfterFunc(30*time.Second, func() {
		a.mu.Lock()
		timedOut = true
		a.mu.idle.Broadcast()
		a.mu.Unlock()
	})
	defer deadline.Stop()
	for handled.Load() != n || a.mu.running != 0 {
		if timedOut {
			a.mu.Unlock()
			t.Fatalf("handled %d of %d", handled.Load(), n)
		}
		a.mu.idle.Wait()
	}
	defer a.mu.Unlock() // holding the lock for the checks
	if badCtx.Load() != 0 {
		t.Fatalf("%d handler calls without their event or the agent's values in ctx", badCtx.Load())
	}
	p := a.mu.parts[tp{"t", 0}]
	if len(p.keys) > 2*window+1 || p.idleKeys != len(p.keys) {
		t.Fatalf("%d key queues kept (%d idle) after %d distinct keys, window %d", len(p.keys), p.idleKeys, n, window)
	}
}

// TestItemSize: items are allocated in bulk for every poll; a field added
// carelessly grows every event's footprint (see the item doc comment).
func TestItemSize(t *testing.T) {
	if n := unsafe.Sizeof(item{}); n > 64 {
		t.Fatalf("item is %d bytes, want at most 64", n)
	}
}
