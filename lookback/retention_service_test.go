package lookback_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

// waitCommitted waits until the archiver's group has committed n offsets
// of topic in total: every one of them is durable in the store.
func waitCommitted(t *testing.T, addrs []string, topic string, n int64) {
	t.Helper()
	kafkatest.Eventually(t, 30*time.Second, fmt.Sprintf("%d committed offsets of %s", n, topic), func() bool {
		var sum int64
		for _, o := range kafkatest.Committed(t, addrs, "spool-lookback", topic) {
			sum += o
		}
		return sum >= n
	})
}

// stats returns the store's statistics.
func stats(t *testing.T, st lookback.Store) lookback.Stats {
	t.Helper()
	s, err := st.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRetentionMaxAge: with Config.MaxAge the running service removes the
// archived events whose record timestamp is older, including ones archived
// after it started, and keeps the others.
func TestRetentionMaxAge(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "aged", 1)
		svc, st := startService(t, addrs, func(c *lookback.Config) {
			c.MaxAge = time.Hour
			c.RetentionInterval = 20 * time.Millisecond
		})
		// Retention works a block at a time (the events of one append), so
		// the old events are archived before the recent ones, apart.
		now := time.Now()
		var old, recent []*kgo.Record
		for i := range 10 {
			r := &kgo.Record{Topic: "aged", Value: []byte(fmt.Sprintf("v%d", i)), Timestamp: now.Add(-2 * time.Hour)} // older than MaxAge
			if i%2 == 1 {
				r.Timestamp = now
				recent = append(recent, r)
			} else {
				old = append(old, r)
			}
		}
		produce(t, addrs, old...)
		waitCommitted(t, addrs, "aged", 5)
		produce(t, addrs, recent...)
		waitCommitted(t, addrs, "aged", 10)
		kafkatest.Eventually(t, 30*time.Second, "retention to remove the 5 old events", func() bool {
			return stats(t, st).Events == 5
		})
		// While the archiver runs: more old events are removed too.
		produce(t, addrs, &kgo.Record{Topic: "aged", Value: []byte("old-late"), Timestamp: now.Add(-3 * time.Hour)})
		waitCommitted(t, addrs, "aged", 11)
		produce(t, addrs, &kgo.Record{Topic: "aged", Value: []byte("new-late"), Timestamp: now})
		waitCommitted(t, addrs, "aged", 12)
		kafkatest.Eventually(t, 30*time.Second, "retention to remove the late old event", func() bool {
			return stats(t, st).Events == 6
		})
		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()
		var page lookback.SearchResponse
		getJSON(t, srv.URL+"/api/lookback/events?topic=aged&order=oldest&limit=100", http.StatusOK, &page)
		var got []string
		for _, e := range page.Events {
			got = append(got, string(e.Value))
		}
		if fmt.Sprint(got) != "[v1 v3 v5 v7 v9 new-late]" {
			t.Fatalf("archive after retention holds %v, want only the recent events", got)
		}
	})
}

// TestRetentionMaxBytes: with Config.MaxBytes the running service removes
// the oldest events until the stored payloads fit, and keeps the newest.
func TestRetentionMaxBytes(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "sized", 1)
		// Five appends of about 16 KiB stored each (retention drops whole
		// blocks, the events of one append): the newest two fit.
		const limit = 40 << 10
		svc, st := startService(t, addrs, func(c *lookback.Config) {
			c.MaxBytes = limit
			c.RetentionInterval = 20 * time.Millisecond
		})
		base := time.Now().Add(-time.Minute)
		for round := range 5 {
			var rs []*kgo.Record
			for j := range 8 {
				i := round*8 + j
				v := make([]byte, 2<<10) // random: compresses to about its size
				rand.Read(v)
				rs = append(rs, &kgo.Record{Topic: "sized", Key: []byte(fmt.Sprintf("k%02d", i)), Value: v, Timestamp: base.Add(time.Duration(i) * time.Millisecond)})
			}
			produce(t, addrs, rs...)
			waitCommitted(t, addrs, "sized", int64(8*(round+1)))
		}
		kafkatest.Eventually(t, 30*time.Second, fmt.Sprintf("stored bytes to fall to %d", limit), func() bool {
			s := stats(t, st)
			return s.StoredBytes <= limit && s.Events > 0
		})
		if s := stats(t, st); s.Events >= 40 || s.Events < 4 {
			t.Fatalf("%d events kept of 40 (%d stored bytes, limit %d)", s.Events, s.StoredBytes, limit)
		}
		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()
		var page lookback.SearchResponse
		getJSON(t, srv.URL+"/api/lookback/events?key=k39", http.StatusOK, &page)
		if len(page.Events) != 1 {
			t.Fatal("the newest event was removed")
		}
		getJSON(t, srv.URL+"/api/lookback/events?key=k00", http.StatusOK, &page)
		if len(page.Events) != 0 {
			t.Fatal("the oldest event was kept")
		}
	})
}
