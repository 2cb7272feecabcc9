package claimcheck_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/claimcheck"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/producer"
)

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// TestClaimCheck: a producer with a claim check offloads a 2 MiB payload
// (over the broker's 1 MiB message limit) to the store and publishes a
// reference; a small one goes inline. The agent hands both to the handler
// as published. A record whose blob was deleted, and one whose blob was
// replaced by other bytes, are dead-lettered with reason claim-missing
// and never reach the handler.
func TestClaimCheck(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		kafkatest.CreateTopic(t, addrs, "docs", 1)
		store, err := claimcheck.NewDir(filepath.Join(t.TempDir(), "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		cc := claimcheck.New(store)
		p, err := producer.New(producer.WithBrokers(addrs...), producer.WithSource("/docs"), producer.WithClaimCheck(cc))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()

		publish := func(data []byte) (*event.Event, producer.Result) {
			t.Helper()
			ev, err := event.New("doc.stored", event.Raw, data)
			if err != nil {
				t.Fatal(err)
			}
			ev.Key = []byte("doc")
			res, err := p.Publish(ctx, "docs", ev)
			if err != nil {
				t.Fatal(err)
			}
			return ev, res
		}
		big := payload(2<<20, 1)
		evBig, resBig := publish(big)
		if len(resBig.Value) != 0 || header(resBig.Record, claimcheck.HeaderSize) != fmt.Sprint(len(big)) {
			t.Fatalf("the big payload went inline: value %d bytes, size header %q", len(resBig.Value), header(resBig.Record, claimcheck.HeaderSize))
		}
		if sum := sha256.Sum256(big); header(resBig.Record, claimcheck.HeaderSHA256) != fmt.Sprintf("%x", sum) {
			t.Fatalf("sha256 header %q", header(resBig.Record, claimcheck.HeaderSHA256))
		}
		small := []byte(`{"title":"inline"}`)
		evSmall, resSmall := publish(small)
		if !bytes.Equal(resSmall.Value, small) || header(resSmall.Record, claimcheck.HeaderRef) != "" {
			t.Fatalf("the small payload was offloaded")
		}
		evGone, resGone := publish(payload(1<<20, 2))
		if err := store.Delete(ctx, header(resGone.Record, claimcheck.HeaderRef)); err != nil {
			t.Fatal(err)
		}
		evBad, resBad := publish(payload(1<<20, 3))
		if err := store.Put(ctx, header(resBad.Record, claimcheck.HeaderRef), payload(1<<20, 4)); err != nil {
			t.Fatal(err)
		}

		var mu sync.Mutex
		got := map[string][]byte{}
		var stray []string
		h := func(_ context.Context, m *agent.Message) error {
			mu.Lock()
			defer mu.Unlock()
			got[m.ID] = m.Data
			for _, hd := range m.Headers {
				if hd.Key == claimcheck.HeaderRef || hd.Key == claimcheck.HeaderSize || hd.Key == claimcheck.HeaderSHA256 {
					stray = append(stray, hd.Key)
				}
			}
			return nil
		}
		a, err := agent.New("docs-g", []string{"docs"}, agent.WithBrokers(addrs...),
			agent.WithClientOptions(kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())),
			agent.WithHandler("doc.stored", h), agent.WithClaimCheck(cc))
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		ran := make(chan error, 1)
		go func() { ran <- a.Run(rctx) }()
		var dead []*kgo.Record
		kafkatest.Eventually(t, 30*time.Second, "two handled, two dead-lettered", func() bool {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n < 2 {
				return false
			}
			dead = kafkatest.ReadAll(t, addrs, "docs.dlq")
			return len(dead) >= 2
		})
		cancel()
		if err := <-ran; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		if !bytes.Equal(got[evBig.ID], big) || !bytes.Equal(got[evSmall.ID], small) || len(got) != 2 {
			t.Errorf("handler got %d events; big payload intact %v, small %v", len(got), bytes.Equal(got[evBig.ID], big), bytes.Equal(got[evSmall.ID], small))
		}
		if len(stray) > 0 {
			t.Errorf("the handler saw claim headers %v", stray)
		}
		want := map[string]bool{evGone.ID: true, evBad.ID: true}
		for _, r := range dead {
			if header(r, agent.HeaderDLQReason) != agent.ReasonClaimMissing || !want[event.IDOf(r)] {
				t.Errorf("dead letter %s: reason %q, error %q", event.IDOf(r), header(r, agent.HeaderDLQReason), header(r, agent.HeaderDLQError))
			}
			if header(r, claimcheck.HeaderRef) == "" {
				t.Errorf("dead letter %s lost its claim reference", event.IDOf(r))
			}
			delete(want, event.IDOf(r))
		}
		if len(want) > 0 {
			t.Errorf("not dead-lettered: %v", want)
		}
	})
}

