package lookback_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

// startService starts a lookback service against addrs with a fresh
// embedded store (Pebble, the default), stopped by t.Cleanup.
func startService(t *testing.T, addrs []string, mod func(*lookback.Config)) (*lookback.Service, lookback.Store) {
	t.Helper()
	st, err := lookback.OpenPebble(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return startWith(t, addrs, st, mod), st
}

func startWith(t *testing.T, addrs []string, st lookback.Store, mod func(*lookback.Config)) *lookback.Service {
	t.Helper()
	cfg := lookback.Config{Brokers: addrs, Store: st, MetadataMaxAge: 250 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := lookback.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

func produce(t *testing.T, addrs []string, rs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerBatchMaxBytes(2<<20), kgo.MaxBufferedBytes(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func waitEvents(t *testing.T, st lookback.Store, n int64) {
	t.Helper()
	kafkatest.Eventually(t, 30*time.Second, fmt.Sprintf("%d archived events", n), func() bool {
		s, err := st.Stats(context.Background())
		return err == nil && s.Events >= n
	})
	if s, _ := st.Stats(context.Background()); s.Events != n {
		t.Fatalf("archive has %d events, want %d", s.Events, n)
	}
}

func ceRec(t *testing.T, topic, key, typ, corr string, data any) *kgo.Record {
	t.Helper()
	ev, err := event.New(typ, event.JSON, data)
	if err != nil {
		t.Fatal(err)
	}
	ev.Source, ev.Key, ev.CorrelationID = "/test", []byte(key), corr
	r, err := ev.Record(topic)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestArchiver(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 3)
		kafkatest.CreateTopic(t, addrs, "spool.replay.billing", 1)
		svc, st := startService(t, addrs, func(c *lookback.Config) { c.Exclude = []string{`^secret\.`} })
		kafkatest.CreateTopic(t, addrs, "secret.stuff", 1)

		var rs []*kgo.Record
		for i := range 40 {
			rs = append(rs, ceRec(t, "orders", fmt.Sprintf("c-%d", i%4), "order.placed", fmt.Sprintf("flow-%d", i), map[string]any{"n": i}))
		}
		// Not CloudEvents: no headers, no key, binary, a tombstone, and one
		// record of 900 KiB.
		rs = append(rs,
			&kgo.Record{Topic: "orders", Value: []byte("plain text")},
			&kgo.Record{Topic: "orders", Key: []byte{0xff, 0xfe}, Value: []byte{0, 1, 2}},
			&kgo.Record{Topic: "orders", Key: []byte("gone")},
			&kgo.Record{Topic: "orders", Value: []byte(strings.Repeat("x", 900<<10))},
			&kgo.Record{Topic: "spool.replay.billing", Value: []byte("replays are not archived")},
			&kgo.Record{Topic: "secret.stuff", Value: []byte("excluded")},
		)
		produce(t, addrs, rs...)
		waitEvents(t, st, 44)

		// A topic created after the start is picked up.
		kafkatest.CreateTopic(t, addrs, "late", 1)
		produce(t, addrs, ceRec(t, "late", "k", "late.event", "", nil))
		waitEvents(t, st, 45)

		// Offsets are committed for what is archived.
		kafkatest.Eventually(t, 30*time.Second, "committed offsets", func() bool {
			var sum int64
			for _, o := range kafkatest.Committed(t, addrs, "spool-lookback", "orders") {
				sum += o
			}
			return sum == 44
		})

		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()
		var page lookback.SearchResponse
		getJSON(t, srv.URL+"/api/lookback/events?key=c-1&type=order.placed&limit=5", http.StatusOK, &page)
		if len(page.Events) != 5 || page.Next == "" {
			t.Fatalf("search by key: %d events, next %q", len(page.Events), page.Next)
		}
		for _, e := range page.Events {
			if string(e.Key) != "c-1" || e.Type != "order.placed" || e.Source != "/test" || e.ID == "" {
				t.Fatalf("search by key: %+v", e)
			}
		}
		var rest lookback.SearchResponse
		getJSON(t, srv.URL+"/api/lookback/events?key=c-1&type=order.placed&limit=5&cursor="+page.Next, http.StatusOK, &rest)
		if len(rest.Events) != 5 || rest.Next != "" || rest.Events[0].Offset == page.Events[4].Offset && rest.Events[0].Partition == page.Events[4].Partition {
			t.Fatalf("second page: %d events, next %q", len(rest.Events), rest.Next)
		}
		getJSON(t, srv.URL+"/api/lookback/events?correlation_id=flow-7", http.StatusOK, &page)
		if len(page.Events) != 1 || page.Events[0].CorrelationID != "flow-7" {
			t.Fatalf("search by correlation id: %+v", page.Events)
		}
		getJSON(t, srv.URL+"/api/lookback/events?where="+url.QueryEscape("n=17"), http.StatusOK, &page)
		if len(page.Events) != 1 || page.Events[0].CorrelationID != "flow-17" {
			t.Fatalf("search by JSON path: %+v", page.Events)
		}
		getJSON(t, srv.URL+"/api/lookback/events?q=plain+text", http.StatusOK, &page)
		if len(page.Events) != 1 || page.Events[0].Key != nil || string(page.Events[0].Value) != "plain text" {
			t.Fatalf("search by substring: %+v", page.Events)
		}
		e := page.Events[0]
		var shown lookback.Event
		getJSON(t, fmt.Sprintf("%s/api/lookback/events/%s/%d/%d", srv.URL, e.Topic, e.Partition, e.Offset), http.StatusOK, &shown)
		if string(shown.Value) != "plain text" || shown.Offset != e.Offset {
			t.Fatalf("show: %+v", shown)
		}
		getJSON(t, srv.URL+"/api/lookback/events?topic=spool.replay.billing", http.StatusOK, &page)
		if len(page.Events) != 0 {
			t.Fatal("a replay topic was archived")
		}
		getJSON(t, srv.URL+"/api/lookback/events?topic=secret.stuff", http.StatusOK, &page)
		if len(page.Events) != 0 {
			t.Fatal("an excluded topic was archived")
		}
		getJSON(t, srv.URL+"/api/lookback/events?q="+strings.Repeat("x", 100), http.StatusOK, &page)
		if len(page.Events) != 1 || len(page.Events[0].Value) != 900<<10 {
			t.Fatalf("oversized record: %d events", len(page.Events))
		}
	})
}

func getJSON(t testing.TB, u string, status int, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		var p map[string]any
		json.NewDecoder(resp.Body).Decode(&p)
		t.Fatalf("GET %s: %d %v, want %d", u, resp.StatusCode, p, status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func TestHTTPBadInput(t *testing.T) {
	st, err := lookback.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := lookback.New(lookback.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	for _, c := range []struct{ path, want string }{
		{"/api/lookback/events?from=yesterday", "RFC 3339"},
		{"/api/lookback/events?to=2026-13-01T00:00:00Z", "RFC 3339"},
		{"/api/lookback/events?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "empty"},
		{"/api/lookback/events?since=-1h", "positive duration"},
		{"/api/lookback/events?since=1h&from=2026-12-01T00:00:00Z", "both"},
		{"/api/lookback/events?limit=0", "limit"},
		{"/api/lookback/events?limit=abc", "limit"},
		{"/api/lookback/events?cursor=zzz", "cursor"},
		{"/api/lookback/events?order=sideways", "order"},
		{"/api/lookback/events?where=data.x", "PATH=VALUE"},
		{"/api/lookback/events?colour=red", "unknown query parameter"},
		{"/api/lookback/events/orders/x/1", "partition and offset"},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Status int
			Detail string
		}
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(p.Detail, c.want) {
			t.Fatalf("GET %s: %d %q %+v %v, want 400 problem mentioning %q", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), p, err, c.want)
		}
	}
	resp, err := http.Get(srv.URL + "/api/lookback/events/orders/0/99")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("missing event: %d, want 404", resp.StatusCode)
	}
	resp, err = http.Post(srv.URL+"/api/lookback/erasures", "application/json", strings.NewReader(`{"key":""}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("erase without key: %d, want 400", resp.StatusCode)
	}
}
