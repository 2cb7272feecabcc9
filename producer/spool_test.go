package producer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/producer"
)

// runDown runs f per cluster with a broker address where nothing listens
// yet; start brings the broker up there.
func runDown(t *testing.T, f func(t *testing.T, addr string, start func() []string)) {
	for _, c := range kafkatest.Clusters() {
		t.Run(c.Name, func(t *testing.T) {
			addr := kafkatest.FreeAddr(t)
			f(t, addr, func() []string { return c.StartAt(t, addr) })
		})
	}
}

func newSpooling(t *testing.T, addr, dir string, maxBytes int64, opts ...producer.Option) *producer.Producer {
	t.Helper()
	p, err := producer.New(append([]producer.Option{
		producer.WithBrokers(addr), producer.WithSource("/test"),
		producer.WithSpool(dir, maxBytes), producer.WithSpoolDeadline(time.Second),
		// Notice the broker coming back sooner than the default 5s.
		producer.WithClientOptions(kgo.MetadataMinAge(100 * time.Millisecond)),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func keyed(t testing.TB, key string, n int) *event.Event {
	t.Helper()
	ev, err := event.New("order.placed", event.JSON, map[string]any{"key": key, "n": n})
	if err != nil {
		t.Fatal(err)
	}
	ev.Key = []byte(key)
	return ev
}

// idsByKey returns the ce_ids of rs in order, by key, and fails on a
// record carrying the spool's own header.
func idsByKey(t *testing.T, rs []*kgo.Record) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, r := range rs {
		for _, h := range r.Headers {
			if h.Key == producer.HeaderSpoolTopic && string(h.Value) == r.Topic {
				t.Fatalf("record %s@%d carries the spool's %s header", r.Topic, r.Offset, h.Key)
			}
		}
		out[string(r.Key)] = append(out[string(r.Key)], event.IDOf(r))
	}
	return out
}

func waitEmpty(t *testing.T, p *producer.Producer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitSpoolEmpty(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSpoolBrokerDown: with no broker, every Publish is acknowledged as
// spooled (durable, partition and offset -1); when the broker comes up the
// drainer publishes them all, in order per key, with their envelope; then
// publishing goes directly to the broker again.
func TestSpoolBrokerDown(t *testing.T) {
	runDown(t, func(t *testing.T, addr string, start func() []string) {
		ctx := context.Background()
		p := newSpooling(t, addr, t.TempDir(), 1<<20)
		want := map[string][]string{}
		var first *event.Event
		for i := range 40 {
			key := fmt.Sprintf("cust-%d", i%4)
			ev := keyed(t, key, i)
			ev.SetHeader("spool_topic", []byte("an application header of the same name"))
			if i == 0 {
				first = ev
			}
			res, err := p.Publish(ctx, "orders", ev)
			if err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			if !res.Spooled || res.Partition != -1 || res.Offset != -1 {
				t.Fatalf("publish %d with no broker: spooled %v at %d@%d", i, res.Spooled, res.Partition, res.Offset)
			}
			want[key] = append(want[key], ev.ID)
		}
		st := p.SpoolStats()
		if st.Records != 40 || !st.Spooling || st.Bytes <= 0 || st.Err == nil {
			t.Fatalf("stats with the broker down: %+v", st)
		}

		addrs := start()
		kafkatest.CreateTopic(t, addrs, "orders", 4)
		waitEmpty(t, p)
		if st := p.SpoolStats(); st.Records != 0 || st.Spooling || st.Err != nil {
			t.Fatalf("stats after the drain: %+v", st)
		}
		res, err := p.Publish(ctx, "orders", keyed(t, "cust-0", 99))
		if err != nil || res.Spooled || res.Offset < 0 {
			t.Fatalf("publish with the broker back: spooled %v offset %d, %v", res.Spooled, res.Offset, err)
		}

		got := kafkatest.ReadAll(t, addrs, "orders")
		byKey := idsByKey(t, got)
		for k, ids := range want {
			if k == "cust-0" {
				ids = append(ids, event.IDOf(res.Record))
			}
			if !slices.Equal(byKey[k], ids) {
				t.Errorf("key %s: got %v, want %v", k, byKey[k], ids)
			}
		}
		for _, r := range got {
			if event.IDOf(r) != first.ID {
				continue
			}
			back, err := event.FromRecord(r)
			if err != nil {
				t.Fatal(err)
			}
			first.Source = "/test"
			if !event.Equal(back, first) {
				t.Errorf("drained event %+v, published %+v", back, first)
			}
			if !r.Timestamp.Equal(first.Time.Truncate(time.Millisecond)) && r.Timestamp.Before(first.Time.Add(-time.Second)) {
				t.Errorf("drained record timestamp %v, event time %v", r.Timestamp, first.Time)
			}
		}
	})
}

// TestSpoolKeyOrder: while a key has events in the spool, a later event of
// that key is spooled behind them even though the broker is up; other keys
// go to the broker directly.
func TestSpoolKeyOrder(t *testing.T) {
	runDown(t, func(t *testing.T, addr string, start func() []string) {
		ctx := context.Background()
		dir := t.TempDir()
		// A first run spools three events of cust-1 with the broker down.
		p1 := newSpooling(t, addr, dir, 1<<20)
		var want []string
		for i := range 3 {
			ev := keyed(t, "cust-1", i)
			if res, err := p1.Publish(ctx, "orders", ev); err != nil || !res.Spooled {
				t.Fatalf("publish %d: spooled %v, %v", i, res.Spooled, err)
			}
			want = append(want, ev.ID)
		}
		p1.Close()

		addrs := start()
		kafkatest.CreateTopic(t, addrs, "orders", 4)
		gate := make(chan struct{})
		p2 := newSpooling(t, addr, dir, 1<<20, producer.WithDrainGate(gate))
		if st := p2.SpoolStats(); st.Records != 3 || st.Spooling {
			t.Fatalf("stats after reopening: %+v", st)
		}
		ev := keyed(t, "cust-1", 3)
		res, err := p2.Publish(ctx, "orders", ev)
		if err != nil || !res.Spooled {
			t.Fatalf("cust-1 with events of its key in the spool: spooled %v, %v", res.Spooled, err)
		}
		want = append(want, ev.ID)
		other, err := p2.Publish(ctx, "orders", keyed(t, "cust-2", 0))
		if err != nil || other.Spooled || other.Offset < 0 {
			t.Fatalf("cust-2 with nothing of its key spooled: spooled %v offset %d, %v", other.Spooled, other.Offset, err)
		}
		// PublishAsync follows the same rule.
		evAsync := keyed(t, "cust-1", 4)
		done := make(chan producer.Result, 1)
		p2.PublishAsync(ctx, "orders", evAsync, func(r producer.Result, err error) {
			if err != nil {
				t.Error(err)
			}
			done <- r
		})
		if r := <-done; !r.Spooled {
			t.Fatal("PublishAsync of cust-1 went past the spooled events of its key")
		}
		want = append(want, evAsync.ID)

		close(gate)
		waitEmpty(t, p2)
		got := idsByKey(t, kafkatest.ReadAll(t, addrs, "orders"))
		if !slices.Equal(got["cust-1"], want) {
			t.Errorf("cust-1: got %v, want %v", got["cust-1"], want)
		}
		if len(got["cust-2"]) != 1 {
			t.Errorf("cust-2: %v", got["cust-2"])
		}
	})
}

// TestSpoolFull: the spool refuses an event that would take it past its
// maximum with ErrSpoolFull, keeps everything it acknowledged, and drains it.
func TestSpoolFull(t *testing.T) {
	runDown(t, func(t *testing.T, addr string, start func() []string) {
		ctx := context.Background()
		p := newSpooling(t, addr, t.TempDir(), 8<<10)
		var acked []string
		var full error
		for i := 0; i < 1000 && full == nil; i++ {
			ev := keyed(t, "k", i)
			res, err := p.Publish(ctx, "orders", ev)
			switch {
			case err != nil:
				full = err
			case !res.Spooled:
				t.Fatalf("publish %d not spooled with the broker down", i)
			default:
				acked = append(acked, ev.ID)
			}
		}
		if !errors.Is(full, producer.ErrSpoolFull) {
			t.Fatalf("publishing into a full spool: %v, want ErrSpoolFull", full)
		}
		t.Logf("%d events spooled before: %v", len(acked), full)
		if st := p.SpoolStats(); st.Bytes > 8<<10 || st.Records != int64(len(acked)) || len(acked) < 10 {
			t.Fatalf("stats of a full spool: %+v after %d acks", st, len(acked))
		}
		addrs := start()
		kafkatest.CreateTopic(t, addrs, "orders", 4)
		waitEmpty(t, p)
		if got := idsByKey(t, kafkatest.ReadAll(t, addrs, "orders"))["k"]; !slices.Equal(got, acked) {
			t.Errorf("drained %d events, acknowledged %d: %v", len(got), len(acked), got)
		}
	})
}

// TestSpoolRefused: what the broker or client refuses for good (an event
// too large, an invalid one) fails Publish and is not spooled.
func TestSpoolRefused(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		kafkatest.CreateTopic(t, addrs, "orders", 4)
		p := newSpooling(t, addrs[0], t.TempDir(), 16<<20)
		big := keyed(t, "k", 0)
		big.Data = make([]byte, 2<<20) // over the client's 1 MB batch limit
		if res, err := p.Publish(ctx, "orders", big); err == nil || res.Spooled {
			t.Fatalf("an event too large: spooled %v, err %v", res.Spooled, err)
		}
		if _, err := p.Publish(ctx, "orders", &event.Event{ID: "x"}); !errors.Is(err, event.ErrMissingAttribute) {
			t.Fatalf("an event without a type: %v", err)
		}
		if st := p.SpoolStats(); st.Records != 0 || st.Spooling {
			t.Fatalf("refused events spooled: %+v", st)
		}
		if res, err := p.Publish(ctx, "orders", keyed(t, "k", 1)); err != nil || res.Spooled {
			t.Fatalf("a good event after them: spooled %v, %v", res.Spooled, err)
		}
	})
}

// TestSpoolLocked: a second producer on a spool directory in use fails
// New with ErrSpoolLocked; once the first is closed it opens.
func TestSpoolLocked(t *testing.T) {
	dir := t.TempDir()
	addr := kafkatest.FreeAddr(t)
	p := newSpooling(t, addr, dir, 1<<20)
	if _, err := producer.New(producer.WithBrokers(addr), producer.WithSpool(dir, 1<<20)); !errors.Is(err, producer.ErrSpoolLocked) {
		t.Fatalf("second producer on %s: %v, want ErrSpoolLocked", dir, err)
	}
	p.Close()
	newSpooling(t, addr, dir, 1<<20)
}

// TestSpoolOptions: bad spool settings fail New with a message.
func TestSpoolOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []producer.Option
	}{
		{"no dir", []producer.Option{producer.WithSpool("", 1<<20)}},
		{"zero size", []producer.Option{producer.WithSpool(t.TempDir(), 0)}},
		{"zero deadline", []producer.Option{producer.WithSpool(t.TempDir(), 1<<20), producer.WithSpoolDeadline(-1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := producer.New(tc.opts...)
			if err == nil {
				p.Close()
				t.Fatal("New accepted it")
			}
			t.Log(err)
		})
	}
}