// TestResolveErrors: malformed references are claim-missing; a store that
// fails otherwise is not (it may answer next time).
func TestResolveErrors(t *testing.T) {
	ctx := context.Background()
	store, err := claimcheck.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cc := claimcheck.New(store, claimcheck.WithThreshold(4))
	ev := &event.Event{ID: "e1", Type: "t", Source: "/s", Data: []byte("more than four bytes")}
	if ok, err := cc.Offload(ctx, ev); !ok || err != nil || ev.Data != nil {
		t.Fatalf("offload: %v, %v, data %q", ok, err, ev.Data)
	}
	for name, mutate := range map[string]func(e *event.Event){
		"path in ref":  func(e *event.Event) { e.SetHeader(claimcheck.HeaderRef, []byte("../../etc/passwd")) },
		"bad size":     func(e *event.Event) { e.SetHeader(claimcheck.HeaderSize, []byte("many")) },
		"bad sha":      func(e *event.Event) { e.SetHeader(claimcheck.HeaderSHA256, []byte("zz")) },
		"wrong size":   func(e *event.Event) { e.SetHeader(claimcheck.HeaderSize, []byte("3")) },
		"missing blob": func(e *event.Event) { e.SetHeader(claimcheck.HeaderRef, []byte("no-such-blob")) },
	} {
		c := *ev
		c.Headers = append([]event.Header(nil), ev.Headers...)
		mutate(&c)
		if ok, err := cc.Resolve(ctx, &c); !ok || !errors.Is(err, claimcheck.ErrClaimMissing) {
			t.Errorf("%s: %v, %v, want ErrClaimMissing", name, ok, err)
		}
	}
	c := *ev
	c.Headers = append([]event.Header(nil), ev.Headers...)
	if ok, err := cc.Resolve(ctx, &c); !ok || err != nil || string(c.Data) != "more than four bytes" || len(c.Headers) != 0 {
		t.Fatalf("resolve: %v, %v, %q, headers %v", ok, err, c.Data, c.Headers)
	}
	failing := claimcheck.New(failStore{}, claimcheck.WithThreshold(4))
	c = *ev
	if _, err := failing.Resolve(ctx, &c); err == nil || errors.Is(err, claimcheck.ErrClaimMissing) {
		t.Fatalf("a failing store: %v, want a retryable error", err)
	}
	if ok, err := cc.Resolve(ctx, &event.Event{ID: "plain", Data: []byte("x")}); ok || err != nil {
		t.Fatalf("an event without a reference: %v, %v", ok, err)
	}
}

// failStore is a store whose every call fails, as one that is unreachable.
type failStore struct{}

var errDown = errors.New("store unreachable")

func (failStore) Put(context.Context, string, []byte) error                   { return errDown }
func (failStore) Get(context.Context, string) ([]byte, error)                 { return nil, errDown }
func (failStore) Delete(context.Context, string) error                        { return errDown }
func (failStore) List(context.Context, func(claimcheck.BlobInfo) error) error { return errDown }

// countHandler counts log records whose message is msg.
type countHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// TestClaimStoreDown: while the blob store fails, the agent retries the
// event (logging each failure) and neither calls the handler nor
// dead-letters it.
func TestClaimStoreDown(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		kafkatest.CreateTopic(t, addrs, "scans", 1)
		store, err := claimcheck.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		p, err := producer.New(producer.WithBrokers(addrs...), producer.WithSource("/scans"),
			producer.WithClaimCheck(claimcheck.New(store)))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		ev, _ := event.New("scan.stored", event.Raw, payload(1<<20, 5))
		if _, err := p.Publish(ctx, "scans", ev); err != nil {
			t.Fatal(err)
		}
		var failures atomic.Int64
		var called atomic.Bool
		a, err := agent.New("scans-g", []string{"scans"}, agent.WithBrokers(addrs...),
			agent.WithClientOptions(kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())),
			agent.WithBackoff(time.Millisecond, 5*time.Millisecond),
			agent.WithLogger(slog.New(countHandler{"agent: claim check store failed, will retry", &failures})),
			agent.WithHandler("scan.stored", func(context.Context, *agent.Message) error { called.Store(true); return nil }),
			agent.WithClaimCheck(claimcheck.New(failStore{})))
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		ran := make(chan error, 1)
		go func() { ran <- a.Run(rctx) }()
		kafkatest.Eventually(t, 30*time.Second, "three failed resolutions", func() bool { return failures.Load() >= 3 })
		cancel()
		<-ran
		if called.Load() {
			t.Error("the handler ran without its payload")
		}
		if dead := kafkatest.ReadAll(t, addrs, "scans.dlq"); len(dead) != 0 {
			t.Errorf("dead-lettered while the store was down: %d records", len(dead))
		}
		if st := a.Stats(); st.DeadLettered != 0 || st.Succeeded != 0 {
			t.Errorf("stats: %+v", st)
		}
	})
}
