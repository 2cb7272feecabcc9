package agent

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/event"
)

// TestCorrelationOrder: with WithCorrelationOrder, keyless events of
// different correlation ids are handled concurrently (all four ids are in
// their handlers at once), those of one id one at a time in offset order;
// without it, the same events are handled one at a time.
func TestCorrelationOrder(t *testing.T) {
	ids := []string{"a", "b", "c", "d", "a", "b", "c", "d"}
	for _, on := range []bool{true, false} {
		name := map[bool]string{true: "WithCorrelationOrder", false: "default"}[on]
		t.Run(name, func(t *testing.T) {
			var (
				mu       sync.Mutex
				running  = map[string]int{}
				inFlight int
				most     int
				order    = map[string][]int64{}
				handled  int
			)
			// With the option, the first four calls wait for each other:
			// they only all arrive if they run concurrently.
			first4 := make(chan struct{})
			arrived := 0
			opts := []Option{WithConcurrency(4), WithHandler("cmd", func(ctx context.Context, m *Message) error {
				mu.Lock()
				id := m.CorrelationID
				running[id]++
				inFlight++
				most = max(most, inFlight)
				if running[id] > 1 {
					t.Errorf("two events of correlation id %s handled at once", id)
				}
				order[id] = append(order[id], m.Record.Offset)
				arrived++
				if arrived == 4 {
					close(first4)
				}
				wait := on && arrived <= 4
				mu.Unlock()
				if wait {
					select {
					case <-first4:
					case <-time.After(10 * time.Second):
						t.Error("keyless events of different correlation ids did not run concurrently")
					}
				}
				mu.Lock()
				running[id]--
				inFlight--
				handled++
				mu.Unlock()
				return nil
			})}
			if on {
				opts = append(opts, WithCorrelationOrder())
			}
			a, err := New("g", []string{"t"}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			a.handlerCtx = context.Background()
			var workers sync.WaitGroup
			for range 4 {
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
			var recs []*kgo.Record
			for i, id := range ids {
				ev, err := event.New("cmd", event.Raw, []byte("x"))
				if err != nil {
					t.Fatal(err)
				}
				ev.Source, ev.CorrelationID = "/test", id
				r, err := ev.Record("t")
				if err != nil {
					t.Fatal(err)
				}
				r.Offset = int64(i)
				recs = append(recs, r)
			}
			a.add(kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "t", Partitions: []kgo.FetchPartition{{Records: recs}}}}}})
			deadline := time.Now().Add(30 * time.Second)
			for {
				mu.Lock()
				n := handled
				mu.Unlock()
				if n == len(ids) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("handled %d of %d", n, len(ids))
				}
				time.Sleep(time.Millisecond) // polling a condition with a deadline
			}
			mu.Lock()
			defer mu.Unlock()
			for id, offs := range order {
				if len(offs) != 2 || offs[0] > offs[1] {
					t.Errorf("correlation id %s handled at offsets %v; want two, in order", id, offs)
				}
			}
			if want := map[bool]int{true: 4, false: 1}[on]; most != want {
				t.Errorf("at most %d handlers at once; want %d", most, want)
			}
		})
	}
}
